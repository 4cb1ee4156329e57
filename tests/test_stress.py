"""Concurrency stress: 16 annotator processes label at once through the service layer.

Each annotator is a separate process (``tests/labeller.py``) signed in with its own token,
calling what the Label page calls (claim, answer, now and then skip and undo) until it holds
its quota of labels. On SQLite and PostgreSQL (``--backend``), with overlap 1 and 2, the
store must then hold exactly what the annotators were told was saved: no lost answer, no
extra one, no item labelled by more people than the overlap, exact counts, and no "database
is locked" (or any other error) ever reaching an annotator.

Labels per annotator: ``LABELLOOP_STRESS_LABELS`` (default 1,000: 16,000 labels a case, about
1.3 minutes a case on SQLite and 2 on PostgreSQL on 2 cores; 2,000, the default until the
suite neared CI's time limit, takes twice as long; a smaller number for a quick run).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from sqlmodel import Session, col, func, select

from labeling import Workspace
from labeling.config import write_config
from labeling.store.models import Annotation, Annotator, Item, Lease

REPO = Path(__file__).resolve().parents[1]
ANNOTATORS = 16
LABELS_EACH = int(os.environ.get("LABELLOOP_STRESS_LABELS", "1000"))
LABELS = ("a", "b", "c")


def labeller_env() -> dict[str, str]:
    """The environment of a labeller process: it imports this checkout's code."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def start_labeller(
    ws: Workspace, *, token: str, labels: int, log: Path, seed: int, start_file: Path | None
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "tests.labeller", "-w", str(ws.root), "--token", token]
    command += ["--labels", str(labels), "--log", str(log), "--seed", str(seed)]
    if start_file is not None:
        command += ["--start-file", str(start_file)]
    if not ws.db_url.startswith("sqlite"):
        command += ["--db", ws.db_url]
    stderr = log.with_suffix(".stderr").open("wb")
    try:
        return subprocess.Popen(command, cwd=REPO, env=labeller_env(), stdout=stderr, stderr=stderr)
    finally:
        stderr.close()


@dataclass
class LabellerLog:
    """What one annotator was told: every acknowledged answer, in order."""

    answers: list[tuple[int, str | None]] = field(default_factory=list)
    undone: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    ready: bool = False
    done: bool = False
    empty: str | None = None

    @property
    def current(self) -> dict[int, str | None]:
        """Item -> the last answer acknowledged for it (None: a skip)."""
        return dict(self.answers)

    @classmethod
    def read(cls, path: Path) -> LabellerLog:
        found = cls()
        if not path.exists():
            return found
        for line in path.read_text(encoding="utf-8").splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "label":
                item, label = rest.split(" ", 1)
                found.answers.append((int(item), label))
            elif kind == "skip":
                found.answers.append((int(rest), None))
            elif kind == "undo":
                found.undone.add(int(rest))
            elif kind == "error":
                found.errors.append(rest)
            elif kind == "ready":
                found.ready = True
            elif kind == "done":
                found.done = True
            elif kind == "empty":
                found.empty = rest
            elif line:
                raise AssertionError(f"{path.name}: unexpected line {line!r}")
        return found


def make_pool(ws: Workspace, tmp_path: Path, n: int) -> None:
    path = tmp_path / "pool.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "text"])
        for k in range(n):
            writer.writerow(
                [f"s{k}", f"item {k} of the stress pool, word{k % 97} and word{k % 89}"]
            )
    ws.import_file(path, id_field="id")


def store_answers(ws: Workspace) -> list[tuple[int, int, str | None, int | None]]:
    """Every human answer in the log: (annotator id, item id, label, superseded_by)."""
    with Session(ws.engine) as session:
        return list(
            session.exec(
                select(
                    Annotation.annotator_id,
                    Annotation.item_id,
                    Annotation.label,
                    Annotation.superseded_by,
                ).where(Annotation.origin == "human")
            ).all()
        )


def assert_store_matches(
    ws: Workspace, logs: dict[str, LabellerLog], *, overlap: int, exact: bool
) -> dict[str, int]:
    """The store holds every acknowledged answer as the annotator's current one.

    ``exact``: nobody was killed, so the log has no answer the annotator did not hear about
    either (a killed process may have had one saved that it never heard back about).
    """
    with Session(ws.engine) as session:
        ids = dict(session.exec(select(Annotator.name, Annotator.id)).all())
        n_labels = dict(session.exec(select(Item.id, Item.n_labels)).all())
    rows = store_answers(ws)
    by_annotator: dict[int, list[tuple[int, str | None, int | None]]] = defaultdict(list)
    for annotator_id, item_id, label, superseded_by in rows:
        by_annotator[annotator_id].append((item_id, label, superseded_by))
    labels_per_item: Counter[int] = Counter()
    for name, log in logs.items():
        mine = by_annotator[ids[name]]
        current = {item: label for item, label, newer in mine if newer is None}
        assert len(current) == sum(1 for _i, _l, newer in mine if newer is None), (
            f"{name}: two current answers on one item"
        )
        acknowledged = log.current
        if exact:
            assert len(mine) == len(log.answers), f"{name}: log rows differ from acknowledgements"
            assert current == acknowledged, f"{name}: the store's current answers differ"
        else:
            missing = {i: lab for i, lab in acknowledged.items() if current.get(i, "?") != lab}
            # Only the one answer in flight at the kill may have replaced an acknowledged one.
            assert len(missing) <= 1 and len(mine) - len(log.answers) in (0, 1), (
                f"{name}: acknowledged answers missing from the store: {missing}"
            )
        # An item comes back to the same person only through undo.
        served = Counter(item for item, _label in log.answers)
        again = {item for item, times in served.items() if times > 1}
        assert again <= log.undone, f"{name}: items served twice without undo: {again - log.undone}"
        labels_per_item.update(item for item, label in current.items() if label is not None)
    over = {item: n for item, n in labels_per_item.items() if n > overlap}
    assert not over, f"items labelled by more than {overlap} annotators: {over}"
    wrong = {
        item: (n_labels[item], n) for item, n in labels_per_item.items() if n_labels[item] != n
    }
    assert not wrong, f"item label counts differ from the answers (stored, answers): {wrong}"
    assert sum(n_labels.values()) == sum(labels_per_item.values())
    return {"answers": len(rows), "labels": sum(labels_per_item.values())}


def assert_doctor_clean(ws: Workspace) -> None:
    found = ws.doctor()
    failing = [c for c in found["checks"] if not c["ok"]]
    assert found["ok"], f"labelloop doctor: {failing}"


@pytest.mark.parametrize("overlap", [1, 2])
def test_sixteen_annotators_label_at_once_and_nothing_is_lost(tmp_path, db_url, overlap):
    ws = Workspace.create(tmp_path / "ws", labels=list(LABELS), db_url=db_url)
    ws.config = replace(ws.config, overlap=overlap, gold_rate=0.0)
    write_config(ws.root, ws.config)
    # Room for every quota: skipped items, held items and undo leave some places unused.
    pool = ANNOTATORS * LABELS_EACH * 11 // (10 * overlap) + 200
    make_pool(ws, tmp_path, pool)
    # The queue in its working state: a promoted round's order (a cold-start round here).
    assert ws.retrain().promoted
    tokens = {f"ann{k:02d}": ws.add_user(f"ann{k:02d}")[1] for k in range(ANNOTATORS)}
    go = tmp_path / "go"
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    processes = {
        name: start_labeller(
            ws,
            token=token,
            labels=LABELS_EACH,
            log=logs_dir / f"{name}.log",
            seed=k,
            start_file=go,
        )  # fmt: skip
        for k, (name, token) in enumerate(tokens.items())
    }
    try:
        deadline = time.monotonic() + 300
        while not all(LabellerLog.read(logs_dir / f"{n}.log").ready for n in processes):
            assert all(p.poll() is None for p in processes.values()), "a labeller stopped early"
            assert time.monotonic() < deadline, "the labellers did not sign in"
            time.sleep(0.1)
        started = time.monotonic()
        go.touch()
        for process in processes.values():
            process.wait(timeout=3600)
        seconds = time.monotonic() - started
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    logs = {name: LabellerLog.read(logs_dir / f"{name}.log") for name in processes}
    for name, log in logs.items():
        stderr = (logs_dir / f"{name}.stderr").read_text(encoding="utf-8", errors="replace")
        assert "database is locked" not in stderr and "database is locked" not in str(log.errors)
        assert not log.errors, f"{name}: {log.errors}\n{stderr[-3000:]}"
        assert processes[name].returncode == 0, f"{name}: exit {processes[name].returncode}"
        assert log.empty is None, f"{name}: the queue ran dry ({log.empty})"
        assert log.done
        quota = sum(1 for label in log.current.values() if label is not None)
        assert quota == LABELS_EACH, f"{name}: {quota} labels"
    counts = assert_store_matches(ws, logs, overlap=overlap, exact=True)
    assert counts["labels"] == ANNOTATORS * LABELS_EACH
    with Session(ws.engine) as session:
        # Everyone signed out at the end, handing back the item they held.
        assert session.exec(select(func.count()).select_from(Lease)).one() == 0
        closed = session.exec(
            select(func.count()).where(Item.split == "pool", col(Item.n_labels) >= overlap)
        ).one()
    assert_doctor_clean(ws)
    print(
        f"\n{ws.engine.dialect.name}, overlap {overlap}: {ANNOTATORS} annotators x "
        f"{LABELS_EACH} labels = {counts['labels']} labels ({counts['answers']} answers with "
        f"skips and re-answers, {closed} items closed) in {seconds:.1f} s, "
        f"{counts['labels'] / seconds:.0f} labels/s"
    )
    ws.close()
