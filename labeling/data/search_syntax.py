"""The search box's language, one definition for both backends.

A query is words and "quoted phrases", all of which must occur (case-insensitive, whole words,
no stemming); ``OR`` (in capitals) between two of them makes either one do; ``-word`` or
``-"a phrase"`` excludes the items that have it; ``word*`` matches words starting with
``word``. A word with inner punctuation (``e-mail``, ``don't``) is the phrase of its parts.
:func:`parse` reads a query into :class:`Query`; :func:`fts5_match` and :func:`tsquery` write
it in SQLite FTS5's and PostgreSQL's own syntax, so both backends find the same items.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from labeling.errors import BadInput

# A token, as both indexes cut text into them: a run of letters or digits
# (FTS5's unicode61 and PostgreSQL's parser agree on these for ordinary words).
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
# The query's own pieces: an optional minus, then a quoted phrase or a bare word.
_PIECE = re.compile(r'(-?)"([^"]*)"?|(\S+)')


@dataclass(frozen=True)
class Term:
    """A word or phrase: its tokens (lower case), and whether the last one is a prefix."""

    tokens: tuple[str, ...]
    prefix: bool = False
    # As typed, without quotes and star (what a keyword rule made from the search looks for).
    raw: str = ""


@dataclass(frozen=True)
class Query:
    """All of ``required`` (each a set of alternatives: any one will do), none of ``excluded``."""

    required: list[list[Term]] = field(default_factory=list)
    excluded: list[Term] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.required and not self.excluded


def _term(raw: str, *, phrase: bool) -> Term | None:
    prefix = not phrase and raw.endswith("*")
    tokens = tuple(token.lower() for token in _TOKEN.findall(raw))
    if not tokens:
        return None
    return Term(tokens, prefix=prefix, raw=raw.rstrip("*").strip())


def parse(text: str) -> Query:
    """Read a query (see the module's docstring); raise :class:`BadInput` naming the problem."""
    query = Query()
    pending_or = False
    for match in _PIECE.finditer(text or ""):
        minus, quoted, bare = match.group(1), match.group(2), match.group(3)
        if bare == "OR":
            if not query.required or pending_or:
                raise BadInput(f"query {text!r}: OR must stand between two words or phrases")
            pending_or = True
            continue
        negative = bool(minus) or (bare is not None and bare.startswith("-") and len(bare) > 1)
        raw = quoted if quoted is not None else (bare[1:] if negative else bare)
        term = _term(raw, phrase=quoted is not None)
        if term is None:
            continue
        if negative:
            if pending_or:
                raise BadInput(f"query {text!r}: OR cannot join an excluded word ({match[0]!r})")
            query.excluded.append(term)
        elif pending_or:
            query.required[-1].append(term)
            pending_or = False
        else:
            query.required.append([term])
    if pending_or:
        raise BadInput(f"query {text!r}: OR must stand between two words or phrases")
    return query


def _fts5_term(term: Term) -> str:
    return '"' + " ".join(term.tokens) + '"' + ("*" if term.prefix else "")


def fts5_match(terms: list[list[Term]]) -> str:
    """The FTS5 MATCH expression: every group, each group any of its terms."""
    groups = [
        "(" + " OR ".join(_fts5_term(term) for term in alternatives) + ")" for alternatives in terms
    ]
    return " AND ".join(groups)


def _ts_term(term: Term) -> str:
    # Tokens are runs of letters and digits: no quote can occur inside the single quotes.
    lexemes = [f"'{token}'" for token in term.tokens]
    if term.prefix:
        lexemes[-1] += ":*"
    return "(" + " <-> ".join(lexemes) + ")"


def tsquery(terms: list[list[Term]]) -> str:
    """The same as :func:`fts5_match`, in PostgreSQL's ``to_tsquery`` syntax."""
    return " & ".join(
        "(" + " | ".join(_ts_term(term) for term in alternatives) + ")" for alternatives in terms
    )


def rule_spec(text: str, *, name: str, label: str) -> dict[str, object]:
    """The keyword (or, with a prefix, regex) rule that votes ``label`` exactly where the
    query's one group of alternatives matches: ``refund OR "money back"`` becomes the keyword
    rule ``["refund", "money back"]``. A rule votes when any of its words occurs, so a query
    that needs two things at once or excludes one cannot be a rule: :class:`BadInput` says so.
    """
    query = parse(text)
    if len(query.required) != 1 or query.excluded:
        raise BadInput(
            f"query {text!r} cannot be saved as a rule: a keyword rule votes when any one of "
            'its words or phrases occurs, so only a query of alternatives (a OR b OR "c d") '
            "can be one; write a code LF for the rest"
        )
    terms = query.required[0]
    if not any(term.prefix for term in terms):
        keywords = [term.raw if len(term.tokens) == 1 else " ".join(term.tokens) for term in terms]
        return {"kind": "keyword", "name": name, "label": label, "keywords": keywords}
    alternatives = [
        r"\W+".join(re.escape(token) for token in term.tokens) + (r"\w*" if term.prefix else "")
        for term in terms
    ]
    pattern = r"\b(?:" + "|".join(alternatives) + r")\b"
    return {"kind": "regex", "name": name, "label": label, "pattern": pattern}
