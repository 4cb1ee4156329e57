"""The item page, within Data: one item's text, fields and history, and what to do with it.

Shows everything ``Workspace.item`` knows (every answer with its history, superseded ones
included; LF votes; the weak label; the promoted model's prediction; flags) and offers
**Correct the label** (an answer of origin ``correction`` that supersedes the current ones),
**Flag** (a note for the Review page), **Find similar** (nearest items by cosine
similarity; a click opens one, and the list can be bulk-labelled like a search) and **Pin as
example** (in the guidelines, :mod:`labeling.ui.views.pin`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from labeling.annotation.session import UserSession
from labeling.errors import LabelloopError
from labeling.quality.item_story import ItemStory
from labeling.store import labelsets
from labeling.ui.views import common, pin, similar
from labeling.ui.views.opened import SIMILAR_KEY, close_item


def _when(iso: str | None) -> str:
    """An ISO 8601 time as the page shows it (minutes, UTC)."""
    return iso[:16].replace("T", " ") if iso else ""


def _answers(found: ItemStory, multilabel: bool) -> list[dict[str, Any]]:
    """The item's annotation log, oldest first, superseded answers included."""
    return [
        {
            "who": a["who"],
            "role": a["role"],
            "answer": "(skip)" if a["skipped"] else common.label_text(a["label"], multilabel),
            "origin": a["origin"],
            "bulk batch": a["batch"] or "",
            "when (UTC)": _when(a["created_at"]),
            "current": a["current"],
            "superseded by": a["superseded_by"],
        }
        for a in found["answers"]
    ]


def _flags(found: ItemStory) -> list[dict[str, Any]]:
    return [
        {
            "note": f["note"],
            "by": f["who"],
            "when (UTC)": _when(f["when"]),
            "resolved": f"by {f['resolved_by']}" if f["resolved"] else "open",
        }
        for f in found["flags"]
    ]


def _score(label: Any, confidence: Any, multilabel: bool) -> str:
    if label is None:
        return "(not yet)" if multilabel else "(none)"  # multi-label: "(none)" is the empty set
    said = common.label_text(str(label), multilabel)
    return f"{said} ({confidence:.2f})" if isinstance(confidence, int | float) else said


def _table(rows: Any, key: str, empty: str) -> None:
    """A list of records (or a mapping) as a table; ``empty`` when there is none."""
    if isinstance(rows, dict):
        rows = [{"name": k, "value": v} for k, v in rows.items()]
    if not rows:
        st.caption(empty)
        return
    st.dataframe(pd.DataFrame(list(rows)), hide_index=True, key=key)


def _summary(found: ItemStory, multilabel: bool) -> None:
    """Label now and how it was decided, the model's and the label model's view, the split.
    In a multi-label workspace "(none)" is the empty set, so no label yet says so in words."""
    cols = st.columns(4)
    label = found.get("label")
    missing = "(not labelled)" if multilabel else "(none)"
    cols[0].metric("Label now", common.label_text(label, multilabel, missing=missing))
    decided = found.get("decided_by")
    if label is not None and multilabel:  # a set can be wider than its column: in full here
        said = common.label_text(label, True)
        cols[0].caption(f"{common.plain(said)}; decided by: {common.plain(decided)}")
    elif label is not None:
        cols[0].caption(f"Decided by: {common.plain(decided)}")
    cols[1].metric(
        "Model predicts",
        _score(found.get("prediction"), found.get("prediction_confidence"), multilabel),
    )
    if found.get("prediction_round") is not None:
        cols[1].caption(f"Round {found['prediction_round']} (promoted)")
    weak = _score(found.get("weak_label"), found.get("weak_confidence"), multilabel)
    cols[2].metric("Weak label", weak)
    cols[3].metric("Split", str(found.get("split", "")))
    batch = found.get("import_batch") or {}
    details = {
        "import": f"{batch.get('id')} ({batch.get('file')})" if batch else None,
        "gold label": common.label_text(found.get("gold_label"), multilabel) or None,
    }
    shown = [f"{k}: {v}" for k, v in details.items() if v is not None]
    if shown:
        st.caption(common.plain("; ".join(shown)))


def _history(found: ItemStory, item_id: str, multilabel: bool) -> None:
    st.markdown("**Answers, with history** (superseded ones included)")
    _table(_answers(found, multilabel), f"ll_item_answers_{item_id}", "No answers yet.")
    cols = st.columns(2)
    with cols[0]:
        st.markdown("**LF votes**")
        votes = [{"LF": lf, "votes": label} for lf, label in found.get("lf_votes", {}).items()]
        _table(votes, f"ll_item_votes_{item_id}", "No LF voted.")
    with cols[1]:
        st.markdown("**Flags**")
        _table(_flags(found), f"ll_item_flags_{item_id}", "Never flagged.")
    fields = found.get("source")
    if fields:
        with st.expander("Source fields"):
            _table(fields, f"ll_item_fields_{item_id}", "")


def _correct(user: UserSession, item_id: str, current: Any) -> None:
    if user.multilabel:
        _correct_set(user, item_id, current)
        return
    labels = list(user.labels)
    with st.form(f"ll_correct_form_{item_id}", border=False):
        label = st.selectbox(
            "Correct label",
            labels,
            index=labels.index(current) if current in labels else 0,
            key=f"ll_correct_label_{item_id}",
        )
        note = st.text_input("Note (optional)", key=f"ll_correct_note_{item_id}")
        pressed = st.form_submit_button("Correct the label", type="primary")
    if pressed:
        try:
            user.correct(item_id, str(label), note=note.strip())
        except LabelloopError as exc:
            st.error(common.plain(exc))
        else:
            st.session_state["ll_item_message"] = (
                f"Item {item_id}: label corrected to {label}; the earlier answers stay in its "
                "history."
            )
            st.rerun()


def _correct_set(user: UserSession, item_id: str, current: str | None) -> None:
    """Multi-label: the labels the item should have (starting from its set now), or "None
    of these"; a correction to no label at all is never made by an empty choice."""
    now = labelsets.decode_ordered(current) if current is not None else []
    with st.form(f"ll_correct_form_{item_id}", border=False):
        chosen = st.multiselect(
            "Correct labels",
            list(user.labels),
            default=[name for name in now if name in user.labels],
            key=f"ll_correct_labels_{item_id}",
            placeholder="Choose the labels that apply",
        )
        note = st.text_input("Note (optional)", key=f"ll_correct_note_{item_id}")
        cols = st.columns([1, 1, 2])
        pressed = cols[0].form_submit_button("Correct the labels", type="primary")
        none = cols[1].form_submit_button("None of these", help="The item has none of the labels")
    if not (pressed or none):
        return
    names = [] if none else [name for name in user.labels if name in chosen]
    if pressed and not names:
        st.error("Choose at least one label, or press None of these for the empty set.")
        return
    try:
        user.correct(item_id, names, note=note.strip())
    except LabelloopError as exc:
        st.error(common.plain(exc))
    else:
        st.session_state["ll_item_message"] = (
            f"Item {item_id}: labels corrected to {common.set_text(names)}; the earlier "
            "answers stay in its history."
        )
        st.rerun()


def _flag(user: UserSession, item_id: str) -> None:
    with st.form(f"ll_flag_form_{item_id}", border=False):
        note = st.text_area("Why flag it?", key=f"ll_flag_note_{item_id}", height=108)
        pressed = st.form_submit_button("Flag", icon=":material/flag:")
    if pressed:
        try:
            user.flag(item_id, note.strip())
        except LabelloopError as exc:
            st.error(common.plain(exc))
        else:
            st.session_state["ll_item_message"] = f"Item {item_id} flagged for review."
            st.rerun()


def _find_similar(user: UserSession, item_id: str) -> None:
    if st.button("Find similar", key=f"ll_similar_{item_id}", icon=":material/join_inner:"):
        found = similar.find(user, item_id)
        if found is not None:
            st.session_state[SIMILAR_KEY] = (item_id, found)
    stored = st.session_state.get(SIMILAR_KEY)
    if stored is None or stored[0] != item_id:
        st.caption(f"The {similar.LIMIT} items most like this one, by cosine similarity.")
        return
    similar.similar_list(
        user, stored[1], key=f"similar_{item_id}", described=f"the items similar to {item_id}"
    )


def render_item(user: UserSession, item_id: str) -> None:
    """The item page for external id ``item_id``."""
    st.button(
        "Back to results",
        key="ll_item_back",
        on_click=close_item,
        icon=":material/arrow_back:",
    )
    try:
        found = user.item(item_id)
    except LabelloopError as exc:
        st.error(common.plain(exc))
        return
    message = st.session_state.pop("ll_item_message", None)
    if message:
        st.success(common.plain(message))
    st.caption(f"Item {common.plain(found.get('id', item_id))}")
    with st.container(
        key="ll_text", height=320 if len(str(found.get("text", ""))) > 900 else "content"
    ):
        st.text(str(found.get("text", "")))
    _summary(found, user.multilabel)
    external_id = str(found.get("id", item_id))
    pinned = pin.pinned_for(user.guidelines(), external_id)
    with st.container():  # always there: the tabs below keep their place, and their choice
        if pinned:
            st.caption(pin.pinned_text(pinned))
    _history(found, item_id, user.multilabel)
    st.divider()
    correct, flag, similar, pinning = st.tabs(
        ["Correct the label", "Flag", "Find similar", "Pin as example"]
    )
    with correct:
        _correct(user, item_id, found.get("label"))
    with flag:
        _flag(user, item_id)
    with similar:
        _find_similar(user, item_id)
    with pinning:
        pin.pin_control(user, external_id, found.get("label"), where="item")
