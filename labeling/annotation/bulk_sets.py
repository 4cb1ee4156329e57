"""Bulk actions on label sets (multi-label workspaces): add a label to each item's set, remove
one from it, or set the whole set.

Each selected item's new answer is its current set with the change applied. The items a batch
writes have no label from a person, an import or a decision (:mod:`labeling.annotation.bulk`
leaves those alone), so an item's current set is its newest bulk answer's, or none. An item with
no set starts from the empty set for ``add`` and ``set``; ``remove`` leaves it without one, as
there is nothing to remove: writing the empty set would answer "none of the labels apply", a
claim about every label that the audit ("does X not apply?") never checked. An item whose set
the action would not change (``add`` to a set that holds the label, ``remove`` from one that
lacks it, ``set`` to the set it has) is left as it is and counted as ``skipped_unchanged``: the
batch writes, and its audit samples, only the items it changes.

Pure: no store access. :func:`set_action` is the one check of what the API is given.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from labeling.errors import BadInput, UnknownLabel
from labeling.store import labelsets

ADD, REMOVE, SET = "add", "remove", "set"
ACTIONS = (ADD, REMOVE, SET)


@dataclass(frozen=True)
class SetAction:
    """What a batch does to each item's set: ``action`` with ``names`` (one label for add and
    remove, the whole set for set), in a workspace whose labels are ``order``."""

    action: str
    names: frozenset[str]
    order: tuple[str, ...]

    def applied(self, current: frozenset[str] | None) -> frozenset[str] | None:
        """The item's new set from its current one (None: it has none), or None when the
        action leaves the item as it is."""
        if self.action == REMOVE:
            changed = None if current is None else current - self.names
        elif self.action == ADD:
            changed = (current or frozenset()) | self.names
        else:
            changed = self.names
        return None if changed == current else changed

    def new_value(self, stored: str | None) -> str | None:
        """:meth:`applied` on a stored set (``labeling.store.labelsets``), giving the stored
        form of the new set, or None when the item is left as it is."""
        changed = self.applied(None if stored is None else labelsets.decode(stored))
        return None if changed is None else labelsets.encode(changed, self.order)

    @property
    def value(self) -> str:
        """The label (add, remove) or the set as people write it (``a|b``, ``[]``)."""
        return labelsets.readable(labelsets.encode(self.names, self.order)) or ""

    def words(self) -> str:
        """The action as the batch list shows it: ``add billing``, ``set billing|refund``."""
        return f"{self.action} {self.value}"

    def question(self) -> str:
        """What the audit asks of each sampled item (answered yes or no)."""
        if self.action == ADD:
            return f"does {self.value!r} apply?"
        if self.action == REMOVE:
            return f"is {self.value!r} wrong for it (does it not apply)?"
        if not self.names:
            return "does none of the labels apply (the empty set, [])?"
        return f"is {self.value} exactly its set of labels?"


def set_action(
    action: str | None,
    label: str | Collection[str] | None,
    labels: tuple[str, ...],
    multilabel: bool,
) -> SetAction | None:
    """The bulk action the API was given: None in a single-label workspace (where ``action``
    must not be given), a :class:`SetAction` in a multi-label one (where it must)."""
    if not multilabel:
        if action is not None:
            raise BadInput(
                f"bulk action {action!r}: this workspace is single-label, where a bulk label "
                "gives each item one label; leave the action out"
            )
        return None
    if action is None:
        raise BadInput(
            "bulk labelling in a multi-label workspace: say what to do to each item's set, "
            "action='add' or 'remove' with one label, or action='set' with a set of labels, "
            f"e.g. label={[labels[0], labels[-1]]!r} ([] for the empty set)"
        )
    if action not in ACTIONS:
        raise BadInput(f"bulk action: expected one of {', '.join(ACTIONS)}, found {action!r}")
    if action == SET:
        if label is None or isinstance(label, str):
            raise UnknownLabel(
                f"bulk action 'set': expected a set of labels, e.g. [{labels[0]!r}] (an empty "
                f"set for none of them), found {label!r}"
            )
        names = frozenset(label)
    else:
        if not isinstance(label, str):
            raise UnknownLabel(
                f"bulk action {action!r}: expected one label from {', '.join(labels)}, found "
                f"{label!r} (to give a whole set, use the action 'set')"
            )
        names = frozenset([label])
    unknown = sorted(names - set(labels))
    if unknown:
        raise UnknownLabel(f"label {unknown[0]!r} is not one of: {', '.join(labels)}")
    return SetAction(action, names, labels)
