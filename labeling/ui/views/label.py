"""The Label page: one item at a time, labelled with the keyboard.

Keys: 1-9 label in the toml's label order (the number pad too), S skip, U undo; with more than
nine labels, / opens a picker that finds any label by name (``label_keys.py``). In a
multi-label workspace the digits (and the picker) toggle labels instead, Enter submits the
chosen set and 0 the empty one ("none of these"); the set being chosen is kept per item in the
session (``CHOSEN_KEY``), and each toggle, like every press, names its item. The keys are
owned by a small listener shipped beside this module (``label_keys.js``): Streamlit's button
shortcuts match key codes (no number pad) and lose a press made while the page redraws, since
the next item's text appears before its buttons. The listener holds such a press until the page
has settled and applies it if the item it was made on is still on screen; otherwise, and for a
key that means nothing here, it shows a note. Two rules keep presses honest on the server too
(see the notes on Streamlit callbacks in docs/ui.md):

* buttons are keyed by item and carry the item id, and a callback does not apply a press for an
  item that is no longer the one in front of the annotator (it says so instead), so a press
  made on an old screen is never applied to a new item;
* a callback does its ``st.session_state`` reads and writes first and the database write last,
  with no Streamlit call after it. The next item comes back from the same transaction as the
  answer (it is leased there: the pre-fetch) and is handed to the next run through a plain
  dict, not through Streamlit. If a run is cut short anyway, the store still holds the lease,
  so the next run shows the same item again.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Literal

import streamlit as st

from labeling.annotation.leases import QueueItem
from labeling.annotation.progress import progress_text
from labeling.annotation.session import UserSession
from labeling.annotation.suggestions import Suggestion
from labeling.errors import LabelloopError, NothingToUndo, NotLeased, UnknownAnnotator
from labeling.store import labelsets
from labeling.ui.views import common, guidelines, label_buffer, label_keys, suggested

ITEM_KEY = "ll_item"
SHOWN_KEY = "ll_shown_at"
BOX_KEY = "ll_box"
HINT_KEY = "ll_hint"
CHOSEN_KEY = "ll_chosen"  # multi-label: (item id, the labels toggled on for it)
SUGGESTED_KEY = "ll_suggested"  # (item id, the Suggestion shown with it)
LABELLING_KEY = "ll_labelling"  # engineers, leads and admins: labelling started on purpose
LONG_TEXT = 900  # characters; longer texts get a scrolling box
KEYS_SCRIPT = Path(__file__).with_name("label_keys.js")
KEYS_SHARED = Path(__file__).with_name("keys_shared.js")  # the buffered page's too
# The keyboard listener, as shipped with the package: our own code, never data. The braces
# give the shared part a scope of its own (the script runs again on each visit to the page).
KEYS_HTML = (
    f"<script>{{\n{KEYS_SHARED.read_text(encoding='utf-8')}\n"
    f"{KEYS_SCRIPT.read_text(encoding='utf-8')}\n}}</script>"
)


def _box() -> dict[str, Any]:
    box = st.session_state.get(BOX_KEY)
    if box is None:
        box = {}
        st.session_state[BOX_KEY] = box
    return box


def _elapsed_ms(state: Any) -> int | None:
    shown = state.get(SHOWN_KEY)
    return None if shown is None else max(0, int((time.monotonic() - shown) * 1000))


def _gone(item_id: int, external_id: str) -> bool:
    """Whether a press for ``item_id`` came from a screen that is gone (a click on the buttons
    of the item before); such a press is never applied to the item now on screen, and never
    dropped without a word."""
    item = st.session_state.get(ITEM_KEY)
    if item is not None and item.item_id == item_id:
        return False
    _box()["problem"] = (
        f"Not applied: that press was for item {external_id}, which is no longer on "
        "screen; nothing was saved for it."
    )
    return True


def _on_answer(item_id: int, label: str | list[str] | None, external_id: str) -> None:
    """Label (or skip, when ``label`` is None) the item on screen, then fetch the next one.
    In a multi-label workspace ``label`` is the set, as a list of names in label order."""
    state = st.session_state
    item = state.get(ITEM_KEY)
    box = _box()
    if _gone(item_id, external_id) or item is None:  # (gone when there is no item)
        return
    duration = _elapsed_ms(state)
    suggestion = _suggested(item_id)
    user = common.current_user()
    state[ITEM_KEY] = None
    state[SHOWN_KEY] = None
    # No Streamlit call below this line: the write must not be cut in half by a rerun.
    if user is None:
        return
    try:
        if label is None:
            box["next"] = user.skip(item_id, duration_ms=duration, suggestion=suggestion)
            box["flash"] = ("skipped", item.external_id)
        else:
            box["next"] = user.answer(item_id, label, duration_ms=duration, suggestion=suggestion)
            said = label if isinstance(label, str) else common.set_text(label)
            box["flash"] = ("labelled", f"{item.external_id} → {said}")
    except NotLeased:
        # Another tab or window of this person answered it, or the hold ran out and the item
        # went to someone else: the next run shows what to label now.
        box["problem"] = (
            f"Not saved: item {item.external_id} was already answered in another tab or window, "
            "or your hold on it ran out and it went to someone else. "
            "Here is the item to label now."
        )
    except LabelloopError as exc:
        box["problem"] = str(exc)


def _suggested(item_id: int) -> Suggestion | None:
    """The suggestion shown with ``item_id`` (None: not the item it was drawn for)."""
    held = st.session_state.get(SUGGESTED_KEY)
    return held[1] if held is not None and held[0] == item_id else None


def _chosen(item_id: int) -> frozenset[str]:
    """The labels toggled on for ``item_id`` (none for an item that is not the one chosen on)."""
    held = st.session_state.get(CHOSEN_KEY)
    return held[1] if held is not None and held[0] == item_id else frozenset()


def _on_toggle(item_id: int, label: str, on: bool, external_id: str) -> None:
    """Multi-label: turn ``label`` on (``on``) or off for the item on screen. The button is
    drawn with the state it sets; the listener, which sends a click that started no run once
    more, does not send a toggle again whose first click did arrive (``label_keys.js``)."""
    if _gone(item_id, external_id):
        return
    chosen = set(_chosen(item_id))
    if on:
        chosen.add(label)
    else:
        chosen.discard(label)
    st.session_state[CHOSEN_KEY] = (item_id, frozenset(chosen))


def _on_submit(item_id: int, external_id: str, labels: tuple[str, ...], empty: bool) -> None:
    """Multi-label: answer the item on screen with the set chosen for it (``empty``: with
    the empty set, "none of these"). Enter needs a set and 0 needs none chosen, so neither
    key can send the other's answer by accident (a stray 0 next to 9 after two toggles)."""
    if _gone(item_id, external_id):
        return
    chosen = _chosen(item_id)
    names = [name for name in labels if name in chosen]
    if empty and names:
        _box()["problem"] = (
            f"Not saved: {common.set_text(names)} chosen for item {external_id}, and Enter "
            "submits them. To answer “None of these”, toggle them off first."
        )
    elif not empty and not names:
        _box()["problem"] = (
            f"Nothing chosen for item {external_id}: toggle its labels (their keys, or click "
            "them) and press Enter, or press 0 for “None of these”."
        )
    else:
        _on_answer(item_id, names, external_id)


def _on_undo() -> None:
    state = st.session_state
    box = _box()
    user = common.current_user()
    state[ITEM_KEY] = None
    state[SHOWN_KEY] = None
    if user is None:
        return
    try:
        box["next"] = user.undo()
        box["flash"] = ("undo", "")
    except NothingToUndo:
        box["problem"] = "There is no earlier answer to go back to."
    except LabelloopError as exc:
        box["problem"] = str(exc)


def _item_now(user: UserSession) -> QueueItem | None:
    """The item to show: the pre-fetched one, the one on screen, or a fresh claim."""
    state = st.session_state
    box = _box()
    if "next" in box:
        item = box.pop("next")
    elif state.get(ITEM_KEY) is not None:
        item = state[ITEM_KEY]
    else:
        item = user.current_item()
    previous = state.get(ITEM_KEY)
    if item is None or previous is None or previous.item_id != item.item_id:
        state[SHOWN_KEY] = time.monotonic() if item is not None else None
        # A revisit by undo starts from the person's own answer, never from a guess.
        shown = None if item is None or item.is_undo else user.suggestion(item.item_id)
        state[SUGGESTED_KEY] = None if item is None else (item.item_id, shown)
        if user.multilabel:
            start = _given(item) if item is not None else frozenset()
            if shown is not None and shown.value is not None:
                start = labelsets.decode(shown.value)
            state[CHOSEN_KEY] = None if item is None else (item.item_id, start)
    state[ITEM_KEY] = item
    return item


def _given(item: QueueItem) -> frozenset[str]:
    """Multi-label: the set to start an item with, the one given before on an undo (so the
    person changes that answer rather than giving it again), else none."""
    if not item.is_undo or item.previous_label is None:
        return frozenset()
    return labelsets.decode(item.previous_label)


def _progress(user: UserSession) -> None:
    """One line at the top: the pool's progress bar, mine today, and what is left."""
    progress = user.progress()
    share = progress.labelled / progress.pool if progress.pool else 0.0
    st.progress(min(1.0, share), text=progress_text(progress))


def _messages() -> None:
    box = _box()
    problem = box.pop("problem", None)
    if problem:
        st.warning(common.plain(problem))
    flash = box.pop("flash", None)
    if flash and flash[0] in ("labelled", "skipped"):
        # A quiet line, not a toast: nothing animates between one item and the next.
        said = common.plain(flash[1])
        st.caption(f"Saved: {said}" if flash[0] == "labelled" else f"Skipped {said}")


def _show_item(user: UserSession, item: QueueItem) -> None:
    if item.is_undo:
        before = common.label_text(item.previous_label, user.multilabel, missing="skipped")
        st.info(
            f"Going back: your earlier answer was “{common.plain(before)}”. "
            + (
                "It is chosen again below: change it and press Enter."
                if user.multilabel and item.previous_label is not None
                else "Pick the answer it should have."
            )
        )
    height: int | Literal["content"] = 320 if len(item.text) > LONG_TEXT else "content"
    with st.container(border=True, height=height, key="ll_text"):
        # st.text shows data as it is: no HTML, no Markdown.
        st.text(item.text if item.text else "(empty text)")
    extras = [(name, item.fields.get(name)) for name in user.display_fields]
    extras = [(name, value) for name, value in extras if value not in (None, "")]
    if extras:
        st.text("   ".join(f"{name}: {value}" for name, value in extras))
    st.caption(f"Item {common.plain(item.external_id)}")


def _buttons(user: UserSession, item: QueueItem) -> None:
    keys = label_keys.label_keys(user.labels)
    shown = _suggested(item.item_id)
    guess = shown.value if shown is not None else None
    per_row = min(len(keys), 5)
    with st.container(key="ll_buttons"):
        for start in range(0, len(keys), per_row):
            row = st.columns(per_row)
            for offset, label in enumerate(keys[start : start + per_row]):
                row[offset].button(
                    common.plain(label.name),  # a label is shown as written, never as Markdown
                    key=label_keys.button_key(label.number, item.item_id),
                    on_click=_on_answer,
                    args=(item.item_id, label.name, item.external_id),
                    shortcut=label.key,
                    type="primary" if label.name in (item.previous_label, guess) else "secondary",
                    width="stretch",
                )
        picker = label_keys.picker_help(len(keys))
        if picker:
            st.caption(picker)
        if guess is not None:
            st.button(
                f"Accept {common.plain(guess)}",
                key=f"{label_keys.ACCEPT_PREFIX}{item.item_id}",
                on_click=_on_answer,
                args=(item.item_id, guess, item.external_id),
                icon=":material/done:",
                help="Enter accepts the suggestion; a digit answers with another label.",
            )
        row = st.columns([1, 1, 3])
        _skip_undo_flag(user, item, row)


def _skip_undo_flag(user: UserSession, item: QueueItem, row: list[Any]) -> None:
    """Skip, Undo and Flag, in the last three of ``row``'s columns."""
    row[-3].button(
        "Skip",
        key=f"skip_{item.item_id}",
        on_click=_on_answer,
        args=(item.item_id, None, item.external_id),
        shortcut="s",
        icon=":material/skip_next:",
        width="stretch",
    )
    row[-2].button(
        "Undo",
        key=f"undo_{item.item_id}",
        on_click=_on_undo,
        shortcut="u",
        icon=":material/undo:",
        width="stretch",
    )
    with row[-1].popover("Flag", icon=":material/flag:"):
        _flag_form(user, item)


def _set_buttons(user: UserSession, item: QueueItem) -> None:
    """Multi-label: a toggle per label (a filled box and the primary colour when chosen), the
    chosen set in words, then Submit (Enter), None of these (0), Skip, Undo and Flag."""
    keys = label_keys.label_keys(user.labels)
    chosen = _chosen(item.item_id)
    per_row = min(len(keys), 5)
    with st.container(key="ll_buttons"):
        for start in range(0, len(keys), per_row):
            row = st.columns(per_row)
            for offset, label in enumerate(keys[start : start + per_row]):
                on = label.name in chosen
                row[offset].button(
                    common.plain(label.name),  # a label is shown as written, never as Markdown
                    key=label_keys.button_key(label.number, item.item_id),
                    on_click=_on_toggle,
                    args=(item.item_id, label.name, not on, item.external_id),
                    shortcut=label.key,
                    icon=":material/check_box:" if on else ":material/check_box_outline_blank:",
                    type="primary" if on else "secondary",
                    width="stretch",
                )
        picker = label_keys.picker_help(len(keys), multilabel=True)
        if picker:
            st.caption(picker)
        names = [name for name in user.labels if name in chosen]
        with st.container(key="ll_chosen"):
            if names:
                st.markdown(f"**Chosen:** {common.plain(common.set_text(names))}")
            else:
                st.markdown(
                    "**Nothing chosen yet:** toggle the labels that apply, then Enter; "
                    "0 if none of them does."
                )
        row = st.columns([1.2, 1.2, 1, 1, 1.6])
        row[0].button(
            "Submit",
            key=f"submit_{item.item_id}",
            on_click=_on_submit,
            args=(item.item_id, item.external_id, user.labels, False),
            shortcut=label_keys.SUBMIT_KEY,
            icon=":material/done:",
            type="primary",
            disabled=not names,
            help=None if names else "Choose labels first, or press None of these (0).",
            width="stretch",
        )
        row[1].button(
            "None of these",
            key=f"none_{item.item_id}",
            on_click=_on_submit,
            args=(item.item_id, item.external_id, user.labels, True),
            shortcut=label_keys.NONE_KEY,
            icon=":material/block:",
            disabled=bool(names),
            help="Toggle the chosen labels off first." if names else None,
            width="stretch",
        )
        _skip_undo_flag(user, item, row)


def _flag_form(user: UserSession, item: QueueItem) -> None:
    """A note on what is wrong with the item, for the leads' Review page; the item stays on
    screen to be answered (or skipped) as usual."""
    note = st.text_area(
        "What is wrong with this item?",
        key=f"ll_flag_note_{item.item_id}",
        placeholder="e.g. two requests in one message; the text is cut off",
    )
    if st.button("Flag for review", key=f"ll_flag_{item.item_id}"):
        try:
            user.flag(item.external_id, note)
        except LabelloopError as exc:
            st.warning(common.plain(exc))
            return
        st.caption(f"Flagged item {common.plain(item.external_id)} for the leads' review.")


def _hint(user: UserSession, item: QueueItem) -> None:
    if not st.session_state.get(HINT_KEY):
        return
    hint = user.hint(item.item_id)
    if hint is None:
        st.caption("Model hint: no model has scored this item yet.")
    else:
        confidence = f" ({hint.confidence:.0%} sure)" if hint.confidence is not None else ""
        said = common.label_text(hint.prediction, user.multilabel)
        st.caption(f"Model hint (round {hint.round_id}): {common.plain(said)}{confidence}")


def _empty(user: UserSession) -> None:
    why = user.why_empty()
    st.success("Nothing to label right now.")
    st.write(why.message)
    cols = st.columns([1, 1, 3])
    if cols[0].button("Check again", key="ll_check_again", icon=":material/refresh:"):
        st.session_state[ITEM_KEY] = None
    cols[1].button(
        "Undo", key="undo_empty", on_click=_on_undo, shortcut="u", icon=":material/undo:"
    )


def _on_start() -> None:
    st.session_state[LABELLING_KEY] = True


def _on_stop() -> None:
    """Leave labelling: hand back the item on screen, so it goes to someone else now."""
    state = st.session_state
    state[LABELLING_KEY] = False
    state[ITEM_KEY] = None
    state[SHOWN_KEY] = None
    _box().clear()
    user = common.current_user()
    # No Streamlit call below this line (see the module docstring).
    # Deactivated meanwhile: deactivation has handed their items back already.
    if user is not None:
        with contextlib.suppress(UnknownAnnotator):
            user.release_items()


def _not_labelling() -> None:
    """What engineers, leads and admins see until they choose to label: no lease is taken."""
    st.title("Label")
    st.write(
        "Labelling takes the next item from the queue and holds it for you "
        "(no one else gets it while you hold it), so it starts only when you ask."
    )
    st.button(
        "Start labelling",
        key="ll_start_labelling",
        on_click=_on_start,
        type="primary",
        icon=":material/play_arrow:",
    )


def render() -> None:
    user = common.require_user()
    annotator = user.role() == "annotator"
    if not annotator and not st.session_state.get(LABELLING_KEY):
        _not_labelling()
        return
    st.session_state.setdefault(HINT_KEY, False)
    with st.sidebar:
        st.toggle("Show the model's guess", key=HINT_KEY, help="Off by default, to avoid bias")
        st.caption(label_keys.keys_help(len(user.labels), multilabel=user.multilabel))
        # ? presses this button (label_keys.js): the guidelines open over the page.
        if st.button("Guidelines", key=label_keys.GUIDE_BUTTON, icon=":material/help:"):
            guidelines.overlay(user)
        if not annotator:
            st.button(
                "Stop labelling",
                key="ll_stop_labelling",
                on_click=_on_stop,
                icon=":material/stop:",
                help="Hands the item on screen back to the queue.",
            )
    if label_buffer.prefetch(user) > 0:
        label_buffer.render(user)  # the browser holds the next items (label_buffer.py)
        return
    _label_area(user)
    with st.container(key="ll_keys"):  # the listener acts only while this marker is on the page
        st.html(KEYS_HTML, unsafe_allow_javascript=True)


@st.fragment
def _label_area(user: UserSession) -> None:
    """The item, its buttons and the progress: a press reruns only this part of the page."""
    item = _item_now(user)
    _progress(user)
    _messages()
    if item is None:
        _empty(user)
        return
    _show_item(user, item)
    suggested.suggestion_line(user, _suggested(item.item_id))
    (_set_buttons if user.multilabel else _buttons)(user, item)
    _hint(user, item)
