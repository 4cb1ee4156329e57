"""The LLM labelling function's prompt and how its answers are read.

The prompt is built from the label names and the guidelines (labeling.annotation.guidelines:
each label's definition, include and exclude notes), plus optional few-shot examples (texts
with their adjudicated labels). Its version, :func:`prompt_version`, is a digest of everything
that goes into it but the item's text, so a cached answer (labeling.store.models.LLMAnswer) is
reused exactly while the prompt is the same, and a guidelines edit asks again.

Answers are read strictly (:func:`parse_answer`): one label name (any case, quotes or a final
full stop around it), or for a multi-label workspace the names that apply separated by commas
(``none`` for the empty set). Anything else is not guessed at: the LF abstains and the answer
counts as unreadable.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from labeling.annotation.guidelines import Guidelines
from labeling.store import labelsets

#: Bumped when the wording below changes: a new wording is a new prompt.
TEMPLATE = "labelloop-llm-1"
NONE_ANSWER = "none"
#: Item texts longer than this are cut (the prompt says so); the cut is part of the version.
MAX_TEXT_CHARS = 4000


@dataclass(frozen=True)
class Shot:
    """A few-shot example: a text and its label (a stored set in a multi-label workspace)."""

    text: str
    label: str


def _label_lines(labels: Sequence[str], guides: Guidelines | None) -> list[str]:
    lines = []
    for name in labels:
        guide = guides.labels.get(name) if guides is not None else None
        parts = [f"- {name}"]
        if guide is not None and guide.definition:
            parts.append(f": {guide.definition}")
        if guide is not None and guide.include:
            parts.append(f" Includes: {guide.include}")
        if guide is not None and guide.exclude:
            parts.append(f" Excludes: {guide.exclude}")
        lines.append("".join(parts))
    return lines


def system_prompt(labels: Sequence[str], guides: Guidelines | None, multilabel: bool) -> str:
    """The instructions: the task, the labels with their guidelines, the answer's form."""
    overview = guides.overview if guides is not None and guides.overview else ""
    if multilabel:
        form = (
            "Answer with every label that applies, separated by commas, or with "
            f"{NONE_ANSWER} if no label applies. Write nothing else."
        )
    else:
        form = "Answer with exactly one label name from the list and nothing else."
    return "\n".join(
        [
            "You label short texts for a text classification task.",
            *([overview] if overview else []),
            "The labels:",
            *_label_lines(labels, guides),
            form,
        ]
    )


def _shown(value: str, multilabel: bool) -> str:
    if not multilabel:
        return value
    names = labelsets.decode_ordered(value)
    return ", ".join(names) if names else NONE_ANSWER


def build_messages(
    text: str,
    labels: Sequence[str],
    guides: Guidelines | None,
    *,
    multilabel: bool = False,
    shots: Sequence[Shot] = (),
) -> list[dict[str, str]]:
    """The chat messages for one item: instructions, few-shot turns, then the item's text."""
    messages = [{"role": "system", "content": system_prompt(labels, guides, multilabel)}]
    for shot in shots:
        messages.append({"role": "user", "content": shot.text[:MAX_TEXT_CHARS]})
        messages.append({"role": "assistant", "content": _shown(shot.label, multilabel)})
    messages.append({"role": "user", "content": text[:MAX_TEXT_CHARS]})
    return messages


def prompt_version(
    labels: Sequence[str],
    guides: Guidelines | None,
    *,
    multilabel: bool = False,
    shots: Sequence[Shot] = (),
) -> str:
    """A digest of everything in the prompt but the item: same digest, same question."""
    content = json.dumps(
        {
            "template": TEMPLATE,
            "max_text": MAX_TEXT_CHARS,
            "messages": build_messages("", labels, guides, multilabel=multilabel, shots=shots),
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return f"{TEMPLATE}:{hashlib.sha256(content.encode()).hexdigest()[:16]}"


class PromptSet:
    """The prompt of one run and its variants: an item that is one of the few-shot examples
    (the same text) is asked without that example, under a version of its own."""

    def __init__(
        self,
        labels: Sequence[str],
        guides: Guidelines | None,
        *,
        multilabel: bool = False,
        shots: Sequence[Shot] = (),
    ) -> None:
        self.labels = tuple(labels)
        self.guides = guides
        self.multilabel = multilabel
        self.shots = tuple(shots)
        self.version = prompt_version(labels, guides, multilabel=multilabel, shots=self.shots)
        self._shot_texts = {shot.text for shot in self.shots}
        self._variants: dict[str, str] = {}

    def shots_for(self, text: str) -> tuple[Shot, ...]:
        """The examples shown with ``text``: all of them but one with the same text."""
        if text not in self._shot_texts:
            return self.shots
        return tuple(shot for shot in self.shots if shot.text != text)

    def version_for(self, text: str) -> str:
        """The prompt version ``text`` is asked under (its answer is kept by it)."""
        if text not in self._shot_texts:
            return self.version
        if text not in self._variants:
            self._variants[text] = prompt_version(
                self.labels, self.guides, multilabel=self.multilabel, shots=self.shots_for(text)
            )
        return self._variants[text]

    def messages(self, text: str) -> list[dict[str, str]]:
        """The chat messages that ask about ``text``."""
        return build_messages(
            text, self.labels, self.guides, multilabel=self.multilabel, shots=self.shots_for(text)
        )


def _clean(token: str) -> str:
    return token.strip().strip("\"'`*").rstrip(".").strip().casefold()


def parse_answer(reply: str, labels: Sequence[str], *, multilabel: bool = False) -> str | None:
    """The vote an answer gives (a label, or a stored set), or None when it is not exactly a
    label (or a list of labels) of this workspace."""
    by_name = {name.casefold(): name for name in labels}
    if not multilabel:
        return by_name.get(_clean(reply))
    if _clean(reply) == NONE_ANSWER:
        return labelsets.encode((), tuple(labels))
    tokens = [_clean(t) for t in reply.replace("\n", ",").split(",")]
    tokens = [t for t in tokens if t]
    if not tokens or any(t not in by_name for t in tokens):
        return None
    return labelsets.encode([by_name[t] for t in tokens], tuple(labels))
