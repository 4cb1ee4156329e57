"""The Model page (engineers and admins): rounds, retraining, promotion, the learning curve.

The Retrain button queues a round; the worker that ``labelloop serve`` starts runs it in the
background while annotators keep labelling from the promoted round's scores.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from labeling.app_pages import common
from labeling.errors import LabelloopError
from labeling.services import UserSession


def _table(summaries: list[dict]) -> None:
    rows = [
        {
            "round": s["round"],
            "status": s["status"],
            "trigger": s["trigger"],
            "strategy": s["strategy"],
            "human labels": s["n_human"],
            "weak labels": s["n_weak"],
            "gold accuracy": s["gold_accuracy"],
            "gold macro-F1": s["gold_macro_f1"],
            "evaluated on": s["evaluation"],
            "promoted": s["promoted"],
            "note": s["error"] or s["metrics"].get("promotion") or "",
        }
        for s in reversed(summaries)
    ]
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        key="ll_rounds_table",
        column_config={
            "gold accuracy": st.column_config.NumberColumn(format="%.3f"),
            "gold macro-F1": st.column_config.NumberColumn(format="%.3f"),
        },
    )


def _curve(summaries: list[dict]) -> None:
    points = [
        {"labels": s["n_human"], "metric": name, "value": s[key], "round": s["round"]}
        for s in summaries
        if s["status"] == "succeeded"
        for key, name in (("gold_macro_f1", "macro-F1"), ("gold_accuracy", "accuracy"))
        if s[key] is not None
    ]
    st.subheader("Learning curve")
    if len(points) < 2:
        st.caption("Appears once two rounds have been evaluated on gold items.")
        return
    chart = (
        alt.Chart(pd.DataFrame(points))
        .mark_line(point=True)
        .encode(
            x=alt.X("labels:Q", title="human-labelled items"),
            y=alt.Y("value:Q", title="on gold", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("metric:N", title=None),
            tooltip=["round", "labels", "metric", alt.Tooltip("value:Q", format=".3f")],
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
    cols[0].metric("Rounds", len(summaries))
    cols[1].metric("Promoted", "–" if promoted is None else f"round {promoted['round']}")
    f1 = None if promoted is None else promoted["gold_macro_f1"]
    cols[2].metric("Gold macro-F1", "–" if f1 is None else f"{f1:.3f}")
    if summaries:
        _table(summaries)
    else:
        st.caption("No rounds yet. Retrain to rank the queue by what the model is unsure of.")
    _curve(summaries)


def render() -> None:
    user = common.require_user()
    if not user.can("engineer"):
        st.error("The Model page is for engineers and admins.")
        return
    st.title("Model")
    cols = st.columns([2, 2, 2])
    if cols[0].button("Retrain now", key="ll_retrain", type="primary", icon=":material/replay:"):
        try:
            number = user.request_round()
            st.toast(f"Round {number} queued.")
        except LabelloopError as exc:
            st.error(common.plain(exc))
    if cols[1].button("Roll back", key="ll_rollback", icon=":material/undo:"):
        try:
            st.toast(f"Round {user.rollback_round()} is promoted again.")
        except LabelloopError as exc:
            st.error(common.plain(exc))
    succeeded = [s["round"] for s in user.rounds() if s["status"] == "succeeded"]
    with cols[2].popover("Promote a round", icon=":material/upgrade:", disabled=not succeeded):
        choice = st.selectbox("Round", list(reversed(succeeded)), key="ll_promote_choice")
        if st.button("Promote", key="ll_promote") and choice is not None:
            try:
                user.promote_round(int(choice))
                st.toast(f"Round {choice} is promoted.")
            except LabelloopError as exc:
                st.error(common.plain(exc))
    _live(user)
