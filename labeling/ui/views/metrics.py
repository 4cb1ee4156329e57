"""The Metrics page (engineers, leads, admins): label quality, coverage, model, drift, stopping.

Numbers at the top, warnings next (drift, the stopping hint), then the charts a lead reads at
a glance, then the tables behind them. Everything comes from ``UserSession.metrics()``, the
same numbers as ``labelloop status --json`` and ``labelloop report``.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from labeling import figures
from labeling.annotation.session import UserSession
from labeling.errors import LabelloopError
from labeling.figures import drift_check
from labeling.quality import charts
from labeling.ui.views import common


def _headline(summary: dict) -> None:
    cover = summary["coverage"]
    quality = summary["quality"]
    model = summary["model"]
    promoted = next((r for r in model["rounds"] if r["round"] == model["promoted"]), None)
    meaning = {key: (name, text) for key, name, text in figures.COVERAGE_FIGURES}
    cols = st.columns(5)
    for col, key in zip(cols[:2], ("human", "combined"), strict=True):
        name, text = meaning[key]
        col.metric(
            name,
            figures.share(cover[key]),
            help=f"{text} {figures.count(cover['counts'][key])} of "
            f"{figures.plural(cover['pool'], 'pool item')}.",
        )
    gold = quality["gold"]
    cols[2].metric(
        figures.gold_figure_name(gold),
        figures.share(gold["accuracy"]),
        help=f"{figures.plural(gold['n'], 'current answer')} on hidden gold items"
        + (
            f"; a set's mean Jaccard with the gold set is {figures.score(gold['jaccard'])}"
            if "jaccard" in gold
            else ""
        ),
    )
    agreement = quality["agreement"]
    cols[3].metric(
        "Agreement (α)",
        figures.score(agreement["alpha"]),
        help=f"Krippendorff's alpha over {figures.plural(agreement['alpha_items'], 'pool item')} "
        "answered by two or more people (1: perfect, 0: chance). Gold items are not counted.",
    )
    cols[4].metric(
        "Model macro-F1",
        figures.score(promoted["macro_f1"] if promoted else None),
        help=(
            f"round {promoted['round']}, on {promoted['evaluation']}" if promoted else "no model"
        ),
    )


def _warnings(user: UserSession, summary: dict) -> None:
    for report in summary["drift"]:
        if not report.get("drifted"):
            continue
        text = f"{drift_check(report)} {report['message']}"
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
    passed = [drift_check(r) for r in summary["drift"] if not r.get("drifted")]
    if passed:
        with st.expander(f"Drift checks that found nothing ({len(passed):,})"):
            for line in passed:
                st.caption(line)
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
    st.subheader("Coverage")
    st.dataframe(
        pd.DataFrame(figures.coverage_rows(summary["coverage"])),
        hide_index=True,
        key="ll_metrics_coverage",
    )
    st.caption(
        " ".join(f"**{name}**: {text}" for _key, name, text in figures.COVERAGE_FIGURES)
        + f" (weak_threshold is {summary['coverage']['weak_threshold']}.)"
    )
    rows = figures.annotator_rows(summary["throughput"], quality["gold"]["annotators"])
    if rows:
        st.subheader("Annotators")
        st.dataframe(
            pd.DataFrame(rows),
            hide_index=True,
            key="ll_metrics_annotators",
            column_config={
                name: st.column_config.TextColumn(name, help=text)
                for name, text in figures.ANNOTATOR_COLUMNS.items()
            },
        )
    pairs = quality["agreement"]["pairs"]
    if pairs:
        st.subheader("Agreement by pair")
        st.dataframe(pd.DataFrame(figures.pair_rows(pairs)), hide_index=True)
        per_label = figures.label_kappa_rows(quality["agreement"])
        if per_label:
            st.subheader("Agreement per label")
            st.dataframe(pd.DataFrame(per_label), hide_index=True)
        st.caption(
            "Agreement is measured on pool items that two or more people answered; gold items "
            "are left out (they are scored against the gold label instead)."
        )
    if quality["anchoring"]["n"]:
        st.subheader("Suggestions and anchoring")
        st.dataframe(pd.DataFrame(figures.anchoring_rows(quality["anchoring"])), hide_index=True)
        st.caption(
            "Gold checks answered with suggestions on. A guess is withheld on a random share of "
            "gold items; if people are more often right with it withheld, or take wrong guesses "
            "often, the guess anchors them. Shares with their 95% interval."
        )
    _versions(quality["by_guidelines"])
    if summary["model"]["rounds"]:
        st.subheader("Rounds")
        st.dataframe(pd.DataFrame(figures.round_rows(summary["model"])), hide_index=True)


def _versions(by_guidelines: dict) -> None:
    """Gold accuracy and agreement per guidelines version, once guidelines exist."""
    if not any(v["version"] is not None for v in by_guidelines["versions"]):
        return
    st.subheader("By guidelines version")
    st.dataframe(
        pd.DataFrame(figures.version_rows(by_guidelines)),
        hide_index=True,
        key="ll_metrics_versions",
        column_config={
            name: st.column_config.TextColumn(name, help=text)
            for name, text in figures.VERSION_COLUMNS.items()
        },
    )
    spanning = by_guidelines["spanning_items"]
    st.caption(
        "Did an edit of the guidelines change how people label? Each answer counts under the "
        "version newest when it was given."
        + (
            f" {figures.plural(spanning, 'pool item')} answered under several versions "
            "are in no version's agreement."
            if spanning
            else ""
        )
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
    st.download_button(
        "Download the report (HTML)",
        data=lambda: user.report_html(summary=summary),
        file_name="labelloop-report.html",
        mime="text/html",
        key="ll_report_download",
        icon=":material/download:",
        on_click="ignore",
    )
