"""The Queue page (engineers, leads and admins): the next items a chosen annotator would be
served, in the order their claims would serve them, with the round, strategy, score and why.

Read-only: the page leases nothing, so looking at someone's queue never changes it.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from labeling.annotation.queue_preview import PreviewItem
from labeling.errors import LabelloopError
from labeling.ui.views import common

LENGTHS = (20, 50, 100, 200)


def render() -> None:
    common.apply_style()
    user = common.require_engineer("Queue")
    if user is None:
        return
    st.title("Queue")
    try:
        people = [p for p in user.list_users() if p["active"]]
    except LabelloopError as exc:
        st.error(common.plain(exc))
        return
    if not people:
        st.info("Nobody can sign in yet: add annotators on the Team page.")
        return
    # Annotators first: theirs is the queue one usually wants to see.
    names = sorted((p["name"] for p in people), key=lambda n: (_role(people, n) != "annotator", n))
    left, right = st.columns([3, 1])
    name = left.selectbox("Annotator", names, key="ll_queue_annotator")
    n = right.selectbox("Items", LENGTHS, index=LENGTHS.index(50), key="ll_queue_length")
    try:
        preview = user.queue_preview(name, n=n)
    except LabelloopError as exc:
        st.error(common.plain(exc))
        return
    if preview["round"] is None:
        order = "No promoted round yet: items come in the seeded random order."
    else:
        strategy = common.plain(preview["strategy"] or "unknown")
        order = f"Order of round {preview['round']} (strategy {strategy})."
    st.caption(
        f"{order} Overlap {preview['overlap']}. As if {common.plain(name)} labelled each item "
        "in turn and nobody else claimed meanwhile; the items they hold come first."
    )
    if preview["gold_rate"] > 0:
        st.caption(
            f"Gold checks: {preview['gold_rate']:.0%} of claims serve one instead, at random and "
            "unmarked; they are not listed."
        )
    if preview["note"]:
        st.warning(common.plain(preview["note"]))
    rows = preview["items"]
    if not rows:
        st.info(
            f"Nothing left for {common.plain(name)}: every open item is done, held or answered."
        )
        return
    _table(rows, user.multilabel)


def _table(rows: list[PreviewItem], multilabel: bool) -> None:
    # The reason first after the id: it is what this page is for (the table scrolls sideways).
    table = pd.DataFrame(
        {
            "#": [row["position"] for row in rows],
            "id": [row["id"] for row in rows],
            "reason": [row["reason"] for row in rows],
            "text": [" ".join(row["text"].split()) for row in rows],
            "score": [row["score"] for row in rows],
            "prediction": [common.label_text(row["prediction"], multilabel) for row in rows],
            "round": [row["round"] for row in rows],
            "strategy": [row["strategy"] or "" for row in rows],
        }
    )
    st.dataframe(
        table,
        hide_index=True,
        key="ll_queue_table",
        height=min(36 * (len(rows) + 1) + 3, 640),
        column_config={
            "#": st.column_config.NumberColumn(width=40),
            "id": st.column_config.TextColumn(width=80),
            "reason": st.column_config.TextColumn(width=320),
            "text": st.column_config.TextColumn(width=300),
            "score": st.column_config.NumberColumn(format="%.4f", width=70),
            "round": st.column_config.NumberColumn(format="%d", width=50),
        },
    )


def _role(people: list[dict[str, object]], name: str) -> object:
    return next(p["role"] for p in people if p["name"] == name)
