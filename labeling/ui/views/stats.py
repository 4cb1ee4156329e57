"""My stats: the signed-in person's own numbers (every role sees this page)."""

from __future__ import annotations

from datetime import date, timedelta

import altair as alt
import pandas as pd
import streamlit as st

from labeling import figures
from labeling.ui.views import common


def render() -> None:
    user = common.require_user()
    stats = user.my_stats()
    st.title("My stats")
    cols = st.columns(3)
    cols[0].metric(
        "Current labels",
        figures.count(stats["labels"]),
        help=figures.ANNOTATOR_COLUMNS["current labels"],
    )
    cols[1].metric(
        "Current skips",
        figures.count(stats["skips"]),
        help="Items you skipped and have not answered since.",
    )
    cols[2].metric(
        "Median time per item",
        figures.seconds(stats["median_seconds"]),
        help=figures.ANNOTATOR_COLUMNS["median time per item"],
    )
    if not stats["labels"]:
        st.info("No labels yet. Your numbers appear here as you label.")
        return
    by_label = pd.DataFrame(
        {"label": list(stats["by_label"]), "labels": list(stats["by_label"].values())}
    )
    st.subheader("Your labels by class")
    st.altair_chart(
        alt.Chart(by_label)
        .mark_bar()
        .encode(
            x=alt.X("labels:Q", title="labels", axis=alt.Axis(format="d", tickMinStep=1)),
            y=alt.Y("label:N", sort=list(user.labels), title=None),
            tooltip=["label", "labels"],
        ),
        width="stretch",
    )
    today = date.today()
    days = [(today - timedelta(days=back)).isoformat() for back in range(13, -1, -1)]
    per_day = pd.DataFrame({"day": days, "labels": [stats["per_day"].get(d, 0) for d in days]})
    st.subheader("Labels per day (last 14 days)")
    st.altair_chart(
        alt.Chart(per_day)
        .mark_bar()
        .encode(
            x=alt.X("day:O", title=None, axis=alt.Axis(labelAngle=-45)),
            y=alt.Y("labels:Q", axis=alt.Axis(format="d", tickMinStep=1)),
            tooltip=["day", "labels"],
        ),
        width="stretch",
        height=260,
    )
