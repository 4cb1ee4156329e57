"""The LLM LF's prompt (labels and guidelines in, versioned by a digest) and the strict reading
of its answers: one label, or for sets the labels that apply; anything else abstains."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labeling.annotation.guidelines import Guidelines, LabelGuide
from labeling.store import labelsets
from labeling.weak.llm_prompt import PromptSet, Shot, build_messages, parse_answer, prompt_version

LABELS = ("billing", "refund", "bug")
GUIDES = Guidelines(
    3,
    "eng",
    None,
    "",
    "Support tickets.",
    {
        "billing": LabelGuide(definition="Charges and invoices.", exclude="Money back is refund."),
        "refund": LabelGuide(definition="Asking for money back."),
        "bug": LabelGuide(),
    },
)


def test_the_prompt_carries_the_labels_and_their_guidelines():
    messages = build_messages("where is my invoice", LABELS, GUIDES)
    system = messages[0]["content"]
    assert "Support tickets." in system
    assert "- billing: Charges and invoices. Excludes: Money back is refund." in system
    assert "- bug\n" in system and "exactly one label" in system
    assert messages[-1] == {"role": "user", "content": "where is my invoice"}


def test_few_shot_turns_and_sets():
    shots = [Shot("refund me", labelsets.encode(["refund"], LABELS)), Shot("hi", "[]")]
    messages = build_messages("x", LABELS, None, multilabel=True, shots=shots)
    assert [m["content"] for m in messages[1:5]] == ["refund me", "refund", "hi", "none"]
    assert "separated by commas" in messages[0]["content"]


def test_the_version_changes_with_the_prompt_and_not_with_the_item():
    first = prompt_version(LABELS, GUIDES)
    assert first == prompt_version(LABELS, GUIDES)
    assert first != prompt_version(LABELS, None)
    assert first != prompt_version(LABELS, GUIDES, multilabel=True)
    edited = Guidelines(
        4, "eng", None, "", "Support tickets.", {**GUIDES.labels, "bug": LabelGuide("Crashes.")}
    )
    assert first != prompt_version(LABELS, edited)
    assert first != prompt_version(LABELS, GUIDES, shots=[Shot("a", "bug")])


@pytest.mark.parametrize(
    ("reply", "vote"),
    [
        ("billing", "billing"),
        ("  Billing.\n", "billing"),
        ('"refund"', "refund"),
        ("**bug**", "bug"),
        ("billing or refund", None),
        ("The label is billing", None),
        ("", None),
        ("spam", None),
    ],
)
def test_single_label_answers_are_read_strictly(reply, vote):
    assert parse_answer(reply, LABELS) == vote


@pytest.mark.parametrize(
    ("reply", "names"),
    [
        ("billing, refund", ["billing", "refund"]),
        ("Refund,\nbilling", ["billing", "refund"]),
        ("none", []),
        ("None.", []),
        ("billing, spam", None),
        ("", None),
        ("billing and refund", None),
    ],
)
def test_set_answers_are_read_strictly(reply, names):
    expected = None if names is None else labelsets.encode(names, LABELS)
    assert parse_answer(reply, LABELS, multilabel=True) == expected


@given(st.lists(st.sampled_from(LABELS), unique=True))
def test_a_set_written_as_the_prompt_asks_reads_back(names):
    reply = ", ".join(names) if names else "none"
    assert parse_answer(reply, LABELS, multilabel=True) == labelsets.encode(names, LABELS)


def test_an_example_is_never_shown_with_its_own_text():
    shots = [Shot("refund me", "refund"), Shot("it crashed", "bug")]
    prompts = PromptSet(LABELS, GUIDES, shots=shots)
    assert prompts.version == prompt_version(LABELS, GUIDES, shots=shots)
    assert prompts.version_for("other text") == prompts.version
    assert prompts.version_for("refund me") == prompt_version(LABELS, GUIDES, shots=shots[1:])
    contents = [m["content"] for m in prompts.messages("refund me")[1:]]
    assert contents == ["it crashed", "bug", "refund me"]
    assert len(prompts.messages("other text")) == 6
