"""LF objects: the decorator, label-name mapping, load-time label checks and version hashes."""

from __future__ import annotations

import pytest

from weak_supervision import (
    ABSTAIN,
    LabelingFunction,
    LFDefinitionError,
    Row,
    UnknownLabelError,
    labeling_function,
)

LABELS = ("ham", "spam")


@labeling_function()
def has_link(row):
    return "spam" if "http" in row.text else ABSTAIN


@labeling_function(label="ham", name="short", resources={"limit": 3})
def short_text(row, limit):
    return len(row.text.split()) <= limit


def test_decorator_builds_named_lfs_with_and_without_parentheses():
    @labeling_function
    def bare(row):
        return ABSTAIN

    assert isinstance(bare, LabelingFunction) and bare.name == "bare"
    assert has_link.name == "has_link" and has_link.label is None
    assert short_text.name == "short" and short_text.label == "ham"


def test_label_names_map_to_integers_in_label_order():
    bound = has_link.bind(LABELS)
    assert bound.vote(Row(text="see http://x")) == 1
    assert bound.vote(Row(text="nice song")) == ABSTAIN
    assert has_link.bind(("spam", "ham")).vote(Row(text="http")) == 0


def test_declared_label_votes_on_true_and_abstains_on_false():
    bound = short_text.bind(LABELS)
    assert bound.vote(Row(text="love it")) == 0
    assert bound.vote(Row(text="a much longer comment here")) == ABSTAIN


def test_unknown_label_is_an_error_at_bind_time_naming_the_lf():
    @labeling_function()
    def typo(row):
        return "spma" if row.text else ABSTAIN

    with pytest.raises(UnknownLabelError, match=r"LF 'typo'.*'spma'.*\['ham', 'spam'\]"):
        typo.bind(LABELS)
    with pytest.raises(UnknownLabelError, match="LF 'short'"):
        short_text.bind(("negative", "positive"))


def test_label_argument_must_be_a_name():
    with pytest.raises(LFDefinitionError, match="label must be a label name"):
        labeling_function(label=1)(lambda row: True)  # type: ignore[call-overload]


def test_invalid_return_values_raise_with_what_was_returned():
    @labeling_function()
    def computed(row):
        return row.text  # a label name only known at run time

    bound = computed.bind(LABELS)
    assert bound.vote(Row(text="spam")) == 1
    with pytest.raises(ValueError, match="returned 'eggs', expected one of"):
        bound.vote(Row(text="eggs"))
    with pytest.raises(ValueError, match="returned the integer 1"):
        labeling_function()(lambda row: 1).bind(LABELS).vote(Row(text=""))
    with pytest.raises(ValueError, match="declared label='ham'"):
        labeling_function(label="ham")(lambda row: "spam").bind(LABELS).vote(Row(text=""))


def test_row_reads_fields_by_attribute_and_key():
    row = Row(text="hi", AUTHOR="ann")
    assert row.text == "hi" and row["AUTHOR"] == "ann" and row.get("DATE") is None
    assert "AUTHOR" in row and row.keys() == ["text", "AUTHOR"]
    with pytest.raises(KeyError, match="no field 'DATE'"):
        row["DATE"]


def test_preprocessors_and_resources_are_applied():
    def lower(row):
        row.text = row.text.lower()
        return row

    @labeling_function(pre=[lower], resources={"word": "free"})
    def says(row, word):
        return "spam" if word in row.text else ABSTAIN

    row = Row(text="FREE stuff")
    assert says.bind(LABELS).vote(row) == 1
    assert row.text == "FREE stuff"  # the preprocessor worked on a copy


def test_snorkel_preprocessors_work_on_rows():
    from snorkel.preprocess import preprocessor

    @preprocessor()
    def add_length(row):
        row.n_words = len(row.text.split())
        return row

    @labeling_function(pre=[add_length])
    def long(row):
        return "spam" if row.n_words > 3 else ABSTAIN

    assert long.bind(LABELS).vote(Row(text="one two three four")) == 1


def test_version_is_stable_and_changes_with_spec_and_label_order():
    first = has_link.bind(LABELS).version
    assert first == has_link.bind(list(LABELS)).version
    assert first != has_link.bind(("spam", "ham")).version

    def make(limit):
        return labeling_function(label="ham", name="short", resources={"limit": limit})(
            short_text.func
        )

    assert make(3).bind(LABELS).version == short_text.bind(LABELS).version
    assert make(4).bind(LABELS).version != short_text.bind(LABELS).version
    set_a = labeling_function(resources={"w": {"a", "b", "c"}})(has_link.func)
    set_b = labeling_function(resources={"w": {"c", "b", "a"}})(has_link.func)
    assert set_a.bind(LABELS).version == set_b.bind(LABELS).version
