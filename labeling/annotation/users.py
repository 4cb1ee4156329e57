"""Annotators and sign-in tokens.

A token is ``ll_<id>_<secret>``: the id finds the row, the secret is checked against a salted
scrypt hash in constant time. The plain token exists only in the return value of
:func:`add_annotator`; it is shown once and never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from collections.abc import Iterable
from datetime import timedelta

from sqlmodel import Session, col, select

from labeling.annotation.roles import ROLES
from labeling.errors import BadInput, UnknownAnnotator
from labeling.store.models import (
    IMPORT_ANNOTATOR,
    SYSTEM_ROLE,
    Annotator,
    SignInLink,
    utcnow,
)

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
MAX_NAME_CHARS = 64


def hash_secret(secret: str, *, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        secret.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_hex, digest_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            secret.encode("utf-8"),
            salt=bytes.fromhex(salt_hex),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(digest_hex) // 2,
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), digest_hex)


def validate_name(name: str) -> str:
    if not name or not name.strip():
        raise BadInput("annotator name: expected a non-empty name")
    if name != name.strip():
        raise BadInput(f"annotator name {name!r}: leading or trailing whitespace")
    if len(name) > MAX_NAME_CHARS:
        raise BadInput(f"annotator name: at most {MAX_NAME_CHARS} characters, found {len(name)}")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise BadInput(f"annotator name {name!r}: holds a control character")
    return name


def add_annotator(session: Session, *, name: str, role: str) -> tuple[Annotator, str]:
    """Create an annotator and return it with its sign-in token (the only copy)."""
    validate_name(name)
    if role not in ROLES:
        raise BadInput(f"option '--role': expected one of {', '.join(ROLES)}, found {role!r}")
    if name == IMPORT_ANNOTATOR:
        raise BadInput(f"annotator name {name!r} is reserved for labels that come with imports")
    if session.exec(select(Annotator).where(Annotator.name == name)).first() is not None:
        raise BadInput(f"annotator {name!r} already exists")
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    annotator = Annotator(
        name=name, role=role, token_id=token_id, token_hash=hash_secret(secret), active=True
    )
    session.add(annotator)
    session.flush()
    return annotator, f"ll_{token_id}_{secret}"


LINK_HOURS = 24.0


def issue_sign_in_link(session: Session, *, annotator: Annotator, hours: float = LINK_HOURS) -> str:
    """A link token ``ls_<id>_<secret>`` for ``annotator`` that expires after ``hours``."""
    assert annotator.id is not None
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    session.add(
        SignInLink(
            token_id=token_id,
            token_hash=hash_secret(secret),
            annotator_id=annotator.id,
            expires_at=utcnow() + timedelta(hours=hours),
        )
    )
    session.flush()
    return f"ls_{token_id}_{secret}"


def sign_in_link_id(token: str) -> str | None:
    """The public id of a launch token made by :func:`issue_sign_in_link` (None: not one)."""
    parts = token.split("_", 2)
    return parts[1] if len(parts) == 3 and parts[0] == "ls" and parts[1] else None


def revoke_sign_in_link(session: Session, token: str) -> None:
    token_id = sign_in_link_id(token)
    if token_id is not None:
        link = session.exec(select(SignInLink).where(SignInLink.token_id == token_id)).first()
        if link is not None:
            session.delete(link)


def revoke_sign_in_links(session: Session, *, token_ids: Iterable[str] | None = None) -> int:
    """Delete the launch links with these token ids, or every one when ``token_ids`` is None;
    returns how many there were."""
    query = select(SignInLink)
    if token_ids is not None:
        wanted = list(token_ids)
        if not wanted:
            return 0
        query = query.where(col(SignInLink.token_id).in_(wanted))
    links = session.exec(query).all()
    for link in links:
        session.delete(link)
    session.flush()
    return len(links)


def _authenticate_link(session: Session, token_id: str, secret: str) -> Annotator | None:
    link = session.exec(select(SignInLink).where(SignInLink.token_id == token_id)).first()
    if link is None:
        verify_secret(secret, hash_secret("x", salt=b"0" * 16))
        return None
    if not verify_secret(secret, link.token_hash) or link.expires_at <= utcnow():
        return None
    annotator = session.get(Annotator, link.annotator_id)
    return annotator if annotator is not None and annotator.active else None


def authenticate(session: Session, token: str) -> Annotator:
    """The active annotator whose token this is; a wrong or revoked token is refused."""
    refused = UnknownAnnotator("sign-in token is wrong or has been revoked")
    parts = token.strip().split("_", 2)
    if len(parts) == 3 and parts[0] == "ls":
        found = _authenticate_link(session, parts[1], parts[2])
        if found is None:
            raise refused
        return found
    if len(parts) != 3 or parts[0] != "ll":
        raise refused
    annotator = session.exec(select(Annotator).where(Annotator.token_id == parts[1])).first()
    if annotator is None or annotator.token_hash is None:
        # Spend the same time as a real check so that ids cannot be probed by timing.
        verify_secret(parts[2], hash_secret("x", salt=b"0" * 16))
        raise refused
    if not verify_secret(parts[2], annotator.token_hash) or not annotator.active:
        raise refused
    return annotator


def get_annotator(session: Session, name: str, *, active_only: bool = True) -> Annotator:
    annotator = session.exec(select(Annotator).where(Annotator.name == name)).first()
    if annotator is None or annotator.role == SYSTEM_ROLE:
        raise UnknownAnnotator(f"no annotator named {name!r}")
    if active_only and not annotator.active:
        raise UnknownAnnotator(f"annotator {name!r} has been deactivated")
    return annotator


def deactivate(session: Session, *, name: str) -> Annotator:
    """Switch a person off: their token and sign-in links stop working and their browser
    sessions end at their next request (:func:`current_token_id` then answers None)."""
    annotator = get_annotator(session, name, active_only=False)
    annotator.active = False
    session.add(annotator)
    _revoke_links_of(session, annotator)
    return annotator


def _revoke_links_of(session: Session, annotator: Annotator) -> int:
    links = session.exec(select(SignInLink).where(SignInLink.annotator_id == annotator.id)).all()
    for link in links:
        session.delete(link)
    session.flush()
    return len(links)


def _new_token(session: Session, annotator: Annotator) -> str:
    """Give ``annotator`` a new token (the old one, their sign-in links and their browser
    sessions stop working); returns it, the only copy."""
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    annotator.token_id = token_id
    annotator.token_hash = hash_secret(secret)
    session.add(annotator)
    _revoke_links_of(session, annotator)
    return f"ll_{token_id}_{secret}"


def new_token(session: Session, *, name: str) -> tuple[Annotator, str]:
    """A new sign-in token for an active person, revoking the old one; returns it once."""
    annotator = get_annotator(session, name, active_only=False)
    if not annotator.active:
        raise BadInput(
            f"annotator {name!r} is deactivated; reactivate them (which gives a new token)"
        )
    return annotator, _new_token(session, annotator)


def reactivate(session: Session, *, name: str) -> tuple[Annotator, str]:
    """Switch a deactivated person back on, with a new token (their old one stays revoked, so
    a token that left with them does not come back); returns it once."""
    annotator = get_annotator(session, name, active_only=False)
    if annotator.active:
        raise BadInput(f"annotator {name!r} is active already; expected a deactivated person")
    annotator.active = True
    return annotator, _new_token(session, annotator)


def set_role(session: Session, *, name: str, role: str) -> Annotator:
    """Change a person's role; the last active admin keeps theirs, so someone can still
    manage the team."""
    if role not in ROLES:
        raise BadInput(f"role: expected one of {', '.join(ROLES)}, found {role!r}")
    annotator = get_annotator(session, name, active_only=False)
    if annotator.role == "admin" and role != "admin" and annotator.active:
        admins = session.exec(
            select(Annotator.id).where(Annotator.role == "admin", col(Annotator.active).is_(True))
        ).all()
        if len(admins) <= 1:
            raise BadInput(f"{name!r} is the only active admin; make someone else admin first")
    annotator.role = role
    session.add(annotator)
    return annotator


def current_token_id(session: Session, annotator_id: int) -> str | None:
    """The token id a browser session of this person must carry to stay valid: None when the
    person is gone or deactivated (every session of theirs then ends)."""
    row = session.exec(
        select(Annotator.token_id, Annotator.active).where(Annotator.id == annotator_id)
    ).first()
    if row is None or not row[1]:
        return None
    return row[0] or ""


def system_annotator(session: Session, name: str = IMPORT_ANNOTATOR) -> Annotator:
    """The non-person annotator that owns labels which came with an import (created once)."""
    annotator = session.exec(select(Annotator).where(Annotator.name == name)).first()
    if annotator is None:
        annotator = Annotator(name=name, role=SYSTEM_ROLE, active=True)
        session.add(annotator)
        session.flush()
    return annotator


def list_annotators(session: Session) -> list[Annotator]:
    return list(
        session.exec(
            select(Annotator).where(Annotator.role != SYSTEM_ROLE).order_by(col(Annotator.id))
        ).all()
    )
