"""A fake OpenAI-compatible chat-completions server on 127.0.0.1 for the tests.

``answer(prompt_text) -> (status, payload_or_text, delay_seconds)`` decides each reply; every
request is kept (method, path, headers, JSON body) so tests can check what was sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[str], tuple[int, Any, float]]


def completion(text: str, tokens: int = 12) -> dict[str, Any]:
    """A well-formed chat-completions body answering ``text``."""
    return {
        "id": "fake",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": tokens - 2, "completion_tokens": 2, "total_tokens": tokens},
    }


@dataclass
class FakeServer:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def fake_llm(answer: Answer, *, key: str | None = None) -> Iterator[FakeServer]:
    """Serve ``answer`` at ``http://127.0.0.1:PORT/v1``; with ``key``, other keys get 401."""
    state = FakeServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:  # quiet
            return

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            with state.lock:
                state.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
            if key is not None and self.headers.get("Authorization") != f"Bearer {key}":
                self._send(401, {"error": {"message": "invalid api key"}})
                return
            prompt = "\n".join(m.get("content", "") for m in body.get("messages", []))
            status, payload, delay = answer(prompt)
            if delay:
                time.sleep(delay)
            self._send(status, payload)

        def _send(self, status: int, payload: Any) -> None:
            raw = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            try:
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout)
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
