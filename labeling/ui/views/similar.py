"""Similar-items lists on the Data page: the items most like an item (on its page) or like a
typed text (under the browser), by cosine similarity (``Workspace.similar``).

A click on a row opens that item; the list can be bulk-labelled, audited, like a search.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from labeling.annotation.session import UserSession
from labeling.errors import LabelloopError
from labeling.ui.views import bulk, common
from labeling.ui.views.opened import open_item

LIMIT = 20
TEXT_KEY = "ll_similar_text"


def find(user: UserSession, item_id: str | None = None, *, text: str | None = None) -> Any:
    """The similar items as plain rows, or None after saying why there are none."""
    try:
        return [dict(row) for row in user.similar(item_id, text=text, limit=LIMIT)]
    except LabelloopError as exc:
        st.error(common.plain(exc))
        return None


def similar_list(
    user: UserSession, rows: list[dict[str, Any]], *, key: str, described: str
) -> None:
    """The rows (best first) as a table a click opens an item from, and a bulk label."""
    if not rows:
        st.caption("No similar items.")
        return
    frame = pd.DataFrame(
        [
            {
                "id": r["id"],
                "similarity": r["similarity"],
                "text": " ".join(str(r["text"]).split())[:160],
                "split": r.get("split"),
            }
            for r in rows
        ]
    )
    event = st.dataframe(
        frame,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key=f"ll_similar_table_{key}",
        column_config={
            "similarity": st.column_config.NumberColumn("similarity", format="%.3f"),
            "text": st.column_config.TextColumn("text", width="large"),
        },
    )
    if event is not None and event.selection.rows:
        open_item(str(frame["id"].iloc[event.selection.rows[0]]))
        st.rerun()
    target = bulk.Target(
        len(rows), item_ids=tuple(str(r["id"]) for r in rows), described=described, key=key
    )
    bulk.bulk_box(user, target)


def like_text_section(user: UserSession) -> None:
    """ "Find items like a text": a typed text's nearest items, under the browser."""
    with st.expander("Find items like a text", icon=":material/join_inner:"):
        typed = st.text_area("Text", key="ll_like_text", height=90)
        if st.button("Find similar", key="ll_like_find"):
            found = find(user, text=typed) if typed.strip() else None
            if found is not None:
                st.session_state[TEXT_KEY] = (typed, found)
            elif not typed.strip():
                st.caption("Type a text first.")
        stored = st.session_state.get(TEXT_KEY)
        if stored is None:
            st.caption(f"The {LIMIT} items most like the text, by cosine similarity.")
            return
        similar_list(user, stored[1], key="like_text", described="the items like that text")
