"""``labelloop doctor``: the store's checkup.

The database's own integrity check (SQLite), then labelloop's invariants: the store's Alembic
revision is the newest, its tables match the models (Alembic's autogenerate comparison), each
item's label count against its current answers, one current answer per person and item, one
current decision per item, superseded answers pointing at the same item and person. With
``fix``, label counts are repaired from the annotation log; nothing else is changed. The
rounds' checks (a round left running by a dead worker, the promoted model on disk) are
:func:`labeling.rounds.jobs.round_checks`; :meth:`labeling.workspace.Context.doctor` runs both.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, text, update
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from labeling.store import db, housekeeping, label_feed, migrations, search_index
from labeling.store.answers import current, final_labels, refresh_labels
from labeling.store.models import BULK, DECISIONS, Annotation, Annotator, Item


def check(name: str, problems: list[str], fixed: int = 0) -> dict[str, Any]:
    return {"check": name, "ok": not problems, "problems": problems[:20], "count": len(problems),
            "fixed": fixed}  # fmt: skip


def check_store(
    engine: Engine, *, fix: bool = False
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The schema's revisions and the store's checks; with ``fix``, label counts are repaired."""
    checks = []
    if db.is_sqlite(engine):
        with engine.connect() as conn:
            checks.append(_sqlite_integrity(conn))
            checks.append(_foreign_keys(conn))
    head = migrations.head()
    with engine.connect() as conn:
        revision = migrations.current_revision(conn)
        differences = migrations.schema_differences(conn)
        legacy = conn.execute(
            text("SELECT value FROM schemainfo WHERE key = 'schema_version'")
        ).scalar()
    schema = {"revision": revision, "head": head, "schema_version": legacy}
    checks.append(_schema_revision(revision, head))
    checks.append(check("schema matches the models", [_describe(d) for d in differences]))
    log = _read_answer_log(engine)
    fixed = _fix_label_counts(engine, log.wrong) if fix else 0
    checks.append(_label_counts(log, fixed))
    checks.append(_one_answer_per_person(log))
    checks.append(_one_decision_per_item(log))
    checks.append(check("superseded answers", log.chain_problems))
    return schema, checks


def _sqlite_integrity(conn: Connection) -> dict[str, Any]:
    found = [row[0] for row in conn.exec_driver_sql("PRAGMA integrity_check").all()]
    return check("sqlite integrity", [] if found == ["ok"] else found)


def _foreign_keys(conn: Connection) -> dict[str, Any]:
    keys = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    return check(
        "foreign keys",
        [f"{table} row {rowid} points at a missing {parent}" for table, rowid, parent, _ in keys],
    )


def _schema_revision(revision: str | None, head: str | None) -> dict[str, Any]:
    return check(
        "schema revision",
        [] if revision == head else [f"store is at {revision}, labelloop's newest is {head}"],
    )


@dataclass
class _AnswerLog:
    """What the answer checks found, read in one transaction."""

    stored: dict[int, int]  # item -> its stored label count (items with any)
    wrong: dict[int, int]  # item -> the label count its answers say, where that differs
    answers: dict[tuple[int, int], int]  # (item, annotator) -> current answers
    decisions: dict[int, int]  # item -> current decisions
    chain_problems: list[str] = field(default_factory=list)
    external: dict[int, str] = field(default_factory=dict)  # external ids of flagged items
    names: dict[int, str] = field(default_factory=dict)  # annotators' names


def _read_answer_log(engine: Engine) -> _AnswerLog:
    """Label counts against the answers, and every answer's place in its supersede chain."""
    with db.read_session(engine) as session:
        stored, wrong = _count_labels(session)
        log = _AnswerLog(stored, wrong, defaultdict(int), defaultdict(int))
        rows = session.execute(
            select(  # type: ignore[call-overload]
                Annotation.id,
                Annotation.item_id,
                Annotation.annotator_id,
                Annotation.origin,
                Annotation.superseded_by,
            )
        ).all()
        by_id = {row[0]: row for row in rows}
        for annotation_id, item_id, annotator_id, origin, superseded_by in rows:
            if superseded_by is None:
                if origin in DECISIONS:
                    log.decisions[item_id] += 1
                elif origin != BULK:
                    log.answers[(item_id, annotator_id)] += 1
            else:
                log.chain_problems.extend(_chain_problem(by_id, annotation_id))
        # Messages name items by external id and people by name: read them for the few flagged.
        flagged = set(wrong) | {i for (i, _), n in log.answers.items() if n > 1}
        flagged |= {i for i, n in log.decisions.items() if n > 1}
        log.external = dict(
            session.exec(select(Item.id, Item.external_id).where(col(Item.id).in_(flagged))).all()  # type: ignore[arg-type]
        )
        log.names = dict(session.exec(select(Annotator.id, Annotator.name)).all())  # type: ignore[arg-type]
    return log


def _chain_problem(by_id: dict[int, Any], annotation_id: int) -> list[str]:
    """A person's answer is superseded by their own later answer on the item; a decision or a
    bulk label by any later annotation on the item (a newer decision, correction or bulk)."""
    _, item_id, annotator_id, origin, superseded_by = by_id[annotation_id]
    newer = by_id.get(superseded_by)
    if newer is None:
        later = False
    else:
        same_place = newer[1] == item_id and newer[0] > annotation_id
        later = same_place and (newer[2] == annotator_id or origin in (*DECISIONS, BULK))
    if later:
        return []
    return [
        f"annotation {annotation_id} is superseded by {superseded_by}, which is not a later "
        "answer on the same item (of the same person, for a person's own answer)"
    ]


def _count_labels(session: Session) -> tuple[dict[int, int], dict[int, int]]:
    """Stored label counts, and the items whose count differs from their answers'."""
    # Label counts: current, non-skip answers other than a decision (adjudication, correction):
    # people's answers, imported labels and bulk labels.
    counted: dict[int, int] = dict(
        session.exec(
            select(Annotation.item_id, func.count())
            .where(
                current(),
                col(Annotation.label).is_not(None),
                col(Annotation.origin).not_in(DECISIONS),
            )
            .group_by(col(Annotation.item_id))
        ).all()  # type: ignore[arg-type]
    )
    stored: dict[int, int] = dict(
        session.exec(select(Item.id, Item.n_labels).where(Item.n_labels > 0)).all()  # type: ignore[arg-type]
    )
    wrong = {
        item_id: counted.get(item_id, 0)
        for item_id in set(counted) | set(stored)
        if counted.get(item_id, 0) != stored.get(item_id, 0)
    }
    return stored, wrong


def _fix_label_counts(engine: Engine, wrong: dict[int, int]) -> int:
    """Write the answers' label counts over the wrong stored ones; returns how many."""
    if not wrong:
        return 0
    with db.write_session(engine) as session:
        for item_id, n in wrong.items():
            session.execute(update(Item).where(col(Item.id) == item_id).values(n_labels=n))
    return len(wrong)


def _label_counts(log: _AnswerLog, fixed: int) -> dict[str, Any]:
    external = log.external
    return check(
        "label counts",
        [
            f"item {external.get(i, i)!r}: stored {log.stored.get(i, 0)}, answers say {n}"
            for i, n in log.wrong.items()
        ],
        fixed,
    )


def _one_answer_per_person(log: _AnswerLog) -> dict[str, Any]:
    external, names = log.external, log.names
    return check(
        "one current answer per person and item",
        [
            f"item {external.get(i, i)!r}, annotator {names.get(a, a)!r}: {n} current answers"
            for (i, a), n in log.answers.items()
            if n > 1
        ],
    )


def _one_decision_per_item(log: _AnswerLog) -> dict[str, Any]:
    return check(
        "one current decision per item",
        [
            f"item {log.external.get(i, i)!r}: {n} current decisions"
            for i, n in log.decisions.items()
            if n > 1
        ],
    )


def _describe(difference: Any) -> str:
    """One line for one of Alembic's autogenerate differences (a tuple, or a list of them)."""
    if isinstance(difference, list):
        return "; ".join(_describe(part) for part in difference)
    kind, *parts = difference
    action, _, what = kind.partition("_")
    # Alembic names what would make the store equal the models: "add" is what the store lacks.
    state = {"add": "missing", "remove": "unexpected", "modify": "different"}.get(action, action)
    shown = [
        str(getattr(part, "name", None) or part)
        for part in parts
        if part is not None and not isinstance(part, dict)
    ]
    return f"{state} {what}: {' '.join(shown)}"


def derived_checks(
    engine: Engine, labels: tuple[str, ...], *, fix: bool = False
) -> list[dict[str, Any]]:
    """Three things kept in step with the store's rows: each item's label column against its
    answers, the full-text index against the texts, and the feed of label changes against the
    labels. ``fix`` recomputes them. Last, the rows kept past their retention
    (:func:`prune_check`)."""
    with db.read_session(engine) as session:
        found = final_labels(session, labels)
        stored = {
            int(item_id or 0): label
            for item_id, label in session.exec(
                select(Item.id, Item.label).where(col(Item.label).is_not(None))
            ).all()
        }
        wrong = [i for i in set(found) | set(stored) if found.get(i) != stored.get(i)]
        names = dict(
            session.exec(
                select(Item.id, Item.external_id).where(col(Item.id).in_(wrong[:20]))
            ).all()  # type: ignore[arg-type]
        )
    fixed_labels = 0
    if fix and wrong:
        with db.write_session(engine) as session:
            refresh_labels(session, labels, wrong)
        fixed_labels = len(wrong)
    label_check = check(
        "item labels match their answers",
        [
            f"item {names.get(i, i)!r}: stored {stored.get(i)!r}, answers say {found.get(i)!r}"
            for i in wrong
        ],
        fixed_labels,
    )
    with engine.connect() as conn:
        stale = search_index.integrity_problems(conn)
    fixed_index = 0
    if fix and stale:
        with engine.begin() as conn:
            search_index.rebuild(conn)
        fixed_index = stale
    index_check = check(
        "search index matches the texts",
        [f"{stale} item(s) indexed with another text than they hold"] if stale else [],
        fixed_index,
    )
    return [label_check, index_check, feed_check(engine, fix=fix), prune_check(engine, fix=fix)]


def feed_check(engine: Engine, *, fix: bool = False) -> dict[str, Any]:
    """Every labelled pool item is in the feed of label changes (labeling.store.label_feed),
    at a number the counter has handed out; ``fix`` puts the others at its end."""
    with db.read_session(engine) as session:
        last = label_feed.last_number(session)
        missing = session.exec(
            select(Item.id, Item.external_id).where(
                Item.split == "pool",
                col(Item.label).is_not(None),
                (col(Item.label_seq).is_(None)) | (col(Item.label_seq) > last),
            )
        ).all()
    fixed = 0
    if fix and missing:
        with db.write_session(engine) as session:
            label_feed.mark(session, [int(item_id or 0) for item_id, _name in missing])
        fixed = len(missing)
    return check(
        "labels feed holds every label",
        [f"item {name!r}: labelled, not in the feed of label changes" for _id, name in missing],
        fixed,
    )


def prune_check(engine: Engine, *, fix: bool = False) -> dict[str, Any]:
    """No client operation or webhook delivery is kept past its retention
    (labeling.store.housekeeping; ``serve``'s round worker prunes every few minutes); ``fix``
    prunes now."""
    found = housekeeping.due(engine)
    kinds = (
        (found.clientops, "client operation(s) of the Label page"),
        (found.delivered, "delivered webhook delivery(ies)"),
        (found.dead, "dead webhook delivery(ies)"),
    )
    problems = [f"{count:,} {what} past their retention" for count, what in kinds if count]
    fixed = 0
    if fix and problems:
        housekeeping.prune(engine)
        fixed = len(problems)
    return check("old rows pruned", problems, fixed)
