"""The workspace's guidelines (a codebook), versioned: every edit is a new version.

Per label a definition, what to include, what to exclude, and pinned examples (real items, by
external id); plus an overview for the whole task. Versions are numbered from 1 and never
change; version 0 is "nothing written yet". An edit names only what it changes (the rest is
carried over from the newest version); an edit that changes nothing records no version.
Engineers and above edit (the role check is the caller's: labeling.annotation.assist_api).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from labeling.errors import BadInput, UnknownLabel
from labeling.store.models import GuidelineVersion, Item

TEXT_FIELDS = ("definition", "include", "exclude")
MAX_TEXT_CHARS = 10_000
MAX_EXAMPLES = 20
MAX_NOTE_CHARS = 500


@dataclass(frozen=True)
class LabelGuide:
    """What one label means: a definition, include and exclude notes, pinned examples."""

    definition: str = ""
    include: str = ""
    exclude: str = ""
    examples: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "definition": self.definition,
            "include": self.include,
            "exclude": self.exclude,
            "examples": list(self.examples),
        }


@dataclass(frozen=True)
class Guidelines:
    """One version of the guidelines; ``labels`` holds every workspace label, in label order."""

    version: int
    author: str
    created_at: datetime | None
    note: str
    overview: str
    labels: dict[str, LabelGuide] = field(default_factory=dict)

    def content(self) -> dict[str, Any]:
        """What the version says (no author, time or note): the form edits and files take."""
        return {
            "overview": self.overview,
            "labels": {name: guide.as_dict() for name, guide in self.labels.items()},
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "author": self.author,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "note": self.note,
            **self.content(),
        }


def empty(labels: tuple[str, ...]) -> Guidelines:
    """Version 0: no guidelines written yet."""
    return Guidelines(0, "", None, "", "", {name: LabelGuide() for name in labels})


def _from_row(row: GuidelineVersion, labels: tuple[str, ...]) -> Guidelines:
    body = json.loads(row.body)
    stored = body.get("labels", {})
    guides = {}
    for name in labels:  # a label added to the toml later has an empty guide
        entry = stored.get(name, {})
        guides[name] = LabelGuide(
            **{key: str(entry.get(key, "")) for key in TEXT_FIELDS},
            examples=tuple(entry.get("examples", ())),
        )
    return Guidelines(
        version=row.version,
        author=row.author,
        created_at=row.created_at,
        note=row.note,
        overview=str(body.get("overview", "")),
        labels=guides,
    )


def current(session: Session, labels: tuple[str, ...]) -> Guidelines:
    """The newest version (version 0 when none was written)."""
    row = session.exec(
        select(GuidelineVersion).order_by(col(GuidelineVersion.version).desc()).limit(1)
    ).first()
    return empty(labels) if row is None else _from_row(row, labels)


def version(session: Session, labels: tuple[str, ...], number: int) -> Guidelines:
    """Version ``number``; an unknown number is refused, naming the versions there are."""
    if number == 0:
        return empty(labels)
    row = session.exec(select(GuidelineVersion).where(GuidelineVersion.version == number)).first()
    if row is None:
        newest = session.exec(select(func.max(GuidelineVersion.version))).one() or 0
        raise BadInput(
            f"option '--version': guidelines version {number} does not exist (versions 1-{newest})"
            if newest
            else f"option '--version': no guidelines were written yet (asked for {number})"
        )
    return _from_row(row, labels)


def history(session: Session, labels: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every version, newest first: number, author, time, note and what it changed."""
    rows = session.exec(select(GuidelineVersion).order_by(col(GuidelineVersion.version))).all()
    previous = empty(labels)
    found = []
    for row in rows:
        this = _from_row(row, labels)
        found.append(
            {
                "version": this.version,
                "author": this.author,
                "created_at": this.created_at.isoformat() if this.created_at else None,
                "note": this.note,
                "changed": changes_between(previous, this),
            }
        )
        previous = this
    return found[::-1]


def changes_between(old: Guidelines, new: Guidelines) -> list[str]:
    """What differs, as ``overview`` and ``LABEL.FIELD`` names, in label order."""
    changed = ["overview"] if old.overview != new.overview else []
    for name, guide in new.labels.items():
        before = old.labels.get(name, LabelGuide())
        for key in (*TEXT_FIELDS, "examples"):
            if getattr(before, key) != getattr(guide, key):
                changed.append(f"{name}.{key}")
    return changed


def apply_changes(
    session: Session, base: Guidelines, labels: tuple[str, ...], changes: Mapping[str, Any]
) -> Guidelines:
    """``base`` with ``changes`` applied (``{"overview": str, "labels": {LABEL: {FIELD:
    value}}}``, any part left out), every value checked; examples must be existing items."""
    if not isinstance(changes, Mapping):
        raise BadInput(f"guidelines: expected a table of changes, found {type(changes).__name__}")
    unknown = sorted(set(changes) - {"overview", "labels"})
    if unknown:
        raise BadInput(f"guidelines: unknown key {unknown[0]!r}; expected 'overview' and 'labels'")
    overview = base.overview
    if "overview" in changes:
        overview = _text("overview", changes["overview"])
    guides = dict(base.labels)
    given = changes.get("labels", {})
    if not isinstance(given, Mapping):
        raise BadInput(f"guidelines: 'labels' must be a table by label, found {given!r}")
    for name, entry in given.items():
        if name not in labels:
            raise UnknownLabel(
                f"guidelines: {name!r} is not a label of this workspace "
                f"(labels: {', '.join(labels)})"
            )
        guides[name] = _label_changes(session, name, guides[name], entry)
    return replace(base, overview=overview, labels=guides)


def _label_changes(session: Session, name: str, guide: LabelGuide, entry: Any) -> LabelGuide:
    if not isinstance(entry, Mapping):
        raise BadInput(f"guidelines: label {name!r} must be a table of fields, found {entry!r}")
    unknown = sorted(set(entry) - {*TEXT_FIELDS, "examples"})
    if unknown:
        raise BadInput(
            f"guidelines: label {name!r}: unknown field {unknown[0]!r}; expected "
            f"{', '.join(TEXT_FIELDS)} or examples"
        )
    values: dict[str, Any] = {
        key: _text(f"{name}.{key}", entry[key]) for key in TEXT_FIELDS if key in entry
    }
    if "examples" in entry:
        values["examples"] = _examples(session, name, entry["examples"])
    return replace(guide, **values)


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise BadInput(f"guidelines: {where}: expected text, found {type(value).__name__}")
    value = value.strip()
    if len(value) > MAX_TEXT_CHARS:
        raise BadInput(
            f"guidelines: {where}: {len(value):,} characters; at most {MAX_TEXT_CHARS:,}"
        )
    return value


def _examples(session: Session, name: str, value: Any) -> tuple[str, ...]:
    where = f"guidelines: label {name!r}: examples"
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise BadInput(f"{where}: expected a list of item ids, found {value!r}")
    ids = tuple(dict.fromkeys(v.strip() for v in value if v.strip()))
    if len(ids) > MAX_EXAMPLES:
        raise BadInput(f"{where}: {len(ids)} items; pin at most {MAX_EXAMPLES} per label")
    if ids:
        found = set(
            session.exec(select(Item.external_id).where(col(Item.external_id).in_(ids))).all()
        )
        missing = [i for i in ids if i not in found]
        if missing:
            raise BadInput(f"{where}: no item has the id {', '.join(map(repr, missing))}")
    return ids


def record(
    session: Session,
    labels: tuple[str, ...],
    *,
    author: str,
    changes: Mapping[str, Any],
    note: str = "",
) -> Guidelines:
    """Apply ``changes`` to the newest version and store the result as the next version; the
    newest version itself when nothing changed. Two editors at once: the second one's version
    number is taken, and its write is refused with a message to reload (nothing is lost)."""
    note = note.strip()
    if len(note) > MAX_NOTE_CHARS:
        raise BadInput(f"option '--note': {len(note)} characters; at most {MAX_NOTE_CHARS}")
    base = current(session, labels)
    edited = apply_changes(session, base, labels, changes)
    if not changes_between(base, edited):
        return base
    row = GuidelineVersion(
        version=base.version + 1,
        author=author,
        note=note,
        body=json.dumps(edited.content(), ensure_ascii=False, sort_keys=True),
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        raise BadInput(
            f"guidelines: someone saved version {base.version + 1} a moment ago; reload the "
            "guidelines and make the change again"
        ) from exc
    return _from_row(row, labels)


def pin(
    session: Session, labels: tuple[str, ...], *, author: str, label: str, external_id: str
) -> Guidelines:
    """Pin an item as an example of ``label`` (a new version; pinned already: no change)."""
    guide = current(session, labels).labels.get(label)
    if guide is None:
        raise UnknownLabel(f"{label!r} is not a label of this workspace ({', '.join(labels)})")
    examples = [*guide.examples, external_id]
    changes = {"labels": {label: {"examples": examples}}}
    return record(session, labels, author=author, changes=changes, note=f"pinned {external_id}")


def unpin(
    session: Session, labels: tuple[str, ...], *, author: str, label: str, external_id: str
) -> Guidelines:
    """Take a pinned example off ``label`` (a new version)."""
    guide = current(session, labels).labels.get(label)
    if guide is None:
        raise UnknownLabel(f"{label!r} is not a label of this workspace ({', '.join(labels)})")
    if external_id not in guide.examples:
        raise BadInput(f"item {external_id!r} is not pinned as an example of {label!r}")
    examples = [e for e in guide.examples if e != external_id]
    changes = {"labels": {label: {"examples": examples}}}
    return record(session, labels, author=author, changes=changes, note=f"unpinned {external_id}")


def example_texts(session: Session, ids: list[str]) -> dict[str, str]:
    """The texts of pinned examples by external id (an item removed since is left out)."""
    if not ids:
        return {}
    rows = session.exec(
        select(Item.external_id, Item.text).where(col(Item.external_id).in_(ids))
    ).all()
    return {external_id: text for external_id, text in rows}
