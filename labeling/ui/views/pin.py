"""Pin an item as an example of a label in the guidelines, from the item page and the Review
page (engineers and up; annotators never see it): pick the label (the item's label now to
start with), pin; an item already pinned for that label is offered for unpinning.

Every pin and unpin is a new version of the guidelines (``Workspace.pin_example``,
``unpin_example``); the ``?`` overlay on the Label page shows pinned examples' texts.
"""

from __future__ import annotations

import streamlit as st

from labeling.annotation import roles
from labeling.annotation.guidelines import Guidelines
from labeling.annotation.session import UserSession
from labeling.errors import LabelloopError
from labeling.store import labelsets
from labeling.ui.views import common

MESSAGE_KEY = "ll_pin_message"  # (is an error, text), shown once after a pin or unpin


def pinned_for(found: Guidelines, external_id: str) -> list[str]:
    """The labels the item is pinned for, in label order."""
    return [name for name, guide in found.labels.items() if external_id in guide.examples]


def first_label(value: str | None, labels: tuple[str, ...], multilabel: bool) -> str:
    """The label the picker starts on: the item's label now (for a set, its first label)."""
    names = labelsets.decode_ordered(value) if multilabel and value else [value]
    return next((name for name in names if name in labels), labels[0])


def _pin(user: UserSession, label: str, external_id: str, remove: bool) -> None:
    """Button callback: session state first, the store last (UI_NOTES)."""
    done = "unpinned from" if remove else "pinned as an example of"
    st.session_state[MESSAGE_KEY] = (False, f"Item {external_id} {done} {label}.")
    try:
        if remove:
            found = user.unpin_example(label, external_id)
        else:
            found = user.pin_example(label, external_id)
    except LabelloopError as exc:
        st.session_state[MESSAGE_KEY] = (True, f"Item {external_id}: {exc}")
    else:
        st.session_state[MESSAGE_KEY] = (
            False,
            f"Item {external_id} {done} {label}: guidelines version {found.version}.",
        )


def pin_control(user: UserSession, external_id: str, label_now: str | None, *, where: str) -> None:
    """The label picker with Pin (or Unpin, when the item is pinned for that label) and the
    labels the item is pinned for; nothing for people below engineer. ``where`` keeps the
    widgets of the item page and the Review page apart."""
    if not user.can(roles.ENGINEER):
        return
    shown = st.session_state.pop(MESSAGE_KEY, None)
    if shown is not None:
        (st.error if shown[0] else st.success)(common.plain(shown[1]))
    found = user.guidelines()
    pinned = pinned_for(found, external_id)
    labels = user.labels
    cols = st.columns([3, 1], vertical_alignment="bottom")
    label = cols[0].selectbox(
        "Pin as an example of",
        labels,
        index=labels.index(first_label(label_now, labels, user.multilabel)),
        key=f"ll_pin_label_{where}_{external_id}",
        help="Pinned examples are shown with the label's guidelines (? on the Label page).",
    )
    remove = label in pinned
    cols[1].button(
        "Unpin" if remove else "Pin",
        key=f"ll_{'unpin' if remove else 'pin'}_{where}_{external_id}",
        on_click=_pin,
        args=(user, str(label), external_id, remove),
        icon=":material/keep_off:" if remove else ":material/keep:",
        width="stretch",
    )
    st.caption(pinned_text(pinned))


def pinned_text(pinned: list[str]) -> str:
    """Which labels the item is pinned for, in words (the names shown as written)."""
    if not pinned:
        return "Not pinned as an example of any label."
    return "Pinned as an example of " + ", ".join(common.plain(name) for name in pinned) + "."
