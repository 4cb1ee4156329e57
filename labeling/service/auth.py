"""Who is calling the HTTP API: ``Authorization: Bearer <token>``, the same people, tokens and
roles as the browser UI (labeling.annotation.roles).

A token is checked with its scrypt hash once (about 50 ms on purpose), then remembered by its
SHA-256 digest for :data:`REMEMBER_SECONDS`; every request still reads the person as the
store holds them now, so a revoked or replaced token, a deactivation or a change of role
counts at once. The token itself is never stored, logged or put in a message.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

from labeling.annotation import roles
from labeling.errors import Forbidden, UnknownAnnotator
from labeling.workspace import Workspace

REMEMBER_SECONDS = 300.0
# At most this many tokens remembered (a flood of wrong tokens is never remembered at all).
REMEMBER_MAX = 10_000


class Unauthorized(Exception):
    """No token, or a wrong, revoked or deactivated one (HTTP 401)."""


@dataclass(frozen=True)
class Caller:
    """The person a request acts for."""

    name: str
    role: str


class Tokens:
    """Checks bearer tokens against the workspace's people."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._lock = threading.Lock()
        # token digest -> (person's name, the stored hash it matched, when)
        self._known: dict[str, tuple[str, str, float]] = {}

    def caller(self, header: str | None) -> Caller:
        token = _bearer(header)
        digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
        now = time.monotonic()
        with self._lock:
            known = self._known.get(digest)
        if known is not None and now - known[2] < REMEMBER_SECONDS:
            try:
                person = self.ws.person(known[0])  # as the store holds them now
            except UnknownAnnotator:
                person = None
            if person is not None and person.token_hash == known[1]:
                return Caller(name=person.name, role=person.role)
        try:
            person = self.ws.sign_in(token)
        except UnknownAnnotator as exc:
            with self._lock:
                self._known.pop(digest, None)
            raise Unauthorized("the token is wrong, revoked, or its person deactivated") from exc
        if person.token_hash is not None:
            with self._lock:
                if len(self._known) >= REMEMBER_MAX:
                    self._known.clear()
                self._known[digest] = (person.name, person.token_hash, now)
        return Caller(name=person.name, role=person.role)


def _bearer(header: str | None) -> str:
    if not header:
        raise Unauthorized("send the person's token as 'Authorization: Bearer <token>'")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("expected 'Authorization: Bearer <token>'")
    if token.strip().startswith("ls_"):
        raise Unauthorized(
            "a sign-in link works in the browser only; send the person's own token "
            "(`labelloop user new-token NAME` makes a new one)"
        )
    return token.strip()


def require(caller: Caller, needed: str, *, action: str) -> None:
    """Refuse (HTTP 403) a caller whose role is below ``needed``."""
    if not roles.at_least(caller.role, needed):
        raise Forbidden(
            f"{action} needs the role {needed} or above; {caller.name} is {caller.role}"
        )
