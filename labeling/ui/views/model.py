"""The Model page (engineers and admins): rounds, retraining, promotion, the learning curve.

The Retrain button queues a round; the worker that ``labelloop serve`` starts runs it in the
background while annotators keep labelling from the promoted round's scores.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from labeling import figures
from labeling.annotation.session import UserSession
from labeling.errors import LabelloopError
from labeling.quality import charts
from labeling.rounds.promotion import RoundSummary
from labeling.ui.views import common


def _table(summaries: list[RoundSummary]) -> None:
    # "why" second: the reason a round was or was not promoted is read without scrolling.
    rows = [
        {
            "round": s["round"],
            "why": s["error"] or s["metrics"].get("promotion") or "",
            "status": s["status"],
            "promoted": "yes" if s["promoted"] else "",
            "gold macro-F1": figures.score(s["gold_macro_f1"]),
            "gold accuracy": figures.share(s["gold_accuracy"]),
            "human labels": figures.count(s["n_human"]),
            "weak labels": figures.count(s["n_weak"]),
            "evaluated on": s["evaluation"] or "",
            "trained on": _trained_on(s),
            "trigger": s["trigger"],
            "strategy": s["strategy"] or "",
        }
        for s in reversed(summaries)
    ]
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        key="ll_rounds_table",
        column_config={
            "why": st.column_config.TextColumn(
                "why", help="Why the round was promoted or not, or why it failed", width="large"
            )
        },
    )


def _trained_on(summary: RoundSummary) -> str:
    """'hybrid + logreg' for a round with a model, '' for cold start and old rounds."""
    chosen = summary["representation"]
    if not chosen or not summary["metrics"].get("classifier"):
        return ""
    return f"{chosen['featurizer']} + {chosen['classifier']}"


def _representation(summaries: list[RoundSummary]) -> None:
    """The newest finished round's choice of featurizer and classifier, with the candidates'
    cross-validated scores and the reason."""
    done = [s for s in summaries if s["status"] == "succeeded" and s["representation"]]
    if not done:
        return
    last = done[-1]
    chosen = last["representation"]
    assert chosen is not None
    st.subheader("Representation")
    setting = "picked by cross-validation" if chosen["setting"] == "auto" else "fixed"
    st.markdown(
        f"Round {last['round']} trained **{chosen['featurizer']} + {chosen['classifier']}** "
        f"({setting}): {chosen['reason']}."
    )
    scored = [c for c in chosen["candidates"] if c["cv_macro_f1"] is not None]
    if scored:
        rows = [
            {
                "featurizer": c["featurizer"],
                "classifier": c["classifier"],
                "cross-validated macro-F1": figures.score(c["cv_macro_f1"]),
                "chosen": "yes" if c["featurizer"] == chosen["featurizer"] else "",
            }
            for c in scored
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="ll_representation")


def _latest_outcome(summaries: list[RoundSummary]) -> None:
    """The newest finished round's outcome, above the table: promoted or why not."""
    done = [s for s in summaries if s["status"] in ("succeeded", "failed")]
    if not done:
        return
    last = done[-1]
    if last["status"] == "failed":
        st.error(f"Round {last['round']} failed: {last['error']}")
    elif not last["promoted"]:
        why = last["metrics"].get("promotion") or "no reason recorded"
        st.warning(f"Round {last['round']} is not the promoted round ({why}).")


def _curve(summaries: list[RoundSummary]) -> None:
    points = [
        {"labels": s["n_human"], "metric": name, "value": value, "round": s["round"]}
        for s in summaries
        if s["status"] == "succeeded"
        for value, name in ((s["gold_macro_f1"], "macro-F1"), (s["gold_accuracy"], "accuracy"))
        if value is not None
    ]
    st.subheader("Learning curve")
    if len(points) < 2:
        st.caption("Appears once two rounds have been evaluated on gold items.")
        return
    chart = (
        alt.Chart(pd.DataFrame(points))
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "labels:Q",
                title="human-labelled items",
                axis=alt.Axis(format=charts.COUNT, tickMinStep=1),
            ),
            y=alt.Y(
                "value:Q",
                title="on gold",
                scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format=".1f"),
            ),
            color=alt.Color("metric:N", title=None),
            tooltip=[
                alt.Tooltip("round:Q", format="d"),
                alt.Tooltip("labels:Q", format=charts.COUNT),
                "metric",
                alt.Tooltip("value:Q", format=".3f"),
            ],
        )
    )
    st.altair_chart(chart, width="stretch", height=280)


@st.fragment(run_every=2.0)
def _live(user: UserSession) -> None:
    """The rounds, refreshed every 2 s so a running round's stage is visible."""
    summaries = user.rounds()
    running = [s for s in summaries if s["status"] in ("running", "queued")]
    for s in running:
        if s["status"] == "running":
            st.info(f"Round {s['round']} is running: {s['stage'] or 'starting'}...")
        else:
            st.info(f"Round {s['round']} is queued; the background worker will start it.")
    promoted = next((s for s in summaries if s["promoted"]), None)
    cols = st.columns(3)
    cols[0].metric("Rounds", figures.count(len(summaries)))
    cols[1].metric("Promoted", "–" if promoted is None else f"round {promoted['round']}")
    cols[2].metric(
        "Gold macro-F1", figures.score(None if promoted is None else promoted["gold_macro_f1"])
    )
    if summaries:
        _latest_outcome(summaries)
        _table(summaries)
        _representation(summaries)
    else:
        st.caption("No rounds yet. Retrain to rank the queue by what the model is unsure of.")
    _curve(summaries)


def render() -> None:
    user = common.require_engineer("Model")
    if user is None:
        return
    st.title("Model")
    cols = st.columns([2, 2, 2])
    if cols[0].button("Retrain now", key="ll_retrain", type="primary", icon=":material/replay:"):
        try:
            number = user.request_round()
            st.toast(f"Round {number} queued.")
        except LabelloopError as exc:
            st.error(common.plain(exc))
    summaries = user.rounds()
    promoted = next((s["round"] for s in summaries if s["promoted"]), None)
    # Both change what every annotator is served next: each asks first, in a popover.
    with cols[1].popover("Roll back", icon=":material/undo:", disabled=promoted is None):
        st.markdown(
            f"Round {promoted} orders the queue now. Rolling back promotes again the round "
            "promoted before it; annotators are served by that round's scores from their next "
            "item."
        )
        if st.button("Yes, roll back", key="ll_rollback", type="primary"):
            try:
                st.toast(f"Round {user.rollback_round()} is promoted again.")
            except LabelloopError as exc:
                st.error(common.plain(exc))
    succeeded = [s["round"] for s in summaries if s["status"] == "succeeded"]
    with cols[2].popover("Promote a round", icon=":material/upgrade:", disabled=not succeeded):
        choice = st.selectbox("Round", list(reversed(succeeded)), key="ll_promote_choice")
        if choice is not None:
            st.markdown(
                f"Round {choice} will order the queue in place of "
                + ("no round" if promoted is None else f"round {promoted}")
                + "; annotators are served by its scores from their next item."
            )
        if st.button(
            f"Yes, promote round {choice}",
            key="ll_promote",
            type="primary",
            disabled=choice is None or choice == promoted,
        ):
            try:
                user.promote_round(int(choice))
                st.toast(f"Round {choice} is promoted.")
            except LabelloopError as exc:
                st.error(common.plain(exc))
    _live(user)
