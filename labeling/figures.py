"""How a figure is written: one function per kind of number, shared by the pages, the CLI and
the HTML report, so the same figure reads the same everywhere ("18.8%" on the page and in the
report, never "18.75%" in one and "19%" in the other).
"""

from __future__ import annotations

DASH = "-"


def share(value: float | None) -> str:
    """A fraction from 0 to 1 as a percentage with one decimal: 0.21875 -> "21.9%"."""
    return DASH if value is None else f"{value:.1%}"


def score(value: float | None) -> str:
    """Kappa, alpha, macro-F1 and other scores: three decimals, 0.8 -> "0.800"."""
    return DASH if value is None else f"{value:.3f}"


def count(value: int | None) -> str:
    """A number of things, with thousands separators: 1234 -> "1,234"."""
    return DASH if value is None else f"{value:,}"


def rate(value: float | None) -> str:
    """Labels per hour and other rates: whole numbers, 6524.258 -> "6,524"."""
    return DASH if value is None else f"{value:,.0f}"


def seconds(value: float | None) -> str:
    """A duration in seconds with one decimal: 2.46 -> "2.5 s"."""
    return DASH if value is None else f"{value:,.1f} s"


def plural(n: int, noun: str, plural_noun: str | None = None) -> str:
    """ "1 item", "2 items", "1,200 items"; ``plural_noun`` where adding "s" is wrong."""
    word = noun if n == 1 else (plural_noun or f"{noun}s")
    return f"{n:,} {word}"


def right_of(correct: int | None, n: int | None) -> str:
    """Counts before a share: "9/10 (90.0%)"; a dash when nothing was scored."""
    if not n or correct is None:
        return DASH
    return f"{correct:,}/{n:,} ({share(correct / n)})"


def people(by_role: dict[str, int]) -> str:
    """Active people by role, annotators first: "3 annotators, 1 lead, 1 admin"."""
    order = ("annotator", "lead", "engineer", "admin")
    parts = [plural(by_role.get("annotator", 0), "annotator")]
    parts += [plural(by_role[role], role) for role in order[1:] if by_role.get(role)]
    return ", ".join(parts)
