"""Keyword and regex rules: LFs stored as data and applied to a whole text column at once.

Every rule becomes one RE2 pattern. RE2 runs in time linear in the text, so a pattern typed in
the UI cannot hang the app, and the same engine serves both the per-row path (``google-re2``)
and the vectorised one (``pyarrow.compute``, also RE2), which keeps the engines' votes identical.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import re2

from weak_supervision.errors import RuleError, UnknownLabelError
from weak_supervision.lf import ABSTAIN, absent_code, version_hash

if TYPE_CHECKING:
    import pyarrow as pa

#: Longest regex a user may type; longer ones are almost always pasted by mistake.
MAX_REGEX_CHARS = 1_000
#: Longest pattern a keyword rule may compile to (a few hundred keywords).
MAX_KEYWORD_PATTERN_CHARS = 20_000
#: RE2's compiled-program memory limit: huge counted repetitions fail to compile instead.
MAX_REGEX_MEMORY = 8 << 20
#: A word character for whole-word keywords: Unicode letters, digits and underscore. RE2's own
#: ``\b`` is ASCII-only and would miss "café" before a space.
_WORD_CHAR = r"\p{L}\p{N}_"

RULE_KINDS = ("keyword", "regex")


@dataclass(frozen=True)
class KeywordRule:
    """Votes ``label`` when the text contains any of ``keywords``.

    ``whole_word`` requires a non-word character (or the text's edge) on each side of a keyword
    end that is itself a word character, so "spam" does not fire on "spammy" but "$$$" still
    fires in "win$$$".
    """

    name: str
    label: str
    keywords: tuple[str, ...]
    case_sensitive: bool = False
    whole_word: bool = True
    #: Multi-label data: a match votes that the item does NOT have ``label``.
    absent: bool = False

    def __post_init__(self) -> None:
        _check_name_and_label(self.name, self.label, "keyword")
        if isinstance(self.keywords, str) or not isinstance(self.keywords, Sequence):
            raise RuleError(f"rule {self.name!r}: keywords must be a list of strings")
        object.__setattr__(self, "keywords", tuple(self.keywords))
        bad = [k for k in self.keywords if not isinstance(k, str) or not k.strip()]
        if not self.keywords or bad:
            raise RuleError(
                f"rule {self.name!r}: expected a non-empty list of non-empty keywords, "
                f"found {list(self.keywords)!r}"
            )
        _compile(self.name, self.pattern, MAX_KEYWORD_PATTERN_CHARS)

    @property
    def kind(self) -> str:
        return "keyword"

    @property
    def pattern(self) -> str:
        """The RE2 pattern this rule runs."""
        alternatives = "|".join(self._keyword_pattern(k) for k in self.keywords)
        return ("" if self.case_sensitive else "(?i)") + f"(?:{alternatives})"

    def _keyword_pattern(self, keyword: str) -> str:
        body = _escape(keyword)
        if not self.whole_word:
            return body
        before = f"(?:^|[^{_WORD_CHAR}])" if _is_word_char(keyword[0]) else ""
        after = f"(?:[^{_WORD_CHAR}]|$)" if _is_word_char(keyword[-1]) else ""
        return before + body + after

    @property
    def spec(self) -> dict[str, Any]:
        return {
            "kind": "keyword",
            "name": self.name,
            "label": self.label,
            "keywords": list(self.keywords),
            "case_sensitive": self.case_sensitive,
            "whole_word": self.whole_word,
        } | _absent_field(self.absent)

    def bind(self, labels: Sequence[str]) -> BoundRule:
        return _bind(self, labels)


@dataclass(frozen=True)
class RegexRule:
    """Votes ``label`` when RE2 finds ``pattern`` anywhere in the text (search, not match)."""

    name: str
    label: str
    pattern_text: str
    case_sensitive: bool = False
    #: Multi-label data: a match votes that the item does NOT have ``label``.
    absent: bool = False

    def __post_init__(self) -> None:
        _check_name_and_label(self.name, self.label, "regex")
        if not isinstance(self.pattern_text, str) or not self.pattern_text:
            raise RuleError(f"rule {self.name!r}: expected a non-empty pattern string")
        # Alone first: a pattern such as "a)|(b" must not compile by closing our wrapper group.
        _compile(self.name, self.pattern_text, MAX_REGEX_CHARS)
        _compile(self.name, self.pattern, MAX_REGEX_CHARS + 8, shown=self.pattern_text)

    @property
    def kind(self) -> str:
        return "regex"

    @property
    def pattern(self) -> str:
        if len(self.pattern_text) > MAX_REGEX_CHARS:
            raise RuleError(
                f"rule {self.name!r}: pattern has {len(self.pattern_text)} characters, "
                f"the limit is {MAX_REGEX_CHARS}"
            )
        return ("" if self.case_sensitive else "(?i)") + f"(?:{self.pattern_text})"

    @property
    def spec(self) -> dict[str, Any]:
        return {
            "kind": "regex",
            "name": self.name,
            "label": self.label,
            "pattern": self.pattern_text,
            "case_sensitive": self.case_sensitive,
        } | _absent_field(self.absent)

    def bind(self, labels: Sequence[str]) -> BoundRule:
        return _bind(self, labels)


Rule = KeywordRule | RegexRule


@dataclass(frozen=True, eq=False)
class BoundRule:
    """A rule tied to the workspace's ordered labels, with its pattern compiled."""

    rule: Rule
    labels: tuple[str, ...]
    label_code: int
    regex: Any  # re2._Regexp; the stubs do not export the type

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def kind(self) -> str:
        return self.rule.kind

    @property
    def label(self) -> str:
        return self.rule.label

    @property
    def pattern(self) -> str:
        return self.rule.pattern

    @property
    def version(self) -> str:
        """Stable hash of the spec (sorted JSON) and the label order."""
        return version_hash(json.dumps(self.rule.spec, sort_keys=True), self.labels)

    def __reduce__(self) -> tuple[Any, ...]:
        # The compiled RE2 object cannot be pickled: ship the rule and compile on arrival.
        return (_bind, (self.rule, self.labels))

    def vote(self, row: Any) -> int:
        """Per-row vote, used by the Snorkel engine: the same RE2 pattern as the column path."""
        text = row.text if hasattr(row, "text") else row["text"]
        if isinstance(text, str) and self.regex.search(text) is not None:
            return self.label_code
        return ABSTAIN


def rule_from_spec(spec: Mapping[str, Any]) -> Rule:
    """Build a rule from its stored spec (what ``rule.spec`` returns); errors name the field.

    Keyword: ``{"kind": "keyword", "name", "label", "keywords": [...], "case_sensitive":
    false, "whole_word": true}``. Regex: ``{"kind": "regex", "name", "label", "pattern",
    "case_sensitive": false}``.
    """
    if not isinstance(spec, Mapping):
        raise RuleError(f"expected a rule spec mapping, found {type(spec).__name__}")
    kind = spec.get("kind")
    name = spec.get("name", "?")
    allowed = {
        "keyword": {"kind", "name", "label", "keywords", "case_sensitive", "whole_word", "absent"},
        "regex": {"kind", "name", "label", "pattern", "case_sensitive", "absent"},
    }
    if kind not in allowed:
        raise RuleError(f"rule {name!r}: kind must be one of {list(RULE_KINDS)}, found {kind!r}")
    unknown = sorted(set(spec) - allowed[kind])
    if unknown:
        raise RuleError(f"rule {name!r}: unknown field(s) {unknown} for a {kind} rule")
    for flag in ("case_sensitive", "whole_word", "absent"):
        if flag in spec and not isinstance(spec[flag], bool):
            raise RuleError(f"rule {name!r}: {flag} must be true or false, found {spec[flag]!r}")
    if kind == "keyword":
        keywords = spec.get("keywords")
        if not isinstance(keywords, list | tuple):
            raise RuleError(f"rule {name!r}: keywords must be a list, found {keywords!r}")
        return KeywordRule(
            name=spec.get("name"),  # type: ignore[arg-type]  # checked in __post_init__
            label=spec.get("label"),  # type: ignore[arg-type]
            keywords=tuple(keywords),
            case_sensitive=spec.get("case_sensitive", False),
            whole_word=spec.get("whole_word", True),
            absent=spec.get("absent", False),
        )
    return RegexRule(
        name=spec.get("name"),  # type: ignore[arg-type]
        label=spec.get("label"),  # type: ignore[arg-type]
        pattern_text=spec.get("pattern"),  # type: ignore[arg-type]
        case_sensitive=spec.get("case_sensitive", False),
        absent=spec.get("absent", False),
    )


def vote_rules_on_column(rules: Sequence[BoundRule], texts: pa.Array) -> np.ndarray:
    """Votes of every rule on every text: an ``(n_texts, n_rules)`` int matrix.

    One RE2 scan of the column per rule, in Arrow's C++ kernel. (A single union pattern as a
    prefilter was tried and dropped: with case folding and Unicode word classes RE2's DFA
    outgrows its memory budget on the union and falls back to a scan 30x slower.) Null texts
    match nothing.
    """
    # pandas and pyarrow (~0.5 s, ~100 MB): loaded only when LFs run or are analysed
    import pyarrow.compute as pc

    votes = np.full((len(texts), len(rules)), ABSTAIN, dtype=np.int64)
    for column, rule in enumerate(rules):
        matched = pc.fill_null(pc.match_substring_regex(texts, rule.pattern), False)
        votes[matched.to_numpy(zero_copy_only=False), column] = rule.label_code
    return votes


def _bind(rule: Rule, labels: Sequence[str]) -> BoundRule:
    labels = tuple(labels)
    if rule.label not in labels:
        raise UnknownLabelError(
            f"{rule.kind} rule {rule.name!r} uses label {rule.label!r}, "
            f"expected one of {list(labels)}"
        )
    regex = _compile(rule.name, rule.pattern, MAX_KEYWORD_PATTERN_CHARS)
    code = labels.index(rule.label)
    if rule.absent:
        code = absent_code(code, len(labels))
    return BoundRule(rule=rule, labels=labels, label_code=code, regex=regex)


def _absent_field(absent: bool) -> dict[str, bool]:
    """``{"absent": true}`` for an absent rule; nothing otherwise, so the specs (and versions)
    of the rules made before absent votes existed stay as they were."""
    return {"absent": True} if absent else {}


def _check_name_and_label(name: Any, label: Any, kind: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise RuleError(f"{kind} rule: name must be a non-empty string, found {name!r}")
    if not isinstance(label, str) or not label:
        raise RuleError(f"rule {name!r}: label must be a label name, found {label!r}")


def _compile(name: str, pattern: str, max_chars: int, *, shown: str | None = None) -> Any:
    """Compile with RE2, turning its terse errors into one that says what RE2 cannot do.

    ``shown`` is the pattern as the user typed it, for the message.
    """
    if len(pattern) > max_chars:
        raise RuleError(
            f"rule {name!r}: pattern has {len(pattern)} characters, the limit is {max_chars}"
        )
    options = re2.Options()
    options.log_errors = False
    options.max_mem = MAX_REGEX_MEMORY
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        hint = ""
        if "perl operator" in str(reason) or "escape sequence" in str(reason):
            hint = " (RE2 has no lookahead, lookbehind or backreferences)"
        elif "repetition" in str(reason) or "too large" in str(reason):
            hint = f" (counted repetitions must be at most 1000 and fit in {MAX_REGEX_MEMORY} B)"
        shown = pattern if shown is None else shown
        raise RuleError(f"rule {name!r}: invalid regex {shown!r}: {reason}{hint}") from None


def _escape(keyword: str) -> str:
    """Escape a keyword for RE2 (``re2.escape`` escapes every non-word byte, fine for RE2)."""
    return str(re2.escape(keyword))


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"
