"""The API's data endpoints: items in, items and labels out, predictions, status and rounds
(engineer and above; see labeling.service.app)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Security
from fastapi.encoders import jsonable_encoder
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool

import strategies
from labeling.annotation.roles import ENGINEER
from labeling.data.label_changes import DEFAULT_PAGE, MAX_PAGE
from labeling.errors import BadInput
from labeling.service import schemas
from labeling.service.auth import Caller, require
from labeling.workspace import Workspace

# Declared for OpenAPI (the /docs page's Authorize button); the header is read and checked by
# labeling.service.auth, whose messages say what is wrong.
BEARER = [Security(HTTPBearer(auto_error=False, description="A person's labelloop token."))]
router = APIRouter(tags=["data"], dependencies=BEARER)
Authorization = Annotated[str | None, Header(include_in_schema=False)]


def caller_of(request: Request, authorization: str | None, *, needed: str, action: str) -> Caller:
    """The signed-in caller, refused below ``needed``."""
    caller: Caller = request.app.state.tokens.caller(authorization)
    require(caller, needed, action=action)
    return caller


def workspace(request: Request) -> Workspace:
    ws: Workspace = request.app.state.ws
    return ws


@router.post("/items", summary="Push items (at most 10,000), checked as an import checks a file")
def push_items(
    body: schemas.PushItems, request: Request, authorization: Authorization = None
) -> dict[str, Any]:
    caller_of(request, authorization, needed=ENGINEER, action="pushing items")
    ws = workspace(request)
    background = request.app.state.background
    label_field = body.label_field or ("label" if body.split == "gold" else None)
    report = ws.push_items(
        body.items,
        split=body.split,
        label_field=label_field,
        drift_check=background is None,
        statistics=background is None,
    )
    return {
        "created": report.imported,
        "existing": report.duplicates_in_store,
        "repeated_in_request": report.duplicates_in_file,
        "duplicate_texts": report.duplicate_texts,
        "labels": report.labels_recorded,
        "batch": report.batch_id,
        "drift": report.drift,
    }


@router.get(
    "/items/{item_id:path}", summary="One item: text, fields, answers, weak label, prediction"
)
def get_item(item_id: str, request: Request, authorization: Authorization = None) -> Any:
    caller_of(request, authorization, needed=ENGINEER, action="reading items")
    return jsonable_encoder(workspace(request).item(item_id))


@router.get("/labels", summary="Final labels changed since a cursor, oldest change first")
def get_labels(
    request: Request,
    since: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    authorization: Authorization = None,
) -> dict[str, Any]:
    caller_of(request, authorization, needed=ENGINEER, action="reading labels")
    page = workspace(request).label_changes(since, limit=limit)
    return {"labels": page.labels, "next": page.next}


@router.post("/predict", summary="Labels and probabilities of texts from the promoted round")
async def predict(
    body: schemas.PredictTexts, request: Request, authorization: Authorization = None
) -> dict[str, Any]:
    await run_in_threadpool(caller_of, request, authorization, needed=ENGINEER, action="predicting")
    ws = workspace(request)
    found = await run_in_threadpool(ws.predict_texts, body.texts, round_id=body.round)
    return found.as_json()


@router.get("/status", summary="Counts, quality, coverage, model, drift, stopping")
def get_status(request: Request, authorization: Authorization = None) -> Any:
    caller_of(request, authorization, needed=ENGINEER, action="reading the status")
    return jsonable_encoder(workspace(request).status(metrics=True))


@router.get("/rounds", summary="Every round, oldest first")
def get_rounds(request: Request, authorization: Authorization = None) -> Any:
    caller_of(request, authorization, needed=ENGINEER, action="reading rounds")
    return {"rounds": jsonable_encoder(workspace(request).round_summaries())}


@router.post("/rounds", status_code=202, summary="Queue a retraining round for the worker")
def post_round(
    request: Request, body: schemas.QueueRound | None = None, authorization: Authorization = None
) -> Any:
    caller_of(request, authorization, needed=ENGINEER, action="queueing a round")
    strategy = body.strategy if body is not None else None
    if strategy is not None and strategy not in strategies.STRATEGIES:
        known = ", ".join(sorted(strategies.STRATEGIES))
        raise BadInput(f"strategy: expected one of {known}, found {strategy!r}")
    ws = workspace(request)
    queued = ws.queue_round(trigger="api", strategy=strategy)
    return {"round": queued.id, "status": queued.status, "strategy": queued.strategy}
