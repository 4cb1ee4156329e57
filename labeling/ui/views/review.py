"""The Review page (leads and admins): disagreements, model and weak-label conflicts, likely
label errors, adjudication, and the items people flagged.

Pick a list, pick an item (the most suspicious first), read it with everyone's answers and
what the model and the LFs say, and decide its final label with one click or key. The decision
is an annotation of its own: it overrides the majority in rounds and exports, and the history
keeps every answer.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from labeling import figures
from labeling.annotation.session import UserSession
from labeling.errors import LabelloopError
from labeling.store import labelsets
from labeling.ui.views import common, pin

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
FLAG_DONE_KEY = "ll_flag_done"
ITEM_KEY = "ll_review_item"  # the item under review: the one source of truth
ORDER_KEY = "ll_review_order"  # the list as last shown, to find the item after a decided one
DONE_KEY = "ll_review_done"


def _decide(user: UserSession, item_id: int, label: str | list[str], external_id: str) -> None:
    """Button callback: session state first, store last (UI_NOTES). Messages name the item by
    ``external_id``, the id people know it by.

    A press for an item that is no longer under review (an old screen) is not applied. After a
    decision the item under review moves to the one after it in the list, so the picker and
    the card change together.
    """
    state = st.session_state
    if state.get(ITEM_KEY) != item_id:
        state[DONE_KEY] = (
            external_id,
            "error: that item is no longer under review; nothing decided",
        )
        return
    order: list[int] = state.get(ORDER_KEY) or []
    at = order.index(item_id) if item_id in order else len(order)
    # The next item down the list, else the one above (the list's last item was decided).
    state[ITEM_KEY] = next(iter(order[at + 1 :] or order[:at][::-1]), None)
    state[DONE_KEY] = (external_id, label if isinstance(label, str) else common.set_text(label))
    try:
        user.adjudicate(item_id, label)
    except LabelloopError as exc:
        state[ITEM_KEY] = item_id
        state[DONE_KEY] = (external_id, f"error: {exc}")


def _decide_set(user: UserSession, item_id: int, external_id: str, key: str | None) -> None:
    """Multi-label button callback: decide the set chosen in the multiselect ``key`` (None:
    the empty set, "None of these"). An empty choice decides nothing: the empty set is said
    with its own button, never by accident."""
    chosen = set(st.session_state.get(key) or []) if key is not None else set()
    names = [name for name in user.labels if name in chosen]
    if key is not None and not names:
        st.session_state[DONE_KEY] = (
            external_id,
            "error: choose the labels it has, or press None of these; nothing decided",
        )
        return
    _decide(user, item_id, names, external_id)


def _picked(key: str) -> None:
    st.session_state[ITEM_KEY] = st.session_state.get(key)


def _under_review(entries: list[dict[str, Any]]) -> int:
    """The item under review in this list: the one chosen, else the list's first."""
    ids: list[int] = [e["item_id"] for e in entries]
    chosen = st.session_state.get(ITEM_KEY)
    current = chosen if chosen in ids else ids[0]
    st.session_state[ITEM_KEY] = current
    st.session_state[ORDER_KEY] = ids
    return int(current)


def _facts(entry: dict[str, Any], multilabel: bool) -> list[str]:
    """What people, the model and the LFs say about the item, one line each."""

    def said(value: str | None) -> str:
        return common.label_text(value, multilabel)

    facts = []
    if entry["answers"]:
        facts.append(
            "People: "
            + ("; " if multilabel else ", ").join(
                f"{who}: {said(label)}" for who, label in entry["answers"].items()
            )
        )
    if entry.get("label"):  # a stored set is never "", the empty one included
        facts.append(f"Label now: {said(entry['label'])}")
    if entry.get("suggested"):
        facts.append(f"Suggested: {said(entry['suggested'])} (score {entry['score']:.2f})")
    if entry.get("model"):
        predicted, confidence = entry["model"]
        facts.append(f"Model (not trained on this item): {said(predicted)} ({confidence:.0%})")
    if entry.get("weak"):
        facts.append(f"Weak label: {said(entry['weak'])}")
    return facts


def _detail(user: UserSession, entry: dict[str, Any]) -> None:
    with st.container(border=True):
        st.caption(f"Item {common.plain(entry['id'])}")
        st.text(entry["text"])  # data is never Markdown or HTML
        for fact in _facts(entry, user.multilabel):
            st.text(fact)
    if user.multilabel:
        _decide_set_form(user, entry)
    else:
        _decide_buttons(user, entry)
    with st.expander("Pin as an example in the guidelines"):
        pin.pin_control(user, entry["id"], entry.get("label"), where="review")
    with st.expander("History"):
        history = user.item_history(entry["item_id"])
        if user.multilabel:
            history = [
                {**h, "label": common.label_text(h["label"], True, missing="(skip)")}
                for h in history
            ]
        st.dataframe(pd.DataFrame(history), hide_index=True)


def _decide_set_form(user: UserSession, entry: dict[str, Any]) -> None:
    """Multi-label: the final set, chosen from the labels (starting from the set now), or
    None of these."""
    item_id = entry["item_id"]
    now = entry.get("label")
    key = f"ll_decide_labels_{item_id}"
    st.multiselect(
        "Final labels:",
        list(user.labels),
        default=labelsets.decode_ordered(now) if now is not None else [],
        key=key,
        placeholder="Choose the labels it has",
    )
    cols = st.columns([1, 1, 2])
    cols[0].button(
        "Decide",
        key=f"ll_decide_{item_id}_set",
        on_click=_decide_set,
        args=(user, item_id, entry["id"], key),
        type="primary",
        width="stretch",
    )
    cols[1].button(
        "None of these",
        key=f"ll_decide_{item_id}_none",
        on_click=_decide_set,
        args=(user, item_id, entry["id"], None),
        help="Decide the empty set: the item has none of the labels.",
        width="stretch",
    )


def _decide_buttons(user: UserSession, entry: dict[str, Any]) -> None:
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


def _resolve(user: UserSession, flag_id: int, external_id: str) -> None:
    """Button callback: resolve a flag; the message names the item by its external id."""
    try:
        user.resolve_flag(flag_id)
        st.session_state[FLAG_DONE_KEY] = f"Resolved the flag on item {external_id}."
    except LabelloopError as exc:
        st.session_state[FLAG_DONE_KEY] = f"error: {exc}"


def _flagged(user: UserSession) -> None:
    """Open flags, newest first: the item's text, the note, who raised it and when, and a
    button that resolves it."""
    st.subheader("Flagged items")
    done = st.session_state.pop(FLAG_DONE_KEY, None)
    if done is not None:
        (st.error if done.startswith("error:") else st.caption)(common.plain(done))
    try:
        flags = user.flags(open_only=True)
    except LabelloopError as exc:
        st.error(common.plain(exc))
        return
    if not flags:
        st.caption(
            "No open flags. Annotators flag items from the Label page, engineers from the "
            "item page; flags wait here."
        )
        return
    st.caption(f"{len(flags):,} open, newest first.")
    for raised in flags:
        with st.container(border=True):
            st.caption(
                f"Item {common.plain(raised['item'])}: flagged by {common.plain(raised['who'])} "
                f"on {raised['when'][:16].replace('T', ' ')} UTC"
            )
            st.text(f"Note: {raised['note']}")  # text typed by people: never Markdown
            st.text(raised["text"])
            st.button(
                "Resolve",
                key=f"ll_flag_resolve_{raised['flag']}",
                on_click=_resolve,
                args=(user, raised["flag"], raised["item"]),
            )


def render() -> None:
    common.apply_style()
    user = common.require_user()
    st.title("Review")
    _lists(user)
    _flagged(user)


def _lists(user: UserSession) -> None:
    """The review lists, an item picker and the decision card."""
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
        f"{figures.plural(found['adjudicated'], 'item')} decided so far (adjudicated or "
        f"corrected). Model checks come from {source}; each round refreshes them."
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
    current = _under_review(entries)
    # The picker shows the item under review. Its key names that item, so when a decision (or
    # a list change) moves the item under review, a new picker is drawn on it rather than the
    # browser keeping the old choice on screen.
    key = f"ll_review_pick_{kind}_{current}"
    st.selectbox(
        f"Item ({len(entries):,} shown, most suspicious first)",
        list(by_id),
        index=list(by_id).index(current),
        format_func=lambda i: f"{by_id[i]['id']}: {by_id[i]['text'][:90]}",
        key=key,
        on_change=_picked,
        args=(key,),
    )
    _detail(user, by_id[current])
