"""The HTTP API (``labelloop api``, and beside the UI under ``labelloop serve``): FastAPI over
one :class:`~labeling.workspace.Workspace`.

Every request carries ``Authorization: Bearer <token>`` (labeling.service.auth); items, labels,
predictions, status and rounds need the role engineer or above, the queue and answers any
active person, for their own queue. Bodies are capped (:data:`schemas.MAX_BODY` bytes and a
number of items per request); a body that does not fit gets a 400 naming the field. The
endpoints, their JSON and their errors are in docs/api.md; OpenAPI is served at ``/docs``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from labeling.errors import BadInput, Forbidden, LabelloopError, UnknownItem
from labeling.rounds.predict import NoModel, RoundNotFound
from labeling.service import routes_data, routes_queue, schemas
from labeling.service.auth import Tokens, Unauthorized
from labeling.service.background import Background
from labeling.workspace import Workspace

# Replies are never cached: a middleware sets this on every reply of the app, and an error
# reply carries it itself, because BodyLimit's 413 is sent outside the app's middleware.
_NO_STORE = {"Cache-Control": "no-store"}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": message}, status_code=status, headers={**_NO_STORE, **(headers or {})}
    )


def _field(location: tuple[Any, ...]) -> str:
    """``("body", "items", 3, "text")`` -> ``items[3].text``."""
    out = ""
    for part in location:
        if part in ("body", "query", "path"):
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _validation_message(exc: RequestValidationError) -> str:
    problems = []
    for error in exc.errors()[:5]:
        where = _field(tuple(error.get("loc", ())))
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    more = len(exc.errors()) - 5
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


class BodyLimit:
    """Refuse a request body over ``limit`` bytes with 413, whether it says its length or is
    sent in chunks, before the endpoint reads it whole."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _error(413, self._message())(scope, receive, send)
            return
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await _error(413, self._message())(scope, receive, send)

    def _message(self) -> str:
        return f"request body too large: at most {self.limit // (1024 * 1024)} MiB"


class _TooLarge(Exception):
    pass


def _docs_page(api: FastAPI) -> None:
    """``/docs``: Swagger UI from files shipped in a package (fastapi-offline's), not from a CDN:
    the page works on a machine without internet."""
    static = Path(fastapi_offline.__file__).parent / "static"
    api.mount("/docs-static", StaticFiles(directory=str(static)), name="docs-static")

    @api.get("/docs", include_in_schema=False)
    async def _docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="labelloop API",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon.png",
        )


def create_app(ws: Workspace, *, background: Background | None = None) -> Any:
    """The API over ``ws``; ``background`` runs the drift checks of pushed items (None: each
    push is checked before its reply, as an import is)."""
    api = FastAPI(
        title="labelloop",
        summary="Push items, follow labels, predict, run rounds and label over HTTP.",
        version="1",
        docs_url=None,
        redoc_url=None,
    )
    _docs_page(api)
    api.state.ws = ws
    api.state.tokens = Tokens(ws)
    api.state.background = background
    api.include_router(routes_data.router)
    api.include_router(routes_queue.router)

    @api.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, _validation_message(exc))

    @api.exception_handler(Unauthorized)
    async def _unauthorized(_request: Request, exc: Unauthorized) -> JSONResponse:
        return _error(401, str(exc), {"WWW-Authenticate": "Bearer"})

    @api.exception_handler(LabelloopError)
    async def _refused(_request: Request, exc: LabelloopError) -> JSONResponse:
        if isinstance(exc, Forbidden):
            return _error(403, str(exc))
        if isinstance(exc, UnknownItem | RoundNotFound):
            return _error(404, str(exc))
        if isinstance(exc, NoModel):
            return _error(409, str(exc))
        if isinstance(exc, BadInput):
            return _error(400, str(exc))
        return _error(503, f"the store could not answer: {exc}")

    @api.middleware("http")
    async def _no_store(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        response = await call_next(request)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return BodyLimit(api, schemas.MAX_BODY)
