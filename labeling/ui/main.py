"""labelloop's Streamlit entry point: sign in, then route to the pages this person may see.

Started by ``labelloop serve`` through ``labeling/ui/web_app.py``, which adds the sign-in routes
that set the session cookie this script reads. Pages live in ``labeling/ui/views/``; they call the
service layer (:mod:`labeling.annotation.session`), which checks roles again on every call.
"""

from __future__ import annotations

import streamlit as st

from labeling.ui.views import admin, common, data, label, lfs, metrics, model, review, stats

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
# Each role lands on its own work (docs/ui.md). Only annotators land on Label, whose first view
# leases an item; the others lease only when they choose to label there.
home = {"engineer": "metrics", "lead": "review", "admin": "metrics"}.get(role, "label")
pages = [
    st.Page(
        label.render,
        title="Label",
        icon=":material/label:",
        url_path="label",
        default=home == "label",
    ),
    st.Page(stats.render, title="My stats", icon=":material/insights:", url_path="stats"),
]
if role in ("engineer", "lead", "admin"):
    pages += [
        st.Page(data.render, title="Data", icon=":material/database:", url_path="data"),
        st.Page(lfs.render, title="LFs", icon=":material/rule:", url_path="lfs"),
        st.Page(model.render, title="Model", icon=":material/model_training:", url_path="model"),
        st.Page(
            metrics.render,
            title="Metrics",
            icon=":material/monitoring:",
            url_path="metrics",
            default=home == "metrics",
        ),
    ]
if role in ("lead", "admin"):
    pages.append(
        st.Page(
            review.render,
            title="Review",
            icon=":material/rate_review:",
            url_path="review",
            default=home == "review",
        )
    )
if role in ("engineer", "lead", "admin"):
    pages.append(st.Page(admin.render, title="Team", icon=":material/group:", url_path="team"))
page = st.navigation(pages)
with st.sidebar:
    st.text(f"Signed in as {user.name} ({role})")  # names are data: never Markdown
    if st.button("Sign out", key="ll_sign_out", icon=":material/logout:"):
        common.sign_out()
        st.rerun()
page.run()
