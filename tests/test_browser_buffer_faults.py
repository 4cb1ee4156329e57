"""The buffered Label page when things go wrong, in a real browser: the server killed with
SIGKILL and started again while answers are pending, and a held item whose hold ran out and
went to someone else. The store must end with each answer exactly once, nothing for an item the
person no longer held, and the page must say what was not saved."""

from __future__ import annotations

import os
import signal
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session

from labeling import Workspace
from labeling.store.models import Lease, utcnow
from tests.browser import chromium, chromium_path, free_port, serve
from tests.test_browser_buffer import (
    LABELS,
    _current,
    _Held,
    _on_screen,
    _press,
    _ready,
    _settled,
    _state,
    _workspace,
)

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="needs Debian's chromium (.ci/setup installs it)"
)


def test_a_server_killed_mid_buffer_and_started_again_loses_nothing_and_doubles_nothing(
    tmp_path,
):
    root, token = _workspace(tmp_path)
    port = free_port()
    given: dict[str, list[str | None]] = {}
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
        with serve(root, port=port) as server:
            url = server.url
            page.goto(f"{url}?token={token}")
            _ready(page)
            _settled(page)
            # The first answer reaches the server, which applies it; its reply is lost. The
            # next two stay in the tab: the route is held from then on.
            held = _Held(page, lose_first=True)
            given[_press(page, "1")] = ["billing"]
            page.wait_for_function("() => window.__labelloopBufferState().lastError !== null")
            given[_press(page, "2")] = ["refund"]
            given[_press(page, "3")] = ["outage"]
            assert _state(page)["pending"] == 3
            os.killpg(server.process.pid, signal.SIGKILL)  # no goodbye, mid-buffer
            server.process.wait()
            held.release()
        assert _current(root) == {next(iter(given)): ["billing"]}
        with serve(root, port=port):
            # A restart ends browser sessions: the page keeps its answers until the person
            # signs in again, in the same tab, which then sends them.
            page.goto(f"{url}?token={token}")
            _ready(page)
            _settled(page)
            assert _state(page)["pending"] == 0
            given[_press(page, "4")] = ["other"]
            _settled(page)
    assert _current(root) == given


def test_a_buffered_item_whose_hold_ran_out_and_was_taken_is_refused_and_dropped(tmp_path):
    root, token = _workspace(tmp_path, items=12)
    with serve(root) as server, chromium() as browser:
        page = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
        page.goto(f"{server.url}?token={token}")
        _ready(page)
        _settled(page)
        on_screen, behind = _state(page)["buffer"][:2]
        with Workspace.open(root) as ws:
            with Session(ws.engine) as session:  # every hold of ann's runs out now
                session.exec(update(Lease).values(expires_at=utcnow() - timedelta(seconds=1)))
                session.commit()
            bob = ws.add_user("bob")[0].name
            taken = []
            while not {on_screen, behind} <= set(taken):  # the queue's order: ann's first
                item = ws.next_item(bob)
                assert item is not None
                ws.annotate(item.item_id, bob, LABELS[3])
                taken.append(item.external_id)
        assert {on_screen, behind} <= set(taken)
        # Answering the item on screen is refused, saying so; the one behind it leaves the
        # buffer before it is shown; nothing of ann's is stored for either.
        assert _press(page, "1") == on_screen
        note = page.get_by_text(f"item '{on_screen}'", exact=False).first
        note.wait_for(timeout=20_000)
        assert "Not saved" in note.inner_text()
        page.wait_for_function(
            "(gone) => !window.__labelloopBufferState().buffer.includes(gone)", arg=behind
        )
        assert _on_screen(page) != behind
    current = _current(root)
    assert current[on_screen] == [LABELS[3]] and current[behind] == [LABELS[3]]
