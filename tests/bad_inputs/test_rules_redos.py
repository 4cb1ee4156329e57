"""Regexes typed into the rule builder cannot hang the app: RE2 runs them in linear time, and
what RE2 cannot run (backreferences, lookaround, huge patterns) is refused with the reason."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from labeling import Workspace
from labeling.errors import BadInput
from tests.bad_inputs.store import assert_message, assert_unchanged, fingerprint

EVIL_TEXT = "a" * 100_000 + "!"
# Patterns that take exponential time in a backtracking engine on EVIL_TEXT.
CATASTROPHIC = {
    "nested-plus": "(a+)+$",
    "alternation-star": "(a|a)*$",
    "nested-star": "(a*)*b",
    "words-and-spaces": r"^(\w+\s?)*$",
}
REFUSED = {
    "backreference": (r"(a+)\1", "RE2 has no lookahead, lookbehind or backreferences"),
    "lookahead": ("a(?=b)", "RE2 has no lookahead, lookbehind or backreferences"),
    "too-long": ("a" * 1_001, "the limit is 1000"),
    "huge-repetition": ("(a{1000}){1000}", "counted repetitions must be at most 1000"),
    "unbalanced": ("(a+", "missing )"),
}


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    ws = Workspace.create(tmp_path / "ws", labels=["spam", "ham"], name="redos")
    path = tmp_path / "pool.jsonl"
    path.write_text(
        f'{{"id": "evil", "text": "{EVIL_TEXT}"}}\n{{"id": "calm", "text": "aaa"}}\n',
        encoding="utf-8",
    )
    ws.import_file(path, id_field="id")
    ws.add_user("engineer", role="engineer")
    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(ws.root))
    monkeypatch.delenv("LABELLOOP_DB", raising=False)
    yield ws
    ws.close()


def _lf_page() -> AppTest:
    script = "from labeling.ui.views import common, lfs\ncommon.apply_style()\nlfs.render()\n"
    at = AppTest.from_string(script, default_timeout=60)
    at.session_state["ll_user"] = "engineer"
    at.run()
    at.radio(key="ll_rule_kind").set_value("regex").run()
    return at


@pytest.mark.parametrize("name", list(CATASTROPHIC))
def test_catastrophic_pattern_typed_in_the_ui_runs_in_linear_time(
    served: Workspace, name: str
) -> None:
    before = fingerprint(served)
    at = _lf_page()
    started = time.perf_counter()
    at.text_input(key="ll_rule_pattern").set_value(CATASTROPHIC[name]).run()
    elapsed = time.perf_counter() - started
    assert not at.exception and not at.error
    # A backtracking engine would not finish on 100,000 a's in our lifetime; RE2 takes
    # milliseconds. The bound is loose for a busy machine.
    assert elapsed < 20, f"{CATASTROPHIC[name]!r} took {elapsed:.1f} s"
    assert at.metric[0].label == "Matches in the pool"
    assert_unchanged(before, served)


def test_catastrophic_rule_saved_and_applied(served: Workspace) -> None:
    served.add_rule({"kind": "regex", "name": "re_evil", "label": "spam", "pattern": "(a+)+!"})
    (row,) = served.apply_lfs().lfs
    assert row["lf"] == "re_evil" and row["new_votes"] == 1  # the long text only


@pytest.mark.parametrize("name", list(REFUSED))
def test_pattern_re2_cannot_run_is_refused_with_the_reason(served: Workspace, name: str) -> None:
    pattern, fact = REFUSED[name]
    before = fingerprint(served)
    at = _lf_page()
    at.text_input(key="ll_rule_pattern").set_value(pattern).run()
    assert not at.exception
    assert len(at.error) == 1
    # The page escapes Markdown in messages (a backslash before each sign): read it as shown.
    assert_message(re.sub(r"\\(.)", r"\1", at.error[0].value), "rule 'draft'", fact)
    spec = {"kind": "regex", "name": "re_bad", "label": "spam", "pattern": pattern}
    with pytest.raises(BadInput) as caught:
        served.add_rule(spec)
    assert_message(str(caught.value), "rule 're_bad'", fact)
    assert_unchanged(before, served)
