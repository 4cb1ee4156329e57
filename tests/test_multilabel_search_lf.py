"""``search --lf NAME=not:LABEL`` selects the items an LF voted LABEL absent on (multi-label),
with the same count as the votes in the store; single-label workspaces refuse the form."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from labeling import Workspace
from labeling.cli.main import app
from labeling.errors import BadInput

TEXTS = {
    "t1": "hello there, the invoice is wrong",
    "t2": "hello, it crashed again",
    "t3": "the app works, thanks",
    "t4": "hello hello",
    "t5": "invoice attached",
}


def _workspace(tmp_path, db_url) -> Workspace:
    ws = Workspace.create(
        tmp_path / "ws", labels=["billing", "bug"], task="multi-label", db_url=db_url
    )
    source = tmp_path / "items.jsonl"
    source.write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in TEXTS.items()))
    ws.import_file(source, id_field="id")
    ws.add_rule(
        {"kind": "keyword", "name": "no_bug", "label": "bug", "keywords": ["thanks"]}
        | {"absent": True}
    )
    ws.add_rule(
        {"kind": "keyword", "name": "says_invoice", "label": "billing", "keywords": ["invoice"]}
    )
    ws.add_rule(
        {"kind": "keyword", "name": "hello_not_billing", "label": "billing", "keywords": ["hello"]}
        | {"absent": True}
    )
    ws.apply_lfs()
    return ws


def _ids(found: dict) -> set[str]:
    return {item["id"] for item in found["items"]}


def test_absent_votes_are_selected_by_either_spelling(tmp_path, db_url):
    ws = _workspace(tmp_path, db_url)
    assert _ids(ws.search(lf="hello_not_billing=not:billing")) == {"t1", "t2", "t4"}
    assert _ids(ws.search(lf="hello_not_billing=¬billing")) == {"t1", "t2", "t4"}
    assert _ids(ws.search(lf="no_bug=not:bug")) == {"t3"}
    # a present vote and an absent one on the same label are different votes
    assert _ids(ws.search(lf="says_invoice=billing")) == {"t1", "t5"}
    assert ws.search(lf="hello_not_billing=billing")["total"] == 0
    # with words: hello and voted not billing
    assert _ids(ws.search("invoice", lf="hello_not_billing=not:billing")) == {"t1"}
    ws.close()


def test_bad_absent_votes_name_the_option(tmp_path, db_url):
    ws = _workspace(tmp_path, db_url)
    with pytest.raises(
        BadInput, match=r"option '--lf NAME=not:LABEL': expected one of billing, bug, found 'spam'"
    ):
        ws.search(lf="no_bug=not:spam")
    ws.close()


def test_a_single_label_workspace_refuses_absent_votes(tmp_path):
    single = Workspace.create(tmp_path / "single", labels=["a", "b"])
    with pytest.raises(BadInput, match="only multi-label workspaces have"):
        single.search(lf="x=not:a")
    single.close()


def test_the_cli_prints_items_voted_absent(tmp_path, db_url):
    ws = _workspace(tmp_path, db_url)
    ws.close()
    done = CliRunner().invoke(
        app, ["search", "-w", str(tmp_path / "ws"), "--lf", "no_bug=not:bug", "--json"]
    )
    assert done.exit_code == 0, done.output
    assert [item["id"] for item in json.loads(done.stdout)["items"]] == ["t3"]


def test_the_data_page_offers_absent_votes_and_finds_them(tmp_path, monkeypatch):
    ws = _workspace(tmp_path, None)
    ws.add_user("eng", role="engineer")
    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(ws.root))
    monkeypatch.delenv("LABELLOOP_DB", raising=False)
    script = "from labeling.ui.views import common, data\ncommon.apply_style()\ndata.render()\n"
    at = AppTest.from_string(script, default_timeout=30)
    at.session_state["ll_user"] = "eng"
    at.run()
    vote = at.selectbox(key="ll_f_lf_vote")
    assert "not:billing" in vote.options and "not:bug" in vote.options
    at.selectbox(key="ll_f_lf").select("hello_not_billing").run()
    at.selectbox(key="ll_f_lf_vote").select("not:billing").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert sorted(table.iloc[:, 0].astype(str)) == ["t1", "t2", "t4"], table
    ws.close()
