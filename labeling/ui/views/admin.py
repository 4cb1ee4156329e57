"""The Team page: people and settings. Engineers see it; only admins change anything.

A sign-in token is shown once, right after it is made (a new person, a reactivation, a new
token), with a short-lived sign-in link built from the server's own address. Tokens are stored
hashed and cannot be shown again; a lost token is replaced with "New sign-in token".
Every change runs in a button callback, before the page is drawn, so the table below shows it
at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import streamlit as st

from labeling.annotation.roles import ROLES
from labeling.annotation.session import UserSession
from labeling.annotation.users import LINK_HOURS
from labeling.errors import LabelloopError
from labeling.ui import web_auth
from labeling.ui.views import common

NEW_TOKEN_KEY = "ll_new_token"
CONFIRM_KEY = "ll_confirm_deactivate"
MESSAGE_KEY = "ll_team_message"
PICK_KEY = "ll_person"
# An empty Add this soon after a successful one is the echo of a double click.
DOUBLE_CLICK_SECONDS = 3.0
MESSAGE_SECONDS = 60.0


def _people(user: UserSession) -> list[dict]:
    people = user.list_users()
    st.dataframe(
        pd.DataFrame(people, columns=["name", "role", "active", "labels", "created"]),
        hide_index=True,
        column_config={"created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD")},
        key="ll_people",
    )
    return people


def _say(kind: str, text: str) -> None:
    st.session_state[MESSAGE_KEY] = (kind, text, time.monotonic())


def _show_token(name: str, token: str, link_token: str) -> None:
    st.session_state[NEW_TOKEN_KEY] = (name, token, link_token)


@dataclass
class _TokenAction:
    """One action that shows a new token (add, reactivate, new token), in flight or just done:
    its outcome, once ``done`` is set."""

    what: tuple[str, ...]  # ("add", name, role) or (action, name)
    at: float
    done: threading.Event = field(default_factory=threading.Event)
    person: str = ""
    token: str = ""
    link_token: str = ""
    message: str = ""
    error: str | None = None


class _RecentActions:
    """Each admin's last token action, for a few seconds, in this server process.

    A double click reaches the server as two submits 10-20 ms apart: the second carries the
    same values or, for Add, once the form has cleared itself, an empty name. Streamlit starts
    the second run while the first one's callback is still hashing the new token, and the
    first run's session-state writes are lost with it. So the second submit is recognised
    here, outside the session, waits for the first to finish and shows its outcome: one person
    added, one token issued, and that token shown.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_admin: dict[tuple[str, str], _TokenAction] = {}

    def start(self, admin: tuple[str, str], what: tuple[str, ...]) -> tuple[_TokenAction, bool]:
        """This submit's action, and whether it is a new one (False: it repeats the last)."""
        now = time.monotonic()
        with self._lock:
            # Older actions are dropped, with the tokens they hold.
            for key in [k for k, a in self._by_admin.items() if now - a.at > DOUBLE_CLICK_SECONDS]:
                del self._by_admin[key]
            last = self._by_admin.get(admin)
            if last is not None and _repeats(what, last.what):
                return last, False
            action = _TokenAction(what, now)
            self._by_admin[admin] = action
            return action, True

    def forget(self, admin: tuple[str, str]) -> None:
        with self._lock:
            self._by_admin.pop(admin, None)


def _repeats(what: tuple[str, ...], last: tuple[str, ...]) -> bool:
    if what == last:
        return True
    # An Add with an empty name right after an Add: the cleared form's second submit.
    return what[0] == last[0] == "add" and not what[1]


_RECENT = _RecentActions()


def _token_action(
    user: UserSession, what: tuple[str, ...], do: Callable[[_TokenAction], None], title: str
) -> None:
    """Run ``do`` once per click (a double click's second submit shows the first's outcome),
    then show the token it made."""
    admin = (user.workspace.db_url, user.name)
    action, new = _RECENT.start(admin, what)
    if new:
        try:
            do(action)
        except LabelloopError as exc:
            action.error = f"{title}: {exc}"
            _RECENT.forget(admin)  # a failed action is not repeated by the next one
        finally:
            action.done.set()
    elif not action.done.wait(timeout=30):
        return
    if action.error is not None:
        _say("error", action.error)
        return
    _show_token(action.person, action.token, action.link_token)
    _say("success", action.message)


def _on_add(user: UserSession) -> None:
    name = str(st.session_state.get("ll_new_name", "")).strip()
    role = str(st.session_state.get("ll_new_role", "annotator"))

    def add(action: _TokenAction) -> None:
        action.person, action.token = user.add_user(name, role=role)
        action.link_token = user.sign_in_link(action.person)
        action.message = f"Added {action.person} as {role}."

    _token_action(user, ("add", name, role), add, "Add")


def _add_person(user: UserSession) -> None:
    st.subheader("Add a person")
    with st.form("ll_add_user", clear_on_submit=True):
        cols = st.columns([3, 2])
        cols[0].text_input("Name", key="ll_new_name")
        cols[1].selectbox("Role", ROLES, key="ll_new_role")
        st.form_submit_button("Add", type="primary", on_click=_on_add, args=(user,))


def _new_token_panel() -> None:
    new = st.session_state.get(NEW_TOKEN_KEY)
    if new is None:
        return
    name, token, link_token = new
    st.info(
        f"Copy the sign-in link or token for {common.plain(name)} now: they are not shown again."
    )
    link = web_auth.sign_in_link(link_token)
    if link is not None:
        st.caption(f"Sign-in link (works for {LINK_HOURS:g} hours):")
        st.code(link, language=None)
    else:
        st.caption(
            "No sign-in link: this app was not started by `labelloop serve`, which tells it "
            "its own address."
        )
    st.caption("Token, for the sign-in form (works until it is replaced or revoked):")
    st.code(token, language=None)
    if st.button("Done, hide the token", key="ll_hide_token"):
        del st.session_state[NEW_TOKEN_KEY]
        st.session_state.pop(MESSAGE_KEY, None)
        st.rerun()


def _run(action: str, call: object) -> None:
    """Run one admin action from a callback; its outcome is shown on the next draw."""
    try:
        assert callable(call)
        call()
    except LabelloopError as exc:
        _say("error", f"{action}: {exc}")


def _role_key(name: str) -> str:
    return f"ll_role_of_{name}"


def _on_role(user: UserSession, name: str) -> None:
    role = str(st.session_state.get(_role_key(name)))

    def change() -> None:
        user.set_user_role(name, role)
        _say("success", f"{name} is now {role}.")

    _run("Change role", change)


def _on_deactivate(user: UserSession, name: str) -> None:
    def deactivate() -> None:
        user.deactivate_user(name)
        common.end_sessions(name)
        _say("success", f"{name} can no longer sign in; their held items went back to the queue.")

    st.session_state.pop(CONFIRM_KEY, None)
    _run("Deactivate", deactivate)


def _on_reactivate(user: UserSession, name: str) -> None:
    def reactivate(action: _TokenAction) -> None:
        action.person, action.token, action.link_token = user.reactivate_user(name)
        action.message = f"{name} can sign in again, with the new token below."

    _token_action(user, ("reactivate", name), reactivate, "Reactivate")


def _on_new_token(user: UserSession, name: str) -> None:
    def new_token(action: _TokenAction) -> None:
        action.person, action.token, action.link_token = user.new_user_token(name)
        common.end_sessions(name)
        action.message = f"{name}'s old token, links and sessions no longer work."

    _token_action(user, ("new_token", name), new_token, "New sign-in token")


def _manage(user: UserSession, people: list[dict]) -> None:
    """One person at a time: role, new token, deactivate (asked twice) or reactivate.

    The picker lists everyone, active or not, so a change never removes the chosen person
    from it (which would reset it to the first name).
    """
    names = [p["name"] for p in people]
    if not names:
        return
    st.subheader("Manage a person")
    by_name = {p["name"]: p for p in people}
    name = st.selectbox(
        "Person",
        names,
        key=PICK_KEY,
        format_func=lambda n: n if by_name[n]["active"] else f"{n} (deactivated)",
    )
    person = by_name[name]
    cols = st.columns([2, 1])
    # One role box per person, so that it shows the chosen person's role, not the last one's.
    cols[0].selectbox("Role", ROLES, index=ROLES.index(person["role"]), key=_role_key(name))
    cols[1].button(
        "Change role", key="ll_change_role", on_click=_on_role, args=(user, name),
        disabled=name == user.name,
        help="Your own role is changed by another admin." if name == user.name else None,
    )  # fmt: skip
    if not person["active"]:
        st.button(
            "Reactivate", key="ll_reactivate", icon=":material/person_check:",
            on_click=_on_reactivate, args=(user, name),
            help="Gives a new token; the old one stays revoked.",
        )  # fmt: skip
        return
    actions = st.columns(2)
    actions[0].button(
        "New sign-in token", key="ll_new_token_button", icon=":material/key:",
        on_click=_on_new_token, args=(user, name),
        help="The old token, sign-in links and open sessions stop working.",
    )  # fmt: skip
    if name == user.name:
        return
    if st.session_state.get(CONFIRM_KEY) != name:
        if actions[1].button("Deactivate", key="ll_deactivate", icon=":material/block:"):
            st.session_state[CONFIRM_KEY] = name
            st.rerun()
        return
    st.warning(
        f"Deactivate {common.plain(name)}? They are signed out at once, their token and links "
        "stop working and the items they hold go back to the queue. Their labels stay."
    )
    confirm = st.columns(2)
    confirm[0].button(
        "Yes, deactivate", key="ll_deactivate_confirm", type="primary",
        on_click=_on_deactivate, args=(user, name),
    )  # fmt: skip
    if confirm[1].button("Cancel", key="ll_deactivate_cancel"):
        st.session_state.pop(CONFIRM_KEY, None)
        st.rerun()


def _message() -> None:
    """The outcome of the last action, for a minute or until the next one.

    Not removed once shown: a run that Streamlit interrupts (a double click) may have shown
    it to nobody.
    """
    said = st.session_state.get(MESSAGE_KEY)
    if said is not None and time.monotonic() - said[2] < MESSAGE_SECONDS:
        kind, text, _at = said
        (st.error if kind == "error" else st.success)(common.plain(text))


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
        prefetch = st.columns(3)[0].number_input(
            "Items held ahead (prefetch)",
            min_value=0,
            max_value=20,
            value=config.prefetch,
            key="ll_prefetch",
            disabled=not editable,
            help="Items the Label page keeps ready in the browser besides the one on screen, "
            "so a key press shows the next at once. 0: one item at a time, each key press "
            "waits for the server. Open Label pages follow at their next save.",
        )
        if st.form_submit_button("Save settings", disabled=not editable):
            _save_settings(
                user,
                overlap=int(overlap),
                lease_seconds=int(minutes) * 60,
                gold_rate=float(gold_percent) / 100,
                prefetch=int(prefetch),
            )


def _save_settings(
    user: UserSession, *, overlap: int, lease_seconds: int, gold_rate: float, prefetch: int
) -> None:
    try:
        user.update_settings(
            overlap=overlap, lease_seconds=lease_seconds, gold_rate=gold_rate, prefetch=prefetch
        )
    except LabelloopError as exc:
        st.error(common.plain(exc))
        return
    st.success("Saved to labelloop.toml.")


def render() -> None:
    user = common.require_engineer("Team")
    if user is None:
        return
    is_admin = user.can("admin")
    st.title("Team")
    people = _people(user)
    if is_admin:
        _message()
        _new_token_panel()
        _add_person(user)
        _manage(user, people)
    else:
        st.caption("Only admins add or deactivate people and change settings.")
    _settings(user, editable=is_admin)
