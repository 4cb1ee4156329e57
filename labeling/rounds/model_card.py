"""The ``model-card.md`` beside an exported model: what it predicts, what it learnt from, how well
it did on gold, how to load it without labelloop, and what it cannot do.

Every figure comes from the round's own record (its ``metrics``, as ``labelloop rounds list``
shows them); nothing is measured again here.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from labeling.context import Context
from labeling.rounds.predict import RoundModel
from labeling.rounds.promotion import get_round


@dataclass(frozen=True)
class CardFacts:
    """What the card says, gathered before it is written."""

    project: str
    round_id: int
    trained_at: str
    exported_at: str
    labels: tuple[str, ...]
    workspace_labels: tuple[str, ...]
    multilabel: bool
    featurizer: str
    featurizer_version: str
    classifier: str
    metrics: dict[str, Any]
    trusted: list[str]
    versions: dict[str, str]

    @classmethod
    def of(cls, ws: Context, loaded: RoundModel, trusted: list[str]) -> CardFacts:
        round_ = get_round(ws, loaded.round_id)
        metrics = loaded.metrics
        finished = round_.finished_at.isoformat(timespec="seconds") if round_.finished_at else "?"
        return cls(
            project=ws.config.name,
            round_id=loaded.round_id,
            trained_at=finished,
            exported_at=datetime.now(UTC).isoformat(timespec="seconds"),
            labels=loaded.labels,
            workspace_labels=ws.labels,
            multilabel=loaded.multilabel,
            featurizer=loaded.featurizer_name,
            featurizer_version=str(metrics.get("featurizer", "")),
            classifier=str(metrics.get("classifier") or "?"),
            metrics=metrics,
            trusted=trusted,
            versions={
                name: _version(name) for name in ("labelloop", "scikit-learn", "skops", "numpy")
            }
            | {"python": platform.python_version()},
        )


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def write_card(path: Path, facts: CardFacts) -> None:
    """Write the card as Markdown."""
    parts = [
        _heading(facts),
        _data(facts),
        _evaluation(facts),
        _usage(facts),
        _limits(facts),
    ]
    path.write_text("\n".join(parts), encoding="utf-8")


def _heading(facts: CardFacts) -> str:
    task = "multi-label (a set of labels per text)" if facts.multilabel else "single-label"
    labels = ", ".join(f"`{label}`" for label in facts.labels)
    return f"""# {facts.project}: text classifier from round {facts.round_id}

A scikit-learn pipeline exported by labelloop {facts.versions["labelloop"]}: texts in,
{"per-label probabilities" if facts.multilabel else "class probabilities"} out. It was trained
by round {facts.round_id} of the labelloop workspace "{facts.project}" on {facts.trained_at} and
exported on {facts.exported_at}.

| | |
|---|---|
| task | {task} |
| labels | {labels} |
| featurizer | `{facts.featurizer}` (`{facts.featurizer_version}`) |
| classifier | `{facts.classifier}`{" (one binary model per label)" if facts.multilabel else ""} |
| file | `model.skops` (skops, not pickle) |
| saved with | scikit-learn {facts.versions["scikit-learn"]}, skops {facts.versions["skops"]}, \
numpy {facts.versions["numpy"]}, Python {facts.versions["python"]} |
"""


def _data(facts: CardFacts) -> str:
    m = facts.metrics
    mix = m.get("pool_mix") or {}
    mix_text = ", ".join(f"{k}: {v:,}" for k, v in mix.items()) or "not recorded"
    return f"""## Training data

- {m.get("n_human", 0):,} items labelled by people (of which {m.get("n_bulk", 0):,} by bulk
  labelling alone) and {m.get("n_weak", 0):,} weak labels from labelling functions (weighted
  below people's labels);
- the pool held {m.get("pool", 0):,} items; the model's predictions over it: {mix_text};
- items were chosen for labelling by active learning (strategy `{m.get("strategy", "?")}`),
  so the labelled items are not a random sample of the pool.
"""


def _evaluation(facts: CardFacts) -> str:
    m = facts.metrics
    kind = m.get("evaluation")
    if kind == "gold":
        figures = m.get("gold") or {}
        source = f"{figures.get('n', '?')} gold items (held out: gold items never train)"
    elif kind == "cross-validation":
        figures = m.get("cv") or {}
        source = (
            "cross-validation on the training labels (no gold items): optimistic, since the "
            "labels were chosen by active learning"
        )
    else:
        return "## Evaluation\n\nThe round had no gold items and too few labels to evaluate.\n"
    lines = [
        "## Evaluation",
        "",
        f"On {source}:",
        "",
        f"- accuracy{' (exact set)' if facts.multilabel else ''}: {_num(figures.get('accuracy'))}",
        f"- macro-F1: {_num(figures.get('macro_f1'))}",
    ]
    if facts.multilabel:
        lines.append(f"- micro-F1: {_num(figures.get('micro_f1'))}")
    lines += ["", "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for label, row in (figures.get("per_class") or {}).items():
        lines.append(
            f"| {label} | {_num(row.get('precision'))} | {_num(row.get('recall'))} | "
            f"{_num(row.get('f1'))} | {row.get('support', '')} |"
        )
    return "\n".join(lines) + "\n"


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.3f}"


def _usage(facts: CardFacts) -> str:
    trusted = json.dumps(facts.trusted, indent=4)
    if facts.multilabel:
        predict = f"""LABELS = {json.dumps(list(facts.labels), ensure_ascii=False)}
proba = model.predict_proba(texts)  # P(label present), columns in LABELS order
for text, row in zip(texts, proba):
    print(text, [label for label, p in zip(LABELS, row) if p >= 0.5])"""
    else:
        predict = """proba = model.predict_proba(texts)  # columns in model.classes_ order
for text, label, row in zip(texts, model.predict(texts), proba):
    print(text, label, {c: round(float(p), 3) for c, p in zip(model.classes_, row)})"""
    return f"""## Using it without labelloop

Needs only `pip install scikit-learn=={facts.versions["scikit-learn"]} skops` (the same
scikit-learn version it was saved with). skops loads only the types it is told to trust;
the list below is what this file holds:

```python
import skops.io as sio

TRUSTED = {trusted}
model = sio.load("model.skops", trusted=TRUSTED)
texts = ["first text to classify", "second one"]
{predict}
```
"""


def _limits(facts: CardFacts) -> str:
    rule = (
        "A label is predicted when its probability is at least 0.5, as in the round; the "
        "per-label models are independent (one-vs-rest), so a text may get no label or all."
        if facts.multilabel
        else "The prediction is the most probable class; the probabilities sum to 1."
    )
    unseen = [label for label in facts.workspace_labels if label not in facts.labels]
    missing = (
        f" The workspace's labels {', '.join(unseen)} had no labelled item then, so the model "
        "never predicts them."
        if unseen
        else ""
    )
    return f"""## Known limits

- {rule}{missing}
- It knows the words and character n-grams of the texts it was fitted on: text in another
  language, domain or spelling than the workspace's pool is scored with less evidence, and
  its probabilities are less trustworthy there.
- The labels came from the workspace's annotators and rules; their agreement and the gold
  checks are in labelloop's report (`labelloop report`), not here.
- Load it with the scikit-learn version above: skops files are not promised to load across
  scikit-learn versions.
"""
