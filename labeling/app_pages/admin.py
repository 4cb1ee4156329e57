"""The Team page: people and settings. Engineers see it; only admins change anything.

A new person's sign-in token is shown once, right after creation, with a ready link. Tokens
are stored hashed and cannot be shown again; a lost token means a new account.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from labeling.app_pages import common
from labeling.errors import LabelloopError
from labeling.models import ROLES
from labeling.services import UserSession

NEW_TOKEN_KEY = "ll_new_token"


def _people(user: UserSession) -> list[dict]:
    people = user.list_users()
    st.dataframe(
        pd.DataFrame(people, columns=["name", "role", "active", "labels", "created"]),
        hide_index=True,
        column_config={"created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD")},
        key="ll_people",
    )
    return people


def _add_person(user: UserSession) -> None:
    st.subheader("Add a person")
    with st.form("ll_add_user", clear_on_submit=True):
        cols = st.columns([3, 2])
        name = cols[0].text_input("Name", key="ll_new_name")
        role = cols[1].selectbox("Role", ROLES, key="ll_new_role")
        if st.form_submit_button("Add", type="primary"):
            try:
                st.session_state[NEW_TOKEN_KEY] = user.add_user(name.strip(), role=role)
            except LabelloopError as exc:
                st.error(common.plain(exc))
    new = st.session_state.get(NEW_TOKEN_KEY)
    if new is not None:
        st.success(f"Added {common.plain(new[0])}. Copy the token now: it is not shown again.")
        st.code(new[1], language=None)
        st.caption("Sign-in link: this page's address with ?token=<the token> appended.")
        if st.button("Done, hide the token", key="ll_hide_token"):
            del st.session_state[NEW_TOKEN_KEY]
            st.rerun()


def _deactivate(user: UserSession, people: list[dict]) -> None:
    active = [p["name"] for p in people if p["active"] and p["name"] != user.name]
    if not active:
        return
    st.subheader("Deactivate")
    cols = st.columns([3, 2])
    name = cols[0].selectbox("Person", active, key="ll_deactivate_name")
    if cols[1].button("Deactivate", key="ll_deactivate", icon=":material/block:"):
        try:
            user.deactivate_user(name)
            st.toast(f"{name} can no longer sign in; their held items went back to the queue.")
            st.rerun()
        except LabelloopError as exc:
            st.error(common.plain(exc))


def _settings(user: UserSession, *, editable: bool) -> None:
    st.subheader("Settings")
    config = user.workspace.config
    with st.form("ll_settings"):
        cols = st.columns(3)
        overlap = cols[0].number_input(
            "Overlap (annotators per item)",
            min_value=1,
            max_value=100,
            value=config.overlap,
            key="ll_overlap",
            disabled=not editable,
        )
        minutes = cols[1].number_input(
            "Lease time (minutes)",
            min_value=1,
            max_value=30 * 24 * 60,
            value=max(1, round(config.lease_seconds / 60)),
            key="ll_lease_minutes",
            disabled=not editable,
            help="An item not answered in this time goes back to the queue.",
        )
        gold_percent = cols[2].number_input(
            "Gold checks (% of items)",
            min_value=0.0,
            max_value=50.0,
            value=round(config.gold_rate * 100, 2),
            step=1.0,
            key="ll_gold_percent",
            disabled=not editable,
            help="Share of each annotator's items that are hidden gold checks "
            "(needs gold items: import with split gold).",
        )
        if st.form_submit_button("Save settings", disabled=not editable):
            try:
                user.update_settings(
                    overlap=int(overlap),
                    lease_seconds=int(minutes) * 60,
                    gold_rate=float(gold_percent) / 100,
                )
                st.success("Saved to labelloop.toml.")
            except LabelloopError as exc:
                st.error(common.plain(exc))


def render() -> None:
    user = common.require_user()
    if not user.can("engineer"):
        st.error("The Team page is for engineers and admins.")
        return
    is_admin = user.can("admin")
    st.title("Team")
    people = _people(user)
    if is_admin:
        _add_person(user)
        _deactivate(user, people)
    else:
        st.caption("Only admins add or deactivate people and change settings.")
    _settings(user, editable=is_admin)
