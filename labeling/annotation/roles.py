"""Who may do what: the one place role rules live.

Roles rank ``annotator`` < ``engineer`` < ``lead`` < ``admin``. Annotators label and see their
own numbers; engineers also import, export, write LFs, run rounds and see the team; leads also
review and adjudicate; admins also manage people and settings. The role-checked session
(:mod:`labeling.annotation.session`) asks :func:`require` before every call, and the UI's
navigation (:mod:`labeling.ui.main`) shows the pages whose role :func:`at_least` allows.
"""

from __future__ import annotations

from labeling.errors import Forbidden

ANNOTATOR, ENGINEER, LEAD, ADMIN = "annotator", "engineer", "lead", "admin"
ROLES = (ANNOTATOR, ENGINEER, LEAD, ADMIN)
_LEVEL = {role: rank for rank, role in enumerate(ROLES)}
# Where each role lands after signing in (docs/ui.md): only annotators land on Label, whose
# first view leases an item.
HOME_PAGE = {ANNOTATOR: "label", ENGINEER: "metrics", LEAD: "review", ADMIN: "metrics"}


def at_least(role: str, needed: str) -> bool:
    """Whether ``role`` ranks at or above ``needed`` (an unknown role ranks below all)."""
    return _LEVEL.get(role, -1) >= _LEVEL[needed]


def require(role: str, needed: str, *, action: str, name: str) -> None:
    """Raise :class:`Forbidden`, naming the action and the person, unless ``role`` suffices."""
    if not at_least(role, needed):
        article = "an" if role[:1] in "aeiou" else "a"
        raise Forbidden(f"{action} needs the {needed} role; {name!r} is {article} {role}")
