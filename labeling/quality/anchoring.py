"""The anchoring check: do suggested answers pull people towards them?

Read from the current human answers on gold items given while suggestions were on (each answer
records the guess shown, or that one was withheld: labeling.annotation.suggestions). Three
figures, overall and per person, each with its counts and a 95% Wilson interval:

- ``shown``: gold accuracy of answers given with a guess on screen;
- ``withheld``: gold accuracy of answers whose guess was withheld by the random draw (the same
  kind of items, the same people: the comparison the draw makes fair);
- ``wrong_accepted``: of the answers shown a wrong guess, the share that took it.

An answer is right when it equals the gold label (for sets: the same set, exact match).
``difference`` is shown minus withheld accuracy, with Newcombe's interval for a difference of
two proportions (built from the two Wilson intervals): above 0, suggestions help; a wrong guess
accepted more often than people err without one is the sign of anchoring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from labeling.quality.sources import gold_checks, people_names
from labeling.store.models import Annotation, Item
from weak_supervision import wilson_interval


@dataclass
class _Tally:
    shown: list[int]  # [n, correct]
    withheld: list[int]
    wrong: list[int]  # [shown a wrong guess, took it]

    @classmethod
    def new(cls) -> _Tally:
        return cls([0, 0], [0, 0], [0, 0])

    def add(self, label: str, gold: str, guess: str | None, withheld: bool) -> None:
        right = int(label == gold)
        if withheld:
            self.withheld[0] += 1
            self.withheld[1] += right
        elif guess is not None:
            self.shown[0] += 1
            self.shown[1] += right
            if guess != gold:
                self.wrong[0] += 1
                self.wrong[1] += int(label == guess)


def proportion(n: int, k: int, key: str = "correct") -> dict[str, Any]:
    """``k`` of ``n`` as ``{"n", key: k, "rate", "low", "high"}``, with the 95% Wilson
    interval; rate and interval None at n 0. The shape every rate with an interval takes in
    status --json (labeling.figures.interval_share writes it out)."""
    interval = wilson_interval(k, n)
    return {
        "n": n,
        key: k,
        "rate": round(k / n, 4) if n else None,
        "low": round(interval[0], 4) if interval else None,
        "high": round(interval[1], 4) if interval else None,
    }


def _difference(shown: list[int], withheld: list[int]) -> dict[str, Any] | None:
    """Newcombe's hybrid score interval (method 10) for shown minus withheld accuracy."""
    a, b = wilson_interval(shown[1], shown[0]), wilson_interval(withheld[1], withheld[0])
    if a is None or b is None:
        return None
    p1, p2 = shown[1] / shown[0], withheld[1] / withheld[0]
    delta = p1 - p2
    low = delta - math.sqrt((p1 - a[0]) ** 2 + (b[1] - p2) ** 2)
    high = delta + math.sqrt((a[1] - p1) ** 2 + (p2 - b[0]) ** 2)
    return {"value": round(delta, 4), "low": round(low, 4), "high": round(high, 4)}


def _figures(tally: _Tally) -> dict[str, Any]:
    return {
        "shown": proportion(tally.shown[0], tally.shown[1], "correct"),
        "withheld": proportion(tally.withheld[0], tally.withheld[1], "correct"),
        "difference": _difference(tally.shown, tally.withheld),
        "wrong_accepted": proportion(tally.wrong[0], tally.wrong[1], "accepted"),
    }


def anchoring(
    session: Session, labels: tuple[str, ...], *, multilabel: bool = False
) -> dict[str, Any]:
    """The anchoring figures overall and per person (see the module); ``n`` counts the gold
    answers given with suggestions on (the gold checks of
    :func:`~labeling.quality.sources.gold_checks`)."""
    people = people_names(session)
    rows = session.exec(
        select(  # type: ignore[call-overload]
            Annotation.annotator_id,
            Annotation.label,
            Annotation.suggestion,
            Annotation.suggestion_withheld,
            Item.gold_label,
        )
        .join(Item, col(Item.id) == col(Annotation.item_id))
        .where(
            *gold_checks(labels, multilabel=multilabel),
            col(Annotation.suggestion_source).is_not(None),
        )
    ).all()
    total = _Tally.new()
    per: dict[str, _Tally] = {}
    for annotator_id, label, guess, withheld, gold in rows:
        name = people.get(annotator_id)
        if name is None or label is None or gold is None:
            continue
        total.add(label, gold, guess, bool(withheld))
        per.setdefault(name, _Tally.new()).add(label, gold, guess, bool(withheld))
    return {
        "n": total.shown[0] + total.withheld[0],
        **_figures(total),
        "annotators": {name: _figures(tally) for name, tally in sorted(per.items())},
    }
