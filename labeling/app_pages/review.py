"""The Review page (leads and admins): disagreements, model and weak-label conflicts, likely
label errors, and adjudication.

Pick a list, pick an item (the most suspicious first), read it with everyone's answers and
what the model and the LFs say, and decide its final label with one click or key. The decision
is an annotation of its own: it overrides the majority in rounds and exports, and the history
keeps every answer.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from labeling.app_pages import common
from labeling.errors import LabelloopError
from labeling.services import UserSession

KINDS = {
    "disagreement": "People disagree",
    "model": "Model disagrees",
    "weak": "Weak label disagrees",
    "likely_error": "Likely errors",
}
EXPLAIN = {
    "disagreement": "Items whose current answers from different people differ.",
    "model": "Labels that a model trained without the item (cross-validated, latest round) "
    "confidently contradicts.",
    "weak": "Labels that a confident weak label from the LFs contradicts.",
    "likely_error": "Labels cleanlab's find_label_issues flags on out-of-sample probabilities "
    "(latest round).",
}
PICK_KEY = "ll_review_pick"
DONE_KEY = "ll_review_done"


def _decide(user: UserSession, item_id: int, label: str, external_id: str) -> None:
    """Button callback: session state first, store last (UI_NOTES). Messages name the item by
    ``external_id``, the id people know it by."""
    st.session_state[DONE_KEY] = (external_id, label)
    st.session_state.pop(PICK_KEY, None)
    try:
        user.adjudicate(item_id, label)
    except LabelloopError as exc:
        st.session_state[DONE_KEY] = (external_id, f"error: {exc}")


def _detail(user: UserSession, entry: dict[str, Any]) -> None:
    with st.container(border=True):
        st.caption(f"Item {common.plain(entry['id'])}")
        st.text(entry["text"])  # data is never Markdown or HTML
        facts = []
        if entry["answers"]:
            facts.append(
                "People: " + ", ".join(f"{who}: {label}" for who, label in entry["answers"].items())
            )
        if entry.get("label"):
            facts.append(f"Label now: {entry['label']}")
        if entry.get("suggested"):
            facts.append(f"Suggested: {entry['suggested']} (score {entry['score']:.2f})")
        if entry.get("model"):
            predicted, confidence = entry["model"]
            facts.append(f"Model (not trained on this item): {predicted} ({confidence:.0%})")
        if entry.get("weak"):
            facts.append(f"Weak label: {entry['weak']}")
        for fact in facts:
            st.text(fact)
    st.write("Final label:")
    labels = user.labels
    cols = st.columns(len(labels))
    for i, (col, label) in enumerate(zip(cols, labels, strict=True)):
        col.button(
            common.plain(label),  # shown as written, never as Markdown
            key=f"ll_decide_{entry['item_id']}_{label}",
            on_click=_decide,
            args=(user, entry["item_id"], label, entry["id"]),
            type="primary" if label == entry.get("suggested") else "secondary",
            shortcut=str(i + 1) if i < 9 else None,
            width="stretch",
        )
    with st.expander("History"):
        history = user.item_history(entry["item_id"])
        st.dataframe(pd.DataFrame(history), hide_index=True)


def render() -> None:
    common.apply_style()
    user = common.require_user()
    st.title("Review")
    done = st.session_state.pop(DONE_KEY, None)
    if done is not None:
        external_id, label = done
        if str(label).startswith("error:"):
            st.error(common.plain(label))
        else:
            st.caption(f"Decided item {common.plain(external_id)}: {common.plain(label)}.")
    try:
        found = user.review(limit=200)
    except LabelloopError as exc:
        st.error(common.plain(exc))
        return
    counts = found["counts"]
    source = f"round {found['round']}" if found["round"] else "no round yet"
    st.caption(
        f"{found['adjudicated']:,} items adjudicated so far. Model checks come from {source}; "
        "each round refreshes them."
    )
    kind = st.segmented_control(
        "List",
        list(KINDS),
        format_func=lambda k: f"{KINDS[k]} ({counts[k]:,})",
        default="disagreement",
        key="ll_review_kind",
    )
    kind = kind or "disagreement"
    st.caption(EXPLAIN[kind])
    entries = found["items"][kind]
    if not entries:
        st.info("Nothing to review in this list.")
        return
    by_id = {e["item_id"]: e for e in entries}
    pick = st.selectbox(
        f"Item ({len(entries):,} shown, most suspicious first)",
        list(by_id),
        format_func=lambda i: f"{by_id[i]['id']}: {by_id[i]['text'][:90]}",
        key=PICK_KEY,
    )
    if pick is None:
        return
    _detail(user, by_id[pick])
