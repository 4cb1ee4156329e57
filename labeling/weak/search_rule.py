"""A search saved as a keyword rule: what of the search box's language a keyword rule can say.

A keyword rule (:mod:`weak_supervision.rules`) votes its label when the text holds any of its
keywords, as whole words and ignoring case: exactly a search of one word, one "phrase", or
several joined by ``OR``. A search of two words (both must occur), an excluded ``-word``, a
``word*`` prefix or the backend's own syntax has no keyword rule that finds the same items:
:func:`keyword_rule` refuses those and says why. The browser's "Save as rule" uses it.
"""

from __future__ import annotations

import re
from typing import Any

from labeling.data import search_syntax
from labeling.errors import BadInput

_NAME_CHARS = re.compile(r"[^a-z0-9]+")


def rule_keywords(text: str, *, native: bool = False) -> list[str]:
    """The keywords of a rule that finds what the search ``text`` finds; :class:`BadInput`
    saying why when no keyword rule can (a phrase becomes one keyword, its words joined by
    single spaces)."""
    if native:
        raise BadInput("a search in the backend's own syntax cannot be saved as a keyword rule")
    parsed = search_syntax.parse(text)
    if not parsed.required:
        raise BadInput("type words to search for first: a rule needs at least one keyword")
    if parsed.excluded:
        raise BadInput(
            "a keyword rule cannot exclude words: remove the -word part (or write a regex rule "
            "on the LFs page)"
        )
    if len(parsed.required) > 1:
        raise BadInput(
            f"this search needs all of {len(parsed.required)} words or phrases, and a keyword "
            "rule votes when any one of its keywords occurs: join them with OR, or search for "
            "one phrase in quotes"
        )
    terms = parsed.required[0]
    if any(term.prefix for term in terms):
        raise BadInput("a keyword rule matches whole words: remove the * from the search")
    return list(dict.fromkeys(" ".join(term.tokens) for term in terms))


def rule_name(text: str) -> str:
    """A rule name made from the search (``kw_`` and its words), for the person to change."""
    slug = _NAME_CHARS.sub("_", text.lower()).strip("_")
    return f"kw_{slug[:40].rstrip('_') or 'search'}"


def keyword_rule(text: str, *, name: str, label: str, native: bool = False) -> dict[str, Any]:
    """The spec of a keyword rule voting ``label`` on what the search ``text`` finds (see
    :func:`rule_keywords`); ``Workspace.add_rule`` stores it."""
    return {
        "kind": "keyword",
        "name": name,
        "label": label,
        "keywords": rule_keywords(text, native=native),
        "case_sensitive": False,
        "whole_word": True,
    }
