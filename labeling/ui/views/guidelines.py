"""The guidelines: the overlay annotators open with ``?`` on the Label page, and the Guidelines
page where engineers and above edit them (every save is a new version) and read the history.
The page also suggests where an exclude note would help: the label pairs people confuse most
(:mod:`labeling.quality.confusion_pairs`), each with a button that opens that label's own form.

Guideline texts are data written by people: they are shown with ``st.text`` (never as Markdown
or HTML), as item texts are.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from labeling.annotation import roles
from labeling.annotation.guidelines import TEXT_FIELDS, Guidelines, LabelGuide
from labeling.annotation.session import UserSession
from labeling.errors import BadInput
from labeling.figures import plural
from labeling.quality.confusion_pairs import ConfusedPair
from labeling.ui.views import common

# Pinned examples shown per label in the overlay; longer texts are cut to this many characters.
EXAMPLE_CHARS = 300
HINT_PAIRS = 5  # confused label pairs suggested on the page
PAIRS_SECONDS = 30  # how long the page keeps the pairs it counted (per guidelines version)
# The label whose own form is open (from a hint's button), and the label it is confused with.
FOCUS_KEY = "ll_g_focus"
SAVED_KEY = "ll_g_saved"  # the message after a save from that form, shown once
DRAWN_KEY = "ll_g_drawn"  # the version the whole form was last drawn from


def _label_guide(user: UserSession, name: str, guide: LabelGuide, texts: dict[str, str]) -> None:
    st.markdown(f"**{common.plain(name)}**")
    written = False
    for title, text in (
        ("Definition", guide.definition),
        ("Include", guide.include),
        ("Exclude", guide.exclude),
    ):
        if text:
            st.caption(title)
            st.text(text)
            written = True
    shown = [e for e in guide.examples if e in texts]
    if shown:
        st.caption("Examples")
        for external_id in shown:
            text = texts[external_id]
            cut = text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS] + "…"
            st.text(f"{external_id}: {cut}")
        written = True
    if not written:
        st.caption("Nothing written for this label yet.")


def show(user: UserSession, found: Guidelines) -> None:
    """The guidelines as annotators read them: overview, then each label."""
    if found.version == 0:
        st.info("No guidelines have been written for this workspace yet.")
        return
    when = found.created_at.strftime("%Y-%m-%d") if found.created_at else ""
    st.caption(f"Version {found.version} · {common.plain(found.author)} · {when}")
    if found.overview:
        st.text(found.overview)
    examples = [e for guide in found.labels.values() for e in guide.examples]
    texts = user.example_texts(examples)
    for name, guide in found.labels.items():
        st.divider()
        _label_guide(user, name, guide, texts)


@st.dialog("Guidelines", width="large")
def overlay(user: UserSession) -> None:
    """The guidelines over the Label page (``?`` opens it, Escape or the cross closes it); the
    item on screen stays leased and nothing is answered while it is open."""
    show(user, user.guidelines())


# ---------------------------------------------------------------------------- the page


def _edit_form(user: UserSession, found: Guidelines) -> None:
    """Every field of every label in one form. Its fields are keyed by the version they
    show, so a new version (saved here, from a hint's form or by someone else) redraws them
    with its text; a save pressed on a form drawn from an older version is not recorded."""
    drawn = st.session_state.get(DRAWN_KEY, found.version)
    st.session_state[DRAWN_KEY] = found.version
    with st.form("ll_guidelines_form"):
        overview = st.text_area("Overview (the whole task)", value=found.overview, height=100)
        edited: dict[str, Any] = {}
        for number, (name, guide) in enumerate(found.labels.items()):
            st.markdown(f"**{common.plain(name)}**")
            cols = st.columns(3)
            fields = {
                key: cols[i].text_area(
                    key.capitalize(),
                    value=getattr(guide, key),
                    key=f"ll_g_{key}_{number}_v{found.version}",
                )
                for i, key in enumerate(("definition", "include", "exclude"))
            }
            examples = st.text_input(
                "Pinned examples (item ids, separated by commas)",
                value=", ".join(guide.examples),
                key=f"ll_g_examples_{number}_v{found.version}",
            )
            fields["examples"] = [e.strip() for e in examples.split(",") if e.strip()]
            edited[name] = fields
        note = st.text_input("What changed (optional)", max_chars=500)
        saved = st.form_submit_button("Save as a new version", type="primary")
    if saved and drawn != found.version:
        st.error(
            f"Version {found.version} was saved while you edited version {drawn}; your changes "
            "were not saved. The form now shows the newest version: make them again there."
        )
    elif saved:
        try:
            after = user.edit_guidelines({"overview": overview, "labels": edited}, note=note)
        except BadInput as exc:
            st.error(common.plain(exc))
            return
        if after.version == found.version:
            st.info("Nothing changed: no new version.")
        else:
            st.success(f"Saved version {after.version}.")
            st.rerun()


def _open_label(name: str, other: str) -> None:
    """Hint button callback: open ``name``'s own form."""
    st.session_state[FOCUS_KEY] = (name, other)


@st.cache_data(ttl=PAIRS_SECONDS, show_spinner=False)
def _confused_pairs(root: str, name: str, version: int) -> list[ConfusedPair]:
    """The pairs to suggest (``name``: whose role is checked), kept for a few seconds per
    guidelines version, so that a save shows its note at once: counting reads every answer on
    overlapped items, 1.6-2 s with 100,000 of them (benchmarks/bench_confused_pairs.py),
    too slow to redo at each click on the page."""
    return UserSession(common.workspace(), name).confused_pairs(limit=HINT_PAIRS)


def _hints(user: UserSession, found: Guidelines) -> None:
    """The label pairs people confuse most, each with a button that opens that label's own
    form under the pair."""
    saved = st.session_state.pop(SAVED_KEY, None)
    if saved:
        st.success(common.plain(saved))
    pairs = _confused_pairs(str(user.workspace.root), user.name, found.version)
    focus = st.session_state.get(FOCUS_KEY)
    if not pairs:
        st.session_state.pop(FOCUS_KEY, None)
        return
    st.subheader("Where an exclude note would help")
    st.caption(
        "The label pairs people confuse most: answers on gold items, items two people "
        "answered differently, and labels the latest round flags as likely errors."
    )
    for i, pair in enumerate(pairs):
        a, b = pair.labels
        target = pair.note_on
        other = b if target == a else a
        with st.container(border=True, key=f"ll_g_hint_box_{i}"):
            cols = st.columns([4, 1], vertical_alignment="center")
            with cols[0]:
                st.text(
                    f"{a} / {b}: confused {plural(pair.total, 'time')} (gold {pair.gold}, people "
                    f"{pair.people}, model {pair.model})"
                )  # label names are data: never Markdown
                st.caption(_hint_caption(pair.noted_in, target, other, pair.given_instead))
            cols[1].button(
                f"Edit {common.plain(target)}",
                key=f"ll_g_hint_{i}",
                on_click=_open_label,
                args=(target, other),
                icon=":material/edit_note:",
                width="stretch",
            )
            if focus == (target, other):
                _label_form(user, found, target, other)
                focus = None  # one form, under the first pair that asked for it


def _hint_caption(noted_in: tuple[str, ...], target: str, other: str, given: dict[str, int]) -> str:
    if noted_in:
        noted = " and ".join(map(common.plain, noted_in))
        return f"Already named in the exclude note of {noted}."
    said = "No exclude note of either label names the other yet"
    times = given.get(target, 0)
    if times:
        said += f"; {common.plain(target)} was given {plural(times, 'time')} where "
        said += f"{common.plain(other)} was meant"
    return said + "."


def _label_form(user: UserSession, found: Guidelines, name: str, other: str) -> None:
    """Label ``name``'s definition, include and exclude notes, opened from the hint that it
    is confused with ``other``."""
    number = list(found.labels).index(name)
    guide = found.labels[name]
    with st.form("ll_g_one_form"):
        st.markdown(f"**{common.plain(name)}**: say which texts are {common.plain(other)}")
        fields = {
            key: st.text_area(
                key.capitalize(),
                value=getattr(guide, key),
                key=f"ll_g_one_{key}_{number}_v{found.version}",
                placeholder=f"e.g. Texts that ... are {other}." if key == "exclude" else None,
            )
            for key in TEXT_FIELDS
        }
        note = st.text_input(
            "What changed (optional)", value=f"exclude note: {name} vs {other}", max_chars=500
        )
        cols = st.columns([1, 1, 3])
        pressed = cols[0].form_submit_button("Save as a new version", type="primary")
        closed = cols[1].form_submit_button("Close")
    if closed:
        st.session_state.pop(FOCUS_KEY, None)
        st.rerun()
    if not pressed:
        return
    try:
        after = user.edit_guidelines({"labels": {name: fields}}, note=note)
    except BadInput as exc:
        st.error(common.plain(exc))
        return
    st.session_state.pop(FOCUS_KEY, None)
    st.session_state[SAVED_KEY] = (
        f"Saved version {after.version}."
        if after.version != found.version
        else "Nothing changed: no new version."
    )
    st.rerun()


def _history(user: UserSession) -> None:
    rows = user.guidelines_history()
    if not rows:
        return
    st.subheader("History")
    st.dataframe(
        [
            {
                "version": r["version"],
                "saved": (r["created_at"] or "")[:16].replace("T", " "),
                "by": r["author"],
                "note": r["note"],
                "changed": ", ".join(r["changed"]),
            }
            for r in rows
        ],
        hide_index=True,
        width="stretch",
    )
    numbers = [r["version"] for r in rows]
    chosen = st.selectbox("Read an earlier version", numbers, index=None, key="ll_g_read")
    if chosen is not None:
        with st.container(border=True):
            show(user, user.guidelines(int(chosen)))


def render() -> None:
    user = common.require_user()
    st.title("Guidelines")
    st.caption(
        "What each label means, for the people who label: annotators open these with ? on "
        "the Label page. Every save is a new version; answers record the version they were "
        "given under."
    )
    found = user.guidelines()
    if found.version:
        when = found.created_at.strftime("%Y-%m-%d %H:%M UTC") if found.created_at else ""
        st.caption(f"Now: version {found.version} by {common.plain(found.author)}, {when}.")
    if user.can(roles.ENGINEER):
        _hints(user, found)
    _edit_form(user, found)
    _history(user)
