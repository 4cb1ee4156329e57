"""Guidelines: every edit is a new version with its author, time and note; partial edits carry
the rest over; bad edits are refused naming the label, field or item and change nothing; the
CLI prints a TOML file that `edit --file` takes back."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from labeling import Workspace
from labeling.cli.main import app
from labeling.errors import BadInput, Forbidden, UnknownLabel

LABELS = ["spam", "ham"]


@pytest.fixture
def ws(tmp_path, db_url):
    ws = Workspace.create(tmp_path / "ws", labels=LABELS, db_url=db_url)
    source = tmp_path / "items.csv"
    source.write_text("id,text\nc1,buy now cheap pills\nc2,see you at lunch\nc3,click this link\n")
    ws.import_file(source, id_field="id")
    ws.add_user("eng", role="engineer")
    ws.add_user("lee", role="lead")
    ws.add_user("ann")
    yield ws
    ws.close()


def test_each_edit_is_a_version_and_old_versions_stay(ws):
    assert ws.guidelines().version == 0
    first = ws.edit_guidelines(
        {"overview": "Label each comment.", "labels": {"spam": {"definition": "Ads, links."}}},
        by="eng",
        note="first draft",
    )
    assert (first.version, first.author, first.note) == (1, "eng", "first draft")
    second = ws.edit_guidelines({"labels": {"spam": {"exclude": "  Fan mail is ham.  "}}}, by="lee")
    assert second.version == 2
    assert second.labels["spam"].definition == "Ads, links."  # carried over
    assert second.labels["spam"].exclude == "Fan mail is ham."  # trimmed
    assert second.overview == "Label each comment."
    assert ws.guidelines(1).labels["spam"].exclude == ""  # version 1 unchanged
    assert list(ws.guidelines().labels) == LABELS  # every label, in label order
    history = ws.guidelines_history()
    assert [h["version"] for h in history] == [2, 1]
    assert history[0]["changed"] == ["spam.exclude"] and history[0]["author"] == "lee"
    assert history[1]["changed"] == ["overview", "spam.definition"]


def test_an_edit_that_changes_nothing_records_no_version(ws):
    ws.edit_guidelines({"labels": {"ham": {"definition": "Real comments."}}}, by="eng")
    again = ws.edit_guidelines({"labels": {"ham": {"definition": "Real comments. "}}}, by="eng")
    assert again.version == 1 and len(ws.guidelines_history()) == 1


def test_pinned_examples_are_real_items(ws):
    assert ws.pin_example("spam", "c1", by="eng").labels["spam"].examples == ("c1",)
    assert ws.pin_example("spam", "c3", by="eng").labels["spam"].examples == ("c1", "c3")
    assert ws.pin_example("spam", "c3", by="eng").version == 2  # pinned already: no change
    assert ws.unpin_example("spam", "c1", by="eng").labels["spam"].examples == ("c3",)
    with pytest.raises(BadInput, match="no item has the id 'nope'"):
        ws.pin_example("spam", "nope", by="eng")
    with pytest.raises(BadInput, match="'c2' is not pinned"):
        ws.unpin_example("spam", "c2", by="eng")
    assert ws.guidelines().version == 3


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"labels": {"eggs": {"definition": "x"}}}, UnknownLabel, "'eggs' is not a label"),
        ({"labels": {"spam": {"colour": "x"}}}, BadInput, "unknown field 'colour'"),
        ({"labels": {"spam": {"definition": 3}}}, BadInput, "spam.definition: expected text"),
        ({"labels": {"spam": {"examples": "c1"}}}, BadInput, "expected a list of item ids"),
        ({"labels": {"spam": {"definition": "x" * 10_001}}}, BadInput, "at most 10,000"),
        ({"title": "x"}, BadInput, "unknown key 'title'"),
        ({"labels": ["spam"]}, BadInput, "'labels' must be a table"),
    ],
)
def test_bad_edits_are_refused_and_change_nothing(ws, changes, error, message):
    ws.edit_guidelines({"labels": {"spam": {"definition": "Ads."}}}, by="eng")
    with pytest.raises(error, match=message):
        ws.edit_guidelines(changes, by="eng")
    assert ws.guidelines().version == 1 and ws.guidelines().labels["spam"].definition == "Ads."


def test_annotators_cannot_edit(ws):
    with pytest.raises(Forbidden, match="editing the guidelines needs the engineer role"):
        ws.edit_guidelines({"overview": "x"}, by="ann")
    with pytest.raises(BadInput, match="version 4 does not exist|no guidelines were written"):
        ws.guidelines(4)


def test_the_cli_round_trips_a_toml_file(ws, tmp_path):
    root = str(ws.root)
    runner = CliRunner()
    done = runner.invoke(
        app,
        [
            "guidelines",
            "edit",
            "-w",
            root,
            "--as",
            "eng",
            "--label",
            "spam",
            "--definition",
            'Ads, "free" offers\nand links.',
            "--note",
            "draft",
        ],
    )
    assert done.exit_code == 0, done.output
    shown = runner.invoke(app, ["guidelines", "show", "-w", root, "--toml"])
    path = tmp_path / "guide.toml"
    path.write_text(
        shown.stdout.replace(
            '[labels.ham]\ndefinition = ""', '[labels.ham]\ndefinition = "Real talk."'
        )
    )
    done = runner.invoke(
        app, ["guidelines", "edit", "-w", root, "--as", "eng", "--file", str(path), "--json"]
    )
    assert done.exit_code == 0, done.output
    found = json.loads(done.stdout)
    assert found["version"] == 2
    assert found["labels"]["spam"]["definition"] == 'Ads, "free" offers\nand links.'
    assert found["labels"]["ham"]["definition"] == "Real talk."
    same = runner.invoke(
        app, ["guidelines", "edit", "-w", root, "--as", "eng", "--file", str(path)]
    )
    assert "No change" in same.stdout
    history = json.loads(runner.invoke(app, ["guidelines", "history", "-w", root, "--json"]).stdout)
    assert [h["changed"] for h in history] == [["ham.definition"], ["spam.definition"]]


def test_cli_mistakes_name_the_option(ws, tmp_path):
    root = str(ws.root)
    runner = CliRunner()
    cases = [
        (["--as", "nobody", "--overview", "x"], "option '--as': no annotator named 'nobody'"),
        (["--as", "eng", "--definition", "x"], "need '--label'"),
        (["--as", "eng"], "nothing to change"),
        (["--as", "eng", "--file", str(tmp_path / "missing.toml")], "missing.toml: cannot read it"),
    ]
    bad = tmp_path / "bad.toml"
    bad.write_text("overview = \n")
    cases.append((["--as", "eng", "--file", str(bad)], "bad.toml: not valid toml"))
    for args, message in cases:
        done = runner.invoke(app, ["guidelines", "edit", "-w", root, *args])
        assert done.exit_code == 2 and message in done.stderr, (args, done.stderr)
    assert ws.guidelines().version == 0
    assert (
        str(tmp_path)
        not in runner.invoke(
            app, ["guidelines", "edit", "-w", root, "--as", "eng", "--file", str(bad)]
        ).stderr
    )


def test_the_toml_file_reads_back_any_label_name(tmp_path):
    import tomllib

    from labeling.annotation.guidelines import Guidelines, LabelGuide
    from labeling.cli.guidelines import as_toml

    names = ["spam", 'a "quoted" label', "ünïcode", "with.dot"]
    found = Guidelines(
        1,
        "eng",
        None,
        "",
        "Line one\nline two",
        {n: LabelGuide(definition=f"about {n}\\", examples=("x1",)) for n in names},
    )
    back = tomllib.loads(as_toml(found))
    assert back["overview"] == "Line one\nline two"
    assert {n: v["definition"] for n, v in back["labels"].items()} == {
        n: f"about {n}\\" for n in names
    }


def test_each_answer_records_the_guidelines_version_on_screen(ws):
    item = ws.next_item("ann")
    assert ws.annotate(item.item_id, "ann", "spam").guidelines_version is None
    ws.edit_guidelines({"labels": {"spam": {"definition": "Ads."}}}, by="eng")
    ws.edit_guidelines({"labels": {"spam": {"definition": "Ads and links."}}}, by="eng")
    item = ws.next_item("ann")
    assert ws.annotate(item.item_id, "ann", "ham").guidelines_version == 2
    item = ws.next_item("ann")
    assert ws.skip(item.item_id, "ann").guidelines_version == 2
