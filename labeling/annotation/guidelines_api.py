"""The Workspace calls for guidelines (labeling.annotation.guidelines): read any version, edit,
pin examples, and the history. :class:`labeling.workspace.Workspace` inherits them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labeling.annotation import guidelines, roles, users
from labeling.annotation.guidelines import Guidelines
from labeling.context import Context


class GuidelinesAPI(Context):
    """The guidelines (a codebook) annotators open with ``?`` on the Label page."""

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

    def _editor(self, session: Any, name: str) -> None:
        person = users.get_annotator(session, name)
        roles.require(person.role, roles.ENGINEER, action="editing the guidelines", name=name)
