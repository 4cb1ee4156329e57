"""A client for OpenAI-compatible chat-completions servers: llama.cpp's server, Ollama, vLLM
and hosted APIs all answer ``POST {base_url}/chat/completions``.

Standard library only (``urllib``): one request per call, run from a thread pool by the LLM
labelling function (labeling.weak.llm). Rate limits (429) and server errors (5xx), timeouts and
dropped connections are retried with exponential backoff (a ``Retry-After`` header is honoured
up to :data:`MAX_RETRY_AFTER` seconds); a refused key (401, 403) stops at once with
:class:`KeyRefused`. No message, log line or exception names the key: errors show the server
as ``scheme://host:port`` only, since a URL may carry credentials in its query.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labeling.errors import BadInput, LabelloopError

MAX_RETRY_AFTER = 30.0
RETRIED_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class LLMError(LabelloopError):
    """The server gave no usable answer (after the retries, or an error not worth retrying)."""


class KeyRefused(BadInput):
    """The server refused the key (HTTP 401 or 403): retrying cannot help."""


@dataclass(frozen=True)
class Reply:
    """The text of the first choice, and the tokens the server counted (0 when it does not)."""

    text: str
    tokens: int


def server_name(base_url: str) -> str:
    """``scheme://host:port`` of a base URL: how messages name the server (no path, no query,
    no user or password)."""
    parts = urllib.parse.urlsplit(base_url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


class ChatClient:
    """``complete(messages)`` against one server and model; safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None,
        key_name: str = "",
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
            raise BadInput(
                f"[llm] base_url: expected an http:// or https:// address, found "
                f"{server_name(base_url)!r}"
            )
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.server = server_name(base_url)
        self.model = model
        self._key = api_key
        self.key_name = key_name
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep

    def _request(self, body: bytes) -> urllib.request.Request:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        return urllib.request.Request(self.url, data=body, headers=headers, method="POST")

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int) -> Reply:
        """The model's answer to ``messages`` (temperature 0, so a re-run asks the same)."""
        body = json.dumps(
            {
                "model": self.model,
                "messages": messages,
                "temperature": 0,
                "max_tokens": max_tokens,
            }
        ).encode()
        last = ""
        for attempt in range(self.retries + 1):
            wait = self.backoff * 2**attempt
            try:
                with urllib.request.urlopen(self._request(body), timeout=self.timeout) as got:
                    return self._reply(got.read())
            except urllib.error.HTTPError as exc:
                if exc.code in (401, 403):
                    where = f" (the variable {self.key_name})" if self.key_name else ""
                    raise KeyRefused(
                        f"{self.server} refused the key{where}: HTTP {exc.code}; check the key "
                        "and that it may use the model "
                        f"{self.model!r}"
                    ) from None
                if exc.code not in RETRIED_STATUS:
                    raise LLMError(f"{self.server} answered HTTP {exc.code}") from None
                last = f"HTTP {exc.code}"
                wait = max(wait, _retry_after(exc.headers.get("Retry-After")))
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                last = (
                    "no answer in time"
                    if isinstance(reason, TimeoutError | socket.timeout)
                    else (f"connection failed ({type(reason).__name__})")
                )
            if attempt < self.retries:
                self.sleep(wait)
        raise LLMError(f"{self.server}: {last} after {self.retries + 1} tries")

    def _reply(self, raw: bytes) -> Reply:
        try:
            data: Any = json.loads(raw)
            text = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise LLMError(
                f"{self.server} answered something that is not a chat completion"
            ) from None
        usage = data.get("usage") or {}
        tokens = usage.get("total_tokens") if isinstance(usage, dict) else None
        return Reply(text if isinstance(text, str) else "", int(tokens or 0))


def _retry_after(value: str | None) -> float:
    """A ``Retry-After`` header in seconds (capped); 0 when absent or a date."""
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(value))) if value else 0.0
    except ValueError:
        return 0.0
