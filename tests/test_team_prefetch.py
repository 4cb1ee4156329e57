"""``prefetch`` on the Team page: an admin sets it in the settings form, it is written to
labelloop.toml through the same checks as a hand-edited toml, and the Label page's batches in
the same server process obey it at once."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from labeling import Workspace
from labeling.annotation.session import UserSession
from labeling.config import load_config
from labeling.errors import Forbidden, LabelloopError
from labeling.ui import web_auth

TIMEOUT = 30


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A workspace with an admin and an engineer, served to AppTest."""
    ws = Workspace.create(tmp_path / "ws", labels=["spam", "ham"], name="prefetch")
    for role in ("admin", "engineer"):
        ws.add_user(role, role=role)
    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(ws.root))
    monkeypatch.delenv("LABELLOOP_DB", raising=False)
    yield ws
    ws.close()


def _team_page(user: str) -> AppTest:
    script = "from labeling.ui.views import common, admin\ncommon.apply_style()\nadmin.render()\n"
    at = AppTest.from_string(script, default_timeout=TIMEOUT)
    at.session_state["ll_user"] = user
    return at.run()


def _save(at: AppTest) -> AppTest:
    return [b for b in at.button if b.label == "Save settings"][0].click().run()


def test_an_admin_sets_prefetch_and_the_label_route_obeys_it_at_once(served):
    at = _team_page("admin")
    assert not at.exception
    field = at.number_input(key="ll_prefetch")
    assert field.value == 3 and not field.disabled
    assert "0: one item at a time" in (field.help or "")
    field.set_value(0)
    at = _save(at)
    assert not at.exception
    assert any("Saved to labelloop.toml" in s.value for s in at.success)
    config = load_config(served.root)
    assert (config.prefetch, config.overlap, config.lease_seconds) == (0, 1, 1800)
    # The batches of open tabs run on the route's workspace: it has the new value already.
    assert web_auth.served_workspace().config.prefetch == 0
    at.number_input(key="ll_prefetch").set_value(7)
    at = _save(at)
    assert not at.exception
    assert load_config(served.root).prefetch == 7
    assert web_auth.served_workspace().config.prefetch == 7


def test_engineers_see_prefetch_read_only(served):
    at = _team_page("engineer")
    assert not at.exception
    assert at.number_input(key="ll_prefetch").disabled


def test_a_prefetch_out_of_range_is_refused_naming_it_and_nothing_is_written(served):
    before = (served.root / "labelloop.toml").read_text()
    for bad in (21, -1):
        with pytest.raises(LabelloopError, match="prefetch") as refused:
            served.update_settings(overlap=1, lease_seconds=1800, prefetch=bad)
        assert "key 'prefetch': expected an integer" in str(refused.value)
        assert str(bad) in str(refused.value)
    assert (served.root / "labelloop.toml").read_text() == before
    assert served.config.prefetch == 3


def test_update_settings_round_trips_prefetch_and_keeps_it_when_not_given(served):
    served.update_settings(overlap=2, lease_seconds=300, prefetch=5)
    with Workspace.open(served.root) as again:
        assert (again.config.prefetch, again.config.overlap) == (5, 2)
    served.update_settings(overlap=3, lease_seconds=300)  # the callers that predate prefetch
    assert load_config(served.root).prefetch == 5
    assert served.config.prefetch == 5 and served.config.overlap == 3


def test_only_an_admin_changes_prefetch(served):
    with pytest.raises(Forbidden):
        UserSession(served, "engineer").update_settings(overlap=1, lease_seconds=600, prefetch=0)
    assert load_config(served.root).prefetch == 3
