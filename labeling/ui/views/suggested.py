"""The line under an item that says a guess is pre-selected, where it comes from and how to
accept or change it (labeling.annotation.suggestions decides what is shown)."""

from __future__ import annotations

import streamlit as st

from labeling.annotation.session import UserSession
from labeling.annotation.suggestions import Suggestion
from labeling.store import labelsets
from labeling.ui.views import common

SOURCES_SHOWN = {"model": "the model", "llm": "the LLM", "weak": "the weak label"}


def suggestion_line(user: UserSession, shown: Suggestion | None) -> None:
    """Where the pre-selected guess comes from, and how to accept or change it."""
    if shown is None or shown.value is None:
        return
    said = common.label_text(shown.value, user.multilabel)
    sure = f", {shown.confidence:.0%} sure" if shown.confidence is not None else ""
    if not user.multilabel:
        how = "Enter accepts it, a digit answers with another label"
    elif labelsets.decode(shown.value):
        how = "Enter accepts it, digits change it"
    else:
        how = "0 accepts it (none of these), digits change it"
    source = SOURCES_SHOWN.get(shown.source or "", shown.source)
    st.caption(f"Suggested by {source}{sure}: {common.plain(said)} · {how}.")
