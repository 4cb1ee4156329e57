"""Which item the Data page shows, and the search kept while it does.

The browser (:mod:`labeling.ui.views.browse`), the item page and the similar-items lists open
items through :func:`open_item`; "Back to results" is :func:`close_item`. The open item is the
page's address (``/data?item=EXTERNAL_ID``), so an item page can be linked to, bookmarked and
reloaded; the address holds the item's external id and nothing else. Streamlit forgets the
value of a widget that a run does not draw, so the search box and the filters are copied to
keys no widget owns and given back when the browser is drawn again.
"""

from __future__ import annotations

import streamlit as st

ITEM_PARAM = "item"
NONCE_KEY = "ll_results_nonce"
KEPT = "ll_kept_"
SIMILAR_KEY = "ll_similar"


def open_item(external_id: str) -> None:
    """Show the item page for ``external_id`` at the next run (and in the address)."""
    st.query_params[ITEM_PARAM] = external_id


def close_item() -> None:
    """Back to the results; a fresh results table, so its old selection does not reopen it."""
    if ITEM_PARAM in st.query_params:
        del st.query_params[ITEM_PARAM]
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
    """The external id of the item the address opens, if any."""
    found = st.query_params.get(ITEM_PARAM)
    return str(found) if found else None
