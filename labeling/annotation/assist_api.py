"""The Workspace calls for assisted labelling: the guidelines (labeling.annotation.guidelines:
read any version, edit, pin examples, the history, the confused label pairs that want an
exclude note), the guess a page pre-selects
(labeling.annotation.suggestions) and the model's hint. :class:`labeling.workspace.Workspace`
inherits them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from labeling.annotation import guidelines, roles, suggestions, users
from labeling.annotation.guidelines import Guidelines
from labeling.annotation.suggestions import Suggestion
from labeling.context import Context
from labeling.quality import confusion_pairs
from labeling.quality.confusion_pairs import ConfusedPair
from labeling.quality.review import latest_review


@dataclass(frozen=True)
class Hint:
    """The promoted model's guess for an item."""

    prediction: str
    confidence: float | None
    round_id: int


class AssistAPI(Context):
    """Guidelines, suggestions and hints: what helps people label."""

    def hint(self, item_id: int) -> Hint | None:
        """The promoted model's prediction for the item, if a model has scored it."""
        with self._read() as session:
            prediction, confidence, round_id = suggestions.model_guess(self, session, item_id)
        if prediction is None or round_id is None:
            return None
        return Hint(prediction=prediction, confidence=confidence, round_id=round_id)

    def suggestion(self, item_id: int, annotator: str) -> Suggestion:
        """The guess to show ``annotator`` with an item under ``suggestions`` in the toml
        (nothing when off; withheld on a drawn share of gold items: the anchoring check)."""
        if self.config.suggestions == suggestions.OFF:  # no store read on every item shown
            return suggestions.NONE
        with self._read() as session:
            me = users.get_annotator(session, annotator)
            assert me.id is not None
            return suggestions.suggestion_for(self, session, annotator_id=me.id, item_id=item_id)

    def guidelines(self, version: int | None = None) -> Guidelines:
        """The newest guidelines, or ``version`` (0: none written yet)."""
        with self._read() as session:
            if version is None:
                return guidelines.current(session, self.labels)
            return guidelines.version(session, self.labels, version)

    def guidelines_history(self) -> list[dict[str, Any]]:
        """Every version, newest first: number, author, time, note, what it changed."""
        with self._read() as session:
            return guidelines.history(session, self.labels)

    def example_texts(self, ids: list[str]) -> dict[str, str]:
        """The texts of pinned examples, by item id."""
        with self._read() as session:
            return guidelines.example_texts(session, ids)

    def edit_guidelines(self, changes: Mapping[str, Any], *, by: str, note: str = "") -> Guidelines:
        """Record ``changes`` (``{"overview": str, "labels": {LABEL: {"definition" | "include"
        | "exclude": str, "examples": [item ids]}}}``, any part left out) as a new version by
        ``by``, an engineer or above; nothing changed: no new version."""
        with self._write() as session:
            self._editor(session, by)
            return guidelines.record(session, self.labels, author=by, changes=changes, note=note)

    def pin_example(self, label: str, item: str, *, by: str) -> Guidelines:
        """Pin item ``item`` (external id) as an example of ``label``."""
        with self._write() as session:
            self._editor(session, by)
            return guidelines.pin(session, self.labels, author=by, label=label, external_id=item)

    def unpin_example(self, label: str, item: str, *, by: str) -> Guidelines:
        """Take item ``item`` off ``label``'s pinned examples."""
        with self._write() as session:
            self._editor(session, by)
            return guidelines.unpin(session, self.labels, author=by, label=label, external_id=item)

    def confused_pairs(self, *, limit: int | None = 10) -> list[ConfusedPair]:
        """The label pairs people confuse most (gold answers, disagreements on overlapped
        items, cleanlab's flags in the latest round), with whether the newest guidelines'
        exclude notes already name them: where an exclude note would help
        (:mod:`labeling.quality.confusion_pairs`). ``limit``: the top pairs (None: all)."""
        _round, review = latest_review(self)
        with self._read() as session:
            found = guidelines.current(session, self.labels)
            return confusion_pairs.confused_pairs(
                session,
                self.labels,
                multilabel=self.multilabel,
                excludes={name: guide.exclude for name, guide in found.labels.items()},
                checked=review["items"] if review else (),
                limit=limit,
            )

    def _editor(self, session: Any, name: str) -> None:
        person = users.get_annotator(session, name)
        roles.require(person.role, roles.ENGINEER, action="editing the guidelines", name=name)
