"""The buffered Label page (``prefetch`` > 0 in labelloop.toml): a Streamlit v2 component.

The component (``label_buffer.js`` and the parts it lists, with ``label_buffer.css``) owns
the keyboard and draws the item, its buttons and the progress line itself. It holds the item
on screen plus up to ``prefetch`` more, leased to its browser tab, paints the next one in the
same frame as a key press, and sends answers to ``POST /label/batch``
(``labeling/ui/label_route.py``) outside Streamlit's reruns, which cost 35-45 ms of server CPU
each. The protocol between the two (tab and client ids, acknowledgements, undo, the leases
kept, the release of a closing tab) is in docs/ui.md, "The buffered Label page".

Streamlit only mounts the component and passes it its settings; the page around it (the
sidebar's hint toggle, keys, Guidelines and sign-out) is the Label page's own
(``label.py``). No data passes through HTML: the script sets text with ``textContent``. The
settings carry the person's name, so that a tab someone else signs in to drops what the one
before left in it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from labeling.annotation.session import UserSession
from labeling.ui import label_route
from labeling.ui.views import label_keys

HERE = Path(__file__).parent
# The component's script, in parts by concern, joined in this order into one module (they
# share its scope): label_buffer.js says what each part holds. keys_shared.js is also the
# one-item page's (label.py).
PARTS = (
    "keys_shared.js",
    "buffer_state.js",
    "buffer_send.js",
    "buffer_draw.js",
    "buffer_keys.js",
    "label_buffer.js",
)
ROUTE = label_route.PATH
HINT_KEY = "ll_hint"  # the sidebar's "Show the model's guess" toggle (label.py: HINT_KEY)
COMPONENT_KEY = "ll_buffer"
# Our own script and style, shipped with the package: never data.
BUFFER = st.components.v2.component(
    "labelloop_label_buffer",
    html="",
    css=(HERE / "label_buffer.css").read_text(encoding="utf-8"),
    js="\n".join((HERE / part).read_text(encoding="utf-8") for part in PARTS),
    isolate_styles=False,  # the page's font, and one DOM for the page's tests to read
)


def prefetch(user: UserSession) -> int:
    """How many items the tab holds beyond the one on screen (0: the one-item page)."""
    return user.workspace.config.prefetch


def settings(user: UserSession) -> dict[str, Any]:
    """What the component needs to know: the labels in order, the page's keys, the route."""
    labels = list(user.labels)
    return {
        "person": user.name,
        "labels": labels,
        "multilabel": user.multilabel,
        "prefetch": prefetch(user),
        "route": ROUTE,
        "hints": bool(st.session_state.get(HINT_KEY)),
        "keys_help": label_keys.keys_help(len(labels), multilabel=user.multilabel),
        "display_fields": list(user.display_fields),
        "guide_button": label_keys.GUIDE_BUTTON,
    }


def render(user: UserSession) -> None:
    """Mount the labelling surface; with a key, Streamlit keeps it (and its buffer) across
    reruns and only hands it new settings."""
    BUFFER(key=COMPONENT_KEY, data=settings(user))
