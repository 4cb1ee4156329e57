"""The Metrics page (engineers, leads, admins): label quality, coverage, model, drift, stopping.

Numbers at the top, warnings next (drift, the stopping hint), then the charts a lead reads at
a glance, then the tables behind them. Everything comes from ``UserSession.metrics()``, the
same numbers as ``labelloop status --json`` and ``labelloop report``.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from labeling import charts
from labeling.app_pages import common
from labeling.errors import LabelloopError
from labeling.services import UserSession


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _num(value: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)


def _headline(summary: dict) -> None:
    cover = summary["coverage"]
    quality = summary["quality"]
    model = summary["model"]
    promoted = next((r for r in model["rounds"] if r["round"] == model["promoted"]), None)
    cols = st.columns(5)
    cols[0].metric(
        "Labelled by people",
        _pct(cover["human"]),
        help=f"{cover['counts']['human']:,} of {cover['pool']:,} pool items",
    )
    cols[1].metric(
        "Covered, people or weak",
        _pct(cover["combined"]),
        help=f"A confident weak label is one at or above {cover['weak_threshold']}. "
        f"LFs vote on {_pct(cover['lf'])} of the pool.",
    )
    gold = quality["gold"]
    cols[2].metric(
        "Accuracy on gold checks",
        _pct(gold["accuracy"]),
        help=f"{gold['n']:,} answers on hidden gold items",
    )
    agreement = quality["agreement"]
    cols[3].metric(
        "Agreement (α)",
        _num(agreement["alpha"]),
        help=f"Krippendorff's alpha over {agreement['alpha_items']:,} items answered by two "
        "or more people (1: perfect, 0: chance)",
    )
    cols[4].metric(
        "Model macro-F1",
        _num(promoted["macro_f1"] if promoted else None),
        help=(
            f"round {promoted['round']}, on {promoted['evaluation']}" if promoted else "no model"
        ),
    )


def _warnings(user: UserSession, summary: dict) -> None:
    for report in summary["drift"]:
        if not report.get("drifted"):
            continue
        text = f"Drift in import {report['batch']} ({report['source']}): {report['message']}"
        if report.get("mix_distance") is not None:
            text += f" Predicted class mix differs by {report['mix_distance']:.0%} from the labels."
        cols = st.columns([5, 1])
        cols[0].warning(text, icon=":material/warning:")
        can_stop = bool(report.get("priority_left")) and user.can("lead")
        if can_stop and cols[1].button(
            "Stop serving first",
            key=f"ll_drift_stop_{report['batch']}",
            help=f"{report['priority_left']} more labels on these items would end it",
        ):
            try:
                user.stop_priority(report["batch"])
            except LabelloopError as exc:
                st.error(common.plain(exc))
            st.rerun()
    stop = summary["stopping"]
    if stop["stop"]:
        st.success(stop["message"], icon=":material/flag:")
    else:
        st.caption(f"Stopping hint: {stop['message']}")


def _charts(summary: dict) -> None:
    found = charts.all_charts(summary)
    waiting = {
        "learning_curve": "The learning curve appears after two evaluated rounds.",
        "coverage_over_rounds": "Coverage over rounds appears after two rounds.",
        "agreement_matrix": "Agreement appears once two people answer the same items "
        "(overlap above 1 on the Team page).",
        "confusion_matrix": "The confusion matrix appears with a promoted, evaluated round.",
        "gold_by_annotator": "Gold accuracy appears once people answer gold items "
        "(import some with --split gold).",
        "class_mix": "The class mix appears with a promoted round.",
        "coverage_per_class": "Per-class coverage appears with the first labels.",
    }
    order = [
        ("learning_curve", "coverage_over_rounds"),
        ("agreement_matrix", "confusion_matrix"),
        ("gold_by_annotator", "class_mix"),
        ("coverage_per_class", None),
    ]
    for pair in order:
        cols = st.columns(2)
        for col, name in zip(cols, pair, strict=True):
            if name is None:
                continue
            with col:
                if found[name] is None:
                    st.caption(waiting[name])
                else:
                    st.altair_chart(found[name], width="content")


def _tables(summary: dict) -> None:
    quality = summary["quality"]
    speed = summary["throughput"]
    gold = quality["gold"]["annotators"]
    names = sorted(set(speed) | set(gold))
    if names:
        st.subheader("Annotators")
        rows = []
        for name in names:
            s = speed.get(name, {})
            g = gold.get(name, {})
            rows.append(
                {
                    "annotator": name,
                    "labels": s.get("labels", 0),
                    "labels per hour": s.get("labels_per_hour"),
                    "median s per item": s.get("median_seconds"),
                    "skip rate": s.get("skip_rate"),
                    "gold answered": g.get("n", 0),
                    "gold accuracy": g.get("accuracy"),
                }
            )
        st.dataframe(
            pd.DataFrame(rows),
            hide_index=True,
            column_config={
                "labels per hour": st.column_config.NumberColumn(format="%.0f"),
                "median s per item": st.column_config.NumberColumn(format="%.1f"),
                "skip rate": st.column_config.NumberColumn(format="percent"),
                "gold accuracy": st.column_config.NumberColumn(format="percent"),
            },
        )
    pairs = quality["agreement"]["pairs"]
    if pairs:
        st.subheader("Agreement by pair")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "annotator": p["a"],
                        "with": p["b"],
                        "shared items": p["n"],
                        "kappa": p["kappa"],
                        "agree": p["observed"],
                    }
                    for p in pairs
                ]
            ),
            hide_index=True,
            column_config={
                "kappa": st.column_config.NumberColumn(format="%.2f"),
                "agree": st.column_config.NumberColumn(format="percent"),
            },
        )
    rounds = summary["model"]["rounds"]
    if rounds:
        st.subheader("Rounds")
        labels = summary["model"]["labels"]
        rows = []
        for r in reversed(rounds):
            row = {
                "round": r["round"],
                "promoted": r["promoted"],
                "human labels": r["n_human"],
                "evaluated on": r["evaluation"],
                "accuracy": r["accuracy"],
                "macro-F1": r["macro_f1"],
            }
            for label in labels:
                per = (r["per_class"] or {}).get(label, {})
                row[f"{label} P/R"] = (
                    f"{per['precision']:.2f} / {per['recall']:.2f}" if per else "-"
                )
            rows.append(row)
        st.dataframe(
            pd.DataFrame(rows),
            hide_index=True,
            column_config={
                "accuracy": st.column_config.NumberColumn(format="%.3f"),
                "macro-F1": st.column_config.NumberColumn(format="%.3f"),
            },
        )


def render() -> None:
    common.apply_style()
    user = common.require_user()
    st.title("Metrics")
    try:
        summary = user.metrics()
    except LabelloopError as exc:
        st.error(common.plain(exc))
        return
    _headline(summary)
    _warnings(user, summary)
    _charts(summary)
    _tables(summary)
    from labeling.report import render_html

    st.download_button(
        "Download the report (HTML)",
        data=lambda: render_html(user.workspace, summary=summary),
        file_name="labelloop-report.html",
        mime="text/html",
        key="ll_report_download",
        icon=":material/download:",
        on_click="ignore",
    )
