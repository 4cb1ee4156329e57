"""The guidelines: the overlay annotators open with ``?`` on the Label page, and the Guidelines
page where engineers and above edit them (every save is a new version) and read the history.

Guideline texts are data written by people: they are shown with ``st.text`` (never as Markdown
or HTML), as item texts are.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from labeling.annotation.guidelines import Guidelines, LabelGuide
from labeling.annotation.session import UserSession
from labeling.errors import BadInput
from labeling.ui.views import common

# Pinned examples shown per label in the overlay; longer texts are cut to this many characters.
EXAMPLE_CHARS = 300


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
    with st.form("ll_guidelines_form"):
        overview = st.text_area("Overview (the whole task)", value=found.overview, height=100)
        edited: dict[str, Any] = {}
        for number, (name, guide) in enumerate(found.labels.items()):
            st.markdown(f"**{common.plain(name)}**")
            cols = st.columns(3)
            fields = {
                key: cols[i].text_area(
                    key.capitalize(), value=getattr(guide, key), key=f"ll_g_{key}_{number}"
                )
                for i, key in enumerate(("definition", "include", "exclude"))
            }
            examples = st.text_input(
                "Pinned examples (item ids, separated by commas)",
                value=", ".join(guide.examples),
                key=f"ll_g_examples_{number}",
            )
            fields["examples"] = [e.strip() for e in examples.split(",") if e.strip()]
            edited[name] = fields
        note = st.text_input("What changed (optional)", max_chars=500)
        saved = st.form_submit_button("Save as a new version", type="primary")
    if saved:
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
    _edit_form(user, found)
    _history(user)
