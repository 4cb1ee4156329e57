"""The webhooks' signature: HMAC-SHA256 of ``"{timestamp}.{body}"`` with the hook's secret.

The timestamp is signed with the body so that a receiver can refuse an old delivery replayed
(docs/webhooks.md shows the receiver's side).
"""

from __future__ import annotations

import hashlib
import hmac

SCHEME = "sha256"


def signature(secret: str, timestamp: int, body: str) -> str:
    """The ``X-Labelloop-Signature`` header's value: ``sha256=<hex digest>``."""
    message = f"{timestamp}.{body}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def verify(secret: str, timestamp: int, body: str, header: str) -> bool:
    """Whether ``header`` is the signature of ``body`` at ``timestamp`` (constant time)."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)
