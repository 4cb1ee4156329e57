"""Which item the Data page shows, and the search kept while it does.

The browser (:mod:`labeling.ui.views.browse`), the item page and the similar-items lists open
items through :func:`open_item`; "Back to results" is :func:`close_item`. Streamlit forgets the
value of a widget that a run does not draw, so the search box and the filters are copied to
keys no widget owns and given back when the browser is drawn again.
"""

from __future__ import annotations

import streamlit as st

OPEN_KEY = "ll_item_open"
NONCE_KEY = "ll_results_nonce"
KEPT = "ll_kept_"
SIMILAR_KEY = "ll_similar"


def open_item(external_id: str) -> None:
    """Show the item page for ``external_id`` at the next run."""
    st.session_state[OPEN_KEY] = external_id


def close_item() -> None:
    """Back to the results; a fresh results table, so its old selection does not reopen it."""
    st.session_state.pop(OPEN_KEY, None)
    st.session_state.pop(SIMILAR_KEY, None)
    restore_search(force=True)  # in the callback: the redrawn widgets show these values
    st.session_state[NONCE_KEY] = st.session_state.get(NONCE_KEY, 0) + 1


def _search_widgets() -> list[str]:
    return [k for k in st.session_state if str(k).startswith(("ll_q_", "ll_f_"))]


def remember_search() -> None:
    """Copy the search box's and the filters' values to keys no widget owns: Streamlit drops
    a widget's value in runs that do not draw it (the item page, other pages)."""
    for key in _search_widgets():
        st.session_state[KEPT + key] = st.session_state[key]


def restore_search(*, force: bool = False) -> None:
    """Give the search widgets their remembered values (before they are drawn); ``force`` also
    overrides the values the browser sent (coming back from the item page)."""
    for kept in [k for k in st.session_state if str(k).startswith(KEPT)]:
        key = kept[len(KEPT) :]
        if force or key not in st.session_state:
            st.session_state[key] = st.session_state[kept]


def opened_item() -> str | None:
    found = st.session_state.get(OPEN_KEY)
    return str(found) if found else None
