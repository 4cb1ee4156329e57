"""Learning curves of a simulation: seeds averaged, labels to reach the target, the chart.

A curve is a list of points ``{"labels", "accuracy", "macro_f1"}``, one per simulated round.
:func:`summarise_runs` averages the seeds' curves of one strategy; :func:`label_efficiency`
compares strategies with the random baseline; :func:`write_chart` draws them.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labeling.errors import BadInput

BASELINE = "random"


def labels_to_target(
    curve: Sequence[dict[str, Any]], target: float, metric: str = "macro_f1"
) -> int | None:
    """Labels at the first curve point whose ``metric`` reaches ``target``; None if never."""
    for point in curve:
        if point[metric] >= target:
            return int(point["labels"])
    return None


def summarise_runs(
    runs: list[list[dict[str, Any]]], target: float, metric: str = "macro_f1"
) -> dict[str, Any]:
    """Average the seeds' curves point by point (they share label counts): every figure of
    the points, with the spread of ``metric`` (the one ``target`` is read on); where points
    name the featurizer they trained on, count the seeds per featurizer."""
    curve = []
    for points in zip(*runs, strict=True):
        point: dict[str, Any] = {"labels": points[0]["labels"]}
        for key, value in points[0].items():
            if key != "labels" and isinstance(value, float | int):
                point[key] = round(float(np.mean([p[key] for p in points])), 4)
        point[f"{metric}_std"] = round(float(np.std([p[metric] for p in points])), 4)
        if "featurizer" in points[0]:
            point["featurizers"] = dict(Counter(str(p["featurizer"]) for p in points))
        curve.append(point)
    return {
        "curve": curve,
        "labels_to_95pct": labels_to_target(curve, target, metric),
        "labels_to_95pct_per_seed": [labels_to_target(run, target, metric) for run in runs],
        "area_under_curve": round(float(np.mean([p[metric] for p in curve])), 4),
    }


def label_efficiency(
    strategies: dict[str, dict[str, Any]], baseline: str = BASELINE
) -> dict[str, float | None]:
    """Labels each strategy needed over the labels ``baseline`` needed (lower is better).

    None where either never reached the target within the budget.
    """
    base = strategies.get(baseline, {}).get("labels_to_95pct")
    ratios: dict[str, float | None] = {}
    for name, summary in strategies.items():
        needed = summary.get("labels_to_95pct")
        ratios[name] = round(needed / base, 3) if needed and base else None
    return ratios


def write_chart(report: dict[str, Any], path: str | Path) -> Path:
    """Learning curves (the target's metric, macro-F1 unless the report says another, against
    labels, one line per strategy) as HTML or PNG.

    HTML is Altair's own page (it loads Vega from a CDN when opened). PNG needs the optional
    package ``vl-convert-python``, which renders offline; without it a PNG request fails with a
    message saying so, and HTML always works.
    """
    import altair as alt  # altair and pandas: ~1 s, charts only
    import pandas as pd  # altair and pandas: ~1 s, charts only

    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".html", ".png"):
        raise BadInput(f"chart file must end in .html or .png, found {target.name!r}")
    if suffix == ".png" and importlib.util.find_spec("vl_convert") is None:
        raise BadInput(
            "PNG charts need the package vl-convert-python, which is not installed; "
            "write an .html chart instead"
        )
    rows = [
        {"strategy": name, **point}
        for name, summary in report["strategies"].items()
        for point in summary["curve"]
    ]
    frame = pd.DataFrame(rows)
    metric = report.get("target_metric", "macro_f1")
    title = metric.replace("_f1", "-F1")
    lines = (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("labels:Q", title="labels"),
            y=alt.Y(f"{metric}:Q", title=f"{title} on the test set", scale=alt.Scale(zero=False)),
            color=alt.Color("strategy:N"),
            tooltip=["strategy", "labels", metric, "accuracy"],
        )
    )
    goal = (
        alt.Chart(pd.DataFrame({metric: [report[f"target_{metric}"]]}))
        .mark_rule(strokeDash=[4, 4], color="gray")
        .encode(y=f"{metric}:Q")
    )
    chart = (lines + goal).properties(
        title="Learning curves (dashed: 95% of full supervision)", width=640, height=360
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    chart.save(str(target))
    return target
