"""The webhooks' outbox: an event's deliveries, written in the transaction of the event itself.

:func:`emit` adds one :class:`~labeling.store.models.Outbox` row per webhook that asked for the
event, in the caller's session: if the event's transaction rolls back, so do its deliveries, and
if it commits, they are there for the sender (:mod:`labeling.service.webhooks`) to POST, however
long the endpoint stays away. Emitting only writes rows, so a dead endpoint never holds up a
round, an import or a bulk action. With no webhook asking for the event nothing is written.

The store does not read ``labelloop.toml``: callers pass the hooks (anything with ``name``,
``url`` and ``events``, such as :class:`labeling.config_tables.WebhookSettings`) and the workspace's
name. Code that holds only the engine (the importer) finds them with :func:`attached`, filled by
:func:`attach` where a workspace is opened for work that emits.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol
from weakref import WeakKeyDictionary

from sqlalchemy import Engine
from sqlmodel import Session

from labeling.store.models import Outbox, utcnow

# Every event matches a hook whose events hold this.
ALL_EVENTS = "*"
# The event `labelloop webhooks test` sends to one hook, whatever its events.
PING = "ping"


class Hook(Protocol):
    """What :func:`emit` reads of a webhook's settings."""

    @property
    def name(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def events(self) -> tuple[str, ...]: ...


def wants(hook: Hook, event: str) -> bool:
    """Whether ``hook`` asked for ``event``."""
    return event in hook.events or ALL_EVENTS in hook.events


def body_of(
    event: str, data: dict[str, Any], *, workspace: str, delivery: str, at: datetime
) -> str:
    """The JSON body of one delivery, exactly as it is stored, signed and sent."""
    document = {
        "id": delivery,
        "event": event,
        "created_at": at.isoformat(),
        "workspace": workspace,
        "data": data,
    }
    return json.dumps(document, ensure_ascii=False, sort_keys=False, default=str)


def emit(
    session: Session,
    hooks: Sequence[Hook],
    event: str,
    data: dict[str, Any],
    *,
    workspace: str,
) -> list[int]:
    """Write ``event`` to the outbox for every hook of ``hooks`` that asked for it, in
    ``session``'s transaction; returns the rows' ids (none: no hook asked, nothing written)."""
    chosen = [hook for hook in hooks if wants(hook, event)]
    if not chosen:
        return []
    now = utcnow()
    rows = [
        Outbox(
            event=event,
            hook=hook.name,
            url=hook.url,
            body=body_of(event, data, workspace=workspace, delivery=str(uuid.uuid4()), at=now),
            created_at=now,
            due_at=now,
        )
        for hook in chosen
    ]
    session.add_all(rows)
    session.flush()
    return [int(row.id) for row in rows if row.id is not None]


# The hooks and workspace name of each engine opened for work that emits (see attach).
_ATTACHED: WeakKeyDictionary[Engine, tuple[tuple[Hook, ...], str]] = WeakKeyDictionary()
_ATTACHED_GUARD = threading.Lock()


def attach(engine: Engine, hooks: Sequence[Hook], *, workspace: str) -> None:
    """Let code that holds only ``engine`` emit to ``hooks`` (the latest call wins)."""
    with _ATTACHED_GUARD:
        _ATTACHED[engine] = (tuple(hooks), workspace)


def attached(engine: Engine) -> tuple[tuple[Hook, ...], str]:
    """The hooks and workspace name :func:`attach` gave ``engine``; none if it was not."""
    with _ATTACHED_GUARD:
        return _ATTACHED.get(engine, ((), ""))


def emit_attached(session: Session, engine: Engine, event: str, data: dict[str, Any]) -> list[int]:
    """:func:`emit` to the hooks attached to ``engine``."""
    hooks, workspace = attached(engine)
    return emit(session, hooks, event, data, workspace=workspace) if hooks else []
