"""Bulk labelling from the browser, with an audit: "label these N as L", checked first.

The person picks a label for a search's (or a similar-items list's) items; a dialog shows a
random sample of them (20 by default) one at a time, answered with Y (right) or N (wrong), and
the running precision with its 95% interval (``labeling.annotation.bulk.precision_interval``,
the one the API and the CLI use). Confirm applies the batch; below the threshold the store
refuses it unless "apply anyway" is ticked. The batch id is shown with an Undo button, and the
"Bulk batches" list undoes any batch.

In a multi-label workspace the person picks an action instead (add a label to each item's set,
remove one, or set the whole set, ``labeling.annotation.bulk_sets``), and the audit asks that
action's question of each sampled item, beside the item's set now.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
import streamlit as st

from labeling.annotation.bulk import AUDIT_SAMPLE, MIN_PRECISION, precision_interval
from labeling.annotation.bulk_sets import ACTIONS, ADD, REMOVE, SET, SetAction, set_action
from labeling.annotation.session import UserSession
from labeling.data.search import SearchQuery
from labeling.errors import LabelloopError
from labeling.store import labelsets
from labeling.ui.views import common

AUDIT_KEY = "ll_audit"
DONE_KEY = "ll_bulk_done"
ACTION_NAMES = {ADD: "Add a label", REMOVE: "Remove a label", SET: "Set the whole set"}


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


def _start_audit(
    user: UserSession, target: Target, label: str | list[str], action: str | None
) -> None:
    """Count what the batch would change and draw the audit sample (only on the button: on
    a large result both read every matching id)."""
    try:
        counts = user.bulk_label(**target.selection(), label=label, action=action, dry_run=True)
        sample = user.bulk_audit_sample(
            **target.selection(), n=AUDIT_SAMPLE, seed=random.SystemRandom().randrange(2**31),
            action=action, label=None if action is None else label,
        )  # fmt: skip
    except LabelloopError as exc:
        st.error(common.plain(exc))
        return
    st.session_state[AUDIT_KEY] = {
        "target": target,
        "label": label,
        "action": action,
        "count": int(counts["count"]),
        "kept": int(counts.get("skipped_labelled", 0)) + int(counts.get("skipped_not_pool", 0)),
        "unchanged": int(counts.get("skipped_unchanged", 0)),
        "sample": [asdict(item) for item in sample],
        "answers": {},
    }


def _shown(value: str | None, missing: str = "no set yet") -> str:
    """A set as the CLI writes it (``a|b``, ``[]``; labeling.store.labelsets.readable) as
    pages show it: ``a, b``, ``(none)``."""
    if value is None:
        return missing
    return common.set_text(labelsets.parse_cell(value, labelsets.DEFAULT_LABEL_SEP) or [])


def _change(audit: dict[str, Any], labels: tuple[str, ...]) -> SetAction | None:
    """The set action of an audit (None in a single-label workspace)."""
    return set_action(audit.get("action"), audit["label"], labels, audit.get("action") is not None)


def _action_words(change: SetAction, items: str) -> str:
    """A set action on ``items`` ("these 40") as pages say it: "Add billing to these 40",
    "Set these 40 to billing, refund"."""
    value = common.plain(common.set_text(sorted(change.names, key=change.order.index)))
    if change.action == ADD:
        return f"Add {value} to {items}"
    if change.action == REMOVE:
        return f"Remove {value} from {items}"
    return f"Set {items} to {value}"


def _choose(user: UserSession, target: Target) -> tuple[str | None, str | list[str], str, Any]:
    """The action (multi-label only), the label or set, the start button's words and where
    the button goes (beside the label picker; under the two pickers of a set action)."""
    cols = st.columns([2, 3])
    n = f"{target.total:,}"
    if not user.multilabel:
        label = cols[0].selectbox("Label as", list(user.labels), key=f"ll_bulk_label_{target.key}")
        cols[1].write("")
        return None, str(label), f"Label these {n} as {common.plain(label)}...", cols[1]
    action = cols[0].selectbox(
        "Bulk action", ACTIONS, format_func=ACTION_NAMES.__getitem__,
        key=f"ll_bulk_action_{target.key}",
    )  # fmt: skip
    if action == SET:
        chosen = cols[1].multiselect(
            "Set each item's labels to", list(user.labels), key=f"ll_bulk_set_{target.key}",
            placeholder="(none): the empty set",
        )  # fmt: skip
        given: str | list[str] = [name for name in user.labels if name in chosen]
    else:
        given = str(cols[1].selectbox("Label", user.labels, key=f"ll_bulk_label_{target.key}"))
    change = set_action(action, given, user.labels, True)
    assert change is not None
    return action, given, f"{_action_words(change, f'these {n}')}...", st


def bulk_box(user: UserSession, target: Target) -> None:
    """ "Label these N as L..." (multi-label: "Add L to these N..."): opens the audit of a
    random sample, then the batch."""
    action, label, words, place = _choose(user, target)
    if place.button(
        words,
        key=f"ll_bulk_start_{target.key}",
        disabled=target.total == 0,
        icon=":material/done_all:",
    ):
        _start_audit(user, target, label, action)
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


def _yes_no(audit: dict[str, Any], change: SetAction | None) -> tuple[str, str]:
    """The words of the Y and N buttons: is the label (or the set action) right here?"""
    if change is None:
        label = common.plain(audit["label"])
        return f"Yes, {label}", f"No, not {label}"
    value = common.plain(common.set_text(sorted(change.names, key=change.order.index)))
    if change.action == ADD:
        return f"Yes, {value} applies", f"No, {value} does not apply"
    if change.action == REMOVE:
        return f"Yes, not {value}", f"No, it is {value}"
    return f"Yes, exactly {value}", "No, not exactly this set"


def _sample_card(audit: dict[str, Any], change: SetAction | None) -> None:
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
        guess = item["prediction"] if change is None else _shown(item["prediction"])
        st.caption(
            f"Model: {common.plain(guess)} ({item['confidence']:.2f})"
            if item.get("confidence") is not None
            else f"Model: {common.plain(guess)}"
        )
    if change is not None:
        st.caption(f"Its labels now: {common.plain(_shown(item.get('current')))}")
    cols = st.columns(2)
    yes, no = _yes_no(audit, change)
    cols[0].button(
        yes, key=f"ll_audit_yes_{item['id']}", shortcut="y", on_click=_answer,
        args=(item["id"], True), type="primary", width="stretch",
    )  # fmt: skip
    cols[1].button(
        no, key=f"ll_audit_no_{item['id']}", shortcut="n", on_click=_answer,
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
    change = _change(audit, user.labels)
    _introduce(audit, change)
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
    _sample_card(audit, change)
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


def _introduce(audit: dict[str, Any], change: SetAction | None) -> None:
    """What the batch does and what each Y/N answers."""
    target: Target = audit["target"]
    if change is None:
        st.write(
            f"Label {_plural(audit['count'])} of {target.described} as "
            f"**{common.plain(audit['label'])}**. Is that label right for each of these "
            "randomly chosen items? Press **Y** or **N**."
        )
        return
    st.write(
        f"{_action_words(change, _plural(audit['count']) + ' of ' + target.described)}. For "
        f"each of these randomly chosen items, {common.plain(change.question())} Press **Y** "
        "or **N**."
    )
    if audit["unchanged"]:
        st.caption(
            f"{_plural(audit['unchanged'])} of the {target.total:,} are left out: the action "
            "would not change their set."
        )


def _apply(
    user: UserSession, audit: dict[str, Any], *, correct: int, checked: int, override: bool
) -> None:
    target: Target = audit["target"]
    try:
        done = user.bulk_label(
            **target.selection(),
            label=audit["label"],
            action=audit.get("action"),
            audit={"checked": checked, "correct": correct},
            override=override,
            expected=audit["count"],  # the set audited, or a refusal if it changed since
        )
    except LabelloopError as exc:
        st.error(common.plain(exc))
        return
    st.session_state.pop(AUDIT_KEY, None)
    change = _change(audit, user.labels)
    shown = audit["label"] if change is None else change.words()
    st.session_state[DONE_KEY] = {**done, "label": shown, "sets": change is not None,
                                  "key": target.key}  # fmt: skip
    st.rerun()


def _undo(user: UserSession, batch: str) -> None:
    try:
        undone = user.undo_bulk(batch)
    except LabelloopError as exc:
        st.error(common.plain(exc))
        return
    st.session_state.pop(DONE_KEY, None)
    word = "bulk answer" if user.multilabel else "bulk label"
    st.success(
        f"Undid batch {common.plain(batch)}: {_plural(int(undone['removed']), word)} removed."
    )


def _show_done(user: UserSession, key: str) -> None:
    """The batch just applied from the box ``key``, with its id and an Undo button."""
    done = st.session_state.get(DONE_KEY)
    if done is None or done.get("key") != key:
        return
    labelled = int(done.get("skipped_labelled", 0))
    not_pool = int(done.get("skipped_not_pool", 0))
    unchanged = int(done.get("skipped_unchanged", 0))
    kept = [
        f"{_plural(labelled)} labelled by people, an import or a decision" if labelled else "",
        f"{_plural(not_pool)} gold or removed" if not_pool else "",
        f"{_plural(unchanged)} the action would not change" if unchanged else "",
    ]
    left = " and ".join(k for k in kept if k)
    did = f"Labelled {_plural(int(done['count']))} as {common.plain(done['label'])}"
    if done.get("sets"):
        did = f"Changed the set of {_plural(int(done['count']))} ({common.plain(done['label'])})"
    st.success(
        f"{did} in batch {common.plain(done['batch'])}"
        + (f"; {left} kept their label." if left else ".")
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
                        ("action" if user.multilabel else "label"): b.label,
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
