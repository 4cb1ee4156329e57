"""The API's labelling endpoints, for a labelling client that is not the browser: the caller's
own queue and answers (any active person).

A client holds a few leased items, as a browser tab of the buffered Label page does, and its
answers go through the same call (:meth:`Workspace.label_batch`): each answer carries the
client's id for it, so a resend after a lost reply is acknowledged and never applied twice;
an answer to an item whose lease ran out and went to someone else is refused, naming the item.
``client`` names the buffer (one per labelling process of a person).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.encoders import jsonable_encoder

from labeling.annotation.buffer import Op
from labeling.annotation.buffer_api import BatchReply, ShownItem
from labeling.annotation.roles import ANNOTATOR
from labeling.errors import BadInput
from labeling.service import schemas
from labeling.service.routes_data import BEARER, Authorization, caller_of, workspace
from labeling.workspace import Workspace

router = APIRouter(tags=["labelling"], dependencies=BEARER)
# The buffer's name in the store: an API client's, never a browser tab's.
TAB_PREFIX = "api:"


def _shown(shown: ShownItem) -> dict[str, Any]:
    item = shown.item
    suggestion = shown.suggestion
    return {
        "id": item.external_id,
        "text": item.text,
        "fields": jsonable_encoder(item.fields),
        "expires_at": item.expires_at.isoformat(),
        "undo": item.is_undo,
        "previous_label": item.previous_label,
        "suggestion": (
            {"label": suggestion.value, "source": suggestion.source}
            if suggestion.value is not None
            else None
        ),
    }


def _reply(reply: BatchReply) -> dict[str, Any]:
    return {
        "items": [_shown(item) for item in reply.items],
        "dropped": [{"id": name, "reason": why} for name, why in reply.dropped],
        "done": reply.done and not reply.items,
        "empty": reply.empty.message if reply.empty is not None else None,
    }


def _checked_label(ws: Workspace, answer: schemas.Answer, at: int) -> str | list[str] | None:
    """The answer's label, checked against the workspace's labels (None: a skip)."""
    where = f"answers[{at}].label"
    if answer.skip:
        if answer.label is not None:
            raise BadInput(f"{where}: a skip carries no label (send label null with skip true)")
        return None
    known = ", ".join(ws.labels)
    if ws.multilabel:
        if not isinstance(answer.label, list):
            raise BadInput(f"{where}: expected a list of label names from {known}")
        unknown = [name for name in answer.label if name not in ws.labels]
        if unknown:
            raise BadInput(f"{where}: {unknown[0]!r} is not a label; expected names from {known}")
        return answer.label
    if not isinstance(answer.label, str) or answer.label not in ws.labels:
        raise BadInput(f"{where}: expected a label name, one of {known}; or skip true")
    return answer.label


@router.get("/queue/next", summary="The caller's next items to label, leased to them")
def queue_next(
    request: Request,
    n: Annotated[int, Query(ge=1, le=21)] = 1,
    client: Annotated[str, Query(pattern=schemas.CLIENT)] = "default",
    authorization: Authorization = None,
) -> dict[str, Any]:
    caller = caller_of(request, authorization, needed=ANNOTATOR, action="labelling")
    reply = workspace(request).label_batch(
        caller.name, tab=TAB_PREFIX + client, ops=[], keep=[], want=n
    )
    return _reply(reply)


@router.post("/answers", summary="Answers (each once, by its id), then the next items")
def post_answers(
    body: schemas.Answers, request: Request, authorization: Authorization = None
) -> dict[str, Any]:
    caller = caller_of(request, authorization, needed=ANNOTATOR, action="labelling")
    ws = workspace(request)
    ops = [
        Op(
            cid=answer.id,
            kind="skip" if answer.skip else "answer",
            item=answer.item,
            label=_checked_label(ws, answer, at),
            ms=answer.ms,
        )
        for at, answer in enumerate(body.answers)
    ]
    reply = ws.label_batch(
        caller.name, tab=TAB_PREFIX + body.client, ops=ops, keep=[], want=body.next
    )
    results = [
        {"id": ack.cid, "ok": ack.ok, "duplicate": ack.dup, "error": ack.error, "item": ack.item}
        for ack in reply.acks
    ]
    return {"results": results, **_reply(reply)}
