"""The Data page's import through Streamlit's AppTest: the same checks and words as the CLI.

Uploads go through the page's real file uploader; the store is a real SQLite file.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import text as sql
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from labeling import Workspace
from labeling.cli.main import app
from tests.conftest import db_fingerprint

TIMEOUT = 30
SCRIPT = "from labeling.ui.views import common, data\ncommon.apply_style()\ndata.render()\n"


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A workspace (text field "text") with three items and an engineer, served to AppTest."""
    ws = Workspace.create(tmp_path / "ws", labels=["spam", "ham"], name="imports")
    seed = tmp_path / "seed.csv"
    seed.write_text("id,text\ns1,first seed text\ns2,second seed text\ns3,third seed text\n")
    ws.import_file(seed, id_field="id")
    ws.add_user("eng", role="engineer")
    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(ws.root))
    monkeypatch.delenv("LABELLOOP_DB", raising=False)
    yield ws
    ws.close()


def _page() -> AppTest:
    at = AppTest.from_string(SCRIPT, default_timeout=TIMEOUT)
    at.session_state["ll_user"] = "eng"
    return at.run()


def _upload(name: str, content: bytes) -> AppTest:
    at = _page()
    at.file_uploader(key="ll_upload").upload(name, content, "text/csv")
    at.run()
    assert not at.exception
    return at


def _import_button(at: AppTest):
    (button,) = [b for b in at.button if b.label == "Import"]
    return button


def _texts(ws: Workspace) -> list[str]:
    with ws.engine.connect() as conn:
        return [row[0] for row in conn.execute(sql("SELECT text FROM item ORDER BY id"))]


def test_a_file_without_the_text_field_is_refused_as_the_cli_refuses_it(served, tmp_path):
    ws = served
    content = b"id,body\nn1,the first new text\nn2,the second new text\n"
    at = _upload("no_text.csv", content)
    # Nothing is guessed: the text field stays unchosen, and the page says why.
    assert at.selectbox(key="ll_map_text").value is None
    assert any("no field 'text'" in i.value.replace("\\", "") for i in at.info)
    before = db_fingerprint(ws)
    _import_button(at).click().run()
    assert not at.exception
    (error,) = at.error
    shown = error.value.replace("\\", "")  # the page escapes Markdown characters
    # The CLI's words for the same file, from the same check.
    path = tmp_path / "no_text.csv"
    path.write_bytes(content)
    cli = CliRunner().invoke(app, ["import", str(path), "-w", str(ws.root)])
    assert cli.exit_code == 2
    cli_words = cli.stderr.strip().removeprefix("error: ").replace(str(path), "no_text.csv")
    assert shown == f"Nothing was imported. {cli_words}"
    assert "no field 'text' (--text-field); the file's fields are: 'id', 'body'" in shown
    assert db_fingerprint(ws) == before

    # Choosing the column imports the texts, not the ids.
    at.selectbox(key="ll_map_text").set_value("body")
    at.selectbox(key="ll_map_id").set_value("id")
    _import_button(at).click().run()
    assert not at.exception and not at.error
    assert "Imported 2 items into pool" in at.success[0].value
    assert _texts(ws)[-2:] == ["the first new text", "the second new text"]


def test_a_malformed_upload_is_named_by_its_own_name_not_the_server_path(served):
    ws = served
    before = db_fingerprint(ws)
    # The quote is still open at the end of the file: the preview already cannot parse it.
    at = _upload("broken_quote.csv", b'id,text\n1,"an unterminated quote\n2,fine\n')
    (error,) = at.error
    shown = error.value.replace("\\", "")
    assert shown.startswith("broken_quote.csv: malformed CSV")
    assert tempfile.gettempdir() not in shown
    assert "labelloop-upload-" not in shown
    assert db_fingerprint(ws) == before

    # A fault the preview does not see is refused by the import, with the same name.
    at = _upload("empty_text.csv", b"id,text\n1,fine\n2,   \n")
    at.selectbox(key="ll_map_id").set_value("id")
    _import_button(at).click().run()
    (error,) = at.error
    shown = error.value.replace("\\", "")
    assert shown == ("Nothing was imported. empty_text.csv: row 2, field 'text': the text is empty")
    assert db_fingerprint(ws) == before


def test_an_upload_that_cannot_be_read_at_all_is_named_by_its_own_name(served):
    at = _upload("binary.parquet", b"PAR1 this is not parquet at all")
    (error,) = at.error
    shown = error.value.replace("\\", "")
    assert shown.startswith("binary.parquet: not a readable Parquet file")
    assert tempfile.gettempdir() not in shown and "labelloop-upload-" not in shown


def test_repeated_texts_are_skipped_with_a_warning_unless_kept(served):
    ws = served
    content = b"text\nfirst seed text\na text never seen\nsecond seed text\na text never seen\n"
    at = _upload("again.csv", content)
    _import_button(at).click().run()
    assert not at.exception and not at.error
    assert "Imported 1 item into pool" in at.success[0].value
    (warning,) = at.warning
    shown = warning.value.replace("\\", "")
    assert "Skipped 2 rows whose text is already there under another id" in shown
    assert "2 already in the workspace" in shown and '"Keep repeated texts"' in shown
    assert sorted(_texts(ws)) == sorted(
        ["first seed text", "second seed text", "third seed text", "a text never seen"]
    )

    at = _upload("again_kept.csv", b"text\nthird seed text\nthird seed text\n")
    at.checkbox(key="ll_map_keep_repeats").check()
    _import_button(at).click().run()
    assert not at.exception and not at.error
    assert "Imported 1 item into pool" in at.success[0].value  # the same id repeats once
    shown = at.warning[0].value.replace("\\", "")
    assert "Imported 1 row whose text was already there" in shown
    assert _texts(ws).count("third seed text") == 2


def test_the_export_keeps_only_the_origins_chosen(served):
    ws = served
    labelled = Path(ws.root) / "labelled.csv"
    labelled.write_text("id,text,label\nl1,a labelled message,spam\n")
    ws.import_file(labelled, id_field="id", label_field="label")
    at = _page()
    at.selectbox(key="ll_export_format").set_value("JSON Lines").run()
    at.multiselect(key="ll_export_origin").set_value(["import"]).run()
    at.button(key="ll_export_prepare").click().run()
    assert not at.exception
    fmt, log, payload = at.session_state["ll_export"]
    rows = [json.loads(line) for line in payload.decode("utf-8").splitlines()]
    assert (fmt, log) == ("jsonl", False)
    assert [(r["id"], r["label"], r["decided_by"]) for r in rows] == [("l1", "spam", "import")]
    assert at.session_state["ll_export_origins"] == ("import",)


def test_a_failed_export_does_not_show_the_server_scratch_path(served, monkeypatch):
    from labeling.data import writers

    def full_disk(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writers, "write_csv", full_disk)
    at = _page()
    at.button(key="ll_export_prepare").click().run()
    assert not at.exception
    (error,) = at.error
    shown = error.value.replace("\\", "")
    assert shown == "the csv export: cannot write there (No space left on device)"
    assert tempfile.gettempdir() not in shown
