"""``labelloop.toml``: the workspace's settings, validated on every open.

Unknown keys, empty or duplicate labels and out-of-range values are errors that name the key,
say what was expected and what was found. Later features add keys here, with defaults.
"""

from __future__ import annotations

import json
import tomllib
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labeling.config_tables import (
    LLMSettings,
    WebhookSettings,
    kind,
    llm_from_mapping,
    webhooks_from_list,
)
from labeling.errors import ConfigError

CONFIG_FILE = "labelloop.toml"
MAX_LABEL_CHARS = 100
SINGLE_LABEL = "single-label"
MULTI_LABEL = "multi-label"
TASKS = (SINGLE_LABEL, MULTI_LABEL)


@dataclass(frozen=True)
class WorkspaceConfig:
    """Settings of one workspace. ``labels`` order is the label order everywhere."""

    name: str
    labels: tuple[str, ...]
    # single-label: an answer is one label; multi-label: a set of labels (the empty set too).
    # Fixed at init and recorded in the store too (labeling.store.labelsets).
    task: str = SINGLE_LABEL
    text_field: str = "text"
    # Optional SQLAlchemy URL; empty means the workspace's own SQLite file.
    database: str = ""
    # How many different annotators label each pool item.
    overlap: int = 1
    # How long an item handed to an annotator stays theirs before it goes back to the queue.
    lease_seconds: int = 1800
    # The Label page keeps the item on screen and this many more in the browser, so that a key
    # press shows the next at once and answers go to the server in the background (0: one item
    # at a time, each press a round trip).
    prefetch: int = 3
    # Seed of the random queue order used before a model has scored the pool.
    queue_seed: int = 0
    # Source fields shown under the text on the Label page (e.g. the channel or a title).
    display_fields: tuple[str, ...] = ()
    # Retraining rounds: a round is queued every `retrain_every` new human labels (0: never
    # automatically); `strategy` ranks the pool; `batch_size` items are chosen as a batch and
    # put first; a round is promoted unless its gold macro-F1 is more than
    # `promote_tolerance` below the promoted round's.
    retrain_every: int = 50
    strategy: str = ""
    featurizer: str = "auto"
    classifier: str = "logreg"
    batch_size: int = 50
    promote_tolerance: float = 0.01
    # Weak labels in rounds: unlabelled items whose weak label is at least this confident
    # train with this weight times their confidence (gold items never do), and all of them
    # together weigh at most `weak_balance` times the human labels (0: no cap).
    weak_threshold: float = 0.7
    weak_weight: float = 0.5
    weak_balance: float = 2.0
    # Quality: share of an annotator's items that are hidden gold checks; the model confidence
    # above which a disagreeing human label is listed for review; the stop set's size.
    gold_rate: float = 0.05
    review_confidence: float = 0.9
    stop_set_size: int = 1000
    # Drift of new imports: a domain classifier's AUC at or above `drift_threshold` warns;
    # `drift_action = "retrain"` also queues a round and serves the new items first until
    # `drift_priority` of them are labelled.
    drift_threshold: float = 0.95
    drift_action: str = "warn"
    drift_priority: int = 100
    # The longest one code LF call may take on the local engine, in seconds (0: no limit).
    # A call that takes longer stops `lf apply` with an error naming the LF and the item.
    lf_timeout: float = 30.0
    # Rounds run at this lower CPU priority (a Unix nice value, 0-19), so that annotators'
    # clicks, served by other processes on the same machine, come first.
    round_nice: int = 10
    # Assisted labelling: the guess the Label page pre-selects (off, model, llm or weak), and
    # the share of gold items on which it is withheld at random (the anchoring check).
    suggestions: str = "off"
    suggestion_holdout: float = 0.5
    # Zero-shot start (labeling.rounds.zero_shot_round): score items against the labels'
    # descriptions before any label ("auto": when every label has a definition in the
    # guidelines). Off by default: it measured worse at 20 labels on both our data sets
    # (docs/assisted.md). The prior's weight is zero_shot_fade / (zero_shot_fade + labels).
    zero_shot: str = "off"
    zero_shot_fade: float = 20.0
    # The LLM labelling function's server (labeling.weak.llm); None: not configured.
    llm: LLMSettings | None = None
    # Where events are POSTed (labeling.service.webhooks); empty: nowhere.
    webhooks: tuple[WebhookSettings, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


# key: (minimum, maximum)
_INT_KEYS = {
    "overlap": (1, 100),
    "lease_seconds": (10, 30 * 24 * 3600),
    "prefetch": (0, 20),
    "queue_seed": (0, 2**63 - 1),
    "retrain_every": (0, 10_000_000),
    "batch_size": (1, 100_000),
    "stop_set_size": (10, 1_000_000),
    "drift_priority": (0, 10_000_000),
    "round_nice": (0, 19),
}
_FLOAT_KEYS = {
    "promote_tolerance": (0.0, 1.0),
    "weak_threshold": (0.0, 1.0),
    "weak_weight": (0.0, 1.0),
    "weak_balance": (0.0, 1000.0),
    "gold_rate": (0.0, 0.5),
    "review_confidence": (0.5, 1.0),
    "drift_threshold": (0.5, 1.0),
    "lf_timeout": (0.0, 86_400.0),
    "suggestion_holdout": (0.0, 1.0),
    "zero_shot_fade": (0.0, 100_000.0),
}
_STR_KEYS = (
    "name",
    "task",
    "text_field",
    "database",
    "strategy",
    "featurizer",
    "classifier",
    "drift_action",
    "suggestions",
    "zero_shot",
)
DRIFT_ACTIONS = ("warn", "retrain")
SUGGESTION_MODES = ("off", "model", "llm", "weak")
ZERO_SHOT_MODES = ("off", "auto", "on")
_KNOWN = {
    "name",
    "labels",
    "display_fields",
    "llm",
    "webhooks",
    *_INT_KEYS,
    *_FLOAT_KEYS,
    *_STR_KEYS,
}


def validate_labels(labels: Any, *, where: str = "key 'labels'") -> tuple[str, ...]:
    """Check a label list: non-empty strings, no duplicates, at least two labels."""
    if not isinstance(labels, list | tuple):
        raise ConfigError(f"{where}: expected a list of label names, found {kind(labels)}")
    if len(labels) < 2:
        raise ConfigError(
            f"{where}: expected at least 2 labels, found {len(labels)}"
            + (f" ({labels[0]!r})" if labels else "")
        )
    seen: set[str] = set()
    for position, label in enumerate(labels, start=1):
        if not isinstance(label, str):
            raise ConfigError(f"{where}: label {position} must be a string, found {kind(label)}")
        if not label.strip():
            raise ConfigError(f"{where}: label {position} is empty")
        if label != label.strip():
            raise ConfigError(
                f"{where}: label {position} {label!r} has leading or trailing whitespace"
            )
        if any(unicodedata.category(ch) == "Cc" for ch in label):
            raise ConfigError(f"{where}: label {position} {label!r} holds a control character")
        if len(label) > MAX_LABEL_CHARS:
            raise ConfigError(
                f"{where}: label {position} is {len(label)} characters long; "
                f"at most {MAX_LABEL_CHARS} allowed"
            )
        if label in seen:
            raise ConfigError(f"{where}: label {label!r} appears more than once")
        seen.add(label)
    return tuple(labels)


def parse_task_option(value: str) -> str:
    """``--task single-label|multi-label``."""
    if value not in TASKS:
        raise ConfigError(f"option '--task': expected one of {', '.join(TASKS)}, found {value!r}")
    return value


def parse_labels_option(value: str) -> tuple[str, ...]:
    """``--labels a,b,c`` as a validated tuple."""
    parts = [part.strip() for part in value.split(",")]
    return validate_labels(parts, where="option '--labels'")


def config_from_mapping(data: dict[str, Any], *, source: str = CONFIG_FILE) -> WorkspaceConfig:
    """A workspace's settings from the toml's table: one check per key kind, each naming the
    key and ``source``."""
    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key {unknown[0]!r}; known keys are {', '.join(sorted(_KNOWN))}"
        )
    for key in ("name", "labels"):
        if key not in data:
            raise ConfigError(f"{source}: key {key!r} is missing")
    labels = validate_labels(data["labels"], where=f"{source}: key 'labels'")
    values: dict[str, Any] = {"labels": labels}
    values.update(_strings(data, source))
    values.update(_numbers(data, source))
    _check_choices(values, source)
    _check_zero_shot(values, source)
    if "display_fields" in data:
        values["display_fields"] = _string_list(data["display_fields"], "display_fields", source)
    if "llm" in data:
        values["llm"] = llm_from_mapping(data["llm"], source)
    if "webhooks" in data:
        values["webhooks"] = webhooks_from_list(data["webhooks"], source)
    return WorkspaceConfig(**values)


def _strings(data: dict[str, Any], source: str) -> dict[str, str]:
    """The string keys given, checked (``name`` is among them: the caller saw it there)."""
    values: dict[str, str] = {}
    for key in _STR_KEYS:
        if key in data:
            value = data[key]
            if not isinstance(value, str):
                raise ConfigError(f"{source}: key {key!r}: expected a string, found {kind(value)}")
            values[key] = value
    if not values["name"].strip():
        raise ConfigError(f"{source}: key 'name': expected a non-empty name")
    if "text_field" in values and not values["text_field"].strip():
        raise ConfigError(f"{source}: key 'text_field': expected a field name, found ''")
    return values


def _numbers(data: dict[str, Any], source: str) -> dict[str, int | float]:
    """The integer and number keys given, checked against their ranges."""
    values: dict[str, int | float] = {}
    for key, (minimum, maximum) in _INT_KEYS.items():
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(
                    f"{source}: key {key!r}: expected an integer >= {minimum}, found {kind(value)}"
                )
            if value > maximum:
                raise ConfigError(
                    f"{source}: key {key!r}: expected an integer <= {maximum:,}, found {value:,}"
                )
            values[key] = value
    for key, (low, high) in _FLOAT_KEYS.items():
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{source}: key {key!r}: expected a number, found {kind(value)}")
            if not low <= value <= high:
                raise ConfigError(
                    f"{source}: key {key!r}: expected a number from {low} to {high}, found {value}"
                )
            values[key] = float(value)
    return values


def _check_choices(values: dict[str, Any], source: str) -> None:
    """The keys that name one of a few modes hold one of them."""
    if values.get("task", SINGLE_LABEL) not in TASKS:
        raise ConfigError(
            f"{source}: key 'task': expected one of {', '.join(TASKS)}, found {values['task']!r}"
        )
    if values.get("drift_action", "warn") not in DRIFT_ACTIONS:
        raise ConfigError(
            f"{source}: key 'drift_action': expected one of {', '.join(DRIFT_ACTIONS)}, "
            f"found {values['drift_action']!r}"
        )
    if values.get("suggestions", "off") not in SUGGESTION_MODES:
        raise ConfigError(
            f"{source}: key 'suggestions': expected one of {', '.join(SUGGESTION_MODES)}, "
            f"found {values['suggestions']!r}"
        )


def _check_zero_shot(values: dict[str, Any], source: str) -> None:
    mode = values.get("zero_shot", "off")
    if mode not in ZERO_SHOT_MODES:
        raise ConfigError(
            f"{source}: key 'zero_shot': expected one of {', '.join(ZERO_SHOT_MODES)}, "
            f"found {mode!r}"
        )
    if mode == "on" and values.get("task") == MULTI_LABEL:
        raise ConfigError(
            f"{source}: key 'zero_shot': the zero-shot start is single-label for now and this "
            f'workspace is {MULTI_LABEL}; use "auto" or "off"'
        )


def _string_list(value: Any, key: str, source: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(
            f"{source}: key {key!r}: expected a list of field names, found {kind(value)}"
        )
    if len(set(value)) != len(value):
        raise ConfigError(f"{source}: key {key!r}: a field is listed twice in {value!r}")
    return tuple(value)


def load_config(directory: Path) -> WorkspaceConfig:
    path = directory / CONFIG_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: not found") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: not valid UTF-8 (byte {exc.start}, line {line}); save it as UTF-8"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line L, column C)".
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    return config_from_mapping(data, source=str(path))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a valid TOML basic string (same escapes, \uXXXX included).
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def render_config(config: WorkspaceConfig) -> str:
    data = asdict(config)
    data.pop("extra")
    llm = data.pop("llm")
    hooks = data.pop("webhooks")
    # The task type, fixed at init, comes before the labels it shapes.
    data = {"name": data.pop("name"), "task": data.pop("task"), **data}
    comments = {
        "labels": "# Label order is the order of the keyboard shortcuts and of Snorkel's integers.",
        "task": "# single-label or multi-label; fixed when the workspace was created.",
        "database": "# SQLAlchemy URL; empty: the workspace's own labelloop.db (SQLite).",
        "overlap": "# How many different annotators label each pool item.",
        "lease_seconds": "# An item served to an annotator returns to the queue after this long.",
        "prefetch": "# Items the Label page holds ahead in the browser (0: one at a time).",
        "queue_seed": "# Seed of the random queue order used before the first model.",
        "display_fields": "# Source fields shown under the text on the Label page.",
        "retrain_every": "# Queue a retraining round every N new human labels (0: only by hand).",
        "strategy": "# Query strategy ranking the queue; empty: the default strategy.",
        "featurizer": "# auto (picked per round), tfidf, sentence-embeddings, hybrid, hashing.",
        "classifier": "# logreg (default) or sgd (large pools).",
        "batch_size": "# Items the strategy picks as one diverse batch at the front of the queue.",
        "promote_tolerance": "# Promote a round unless its gold macro-F1 drops by more than this.",
        "weak_threshold": "# Weak labels at least this confident train rounds...",
        "weak_weight": "# ...with this weight x their confidence (human labels weigh 1),",
        "weak_balance": "# ...together at most this many times the human labels (0: no cap).",
        "gold_rate": "# Share of each annotator's items that are hidden gold checks.",
        "review_confidence": "# Review lists human labels a model this confident disagrees with.",
        "stop_set_size": "# Items whose predictions round to round give the stopping hint.",
        "drift_threshold": "# Warn when a domain classifier tells new imports apart (AUC).",
        "drift_action": "# warn, or retrain: also queue a round and serve the new items first.",
        "drift_priority": "# ...until this many of them are labelled.",
        "lf_timeout": "# Longest one code LF call may take, in seconds (0: no limit).",
        "round_nice": "# CPU priority of rounds (nice 0-19): annotators' clicks come first.",
        "suggestions": "# Guess pre-selected on the Label page: off, model, llm or weak.",
        "suggestion_holdout": "# Share of gold items shown without it (the anchoring check).",
        "zero_shot": "# Zero-shot start from label descriptions: off, auto or on (simulate first).",
        "zero_shot_fade": "# The prior weighs fade / (fade + human labels) in the queue's scores.",
    }
    lines = ["# labelloop workspace settings", ""]
    for key, value in data.items():
        if key in comments:
            lines.append(comments[key])
        lines.append(f"{key} = {_toml_value(value)}")
    if llm is not None:  # a table comes after every top-level key
        lines += ["", "# The LLM labelling function's server (docs/assisted.md); the key stays in"]
        lines += ["# the environment variable api_key_env names.", "[llm]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in llm.items()]
    for hook in hooks:  # docs/webhooks.md; the secret stays in the variable secret_env names
        lines += ["", "[[webhooks]]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in hook.items()]
    return "\n".join(lines) + "\n"


def write_config(directory: Path, config: WorkspaceConfig) -> Path:
    path = directory / CONFIG_FILE
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(render_config(config), encoding="utf-8")
    tmp.replace(path)
    return path
