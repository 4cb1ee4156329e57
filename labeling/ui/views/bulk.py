"""Bulk labelling from the browser, with an audit: "label these N as L", checked first.

The person picks a label for a search's (or a similar-items list's) items; a dialog shows a
random sample of them (20 by default) one at a time, answered with Y (right) or N (wrong), and
the running precision with its 95% interval (``labeling.annotation.bulk.precision_interval``,
the one the API and the CLI use). Confirm applies the batch; below the threshold the store
refuses it unless "apply anyway" is ticked. The batch id is shown with an Undo button, and the
"Bulk batches" list undoes any batch.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
import streamlit as st

from labeling.annotation.bulk import AUDIT_SAMPLE, MIN_PRECISION, precision_interval
from labeling.annotation.session import UserSession
from labeling.data.search import SearchQuery
from labeling.errors import LabelloopError
from labeling.ui.views import common

AUDIT_KEY = "ll_audit"
DONE_KEY = "ll_bulk_done"


@dataclass(frozen=True)
class Target:
    """What a bulk label is about: a search, or a list of items (external ids), and how many
    items that is (the search's total)."""

    total: int
    query: SearchQuery | None = None
    item_ids: tuple[str, ...] | None = None
    described: str = "these items"
    key: str = "search"

    def selection(self) -> dict[str, Any]:
        """The keyword arguments naming the items, for the session's bulk calls."""
        if self.query is not None:
            return {"query": self.query}
        return {"item_ids": list(self.item_ids or ())}


def _plural(n: int, word: str = "item") -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _start_audit(user: UserSession, target: Target, label: str) -> None:
    """Count what the batch would change and draw the audit sample (only on the button: on
    a large result both read every matching id)."""
    try:
        counts = user.bulk_label(**target.selection(), label=label, dry_run=True)
        sample = user.bulk_audit_sample(
            **target.selection(), n=AUDIT_SAMPLE, seed=random.SystemRandom().randrange(2**31)
        )
    except LabelloopError as exc:
        st.error(common.plain(exc))
        return
    st.session_state[AUDIT_KEY] = {
        "target": target,
        "label": label,
        "count": int(counts["count"]),
        "kept": int(counts.get("skipped_labelled", 0)) + int(counts.get("skipped_not_pool", 0)),
        "sample": [asdict(item) for item in sample],
        "answers": {},
    }


def bulk_box(user: UserSession, target: Target) -> None:
    """ "Label these N as L...": opens the audit of a random sample, then the batch."""
    cols = st.columns([2, 3])
    label = cols[0].selectbox("Label as", list(user.labels), key=f"ll_bulk_label_{target.key}")
    cols[1].write("")
    if cols[1].button(
        f"Label these {target.total:,} as {common.plain(label)}...",
        key=f"ll_bulk_start_{target.key}",
        disabled=target.total == 0,
        icon=":material/done_all:",
    ):
        _start_audit(user, target, str(label))
    audit = st.session_state.get(AUDIT_KEY)
    if audit is not None and audit["target"] == target:
        _audit_dialog(user)
    _show_done(user, target.key)


def _answer(item_id: str, right: bool) -> None:
    """Record a Y/N for the sample item on screen; a press for another item is ignored (it was
    made on a view that is gone)."""
    audit = st.session_state.get(AUDIT_KEY)
    if audit is None:
        return
    pending = [s for s in audit["sample"] if s["id"] not in audit["answers"]]
    if pending and pending[0]["id"] == item_id:
        audit["answers"][item_id] = right


def _estimate(correct: int, checked: int, population: int) -> str:
    low, high = precision_interval(correct, checked, population)
    if checked >= population:
        return (
            f"{correct} of {checked} checked are right: every item of the set was checked, so "
            f"its precision is {correct / checked:.2f} exactly (it must reach "
            f"{MIN_PRECISION:.2f})"
        )
    return (
        f"{correct} of {checked} checked are right: precision {correct / checked:.2f}, "
        f"95% interval {low:.2f}-{high:.2f} (the lower bound must reach {MIN_PRECISION:.2f})"
    )


def _sample_card(audit: dict[str, Any]) -> None:
    """The next sample item and its Y/N buttons, keyed by item."""
    pending = [s for s in audit["sample"] if s["id"] not in audit["answers"]]
    if not pending:
        st.caption(f"All {len(audit['sample'])} sample items checked.")
        return
    item = pending[0]
    done = len(audit["sample"]) - len(pending)
    st.caption(f"Sample item {done + 1} of {len(audit['sample'])}: Item {common.plain(item['id'])}")
    with st.container(key="ll_text", height=180 if len(item["text"]) > 400 else "content"):
        st.text(item["text"])
    if item.get("prediction"):
        st.caption(
            f"Model: {common.plain(item['prediction'])} ({item['confidence']:.2f})"
            if item.get("confidence") is not None
            else f"Model: {common.plain(item['prediction'])}"
        )
    cols = st.columns(2)
    label = common.plain(audit["label"])
    cols[0].button(
        f"Yes, {label}", key=f"ll_audit_yes_{item['id']}", shortcut="y", on_click=_answer,
        args=(item["id"], True), type="primary", width="stretch",
    )  # fmt: skip
    cols[1].button(
        f"No, not {label}", key=f"ll_audit_no_{item['id']}", shortcut="n", on_click=_answer,
        args=(item["id"], False), width="stretch",
    )  # fmt: skip


def _forget_audit() -> None:
    st.session_state.pop(AUDIT_KEY, None)


@st.dialog("Check a sample before bulk labelling", width="large", on_dismiss=_forget_audit)
def _audit_dialog(user: UserSession) -> None:
    """The audit: sample items one at a time, the running estimate, Confirm or Cancel."""
    audit = st.session_state.get(AUDIT_KEY)
    if audit is None:
        return
    target: Target = audit["target"]
    st.write(
        f"Label {_plural(audit['count'])} of {target.described} as "
        f"**{common.plain(audit['label'])}**. Is that label right for each of these randomly "
        "chosen items? Press **Y** or **N**."
    )
    if audit["kept"]:
        st.caption(
            f"{_plural(audit['kept'])} of the {target.total:,} keep their label: items labelled "
            "by people, gold and removed items are never bulk-labelled."
        )
    if not audit["count"]:
        st.info(
            "Nothing to label: every item of this set is labelled by people, an import or a "
            "decision already, or is a gold or removed item."
        )
        return
    _sample_card(audit)
    checked = len(audit["answers"])
    correct = sum(1 for right in audit["answers"].values() if right)
    low = precision_interval(correct, checked, audit["count"])[0] if checked else 0.0
    if checked:
        st.caption(_estimate(correct, checked, audit["count"]))
    override = False
    finished = checked == len(audit["sample"])
    if finished and low < MIN_PRECISION:
        st.warning(
            f"Below the threshold: the interval's lower bound is {low:.2f}, under "
            f"{MIN_PRECISION:.2f}. Narrow the search (fewer wrong items), or apply anyway.",
            icon=":material/warning:",
        )
        override = st.checkbox("Apply anyway (recorded as an override)", key="ll_audit_override")
    cols = st.columns(2)
    if cols[0].button(
        f"Confirm: label {_plural(audit['count'])}",
        key="ll_audit_confirm",
        type="primary",
        # Every sample answer first: stopping once the running figure looks good would
        # weaken the audit.
        disabled=not finished or (low < MIN_PRECISION and not override),
    ):
        _apply(user, audit, correct=correct, checked=checked, override=override)
    if cols[1].button("Cancel", key="ll_audit_cancel"):
        st.session_state.pop(AUDIT_KEY, None)
        st.rerun()


def _apply(
    user: UserSession, audit: dict[str, Any], *, correct: int, checked: int, override: bool
) -> None:
    target: Target = audit["target"]
    try:
        done = user.bulk_label(
            **target.selection(),
            label=audit["label"],
            audit={"checked": checked, "correct": correct},
            override=override,
            expected=audit["count"],  # the set audited, or a refusal if it changed since
        )
    except LabelloopError as exc:
        st.error(common.plain(exc))
        return
    st.session_state.pop(AUDIT_KEY, None)
    st.session_state[DONE_KEY] = {**done, "label": audit["label"], "key": target.key}
    st.rerun()


def _undo(user: UserSession, batch: str) -> None:
    try:
        undone = user.undo_bulk(batch)
    except LabelloopError as exc:
        st.error(common.plain(exc))
        return
    st.session_state.pop(DONE_KEY, None)
    st.success(
        f"Undid batch {common.plain(batch)}: {_plural(int(undone['removed']), 'bulk label')} "
        "removed."
    )


def _show_done(user: UserSession, key: str) -> None:
    """The batch just applied from the box ``key``, with its id and an Undo button."""
    done = st.session_state.get(DONE_KEY)
    if done is None or done.get("key") != key:
        return
    labelled = int(done.get("skipped_labelled", 0))
    not_pool = int(done.get("skipped_not_pool", 0))
    kept = [
        f"{_plural(labelled)} labelled by people, an import or a decision" if labelled else "",
        f"{_plural(not_pool)} gold or removed" if not_pool else "",
    ]
    left = " and ".join(k for k in kept if k)
    st.success(
        f"Labelled {_plural(int(done['count']))} as {common.plain(done['label'])} in batch "
        f"{common.plain(done['batch'])}" + (f"; {left} kept their label." if left else ".")
    )
    if st.button("Undo this batch", key=f"ll_bulk_undo_{done['batch']}", icon=":material/undo:"):
        _undo(user, str(done["batch"]))


def batches_section(user: UserSession) -> None:
    """Every bulk batch, newest first, and Undo for the applied ones."""
    with st.expander("Bulk batches", icon=":material/history:"):
        try:
            batches = user.bulk_batches()
        except LabelloopError as exc:
            st.error(common.plain(exc))
            return
        if not batches:
            st.caption("No bulk batches yet.")
            return
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "batch": b.batch,
                        "label": b.label,
                        "items": b.count,
                        "by": b.by,
                        "audit": b.audit,
                        "status": b.status,
                        "applied at": f"{b.created_at:%Y-%m-%d %H:%M}" if b.created_at else "",
                    }
                    for b in batches
                ]
            ),
            hide_index=True,
            key="ll_bulk_batches",
        )
        applied = [b.batch for b in batches if b.status == "applied"]
        cols = st.columns([3, 1])
        chosen = cols[0].selectbox("Batch", applied, key="ll_bulk_undo_pick", index=None)
        cols[1].write("")
        if cols[1].button("Undo batch", key="ll_bulk_undo_list", disabled=chosen is None):
            _undo(user, str(chosen))
