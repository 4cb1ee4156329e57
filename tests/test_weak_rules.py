"""Keyword and regex rules: semantics, RE2 limits, specs, and row path == column path."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from weak_supervision import (
    KeywordRule,
    RegexRule,
    Row,
    RuleError,
    UnknownLabelError,
    rule_from_spec,
)
from weak_supervision.rules import MAX_REGEX_CHARS, vote_rules_on_column

LABELS = ("ham", "spam")


def votes(rule, texts):
    """Column votes, checked against the per-row votes the Snorkel engine uses."""
    bound = rule.bind(LABELS)
    column = vote_rules_on_column([bound], pa.array(texts, type=pa.string()))[:, 0].tolist()
    assert column == [bound.vote(Row(text=t)) for t in texts]
    return column


def test_keywords_match_whole_words_ignoring_case_by_default():
    rule = KeywordRule("kw", "spam", ("check out", "sub"))
    texts = ["CHECK OUT my page", "checkout", "sub4sub", "please sub!", "subway", None, ""]
    assert votes(rule, texts) == [1, -1, -1, 1, -1, -1, -1]


def test_keyword_options_case_sensitive_and_substring():
    assert votes(KeywordRule("k", "spam", ("Free",), case_sensitive=True), ["Free", "free"]) == [
        1,
        -1,
    ]
    assert votes(KeywordRule("k", "spam", ("sub",), whole_word=False), ["subway", "SUB"]) == [1, 1]


def test_word_boundaries_are_unicode_aware():
    rule = KeywordRule("k", "ham", ("café", "straße"))
    assert votes(rule, ["un café noir", "cafés", "STRASSE", "Straße!", "xcafé"]) == [
        0,
        -1,
        -1,
        0,
        -1,
    ]


def test_keywords_are_literal_and_symbol_ends_need_no_boundary():
    rule = KeywordRule("k", "spam", ("$$$", "a.b"))
    assert votes(rule, ["win$$$ now", "a.b", "axb"]) == [1, 1, -1]


def test_regex_rules_search_anywhere():
    rule = RegexRule("link", "spam", r"https?://\S+|www\.")
    assert votes(rule, ["see HTTP://x.y", "www.site", "no link", None]) == [1, 1, -1, -1]
    sensitive = RegexRule("caps", "spam", r"[A-Z]{5}", case_sensitive=True)
    assert votes(sensitive, ["HELLO there", "hello there"]) == [1, -1]


def test_catastrophic_patterns_run_in_linear_time():
    # (a+)+$ takes exponential time in a backtracking engine on this text; RE2 is linear.
    rule = RegexRule("evil", "spam", r"(a+)+$")
    assert votes(rule, ["a" * 50_000 + "!", "aaa"]) == [-1, 1]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"(?<=a)b", "no lookahead, lookbehind or backreferences"),
        (r"(a)\1", "no lookahead, lookbehind or backreferences"),
        (r"((a{1000}){1000}){1000}", "repetition"),
        (r"(unclosed", "missing )"),
        (r"a)|(b", "unexpected )"),
        ("a" * (MAX_REGEX_CHARS + 1), "the limit is 1000"),
    ],
)
def test_invalid_or_oversized_regexes_are_rejected_with_a_reason(pattern, message):
    with pytest.raises(RuleError, match="rule 'r'") as raised:
        RegexRule("r", "spam", pattern)
    assert message in str(raised.value)


def test_specs_round_trip_and_errors_name_the_field():
    for rule in (
        KeywordRule("k", "spam", ("a", "b"), case_sensitive=True, whole_word=False),
        RegexRule("r", "ham", "x+"),
    ):
        assert rule_from_spec(rule.spec) == rule
    with pytest.raises(RuleError, match="kind must be one of"):
        rule_from_spec({"kind": "glob", "name": "g"})
    with pytest.raises(RuleError, match=r"unknown field\(s\) \['pattern'\]"):
        rule_from_spec({"kind": "keyword", "name": "k", "label": "spam", "pattern": "x"})
    with pytest.raises(RuleError, match="non-empty keywords"):
        rule_from_spec({"kind": "keyword", "name": "k", "label": "spam", "keywords": [" "]})
    with pytest.raises(RuleError, match="case_sensitive must be true or false"):
        rule_from_spec(
            {"kind": "regex", "name": "r", "label": "spam", "pattern": "x", "case_sensitive": 1}
        )


def test_unknown_label_names_the_rule():
    with pytest.raises(UnknownLabelError, match="keyword rule 'k' uses label 'spma'"):
        KeywordRule("k", "spma", ("x",)).bind(LABELS)


def test_version_depends_on_spec_and_label_order():
    rule = KeywordRule("k", "spam", ("a",))
    assert rule.bind(LABELS).version == KeywordRule("k", "spam", ("a",)).bind(LABELS).version
    assert rule.bind(LABELS).version != KeywordRule("k", "spam", ("b",)).bind(LABELS).version
    assert rule.bind(LABELS).version != rule.bind(("spam", "ham")).version


def test_column_path_matches_row_path_on_random_texts():
    rng = random.Random(3)
    alphabet = ["spam", "Spam", "SPAM!", "café", "http://x", "ü", " ", "\n", "a_b", "2015"]
    texts = ["".join(rng.choices(alphabet, k=rng.randint(0, 8))) for _ in range(500)]
    rules = [
        KeywordRule("k1", "spam", ("spam", "café")).bind(LABELS),
        KeywordRule("k2", "ham", ("a_b",), case_sensitive=True).bind(LABELS),
        RegexRule("r1", "spam", r"^\s*\d{4}").bind(LABELS),
        RegexRule("r2", "ham", r"ü\s").bind(LABELS),
    ]
    column = vote_rules_on_column(rules, pa.array(texts))
    rows = [[rule.vote(Row(text=t)) for rule in rules] for t in texts]
    assert column.tolist() == rows
    assert (column != -1).any(axis=0).all()  # every rule fired somewhere
