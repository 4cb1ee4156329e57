"""labelloop's Streamlit entry point: sign in, then route to the pages this person may see.

Started by ``labelloop serve`` through ``labeling/ui/web_app.py``, which adds the sign-in routes
that set the session cookie this script reads. Pages live in ``labeling/ui/views/``; they call the
service layer (:mod:`labeling.annotation.session`), which checks roles again on every call.
"""

from __future__ import annotations

import streamlit as st

from labeling.annotation import roles
from labeling.ui.views import (
    admin,
    common,
    data,
    guidelines,
    label,
    lfs,
    metrics,
    model,
    queue,
    review,
    stats,
)

st.set_page_config(page_title="labelloop", page_icon=":material/label:", layout="centered")
common.apply_style()

common.restore_session()
if "token" in st.query_params:
    # Sign-in links are exchanged for a cookie by the server before the page loads; a token
    # that got this far (say, added to the address in the page) must not stay in view.
    del st.query_params["token"]
user = common.current_user()
if user is None:
    common.sign_in_form()
    st.stop()

assert user is not None
role = common.require_user().role()
# The pages, and the least role that sees each (labeling.annotation.roles holds the rules).
# Each role lands on its own work (docs/ui.md): only annotators land on Label, whose first view
# leases an item; the others lease only when they choose to label there.
PAGES = (
    (roles.ANNOTATOR, label.render, "Label", ":material/label:", "label"),
    (roles.ANNOTATOR, stats.render, "My stats", ":material/insights:", "stats"),
    (roles.ENGINEER, data.render, "Data", ":material/database:", "data"),
    (roles.ENGINEER, lfs.render, "LFs", ":material/rule:", "lfs"),
    (roles.ENGINEER, model.render, "Model", ":material/model_training:", "model"),
    (roles.ENGINEER, metrics.render, "Metrics", ":material/monitoring:", "metrics"),
    (roles.ENGINEER, queue.render, "Queue", ":material/queue:", "queue"),
    (roles.ENGINEER, guidelines.render, "Guidelines", ":material/menu_book:", "guidelines"),
    (roles.LEAD, review.render, "Review", ":material/rate_review:", "review"),
    (roles.ENGINEER, admin.render, "Team", ":material/group:", "team"),
)
home = roles.HOME_PAGE.get(role, "label")
pages = [
    st.Page(
        render,
        title=title,
        icon=icon,
        url_path=f"{path}-home" if path == home else path,
        default=path == home,
    )
    for needed, render, title, icon, path in PAGES
    if roles.at_least(role, needed)
]
# Streamlit serves the default page only at "/": its own address (say /metrics, from a link
# or a bookmark) would say "Page not found". A hidden twin answers there. The default page's
# inner path differs from the twin's, since Streamlit tells pages apart by that path.
pages += [
    st.Page(render, title=title, icon=icon, url_path=path, visibility="hidden")
    for _needed, render, title, icon, path in PAGES
    if path == home
]
page = st.navigation(pages)
with st.sidebar:
    st.text(f"Signed in as {user.name} ({role})")  # names are data: never Markdown
    if st.button("Sign out", key="ll_sign_out", icon=":material/logout:"):
        common.sign_out()
        st.rerun()
page.run()
