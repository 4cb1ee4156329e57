"""Which key stands for which label on the Label page: the Python half of ``label_keys.js``.

The first nine labels, in the toml's order, have the digits 1-9 (the number pad too). A
workspace with more labels (real sets have 28 or 50+) also gets a picker: ``/`` opens it, a
few letters of a label's name narrow it, Enter picks the first match (arrows move between
matches) and Escape closes it. ``/`` rather than any letter, because S and U skip and undo and
names start with them too ("sadness", "urgent"); in the picker every letter is text.

This module says which key each label button shows and answers to; the listener reads the same
numbers from the buttons' keys (``label_{number}_{item}``), so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DIGIT_LABELS = 9  # labels reached by a digit of their own
PICKER_KEY = "/"
SKIP_KEY = "s"
UNDO_KEY = "u"
# Multi-label workspaces: the digits (and the picker's Enter) toggle labels; these submit.
SUBMIT_KEY = "Enter"  # the chosen set (never an empty one: see NONE_KEY)
NONE_KEY = "0"  # the empty set, "none of these", said on purpose
GUIDE_KEY = "?"  # opens the guidelines over the page
GUIDE_BUTTON = "ll_guidelines"  # the sidebar button ? presses
# Single-label: Enter presses the Accept button shown with a suggestion (``ll_accept_ITEM``).
ACCEPT_PREFIX = "ll_accept_"


@dataclass(frozen=True)
class LabelKey:
    """One label button: its place in the label order (from 1), its name, and its key (None
    for a label after the ninth, which the picker reaches)."""

    number: int
    name: str
    key: str | None


def label_keys(labels: Sequence[str]) -> list[LabelKey]:
    """The label buttons in the toml's order, each with the key it shows and answers to."""
    return [
        LabelKey(number, name, str(number) if number <= DIGIT_LABELS else None)
        for number, name in enumerate(labels, start=1)
    ]


def has_picker(n_labels: int) -> bool:
    """Whether the page has the picker: only with more labels than digits, so a page of nine
    labels or fewer keeps exactly the keys it always had."""
    return n_labels > DIGIT_LABELS


def button_key(number: int, item_id: int) -> str:
    """The Streamlit key of label ``number``'s button for an item (the listener finds it by it)."""
    return f"label_{number}_{item_id}"


def keys_help(n_labels: int, *, multilabel: bool = False) -> str:
    """The line naming the page's keys, e.g. ``1-9 label · / find any of 28 labels ·
    S skip · U undo``; in a multi-label workspace the digits toggle and Enter and 0 submit."""
    verb = "toggle" if multilabel else "label"
    if n_labels == 0:
        digits = ""
    elif n_labels == 1:
        digits = f"1 {verb} · "
    else:
        digits = f"1-{min(n_labels, DIGIT_LABELS)} {verb} (the number pad too) · "
    picker = f"/ find any of {n_labels} labels by name · " if has_picker(n_labels) else ""
    submit = f"{SUBMIT_KEY} submit · {NONE_KEY} none of these · " if multilabel else ""
    return f"Keys: {digits}{picker}{submit}S skip · U undo · {GUIDE_KEY} guidelines"


def picker_help(n_labels: int, *, multilabel: bool = False) -> str | None:
    """A line under the buttons for the labels without a digit, or None when all have one."""
    if not has_picker(n_labels):
        return None
    does = "Enter toggles it" if multilabel else "Enter"
    return (
        f"Labels {DIGIT_LABELS + 1}-{n_labels} have no digit: press / and type a few letters "
        f"of the name, then {does} (↑ ↓ choose among the matches, Esc closes)."
    )
