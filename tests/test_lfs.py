"""LFs stored and applied in a workspace: incremental apply, weak labels, analysis, rounds.

Real data: the YouTube spam files, with the example LFs of docs/examples/youtube_lfs.py.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace

import pytest
from sqlmodel import Session, col, func, select
from typer.testing import CliRunner

from labeling import Workspace
from labeling.cli.main import app
from labeling.config import write_config
from labeling.data.search_filters import SearchQuery
from labeling.errors import BadInput
from labeling.store.answers import human_labels
from labeling.store.models import LFVote, WeakLabel
from labeling.weak.apply import BrokenLFs
from labeling.weak.votes import votes as read_votes
from tests.conftest import REPO, YOUTUBE

FILES = sorted(YOUTUBE.glob("Youtube0*.csv"))
EXAMPLE = REPO / "docs" / "examples" / "youtube_lfs.py"
runner = CliRunner()


def _named(source, target):
    """The file with CLASS 0/1 as ham/spam (written to tmp; the data stays outside the repo)."""
    with source.open(newline="", encoding="utf-8") as f_in:
        rows = list(csv.DictReader(f_in))
    with target.open("w", newline="", encoding="utf-8") as f_out:
        writer = csv.DictWriter(f_out, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            row["CLASS"] = "spam" if row["CLASS"].strip() == "1" else "ham"
            writer.writerow(row)
    return target


def _example_rules():
    namespace: dict = {}
    exec(compile(EXAMPLE.read_text(), str(EXAMPLE), "exec"), namespace)
    return namespace["RULES"]


@pytest.fixture
def yt(tmp_path, db_url):
    ws = Workspace.create(tmp_path / "yt", labels=["ham", "spam"], db_url=db_url)
    ws.config = replace(ws.config, gold_rate=0.0)  # the tests label pool items only
    write_config(ws.root, ws.config)
    # The collection as published, repeated comments included.
    common = {"text_field": "CONTENT", "id_field": "COMMENT_ID", "allow_duplicate_texts": True}
    for path in FILES[:3]:
        ws.import_file(path, **common)
    ws.import_file(
        _named(FILES[4], tmp_path / "gold.csv"), label_field="CLASS", split="gold", **common
    )
    shutil.copy(EXAMPLE, ws.lfs_dir / "youtube_lfs.py")
    for spec in _example_rules():
        ws.add_rule(spec)
    yield ws
    ws.close()


def _cli(ws, *args):
    base = ["-w", str(ws.root)] + (["--db", ws.db_url] if "postgresql" in ws.db_url else [])
    return runner.invoke(app, [*args, *base])


def _vote_count(ws) -> int:
    with Session(ws.engine) as session:
        return session.exec(select(func.count()).select_from(LFVote)).one()


def test_apply_is_incremental(yt, tmp_path):
    first = yt.apply_lfs()
    names = {row["lf"] for row in first.lfs}
    assert len(names) == 11 and all(row["rescored"] for row in first.lfs)
    stored = _vote_count(yt)
    assert stored == sum(row["new_votes"] for row in first.lfs) > 0
    # Nothing changed: nothing to do.
    assert yt.apply_lfs().lfs == []
    # New items: every LF runs on those only.
    added = yt.import_file(
        FILES[3], text_field="CONTENT", id_field="COMMENT_ID", allow_duplicate_texts=True
    ).imported
    again = yt.apply_lfs()
    assert {row["rows"] for row in again.lfs} == {added}
    assert not any(r["rescored"] for r in again.lfs)
    # A changed file: its code LFs (whose version covers the whole module, since they may use
    # its helpers) run again on every item; the rules keep their votes.
    path = yt.lfs_dir / "youtube_lfs.py"
    path.write_text(path.read_text().replace("len(words) <= 5", "len(words) <= 4"))
    changed = yt.apply_lfs()
    code = {"short_comment", "fan_praise", "shouting_request", "long_pitch"}
    assert {r["lf"] for r in changed.lfs} == code and all(r["rescored"] for r in changed.lfs)
    assert changed.lfs[0]["rows"] == yt.status()["items"]["total"]
    with Session(yt.engine) as session:
        versions = session.exec(select(LFVote.lf_version).distinct()).all()
    assert len(versions) == 11  # one version per LF, no stale votes left


def test_engines_store_the_same_votes(yt, tmp_path, db_url):
    yt.apply_lfs(engine="local")
    local = read_votes(yt).L
    other = Workspace.create(tmp_path / "yt2", labels=["ham", "spam"], db_url=None)
    for path in FILES[:3]:
        other.import_file(
            path, text_field="CONTENT", id_field="COMMENT_ID", allow_duplicate_texts=True
        )
    other.import_file(
        _named(FILES[4], tmp_path / "gold2.csv"),
        text_field="CONTENT",
        id_field="COMMENT_ID",
        allow_duplicate_texts=True,
        label_field="CLASS",
        split="gold",
    )
    shutil.copy(EXAMPLE, other.lfs_dir / "youtube_lfs.py")
    for spec in _example_rules():
        other.add_rule(spec)
    other.apply_lfs(engine="snorkel")
    assert (local == read_votes(other).L).all()
    other.close()


def test_label_model_weak_labels_and_their_accuracy(yt):
    yt.apply_lfs()
    done = _cli(yt, "lf", "label", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["model"] == "snorkel" and report["lfs"] == 11
    assert 0.5 < report["coverage"] <= 1
    assert report["gold_accuracy"] > 0.8 and report["gold_n"] == 369
    with Session(yt.engine) as session:
        n = session.exec(select(func.count()).select_from(WeakLabel)).one()
        confidences = session.exec(select(WeakLabel.confidence)).all()
    assert n == report["weak_labels"] > 0
    assert all(0.5 <= c <= 1 for c in confidences)


def test_fewer_than_three_lfs_fall_back_to_majority(tmp_path, db_url):
    ws = Workspace.create(tmp_path / "few", labels=["ham", "spam"], db_url=db_url)
    ws.import_file(FILES[0], text_field="CONTENT", id_field="COMMENT_ID")
    ws.add_rule(_example_rules()[0])
    ws.apply_lfs()
    report = ws.fit_weak_labels()
    assert report["model"] == "majority" and "at least 3" in report["message"]
    ws.close()


def test_analysis_counts(yt):
    yt.apply_lfs()
    yt.fit_weak_labels()
    done = _cli(yt, "lf", "analyze", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    by_name = {r["lf"]: r for r in report["lfs"]}
    link = by_name["re_link"]
    assert link["polarity"] == ["spam"] and link["kind"] == "regex"
    assert link["gold_n"] > 0 and link["gold_correct"] <= link["gold_n"]
    assert by_name["short_comment"]["file"] == "youtube_lfs.py"
    totals = report["totals"]
    assert 0 < totals["lfs"] <= 1 and totals["humans"] == 0
    # No human labels: combined is the confident weak labels, a part of what LFs cover.
    assert totals["combined"] == totals["weak"] <= totals["weak_any"] <= totals["lfs"]
    assert _cli(yt, "lf", "analyze").exit_code == 0


def test_lfs_are_not_measured_against_bulk_labels(yt):
    """A bulk batch from a search labels what an LF written from the same search votes on:
    the LF analysis and the label model leave bulk labels out; rounds still train on them."""
    yt.apply_lfs()
    yt.add_user("eng", role="engineer")
    done = yt.bulk_label(SearchQuery(text="subscribe"), label="spam", by="eng", override=True)
    assert done["count"] > 10
    with yt._read() as session:
        trained = human_labels(session, yt.labels)
    assert len(trained) == done["count"]  # rounds' labels include the batch
    assert (read_votes(yt).human >= 0).sum() == 0  # LF analysis's do not
    report = yt.fit_weak_labels()
    assert report["human_n"] == 0 and report["human_accuracy"] is None
    assert all(r["human_n"] == 0 for r in yt.lf_analysis()["lfs"])
    rule = {"name": "kw_subscribe", "kind": "keyword", "label": "spam", "keywords": ["subscribe"]}
    preview = yt.preview_rule(rule)
    assert preview["matches"] >= done["count"] and preview["human_labelled_matches"] == 0


def test_broken_files_and_raising_lfs_are_reported_not_fatal(yt):
    (yt.lfs_dir / "broken.py").write_text("def oops(:\n    pass\n")
    (yt.lfs_dir / "raises.py").write_text(
        "from weak_supervision import ABSTAIN, labeling_function\n\n"
        "@labeling_function()\n"
        "def fragile(row):\n"
        "    if 'a' in row.text:\n"
        "        raise RuntimeError('boom')\n"
        "    return ABSTAIN\n"
    )
    # Without --skip-broken: exit 2 naming the file and line, nothing applied.
    refused = _cli(yt, "lf", "apply")
    assert refused.exit_code == 2, refused.output
    assert "broken.py:1" in refused.stderr and "--skip-broken" in refused.stderr
    assert _vote_count(yt) == 0 and all(not r["applied"] for r in yt.list_lfs())
    with pytest.raises(BrokenLFs, match="broken.py:1"):
        yt.apply_lfs()
    report = yt.apply_lfs(skip_broken=True)
    assert any("broken.py:1" in e and "syntax" in e for e in report.errors)
    fragile = next(r for r in report.lfs if r["lf"] == "fragile")
    assert fragile["faults"] > 0 and "RuntimeError" in fragile["first_fault"]
    assert len(report.lfs) == 12  # the others ran
    listed = json.loads(_cli(yt, "lf", "list", "--json").stdout)
    assert any("broken.py" in e for e in listed["errors"])
    # With --skip-broken the CLI applies the others (now nothing is left) and exits 0.
    skipped = _cli(yt, "lf", "apply", "--skip-broken")
    assert skipped.exit_code == 0, skipped.output
    assert "broken.py:1" in skipped.stderr and "Nothing to apply" in skipped.stdout


def test_lf_list_shows_the_polarity_of_code_lfs_without_a_declared_label(yt):
    yt.apply_lfs()
    # fan_praise returns "ham" without label=: its label column shows what it voted.
    listed = {r["name"]: r for r in yt.list_lfs()}
    assert listed["fan_praise"]["label"] is None
    assert listed["fan_praise"]["polarity"] == ["ham"]
    shown = _cli(yt, "lf", "list")
    assert shown.exit_code == 0, shown.output
    line = next(x for x in shown.stdout.splitlines() if x.startswith("fan_praise "))
    assert line.split()[2] == "ham"


def test_rule_errors_are_clear_and_store_nothing(yt):
    before = len(yt.list_lfs())
    done = _cli(yt, "lf", "add-rule", "r1", "--label", "eggs", "--keywords", "x")
    assert done.exit_code == 2 and "eggs" in done.stderr
    done = _cli(yt, "lf", "add-rule", "r2", "--label", "spam", "--regex", "(a+")
    assert done.exit_code == 2 and "r2" in done.stderr
    done = _cli(yt, "lf", "add-rule", "re_link", "--label", "spam", "--keywords", "x")
    assert done.exit_code == 2 and "exists" in done.stderr
    done = _cli(yt, "lf", "add-rule", "r3", "--label", "spam")
    assert done.exit_code == 2
    assert len(yt.list_lfs()) == before
    with pytest.raises(BadInput):
        yt.set_rule_active("short_comment", False)


def test_add_rule_through_the_cli_and_preview(yt):
    done = _cli(yt, "lf", "add-rule", "kw_psy", "--label", "ham", "--keywords", "psy,gangnam")
    assert done.exit_code == 0, done.output
    assert "matches" in done.stdout
    preview = yt.preview_rule(
        {"kind": "keyword", "name": "x", "label": "ham", "keywords": ["gangnam"]}
    )
    assert preview["matches"] > 0 and len(preview["samples"]) <= 5
    assert all("gangnam" in s.lower() for s in preview["samples"])
    assert _cli(yt, "lf", "disable", "kw_psy").exit_code == 0
    assert not next(r for r in yt.list_lfs() if r["name"] == "kw_psy")["active"]


def test_rounds_train_on_confident_weak_labels(yt):
    # What is checked is the weak labels a round trains on, not the representation: TF-IDF
    # spares embedding every item (test_representations.py tests the `auto` choice).
    yt.config = replace(yt.config, featurizer="tfidf")
    write_config(yt.root, yt.config)
    yt.apply_lfs()
    yt.fit_weak_labels()
    done = yt.retrain()
    assert done.status == "succeeded", done.error
    assert done.n_human == 0 and done.n_weak > 100
    metrics = json.loads(done.metrics)
    assert metrics["gold_accuracy"] > 0.8
    with Session(yt.engine) as session:
        low = session.exec(
            select(func.count()).where(col(WeakLabel.confidence) < yt.config.weak_threshold)
        ).one()
        total = session.exec(select(func.count()).select_from(WeakLabel)).one()
    assert done.n_weak <= total - low


def test_edit_and_delete_rules_through_the_cli(yt):
    yt.apply_lfs()
    yt.fit_weak_labels()
    assert not yt.weak_labels_stale()
    before = {r["name"]: r for r in yt.list_lfs()}["kw_subscribe"]
    # Only --label given: the keywords and the matching options stay.
    done = _cli(yt, "lf", "edit-rule", "kw_subscribe", "--label", "ham")
    assert done.exit_code == 0, done.output
    assert "changed" in done.stdout and "lf apply" in done.stdout
    after = {r["name"]: r for r in yt.list_lfs()}["kw_subscribe"]
    assert after["label"] == "ham" and after["spec"]["keywords"] == before["spec"]["keywords"]
    assert after["spec"]["whole_word"] == before["spec"]["whole_word"]
    assert not after["applied"] and after["votes"] == 0  # the old version's votes stop counting
    assert "kw_subscribe" not in read_votes(yt).names
    assert yt.weak_labels_stale()
    # The next apply re-applies it to every item, as a changed version.
    again = {r["lf"]: r for r in yt.apply_lfs().lfs}
    assert again["kw_subscribe"]["rescored"]
    assert again["kw_subscribe"]["rows"] == yt.status()["items"]["total"]
    assert again["kw_subscribe"]["new_votes"] == before["votes"]  # same matches, other label
    # An edit to a regex, and the same edit again (no change).
    done = _cli(yt, "lf", "edit-rule", "kw_subscribe", "--regex", "sub(scribe)?", "--ignore-case")
    assert done.exit_code == 0 and "changed" in done.stdout, done.output
    done = _cli(yt, "lf", "edit-rule", "kw_subscribe", "--regex", "sub(scribe)?")
    assert done.exit_code == 0 and "unchanged" in done.stdout, done.output
    # Bad edits: exit 2, rule unchanged.
    spec = yt.rule_spec("kw_subscribe")
    done = _cli(yt, "lf", "edit-rule", "kw_subscribe", "--label", "eggs")
    assert done.exit_code == 2 and "eggs" in done.stderr
    done = _cli(yt, "lf", "edit-rule", "kw_subscribe", "--keywords", "a", "--regex", "b")
    assert done.exit_code == 2 and "exactly one" in done.stderr
    assert yt.rule_spec("kw_subscribe") == spec
    # Delete: the rule and its votes go; code LFs are refused with a pointer to their file.
    yt.apply_lfs()
    yt.fit_weak_labels()
    votes = {r["name"]: r for r in yt.list_lfs()}["re_link"]["votes"]
    done = _cli(yt, "lf", "delete", "re_link")
    assert done.exit_code == 0, done.output
    assert f"its {votes:,} votes" in done.stdout and "lf label" in done.stdout
    assert "re_link" not in {r["name"] for r in yt.list_lfs()}
    with Session(yt.engine) as session:
        lf_ids = set(session.exec(select(LFVote.lf_id).distinct()).all())
    assert len(lf_ids) == len(yt.list_lfs())
    assert yt.weak_labels_stale()
    for command in (("delete",), ("edit-rule",)):
        done = _cli(yt, "lf", *command, "short_comment")
        assert done.exit_code == 2 and "youtube_lfs.py" in done.stderr, done.output
        done = _cli(yt, "lf", *command, "nope")
        assert done.exit_code == 2 and "no LF named 'nope'" in done.stderr
    assert "short_comment" in {r["name"] for r in yt.list_lfs()}
