"""``POST /label/batch``: the buffered Label page's answers and refills, outside Streamlit.

With ``prefetch`` > 0 the Label page's component (``views/label_buffer.js``) holds a few items
in the browser and sends its operations here in small batches, in the background. A plain HTTP
route costs the server 1-2 ms of CPU per batch, where a Streamlit rerun costs 35-45 ms
(measured: docs/benchmarks.md), and a press never waits for it. The request is authenticated
by the session cookie sign-in sets (:mod:`labeling.ui.web_auth`) and must come from a page of
this server (the same Origin check as the sign-in form). The body and the reply are JSON; the
store side is :mod:`labeling.annotation.buffer`. The protocol, field by field, is in
docs/ui.md ("The batch protocol").
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from labeling.annotation import answers
from labeling.annotation.buffer import KINDS, Op
from labeling.annotation.buffer_api import BatchReply, ShownItem
from labeling.annotation.progress import progress_text
from labeling.annotation.suggestions import Suggestion
from labeling.errors import BadInput, LabelloopError, UnknownAnnotator
from labeling.store import labelsets
from labeling.store.models import SUGGESTION_SOURCES
from labeling.ui import web_auth
from labeling.workspace import Workspace

PATH = "/label/batch"
MAX_BODY = 256 * 1024  # bytes
MAX_OPS = 200
MAX_KEEP = 50
MAX_NOTE = 2000
_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


class BadBatch(BadInput):
    """A request body that does not follow the protocol; the message names the field."""


def _fail(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": message}, status_code=status, headers={"Cache-Control": "no-store"}
    )


async def label_batch(request: Request) -> Response:
    """Apply one batch of a tab's operations and refill its buffer (see the module)."""
    if not web_auth.same_origin(request):
        return _fail(403, "refused: expected a request from this server's own Label page")
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        return _fail(413, f"request body too large: at most {MAX_BODY // 1024} KiB")
    body = await request.body()
    if len(body) > MAX_BODY:
        return _fail(413, f"request body too large: at most {MAX_BODY // 1024} KiB")
    ws = web_auth.served_workspace()
    try:
        found = await run_in_threadpool(
            web_auth.current_session, ws, request.cookies.get(web_auth.COOKIE)
        )
        if found is None:
            return _fail(
                401, "signed out: sign in again; the answers kept in this tab are sent then"
            )
        batch = parse(body, ws)
        one_item_page = ws.config.prefetch <= 0
        if one_item_page:  # set to 0 meanwhile: the answers sent count; the items go back
            batch = {**batch, "want": 0, "reorder": False, "close": True}
        reply = await run_in_threadpool(_run, ws, found.name, batch)
    except BadBatch as exc:
        return _fail(400, str(exc))
    except UnknownAnnotator as exc:
        return _fail(401, f"signed out: {exc}")
    except LabelloopError as exc:
        return _fail(400, str(exc))
    data = to_json(reply, ws)
    if one_item_page:
        data["one_item_page"] = True
    return JSONResponse(data, headers={"Cache-Control": "no-store"})


def _run(ws: Workspace, name: str, batch: dict[str, Any]) -> BatchReply:
    return ws.label_batch(name, **batch)


def parse(body: bytes, ws: Workspace) -> dict[str, Any]:
    """The keyword arguments of :meth:`Workspace.label_batch` from a request body, or
    :class:`BadBatch` naming the first field that is wrong and what it should be."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadBatch(f"request body: expected JSON, found an error at {exc}") from exc
    if not isinstance(data, dict):
        raise BadBatch("request body: expected a JSON object")
    tab = data.get("tab")
    if not isinstance(tab, str) or not _ID.fullmatch(tab):
        raise BadBatch("tab: expected 8-64 letters, digits, - or _")
    raw_ops = data.get("ops", [])
    if not isinstance(raw_ops, list) or len(raw_ops) > MAX_OPS:
        raise BadBatch(f"ops: expected a list of at most {MAX_OPS} operations")
    keep = data.get("keep", [])
    if (
        not isinstance(keep, list)
        or len(keep) > MAX_KEEP
        or not all(isinstance(k, str) for k in keep)
    ):
        raise BadBatch(f"keep: expected a list of at most {MAX_KEEP} item ids")
    want = data.get("want", 0)
    if not isinstance(want, int) or isinstance(want, bool) or not 0 <= want <= 100:
        raise BadBatch("want: expected a whole number from 0 to 100")
    flags = {}
    for key in ("reorder", "hints", "progress"):
        value = data.get(key, False)
        if not isinstance(value, bool):
            raise BadBatch(f"{key}: expected true or false")
        flags[key] = value
    ops = [_op(raw, f"ops[{at}]", ws) for at, raw in enumerate(raw_ops)]
    return {
        "tab": tab,
        "ops": ops,
        "keep": keep,
        "want": want,
        "reorder": flags["reorder"],
        "hints": flags["hints"],
        "counts": flags["progress"],
    }


def _op(raw: Any, where: str, ws: Workspace) -> Op:
    if not isinstance(raw, dict):
        raise BadBatch(f"{where}: expected an object")
    cid, kind = raw.get("cid"), raw.get("op")
    if not isinstance(cid, str) or not _ID.fullmatch(cid):
        raise BadBatch(f"{where}.cid: expected 8-64 letters, digits, - or _")
    if kind not in KINDS:
        raise BadBatch(f"{where}.op: expected one of {', '.join(KINDS)}, found {kind!r}")
    item = raw.get("item")
    about_item = kind not in ("undo", "release")
    if about_item and (not isinstance(item, str) or not item):
        raise BadBatch(f"{where}.item: expected the item's id")
    of = raw.get("of")
    if kind == "undo" and of is not None and (not isinstance(of, str) or not _ID.fullmatch(of)):
        raise BadBatch(f"{where}.of: expected the cid of an answer of this tab, or null")
    ms = raw.get("ms")
    if ms is not None and (not isinstance(ms, int) or isinstance(ms, bool) or ms < 0):
        raise BadBatch(f"{where}.ms: expected a whole number of milliseconds, or null")
    note = raw.get("note", "")
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise BadBatch(f"{where}.note: expected text of at most {MAX_NOTE} characters")
    label = raw.get("label")
    if kind == "answer":
        label = _label(label, f"{where}.label", ws)
    return Op(
        cid=cid,
        kind=kind,
        item=item if about_item else None,
        label=label if kind == "answer" else None,
        ms=ms,
        suggestion=_suggestion(raw.get("suggestion"), f"{where}.suggestion", ws),
        of=of if kind == "undo" else None,
        note=note,
    )


def _label(value: Any, where: str, ws: Workspace) -> str | list[str]:
    if ws.multilabel:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise BadBatch(f"{where}: expected a list of label names (empty: none of them)")
        return value
    if not isinstance(value, str):
        raise BadBatch(f"{where}: expected a label name, one of {', '.join(ws.labels)}")
    return value


def _suggestion(raw: Any, where: str, ws: Workspace) -> Suggestion | None:
    """The guess the tab showed with the answer, as the server sent it (recorded with it)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise BadBatch(f"{where}: expected an object or null")
    source, withheld, value = raw.get("source"), raw.get("withheld", False), raw.get("value")
    if source is not None and source not in SUGGESTION_SOURCES:
        raise BadBatch(f"{where}.source: expected one of {', '.join(SUGGESTION_SOURCES)}")
    if not isinstance(withheld, bool):
        raise BadBatch(f"{where}.withheld: expected true or false")
    if value is not None:
        try:
            value = answers.answer_value(value, ws.labels, ws.multilabel)
            value = answers.checked_value(value, ws.labels, ws.multilabel)
        except LabelloopError as exc:
            raise BadBatch(f"{where}.value: {exc}") from exc
    return Suggestion(value=value, source=source, withheld=withheld)


def _stored(value: str | None, ws: Workspace) -> str | list[str] | None:
    """A stored label or set as the page shows it (a list of names for a set)."""
    if value is None or not ws.multilabel:
        return value
    return labelsets.decode_ordered(value)


def _item(shown: ShownItem, ws: Workspace) -> dict[str, Any]:
    item, guess, hint = shown.item, shown.suggestion, shown.hint
    fields = [
        [name, str(item.fields.get(name))]
        for name in ws.config.display_fields
        if item.fields.get(name) not in (None, "")
    ]
    return {
        "id": item.external_id,
        "text": item.text,
        "fields": fields,
        "suggestion": None
        if guess.source is None
        else {
            "value": _stored(guess.value, ws),
            "source": guess.source,
            "withheld": guess.withheld,
            "confidence": guess.confidence,
        },
        "hint": None
        if hint is None
        else {
            "round": hint.round_id,
            "label": _stored(hint.prediction, ws),
            "confidence": hint.confidence,
        },
        "undo": item.is_undo,
        "previous": _stored(item.previous_label, ws),
    }


def to_json(reply: BatchReply, ws: Workspace) -> dict[str, Any]:
    """The reply's JSON (docs/ui.md, "The batch protocol")."""
    acks = []
    for ack in reply.acks:
        entry: dict[str, Any] = {"cid": ack.cid, "ok": ack.ok}
        if ack.dup:
            entry["dup"] = True
        if ack.error is not None:
            entry["error"] = ack.error
            entry["item"] = ack.item
        acks.append(entry)
    progress = None
    if reply.progress is not None:
        p = reply.progress
        progress = {
            "labelled": p.labelled,
            "pool": p.pool,
            "today": p.today,
            "queue_left": p.queue_left,
            "share": p.labelled / p.pool if p.pool else 0.0,
            "text": progress_text(p),
        }
    return {
        "acks": acks,
        "undone": {cid: _item(shown, ws) for cid, shown in reply.undone.items()},
        "items": [_item(shown, ws) for shown in reply.items],
        "dropped": [{"item": name, "error": why} for name, why in reply.dropped],
        "round": reply.round_id,
        "progress": progress,
        "done": reply.done,
        "empty": None if reply.empty is None else reply.empty.message,
    }


def routes() -> list[Route]:
    return [Route(PATH, label_batch, methods=["POST"])]
