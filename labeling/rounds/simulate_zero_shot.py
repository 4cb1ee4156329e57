"""``labelloop simulate`` on files, and its ``--zero-shot`` comparison: the same strategies and
seeds run without and with the zero-shot prior, so a user sees whether the prior helps on their
own data before turning it on (docs/assisted.md, "Zero-shot start").

The label descriptions come from a file (``--descriptions``): TOML or JSON, either a flat table
``label = "text"`` or the guidelines' own shape (``[labels.NAME]`` with ``definition`` and
``include``, as ``labelloop guidelines show --toml`` prints it).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeling.annotation.guidelines import LabelGuide
from labeling.data.readers import read_labelled
from labeling.errors import BadInput, LabelloopError
from labeling.rounds.embeddings import embed
from labeling.rounds.featurizers import DEFAULT_FEATURIZER
from labeling.rounds.learning_curves import BASELINE, write_chart
from labeling.rounds.simulate import simulate
from labeling.rounds.zero_shot import (
    DEFAULT_TEMPERATURE,
    cosine_scores,
    default_calibration,
    description_texts,
    probabilities,
)
from labeling.weak.files import weak_labels_for_file
from strategies import DEFAULT_STRATEGY

#: The prior's fade in simulations: the workspace default (labeling.config).
DEFAULT_FADE = 20.0


def read_descriptions(path: str | Path, labels: Sequence[str]) -> dict[str, LabelGuide]:
    """Each label's description from a TOML or JSON file (flat, or the guidelines' shape).

    A label the data does not have is refused, naming it; a label without a description
    is described by its name (as ``zero_shot = "on"`` does in a workspace)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as exc:  # tomllib's and json's errors are ValueErrors
        raise BadInput(f"option '--descriptions': cannot read {path.name}: {exc}") from exc
    table = data.get("labels", data) if isinstance(data, dict) else None
    if not isinstance(table, dict):
        raise BadInput(
            f"option '--descriptions': {path.name}: expected a table of label = description"
        )
    found: dict[str, LabelGuide] = {}
    for label, value in table.items():
        if label not in labels:
            raise BadInput(
                f"option '--descriptions': {path.name} describes {label!r}, which is not a "
                f"label of the data ({', '.join(labels)})"
            )
        if isinstance(value, str):
            found[label] = LabelGuide(definition=value)
        elif isinstance(value, dict):
            found[label] = LabelGuide(
                definition=str(value.get("definition", "")), include=str(value.get("include", ""))
            )
        else:
            raise BadInput(
                f"option '--descriptions': {path.name}: label {label!r}: expected a text or a "
                "table with definition and include"
            )
    return found


def embedding_prior(
    labels: Sequence[str], guides: dict[str, LabelGuide]
) -> Callable[[list[str]], NDArray[np.float64]]:
    """texts -> the prior (softmax of cosines at the default temperature: a simulation has
    no gold to calibrate on, and its test set is never looked at)."""
    descriptions = embed(description_texts(labels, guides))
    calibration = default_calibration(len(labels))

    def prior(texts: list[str]) -> NDArray[np.float64]:
        return probabilities(cosine_scores(embed(texts), descriptions), calibration)

    return prior


def compare(without: dict[str, Any], with_prior: dict[str, Any]) -> dict[str, Any]:
    """Per strategy, macro-F1 at each checkpoint without and with the prior, and the gain."""
    table: dict[str, Any] = {}
    for name, result in with_prior["strategies"].items():
        if name == BASELINE:
            continue
        base = {p["labels"]: p["macro_f1"] for p in without["strategies"][name]["curve"]}
        table[name] = {
            "curve": [
                {
                    "labels": p["labels"],
                    "without": base.get(p["labels"]),
                    "with": p["macro_f1"],
                    "gain": round(p["macro_f1"] - base[p["labels"]], 4)
                    if p["labels"] in base
                    else None,
                }
                for p in result["curve"]
            ],
            "labels_to_95pct_without": without["strategies"][name]["labels_to_95pct"],
            "labels_to_95pct_with": result["labels_to_95pct"],
        }
    return table


def simulate_files(
    data: str | Path,
    *,
    text_field: str,
    label_field: str,
    test: str | Path | None = None,
    strategies: Sequence[str] | None = None,
    featurizer: str = DEFAULT_FEATURIZER,
    lfs_file: str | Path | None = None,
    chart: str | Path | None = None,
    zero_shot: bool = False,
    descriptions: str | Path | None = None,
    **options: Any,
) -> dict[str, Any]:
    """:func:`labeling.rounds.simulate.simulate` on labelled files, as ``labelloop simulate``
    runs it (``options``: its test_size, budget, batch, seeds, progress).

    ``random`` is always the baseline; ``strategies`` default to ``diverse_uncertainty``.
    ``lfs_file``: an LF file whose weak labels join training, as in rounds. ``chart``: also
    write the learning curves there (.html or .png). ``zero_shot``: run again with the prior
    from ``descriptions`` and add ``"zero_shot"`` to the report (:func:`compare`).
    """
    _check_zero_shot_options(zero_shot, descriptions)
    texts, labels, rows = read_labelled(Path(data), text_field=text_field, label_field=label_field)
    test_texts = test_labels = None
    if test is not None:
        test_texts, test_labels, _ = read_labelled(
            Path(test), text_field=text_field, label_field=label_field
        )
    names = list(dict.fromkeys([BASELINE, *(strategies or [DEFAULT_STRATEGY])]))
    weak_labels = weak_confidence = None
    weak_report = None
    label_names = sorted(set(labels) | set(test_labels or []))
    guides = read_descriptions(descriptions, label_names) if descriptions is not None else {}
    if lfs_file is not None:
        weak_labels, weak_confidence, weak_report = weak_labels_for_file(
            lfs_file, label_names, rows, texts
        )
    common = {
        "test_texts": test_texts,
        "test_labels": test_labels,
        "strategies": names,
        "featurizer": featurizer,
        "label_names": label_names,
        "weak_labels": weak_labels,
        "weak_confidence": weak_confidence,
        **options,
    }
    try:
        report = simulate(texts, labels, **common)
        if zero_shot:
            report["zero_shot"] = _with_prior(texts, labels, label_names, guides, report, common)
    except (ValueError, KeyError) as exc:
        raise LabelloopError(str(exc)) from exc
    if weak_report is not None:
        report["weak_supervision"] = weak_report
    if chart is not None:
        write_chart(report, chart)
    return report


def _check_zero_shot_options(zero_shot: bool, descriptions: str | Path | None) -> None:
    if zero_shot and descriptions is None:
        raise BadInput("option '--zero-shot' needs --descriptions FILE (label = description)")
    if descriptions is not None and not zero_shot:
        raise BadInput("option '--descriptions' goes with --zero-shot")


def _with_prior(
    texts: list[str],
    labels: list[str],
    label_names: list[str],
    guides: dict[str, LabelGuide],
    without: dict[str, Any],
    common: dict[str, Any],
) -> dict[str, Any]:
    """The same runs again with the zero-shot prior from the labels' descriptions, and how
    each strategy compares with its runs ``without`` it."""
    prior = embedding_prior(label_names, guides)
    with_prior = simulate(texts, labels, prior_for=prior, prior_fade=DEFAULT_FADE, **common)
    return {
        "descriptions": description_texts(label_names, guides),
        "temperature": DEFAULT_TEMPERATURE,
        "fade": DEFAULT_FADE,
        "prior_macro_f1": with_prior["prior_macro_f1"],
        "strategies": compare(without, with_prior),
    }
