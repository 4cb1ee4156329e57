"""Stored LF votes always equal a from-scratch apply, whatever happened before (issue 18, #1).

Hypothesis runs random sequences of imports, rule adds, edits, switches and deletes, LF file
edits and applies on a real store (a SQLite file, a PostgreSQL database). After every step:

* each LF whose votes are applied (``applied_version == version``) has, on the items up to its
  ``applied_through``, exactly the votes a fresh apply of it gives, and no vote above;
* after an apply, those LFs are exactly the active ones and cover every item.

The oracle is independent of the store: the test's own record of the rules and the LF file,
applied with :func:`weak_supervision.apply_lfs` to every imported row.
"""

from __future__ import annotations

import csv
import itertools
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlmodel import Session, select
from typer.testing import CliRunner

from labeling import Workspace
from labeling.cli.main import app
from labeling.store.models import Item, LabelingFunction, LFVote
from labeling.weak.votes import votes as read_votes
from tests.conftest import REPO
from weak_supervision import apply_lfs, load_lf_dir, rule_from_spec

LABELS = ["billing", "technical", "shipping", "account", "feedback"]
WORDS = ["refund", "charged", "invoice", "password", "order", "app", "crash", "thanks", "the"]
PATTERNS = [r"refund|charg", r"\border\b", r"pass(word)?", r"[0-9]+", r"^I"]
RULE_NAMES = ["r0", "r1", "r2"]

# The LF file's versions: each a different set of code LFs (one faults on some rows).
CODE_FILES = {
    "short8": (
        "from weak_supervision import ABSTAIN, labeling_function\n\n"
        "@labeling_function()\n"
        "def short(row):\n"
        "    return 'feedback' if len(row.text.split()) <= 8 else ABSTAIN\n"
    ),
    "short12": (
        "from weak_supervision import ABSTAIN, labeling_function\n\n"
        "@labeling_function()\n"
        "def short(row):\n"
        "    return 'feedback' if len(row.text.split()) <= 12 else ABSTAIN\n"
    ),
    "fragile": (
        "from weak_supervision import ABSTAIN, labeling_function\n\n"
        "@labeling_function(label='technical')\n"
        "def fragile(row):\n"
        "    if ' the ' in row.text:\n"
        "        raise ValueError('no the')\n"
        "    return 'app' in row.text.lower()\n\n"
        "@labeling_function()\n"
        "def by_channel(row):\n"
        "    return 'account' if row['channel'] == 'email' else ABSTAIN\n"
    ),
}


def _demo_rows(n: int) -> list[dict[str, str]]:
    """The first ``n`` demo rows with distinct ids and texts."""
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    with (REPO / "datasets" / "demo" / "pool.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["id"] in seen or row["text"] in seen:
                continue
            seen.update((row["id"], row["text"]))
            rows.append(row)
            if len(rows) == n:
                break
    return rows


ROWS = _demo_rows(90)

rule_specs = st.one_of(
    st.fixed_dictionaries(
        {
            "kind": st.just("keyword"),
            "label": st.sampled_from(LABELS),
            "keywords": st.lists(st.sampled_from(WORDS), min_size=1, max_size=2, unique=True),
            "case_sensitive": st.booleans(),
            "whole_word": st.booleans(),
        }
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("regex"),
            "label": st.sampled_from(LABELS),
            "pattern": st.sampled_from(PATTERNS),
            "case_sensitive": st.booleans(),
        }
    ),
)
# Multi-label workspaces: rules may vote their label absent, and a code LF returns absent().
ml_rule_specs = st.tuples(rule_specs, st.booleans()).map(
    lambda pair: {**pair[0], "absent": True} if pair[1] else pair[0]
)
ML_CODE_FILES = {
    **CODE_FILES,
    "absent": (
        "from weak_supervision import ABSTAIN, absent, labeling_function\n\n"
        "@labeling_function()\n"
        "def not_billing(row):\n"
        "    if 'order' in row.text.lower():\n"
        "        return absent('billing')\n"
        "    return 'feedback' if len(row.text.split()) <= 8 else ABSTAIN\n"
    ),
}
names = st.sampled_from(RULE_NAMES)


def _steps(specs: Any, files: dict[str, str]) -> Any:
    return st.one_of(
        st.tuples(st.just("import"), st.integers(1, 25)),
        st.tuples(st.just("add"), names, specs),
        st.tuples(st.just("edit"), names, specs),
        st.tuples(st.just("switch"), names, st.booleans()),
        st.tuples(st.just("delete"), names),
        st.tuples(st.just("lf_file"), st.sampled_from([None, *files])),
        st.tuples(st.just("apply"), st.sampled_from(["local", "local", "snorkel"])),
    )


steps = _steps(rule_specs, CODE_FILES)
ml_steps = _steps(ml_rule_specs, ML_CODE_FILES)

_databases = itertools.count()


class Model:
    """What the store should hold, kept by the test: rows imported, rules, the LF file."""

    def __init__(self) -> None:
        self.imported = 0
        self.rules: dict[str, tuple[dict[str, Any], bool]] = {}  # name -> (spec, active)
        self.applied_code = Path()  # a folder holding the LF file as it was at the last apply


def _store(ws: Workspace) -> tuple[list[str], dict[str, tuple[str, int]], Any]:
    """External ids in item order, each LF's (applied state, applied_through), the matrix."""
    with Session(ws.engine) as session:
        external = list(session.exec(select(Item.external_id).order_by(Item.id)).all())
        ids = list(session.exec(select(Item.id).order_by(Item.id)).all())
        through = {
            r.name: (r.applied_version == r.version, r.applied_through)
            for r in session.exec(select(LabelingFunction)).all()
        }
    votes = read_votes(ws)
    assert list(votes.item_ids) == ids
    return external, through, votes


def _oracle(model: Model, names: list[str]) -> np.ndarray:
    """A fresh apply of the LFs called ``names`` to every imported row (code LFs as they were
    in the LF file at the last apply: the store records a file's change when it applies)."""
    code = {lf.name: lf for lf in load_lf_dir(model.applied_code, LABELS).lfs}
    bound = [
        code[n] if n in code else rule_from_spec({**model.rules[n][0], "name": n}).bind(LABELS)
        for n in names
    ]
    rows = ROWS[: model.imported]
    frame_rows = [{"channel": r["channel"], "text": r["text"]} for r in rows]
    frame = pd.DataFrame.from_records(frame_rows) if frame_rows else pd.DataFrame({"text": []})
    if not bound:
        return np.full((len(rows), 0), -1, dtype=np.int64)
    return apply_lfs(bound, frame, engine="local").L


def _check(ws: Workspace, model: Model, *, after_apply: bool, code_names: set[str]) -> None:
    external, through, votes = _store(ws)
    assert external == [r["id"] for r in ROWS[: model.imported]]
    expected = _oracle(model, votes.names)
    item_ids = np.asarray(votes.item_ids)
    for j, name in enumerate(votes.names):
        applied, upto = through[name]
        assert applied
        covered = item_ids <= upto
        want = np.where(covered, expected[:, j], -1)
        assert (votes.L[:, j] == want).all(), (
            f"{name}: stored votes differ from a fresh apply on "
            f"{[external[i] for i in np.flatnonzero(votes.L[:, j] != want)][:5]}"
        )
    if after_apply:
        active = {n for n, (_spec, on) in model.rules.items() if on} | code_names
        assert set(votes.names) == active
        assert (expected == votes.L).all()


def _applied(ws: Workspace, model: Model) -> set[str]:
    """Record the LF file as applied; the names of its code LFs."""
    (model.applied_code / "code.py").unlink(missing_ok=True)
    if (ws.lfs_dir / "code.py").exists():
        (model.applied_code / "code.py").write_text((ws.lfs_dir / "code.py").read_text())
    return {lf.name for lf in load_lf_dir(model.applied_code, LABELS).lfs}


def _run(
    db_url: str | None,
    directory: Path,
    sequence: list[tuple[Any, ...]],
    task: str = "single-label",
) -> None:
    ws = Workspace.create(directory / "ws", labels=LABELS, db_url=db_url, task=task)
    files = ML_CODE_FILES if task == "multi-label" else CODE_FILES
    model = Model()
    model.applied_code = directory / "applied"
    model.applied_code.mkdir()
    code_names: set[str] = set()
    try:
        for number, step in enumerate(sequence):
            kind = step[0]
            if kind == "import":
                rows = ROWS[model.imported : model.imported + step[1]]
                if not rows:
                    continue
                path = directory / f"batch{number}.csv"
                with path.open("w", newline="", encoding="utf-8") as f:
                    writer = csv.DictWriter(f, fieldnames=["id", "text", "channel"])
                    writer.writeheader()
                    writer.writerows(rows)
                ws.import_file(path, text_field="text", id_field="id")
                model.imported += len(rows)
            elif kind == "add" and step[1] not in model.rules:
                ws.add_rule({**step[2], "name": step[1]})
                model.rules[step[1]] = (step[2], True)
            elif kind == "edit" and step[1] in model.rules:
                ws.edit_rule(step[1], step[2])
                model.rules[step[1]] = (step[2], model.rules[step[1]][1])
            elif kind == "switch" and step[1] in model.rules:
                ws.set_rule_active(step[1], step[2])
                model.rules[step[1]] = (model.rules[step[1]][0], step[2])
            elif kind == "delete" and step[1] in model.rules:
                ws.delete_rule(step[1])
                del model.rules[step[1]]
            elif kind == "lf_file":
                path = ws.lfs_dir / "code.py"
                if step[1] is None:
                    path.unlink(missing_ok=True)
                else:
                    path.write_text(files[step[1]])
            elif kind == "apply":
                report = ws.apply_lfs(engine=step[1])
                assert report.errors == []
                code_names = _applied(ws, model)
            _check(ws, model, after_apply=kind == "apply", code_names=code_names)
        ws.apply_lfs()
        code_names = _applied(ws, model)
        _check(ws, model, after_apply=True, code_names=code_names)
    finally:
        ws.close()


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=st.lists(steps, min_size=3, max_size=12))
def test_stored_votes_always_equal_a_fresh_apply(backend, request, sequence):
    server = request.getfixturevalue("postgres_server") if backend == "postgresql" else None
    db_url = None if server is None else server.create_database(f"prop{next(_databases)}")
    with tempfile.TemporaryDirectory() as directory:
        _run(db_url, Path(directory), [("import", 20), ("add", "r0", _REFUND), *sequence])


_REFUND = {"kind": "keyword", "label": "billing", "keywords": ["refund", "charged", "invoice"]}
_NOT_APP = {"kind": "regex", "label": "technical", "pattern": "order", "absent": True}


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=st.lists(ml_steps, min_size=3, max_size=12))
def test_stored_present_and_absent_votes_always_equal_a_fresh_apply(backend, request, sequence):
    """The same walk in a multi-label workspace, where rules and a code LF also vote absent."""
    server = request.getfixturevalue("postgres_server") if backend == "postgresql" else None
    db_url = None if server is None else server.create_database(f"propml{next(_databases)}")
    start = [("import", 20), ("add", "r0", _REFUND), ("add", "r1", _NOT_APP)]
    with tempfile.TemporaryDirectory() as directory:
        _run(db_url, Path(directory), [*start, *sequence], task="multi-label")


@pytest.mark.parametrize("engine", ["local", "snorkel"])
def test_reapplying_after_an_import_keeps_the_earlier_votes(tmp_path, db_url, engine):
    """The walk of issue 18: 500 demo rows, a refund rule, apply, 20 more rows, apply again."""
    rows = _demo_rows(520)
    first, more = tmp_path / "first.csv", tmp_path / "more.csv"
    for path, part in ((first, rows[:500]), (more, rows[500:])):
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["id", "text", "channel"])
            writer.writeheader()
            writer.writerows(part)
    ws = Workspace.create(tmp_path / "ws", labels=LABELS, db_url=db_url)
    ws.import_file(first, text_field="text", id_field="id")
    ws.add_rule({**_REFUND, "name": "kw_refund"})
    before = ws.apply_lfs(engine=engine).lfs[0]["new_votes"]
    assert before > 50
    ws.import_file(more, text_field="text", id_field="id")
    again = ws.apply_lfs(engine=engine).lfs[0]
    assert again["rows"] == 20
    listed = {r["name"]: r for r in ws.list_lfs()}
    assert listed["kw_refund"]["votes"] == before + again["new_votes"]
    assert ws.apply_lfs(engine=engine).lfs == []
    ws.close()


def test_apply_all_restores_votes_an_older_labelloop_lost(tmp_path, db_url):
    """A store where an LF's earlier votes were deleted (labelloop 0.1.0's re-apply after an
    import): a plain apply finds nothing to do; `lf apply --all` brings the votes back."""
    rows = ROWS[:60]
    path = tmp_path / "rows.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "text", "channel"])
        writer.writeheader()
        writer.writerows(rows)
    ws = Workspace.create(tmp_path / "ws", labels=LABELS, db_url=db_url)
    ws.import_file(path, text_field="text", id_field="id")
    ws.add_rule({**_REFUND, "name": "kw_refund", "keywords": ["the"]})
    stored = ws.apply_lfs().lfs[0]["new_votes"]
    assert stored > 0
    with Session(ws.engine) as session:
        session.execute(delete(LFVote))
        session.commit()
    assert ws.apply_lfs().lfs == []
    base = ["-w", str(ws.root)] + (["--db", ws.db_url] if db_url else [])
    done = CliRunner().invoke(app, ["lf", "apply", "--all", "--json", *base])
    assert done.exit_code == 0, done.output
    (row,) = json.loads(done.stdout)["lfs"]
    assert row["rescored"] and row["new_votes"] == stored
    assert ws.list_lfs()[0]["votes"] == stored
    ws.close()
