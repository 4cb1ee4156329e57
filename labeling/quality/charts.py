"""Altair charts of the metrics, shared by the Metrics page and ``labelloop report``.

Each function takes the dict of :func:`labeling.quality.summary.summary` and returns a chart, or
None when there is nothing to draw yet (the caller says why in words).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labeling.figures import COVERAGE_FIGURES

if TYPE_CHECKING:
    import altair as alt

WIDTH = 420
HEIGHT = 260
# d3 formats, as labeling.figures writes the same figures in text: counts as whole numbers
# with separators, shares with one decimal (axis ticks as whole percentages).
COUNT = ",d"
SHARE = ".1%"


def learning_curve(summary: dict[str, Any]) -> alt.Chart | None:
    import altair as alt  # with pandas ~1 s to import: only drawing a chart needs them
    import pandas as pd  # comes with altair (above)

    points = summary["model"]["learning_curve"]
    if len(points) < 2:
        return None
    return (
        alt.Chart(pd.DataFrame(points), title="Learning curve")
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "labels:Q",
                title="human-labelled items",
                axis=alt.Axis(format=COUNT, tickMinStep=1),
            ),
            y=alt.Y(
                "macro_f1:Q",
                title="macro-F1",
                scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format=".1f"),
            ),
            tooltip=[
                alt.Tooltip("round:Q", format="d"),
                alt.Tooltip("labels:Q", format=COUNT),
                alt.Tooltip("macro_f1:Q", format=".3f"),
            ],
        )
        .properties(width=WIDTH, height=HEIGHT)
    )


def coverage_over_rounds(summary: dict[str, Any]) -> alt.Chart | None:
    import altair as alt  # with pandas ~1 s to import: only drawing a chart needs them
    import pandas as pd  # comes with altair (above)

    rows = [
        {"round": r["round"], "kind": name, "share": r.get(key)}
        for r in summary["coverage"]["rounds"]
        for key, name, _text in COVERAGE_FIGURES
        if r.get(key) is not None
    ]
    if len({r["round"] for r in rows}) < 2:
        return None
    return (
        alt.Chart(pd.DataFrame(rows), title="Coverage of the pool, per round")
        .mark_line(point=True)
        .encode(
            x=alt.X("round:O", title="round"),
            y=alt.Y("share:Q", title="share of pool", axis=alt.Axis(format="%")),
            color=alt.Color("kind:N", title=None, sort=[name for _, name, _ in COVERAGE_FIGURES]),
            tooltip=["round", "kind", alt.Tooltip("share:Q", format=SHARE)],
        )
        .properties(width=WIDTH, height=HEIGHT)
    )


def coverage_per_class(summary: dict[str, Any]) -> alt.Chart | None:
    import altair as alt  # with pandas ~1 s to import: only drawing a chart needs them
    import pandas as pd  # comes with altair (above)

    per_class = summary["coverage"]["per_class"]
    names = {key: name for key, name, _text in COVERAGE_FIGURES}
    rows = [
        {"class": label, "source": names[source], "share": values[source]}
        for label, values in per_class.items()
        for source in ("human", "weak")
    ]
    if not any(r["share"] for r in rows):
        return None
    return (
        alt.Chart(pd.DataFrame(rows), title="Labelled share of the pool, per class")
        .mark_bar()
        .encode(
            y=alt.Y("class:N", title=None, sort=list(per_class)),
            yOffset=alt.YOffset("source:N"),
            x=alt.X("share:Q", title="share of pool", axis=alt.Axis(format="%")),
            color=alt.Color("source:N", title=None),
            tooltip=["class", "source", alt.Tooltip("share:Q", format=SHARE)],
        )
        .properties(width=WIDTH, height=alt.Step(16))
    )


def _heatmap(
    rows: list[dict[str, Any]],
    *,
    x: str,
    y: str,
    value: str,
    title: str,
    fmt: str,
    order: list[str],
    x_title: str | None = None,
) -> alt.LayerChart:
    import altair as alt  # with pandas ~1 s to import: only drawing a chart needs them
    import pandas as pd  # comes with altair (above)

    frame = pd.DataFrame(rows)
    base = alt.Chart(frame, title=title).encode(
        x=alt.X(f"{x}:N", sort=order, title=x_title or x),
        y=alt.Y(f"{y}:N", sort=order, title=y),
    )
    cells = base.mark_rect().encode(
        color=alt.Color(f"{value}:Q", scale=alt.Scale(scheme="blues"), legend=None),
        tooltip=[x, y, alt.Tooltip(f"{value}:Q", format=fmt)],
    )
    text = base.mark_text(fontSize=13).encode(
        text=alt.Text(f"{value}:Q", format=fmt),
        color=alt.condition(
            alt.datum[value] > frame[value].max() * 0.6, alt.value("white"), alt.value("black")
        ),
    )
    # Step sizes: Streamlit drops a fixed height of a chart with two discrete axes.
    return (cells + text).properties(width=alt.Step(56), height=alt.Step(56))


def agreement_matrix(summary: dict[str, Any]) -> alt.LayerChart | None:
    pairs = summary["quality"]["agreement"]["pairs"]
    pairs = [p for p in pairs if p["kappa"] is not None]
    if not pairs:
        return None
    names = sorted({p["a"] for p in pairs} | {p["b"] for p in pairs})
    rows = []
    for p in pairs:
        rows.append({"annotator": p["a"], "other": p["b"], "kappa": p["kappa"], "items": p["n"]})
        rows.append({"annotator": p["b"], "other": p["a"], "kappa": p["kappa"], "items": p["n"]})
    # ("with" would be a JavaScript reserved word inside Vega's expressions.)
    return _heatmap(
        rows,
        x="other",
        x_title="compared with",
        y="annotator",
        value="kappa",
        title="Cohen's kappa between annotators",
        fmt=".3f",  # as labeling.figures.score writes kappa in the tables
        order=names,
    )


def confusion_matrix(summary: dict[str, Any]) -> alt.LayerChart | None:
    model = summary["model"]
    promoted = next((r for r in model["rounds"] if r["round"] == model["promoted"]), None)
    if promoted is None or not promoted["confusion"]:
        return None
    labels = model["labels"]
    rows = [
        {"true": labels[i], "predicted": labels[j], "items": n}
        for i, row in enumerate(promoted["confusion"])
        for j, n in enumerate(row)
    ]
    source = "gold" if promoted["evaluation"] == "gold" else "cross-validation"
    return _heatmap(
        rows,
        x="predicted",
        y="true",
        value="items",
        title=f"Confusion, round {promoted['round']} ({source})",
        fmt="d",
        order=labels,
    )


def gold_by_annotator(summary: dict[str, Any]) -> alt.Chart | None:
    import altair as alt  # with pandas ~1 s to import: only drawing a chart needs them
    import pandas as pd  # comes with altair (above)

    gold = summary["quality"]["gold"]["annotators"]
    rows = [
        {"annotator": name, "day": d["day"], "accuracy": d["accuracy"], "items": d["n"]}
        for name, entry in gold.items()
        for d in entry["by_day"]
    ]
    if not rows:
        return None
    days = {r["day"] for r in rows}
    base = alt.Chart(pd.DataFrame(rows), title="Accuracy on hidden gold checks")
    encode = {
        "y": alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        "color": alt.Color("annotator:N", title=None),
        "tooltip": ["annotator", "day", "items", alt.Tooltip("accuracy:Q", format=SHARE)],
    }
    if len(days) < 2:
        chart = base.mark_bar().encode(x=alt.X("annotator:N", title=None), **encode)
    else:
        chart = base.mark_line(point=True).encode(x=alt.X("day:T", title=None), **encode)
    return chart.properties(width=WIDTH, height=HEIGHT)


def class_mix(summary: dict[str, Any]) -> alt.Chart | None:
    import altair as alt  # with pandas ~1 s to import: only drawing a chart needs them
    import pandas as pd  # comes with altair (above)

    model = summary["model"]
    promoted = next((r for r in model["rounds"] if r["round"] == model["promoted"]), None)
    if promoted is None or not promoted["pool_mix"]:
        return None
    total = sum(promoted["pool_mix"].values()) or 1
    rows = [
        {"class": label, "source": "predicted on pool", "share": n / total}
        for label, n in promoted["pool_mix"].items()
    ]
    human = summary["coverage"]["per_class"]
    labelled = sum(v["human"] for v in human.values())
    if labelled:
        rows += [
            {"class": label, "source": "labelled by people", "share": v["human"] / labelled}
            for label, v in human.items()
        ]
    return (
        alt.Chart(pd.DataFrame(rows), title="Class mix: predicted vs labelled")
        .mark_bar()
        .encode(
            x=alt.X("share:Q", axis=alt.Axis(format="%"), title=None),
            y=alt.Y("source:N", title=None),
            row=alt.Row("class:N", title=None, sort=model["labels"]),
            color=alt.Color("source:N", title=None, legend=None),
            tooltip=["class", "source", alt.Tooltip("share:Q", format=SHARE)],
        )
        .properties(width=WIDTH - 60, height=40)
    )


def all_charts(summary: dict[str, Any]) -> dict[str, Any]:
    """Every chart by name (None where there is nothing to draw yet)."""
    return {
        "learning_curve": learning_curve(summary),
        "coverage_over_rounds": coverage_over_rounds(summary),
        "coverage_per_class": coverage_per_class(summary),
        "agreement_matrix": agreement_matrix(summary),
        "confusion_matrix": confusion_matrix(summary),
        "gold_by_annotator": gold_by_annotator(summary),
        "class_mix": class_mix(summary),
    }
