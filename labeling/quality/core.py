"""Label quality, coverage and model metrics: what a lead reads before trusting the labels.

Everything here reads the store (and the round folders) and computes; nothing writes, except
:func:`adjudicate`. The numbers are gathered by :func:`summary` for ``labelloop status --json``,
the Metrics page and ``labelloop report``; docs/status.md documents every key.

- **Gold checks**: current answers on gold items (served unmarked at ``gold_rate``) against the
  gold label, per annotator and per day.
- **Agreement** where items have answers from two or more people: Cohen's kappa per annotator
  pair (scikit-learn), Krippendorff's alpha over everyone (nominal, the ``krippendorff``
  package), each with the number of items it rests on, and the label-by-label confusion of
  pairs of answers on the same item.
- **Coverage** of the pool: by people, by at least one LF, by a confident weak label, and
  combined (people or confident weak label), overall and per class.
- **Review** lists: items people disagree on, human labels a confident out-of-sample model or
  the weak label disagrees with, and likely label errors (cleanlab's ``find_label_issues`` on
  cross-validated probabilities computed by each round).
- **Stopping hint**: Cohen's kappa between successive promoted rounds' predictions on a fixed
  stop set (stabilising predictions, Bloodgood and Vijay-Shanker 2009).
- **Throughput** per annotator: labels per hour of labelling time, median seconds per item,
  skip rate.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func
from sqlmodel import Session, col, select

from labeling.errors import BadInput, UnknownLabel
from labeling.figures import plural, score
from labeling.store import db
from labeling.store.models import (
    ADJUDICATION,
    SYSTEM_ROLE,
    Annotation,
    Annotator,
    ImportBatch,
    Item,
    LabelingFunction,
    LFVote,
    Round,
    WeakLabel,
    utcnow,
)
from weak_supervision import coverage_totals

if TYPE_CHECKING:
    from labeling.context import Context

STOP_SET_FILE = "stop_set.json"
REVIEW_FILE = "review.json"
# Kappa between successive promoted rounds at or above this, three times running: stop.
STOP_KAPPA = 0.99
STOP_RUNS = 3
# Per item, labelling time above this counts as a break, not as work (labels per hour).
MAX_WORK_SECONDS = 300
REVIEW_KINDS = ("disagreement", "model", "weak", "likely_error")


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


# --------------------------------------------------------------------------- pure metrics


def cohen_kappa(a: list[str], b: list[str]) -> float | None:
    """Cohen's kappa of two raters on the same items; 1.0 when both always give one label."""
    from sklearn.metrics import cohen_kappa_score

    if not a:
        return None
    if len(set(a) | set(b)) == 1:
        return 1.0
    value = float(cohen_kappa_score(a, b))
    return None if np.isnan(value) else value


def krippendorff_alpha(units: list[list[str]], labels: tuple[str, ...]) -> float | None:
    """Krippendorff's alpha (nominal) over units, each the labels its raters gave.

    Units with fewer than two labels carry no information about agreement and are ignored by
    the formula. None when no unit has two labels or only one label value occurs at all.
    """
    import krippendorff

    paired = [unit for unit in units if len(unit) >= 2]
    if not paired or len({label for unit in paired for label in unit}) < 2:
        return None
    index = {label: i for i, label in enumerate(labels)}
    counts = np.zeros((len(paired), len(labels)), dtype=float)
    for row, unit in enumerate(paired):
        for label in unit:
            counts[row, index[label]] += 1
    value = float(krippendorff.alpha(value_counts=counts, level_of_measurement="nominal"))
    return None if np.isnan(value) else value


def pair_confusion(units: list[list[str]], labels: tuple[str, ...]) -> list[list[int]]:
    """Label-by-label counts over every pair of answers on the same item, both directions.

    Symmetric; the diagonal counts agreeing pairs twice, like every off-diagonal pair.
    """
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for unit in units:
        for x, y in combinations(unit, 2):
            matrix[index[x], index[y]] += 1
            matrix[index[y], index[x]] += 1
    return matrix.tolist()


def out_of_sample_proba(
    X: Any, y: np.ndarray, labels: tuple[str, ...], *, classifier: str = "logreg", seed: int = 0
) -> np.ndarray | None:
    """Cross-validated class probabilities (columns in ``labels`` order), never in-sample.

    Each item's probabilities come from a model trained on the other folds. None when there
    are too few labels (fewer than 10, or fewer than 2 classes with 2 items each).
    """
    from sklearn.model_selection import StratifiedKFold

    from labeling.rounds.learner import predict_proba, train

    counts = Counter(y.tolist())
    usable = [label for label, n in counts.items() if n >= 2]
    if len(y) < 10 or len(usable) < 2:
        return None
    folds = max(2, min(5, min(n for n in counts.values() if n >= 2)))
    proba = np.zeros((len(y), len(labels)))
    column = {label: i for i, label in enumerate(labels)}
    # A class with one item cannot be stratified; it still trains in every fold but its own.
    strata = np.array([label if counts[label] >= folds else "~rare" for label in y.tolist()])
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    weights = np.ones(len(y))
    for fit_rows, test_rows in splitter.split(np.zeros(len(y)), strata):
        if len(set(y[fit_rows].tolist())) < 2:
            return None
        model = train(X[fit_rows], y[fit_rows], weights[fit_rows], classifier=classifier)
        part = predict_proba(model, X[test_rows])
        for j, cls in enumerate(model.classes_):
            proba[test_rows, column[str(cls)]] = part[:, j]
    return proba


def likely_label_errors(y: np.ndarray, proba: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
    """Rows whose given label cleanlab's ``find_label_issues`` flags, most suspicious first."""
    from cleanlab.filter import find_label_issues

    index = {label: i for i, label in enumerate(labels)}
    given = np.array([index[label] for label in y.tolist()], dtype=np.int64)
    present = sorted(set(given.tolist()))
    if len(present) < 2:
        return np.array([], dtype=np.int64)
    # cleanlab wants every class column to occur among the labels: keep the present ones.
    remap = {old: new for new, old in enumerate(present)}
    sub = proba[:, present]
    sub = sub / np.clip(sub.sum(axis=1, keepdims=True), 1e-12, None)
    found = find_label_issues(
        labels=np.array([remap[g] for g in given.tolist()]),
        pred_probs=sub,
        return_indices_ranked_by="self_confidence",
    )
    return np.asarray(found, dtype=np.int64)


# --------------------------------------------------------------------------- reading answers


def _people(session: Session) -> dict[int, str]:
    return dict(
        session.exec(
            select(Annotator.id, Annotator.name).where(Annotator.role != SYSTEM_ROLE)
        ).all()  # type: ignore[arg-type]
    )


def _current_answers(session: Session, split: str) -> dict[int, dict[int, str]]:
    """item id -> {annotator id: label} over people's current (non-skip) answers."""
    found: dict[int, dict[int, str]] = defaultdict(dict)
    for item_id, annotator_id, label in session.exec(
        select(Annotation.item_id, Annotation.annotator_id, Annotation.label)
        .join(Item, col(Item.id) == col(Annotation.item_id))
        .where(
            Item.split == split,
            col(Annotation.superseded_by).is_(None),
            col(Annotation.label).is_not(None),
            Annotation.origin == "human",
        )
    ).all():
        if label is not None:
            found[item_id][annotator_id] = label
    return found


def gold_accuracy(session: Session, labels: tuple[str, ...]) -> dict[str, Any]:
    """Accuracy of each annotator's current answers on gold items, overall and per day."""
    people = _people(session)
    rows = session.exec(
        select(Annotation.annotator_id, Annotation.label, Annotation.created_at, Item.gold_label)
        .join(Item, col(Item.id) == col(Annotation.item_id))
        .where(
            Item.split == "gold",
            col(Annotation.superseded_by).is_(None),
            col(Annotation.label).is_not(None),
            Annotation.origin == "human",
            col(Item.gold_label).in_(labels),
        )
    ).all()
    per: dict[str, dict[str, Any]] = {}
    days: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    total = [0, 0]
    for annotator_id, label, created, gold in rows:
        name = people.get(annotator_id)
        if name is None:
            continue
        right = int(label == gold)
        entry = per.setdefault(name, {"n": 0, "correct": 0})
        entry["n"] += 1
        entry["correct"] += right
        day = days[name][created.date().isoformat()]
        day[0] += 1
        day[1] += right
        total[0] += 1
        total[1] += right
    for name, entry in per.items():
        entry["accuracy"] = _r(entry["correct"] / entry["n"])
        entry["by_day"] = [
            {"day": day, "n": n, "correct": c, "accuracy": _r(c / n)}
            for day, (n, c) in sorted(days[name].items())
        ]
    return {
        "n": total[0],
        "correct": total[1],
        "accuracy": _r(total[1] / total[0]) if total[0] else None,
        "annotators": dict(sorted(per.items())),
    }


def agreement(
    session: Session,
    labels: tuple[str, ...],
    *,
    answers: dict[int, dict[int, str]] | None = None,
) -> dict[str, Any]:
    """Pairwise Cohen's kappa, Krippendorff's alpha and the pair confusion on pool items.

    ``answers``: the pool's current answers (:func:`_current_answers`) when already read.
    """
    people = _people(session)
    if answers is None:
        answers = _current_answers(session, "pool")
    shared: dict[tuple[int, int], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    units: list[list[str]] = []
    for by_person in answers.values():
        if len(by_person) < 2:
            continue
        units.append(list(by_person.values()))
        for a, b in combinations(sorted(by_person), 2):
            first, second = shared[(a, b)]
            first.append(by_person[a])
            second.append(by_person[b])
    pairs = []
    for (a, b), (first, second) in sorted(shared.items()):
        if a not in people or b not in people:
            continue
        agree = sum(x == y for x, y in zip(first, second, strict=True))
        pairs.append(
            {
                "a": people[a],
                "b": people[b],
                "n": len(first),
                "kappa": _r(cohen_kappa(first, second)),
                "observed": _r(agree / len(first)),
            }
        )
    confusion = pair_confusion(units, labels)
    per_class: dict[str, float | None] = {}
    for i, label in enumerate(labels):
        row = sum(confusion[i])
        per_class[label] = _r(confusion[i][i] / row) if row else None
    return {
        "items": len(units),
        "alpha": _r(krippendorff_alpha(units, labels)),
        "alpha_items": len(units),
        "pairs": pairs,
        "confusion": {"labels": list(labels), "matrix": confusion},
        # Of the pairs of answers involving a class, the share where both gave it.
        "per_class": per_class,
    }


def current_answer_counts(
    session: Session, *, annotator_id: int | None = None
) -> dict[int, tuple[int, int]]:
    """Annotator id -> (current labels, current skips): answers not superseded since.

    The one definition of "labels" a person has now (My stats, the Metrics and report
    tables' "current labels"); an answer changed by undo or relabelling counts once.
    """
    query = (
        select(Annotation.annotator_id, col(Annotation.label).is_(None), func.count())
        .where(col(Annotation.superseded_by).is_(None), Annotation.origin == "human")
        .group_by(col(Annotation.annotator_id), col(Annotation.label).is_(None))
    )
    if annotator_id is not None:
        query = query.where(Annotation.annotator_id == annotator_id)
    found: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for who, is_skip, n in session.exec(query).all():
        found[who][1 if is_skip else 0] += n
    return {who: (labels, skips) for who, (labels, skips) in found.items()}


def throughput(session: Session, *, annotator_id: int | None = None) -> dict[str, dict[str, Any]]:
    """Per annotator: work done over every answer given (superseded ones included), and the
    current labels and skips (:func:`current_answer_counts`, as on My stats)."""
    people = _people(session)
    current = current_answer_counts(session, annotator_id=annotator_id)
    query = select(
        Annotation.annotator_id,
        Annotation.skipped,
        Annotation.duration_ms,
        Annotation.created_at,
    ).where(Annotation.origin == "human")
    if annotator_id is not None:
        query = query.where(Annotation.annotator_id == annotator_id)
    rows = session.exec(query).all()
    grouped: dict[str, list[tuple[bool, int | None, Any]]] = defaultdict(list)
    for annotator_id, skipped, duration, created in rows:
        if annotator_id in people:
            grouped[people[annotator_id]].append((bool(skipped), duration, created))
    result: dict[str, dict[str, Any]] = {}
    for name, answers in sorted(grouped.items()):
        labelled = sum(not skipped for skipped, _, _ in answers)
        skips = len(answers) - labelled
        seconds = [d / 1000 for _, d, _ in answers if d is not None]
        work = sum(min(s, MAX_WORK_SECONDS) for s in seconds)
        result[name] = {
            "answers": len(answers),
            "labels": labelled,
            "skips": skips,
            "current_labels": 0,
            "current_skips": 0,
            "skip_rate": _r(skips / len(answers)),
            "median_seconds": _r(statistics.median(seconds)) if seconds else None,
            "work_hours": _r(work / 3600),
            "labels_per_hour": _r(labelled / (work / 3600)) if work > 0 else None,
            "first": min(c for _, _, c in answers).isoformat(),
            "last": max(c for _, _, c in answers).isoformat(),
        }
    for annotator_id, (labels_now, skips_now) in current.items():
        if annotator_id in people and people[annotator_id] in result:
            entry = result[people[annotator_id]]
            entry["current_labels"], entry["current_skips"] = labels_now, skips_now
    return result


def coverage(
    session: Session,
    labels: tuple[str, ...],
    weak_threshold: float,
    *,
    human: dict[int, str] | None = None,
) -> dict[str, Any]:
    """How much of the pool has a label: people, LFs, confident weak labels, combined.

    The one reading of the store behind every coverage figure (``status``, the Metrics page,
    the report, the LF page and ``lf analyze``); the definitions are those of
    :func:`weak_supervision.coverage_totals`. LF votes count when they come from an active LF
    at its current version (an edited LF's old votes do not). ``human``: the pool's labels
    from people (``rounds.human_labels``) when already read.
    """
    from labeling.store.answers import human_labels

    if human is None:
        human = human_labels(session, labels)
    index = {label: k for k, label in enumerate(labels)}
    pool = session.exec(select(func.count()).where(Item.split == "pool")).one()
    votes = session.exec(
        select(LFVote.item_id, LFVote.label)
        .join(LabelingFunction, col(LabelingFunction.id) == col(LFVote.lf_id))
        .join(Item, col(Item.id) == col(LFVote.item_id))
        .where(
            col(LabelingFunction.active).is_(True),
            col(LFVote.lf_version) == col(LabelingFunction.version),
            Item.split == "pool",
        )
        .distinct()
    ).all()
    weak_rows = session.exec(
        select(WeakLabel.item_id, WeakLabel.label, WeakLabel.confidence)
        .join(Item, col(Item.id) == col(WeakLabel.item_id))
        .where(Item.split == "pool")
    ).all()
    # Only the pool items something covers become rows; the rest of the pool counts through
    # ``rows`` (a million-item pool is not read to learn that most of it is empty).
    row: dict[int, int] = {}
    for item_id in [*human, *(v[0] for v in votes), *(w[0] for w in weak_rows)]:
        row.setdefault(item_id, len(row))
    n = len(row)
    # One column per class: the class where at least one LF voted it (the pure function only
    # needs "some LF voted k on this row", not which LF).
    L = np.full((n, len(labels)), -1, dtype=np.int64)
    for item_id, label in votes:
        if label in index:
            L[row[item_id], index[label]] = index[label]
    people = np.full(n, -1, dtype=np.int64)
    for item_id, label in human.items():
        if label in index:
            people[row[item_id]] = index[label]
    weak = np.full(n, -1, dtype=np.int64)
    confidence = np.zeros(n)
    for item_id, label, conf in weak_rows:
        if label in index:
            weak[row[item_id]] = index[label]
            confidence[row[item_id]] = conf
    totals = coverage_totals(
        L,
        labels,
        human=people,
        weak=weak,
        weak_confidence=confidence,
        weak_threshold=weak_threshold,
        rows=pool,
    )
    for key in ("human", "lf", "weak", "weak_any", "combined"):
        totals[key] = _r(totals[key])
    totals["per_class"] = {
        label: {key: _r(share) for key, share in shares.items()}
        for label, shares in totals["per_class"].items()
    }
    return totals


# --------------------------------------------------------------------------- rounds


def round_file(ws: Context, round_: Round, name: str) -> Any | None:
    if not round_.model_path:
        return None
    path = ws.root / round_.model_path / name
    if not path.exists():
        return None
    return json.loads(path.read_text())


def model_metrics(ws: Context) -> dict[str, Any]:
    """Per succeeded round: gold (or cross-validated) scores, the pool's predicted mix."""
    with db.read_session(ws.engine) as session:
        rounds = session.exec(
            select(Round).where(Round.status == "succeeded").order_by(col(Round.id))
        ).all()
    rows = []
    for round_ in rounds:
        metrics = json.loads(round_.metrics or "{}")
        scored = metrics.get("gold") or metrics.get("cv") or {}
        rows.append(
            {
                "round": round_.id,
                "promoted": bool(round_.promoted),
                "was_promoted": round_.promoted_at is not None,
                "finished_at": round_.finished_at.isoformat() if round_.finished_at else None,
                "n_human": round_.n_human,
                "n_weak": round_.n_weak,
                "evaluation": metrics.get("evaluation", "none"),
                "accuracy": scored.get("accuracy"),
                "macro_f1": scored.get("macro_f1"),
                "per_class": scored.get("per_class"),
                "confusion": scored.get("confusion"),
                "pool_mix": metrics.get("pool_mix"),
                "coverage": metrics.get("coverage"),
            }
        )
    promoted = next((row for row in reversed(rows) if row["promoted"]), None)
    return {
        "labels": list(ws.labels),
        "rounds": rows,
        "promoted": promoted["round"] if promoted else None,
        "learning_curve": [
            {"round": r["round"], "labels": r["n_human"], "macro_f1": r["macro_f1"]}
            for r in rows
            if r["macro_f1"] is not None
        ],
    }


def stopping(ws: Context) -> dict[str, Any]:
    """Kappa between successive promoted rounds' predictions on the stop set."""
    with db.read_session(ws.engine) as session:
        rounds = session.exec(
            select(Round)
            .where(Round.status == "succeeded", col(Round.promoted_at).is_not(None))
            .order_by(col(Round.id))
        ).all()
    series = []
    previous: tuple[int, dict[int, str]] | None = None
    for round_ in rounds:
        found = round_file(ws, round_, STOP_SET_FILE)
        if not found:
            continue
        assert round_.id is not None
        current = dict(zip(found["item_ids"], found["predictions"], strict=True))
        if previous is not None:
            common = sorted(set(previous[1]) & set(current))
            kappa = cohen_kappa([previous[1][i] for i in common], [current[i] for i in common])
            series.append(
                {"round": round_.id, "previous": previous[0], "n": len(common), "kappa": _r(kappa)}
            )
        previous = (round_.id, current)
    run = 0
    for entry in reversed(series):
        if entry["kappa"] is not None and entry["kappa"] >= STOP_KAPPA:
            run += 1
        else:
            break
    stop = run >= STOP_RUNS
    return {
        "threshold": STOP_KAPPA,
        "runs_needed": STOP_RUNS,
        "stable_runs": run,
        "stop": stop,
        "kappas": series,
        "message": _stopping_message(series, run, promoted=len(rounds)),
    }


def _stopping_message(series: list[dict[str, Any]], run: int, *, promoted: int) -> str:
    """The stopping hint in words: the kappas it rests on and how many more rounds it needs."""
    if run >= STOP_RUNS:
        return (
            f"Predictions on the stop set have agreed at kappa >= {STOP_KAPPA} for "
            f"{plural(run, 'promoted round')} in a row: more labels are unlikely to change "
            "the model."
        )
    if not series:
        return (
            "Two promoted rounds are needed before predictions can be compared; "
            f"there {'is' if promoted == 1 else 'are'} {plural(promoted, 'promoted round')} "
            "so far."
        )
    shown = series[-STOP_RUNS:]
    values = ", ".join(
        f"{score(k['kappa'])} (round {k['round']} vs {k['previous']})" for k in shown
    )
    more = STOP_RUNS - run
    return (
        f"Keep labelling: round-to-round kappa on the stop set "
        f"{'is' if len(shown) == 1 else 'was'} {values}. Stopping needs "
        f"{STOP_RUNS} in a row at or above {STOP_KAPPA}; "
        f"{'none of the latest reaches' if run == 0 else f'the latest {run} reach'} it, so "
        f"at least {plural(more, 'more promoted round')} {'is' if more == 1 else 'are'} needed."
    )


def drift_reports(session: Session) -> list[dict[str, Any]]:
    reports = []
    for batch in session.exec(
        select(ImportBatch).where(ImportBatch.split == "pool").order_by(col(ImportBatch.id))
    ).all():
        found = json.loads(batch.drift or "{}")
        # An import with nothing to compare against (the first one) is not a report.
        if found and (found.get("auc") is not None or "error" in found):
            reports.append(
                found
                | {
                    "batch": batch.id,
                    "source": batch.source_name,
                    "priority_left": batch.priority_left,
                }
            )
    return reports


# --------------------------------------------------------------------------- review


def _latest_review(ws: Context) -> tuple[int | None, dict[str, Any] | None]:
    with db.read_session(ws.engine) as session:
        rounds = session.exec(
            select(Round).where(Round.status == "succeeded").order_by(col(Round.id).desc())
        ).all()
    for round_ in rounds:
        found = round_file(ws, round_, REVIEW_FILE)
        if found is not None:
            return round_.id, found
    return None, None


def review_items(
    ws: Context,
    *,
    limit: int | None = 200,
    answers: dict[int, dict[int, str]] | None = None,
    current: dict[int, str] | None = None,
) -> dict[str, Any]:
    """Items a lead should look at, by kind, with what each source says about them.

    ``model`` and ``likely_error`` come from the latest round's cross-validated probabilities
    and only list items whose label has not changed since (nor been adjudicated).
    ``answers`` and ``current``: the pool's current answers and labels from people, when the
    caller has read them already (see :func:`summary`).
    """
    labels = ws.labels
    config = ws.config
    with db.read_session(ws.engine) as session:
        people = _people(session)
        if answers is None:
            answers = _current_answers(session, "pool")
        decided = dict(
            session.exec(
                select(Annotation.item_id, Annotation.label).where(
                    Annotation.origin == ADJUDICATION, col(Annotation.superseded_by).is_(None)
                )
            ).all()  # type: ignore[arg-type]
        )
        if current is None:
            from labeling.store.answers import human_labels

            current = human_labels(session, labels)
        weak = {
            item_id: (label, confidence)
            for item_id, label, confidence in session.exec(
                select(WeakLabel.item_id, WeakLabel.label, WeakLabel.confidence).where(
                    WeakLabel.confidence >= config.weak_threshold
                )
            ).all()
        }
    round_id, review = _latest_review(ws)
    # item id -> (out-of-sample prediction, confidence), from the latest round's check.
    checked: dict[int, tuple[str, float]] = {
        row[0]: (row[2], row[3]) for row in (review["items"] if review else [])
    }
    lists: dict[str, list[dict[str, Any]]] = {kind: [] for kind in REVIEW_KINDS}
    for item_id, by_person in answers.items():
        if item_id in decided or len(set(by_person.values())) < 2:
            continue
        votes = Counter(by_person.values())
        lists["disagreement"].append(
            {
                "item_id": item_id,
                "label": current.get(item_id),
                "score": 1 - max(votes.values()) / sum(votes.values()),
            }
        )
    for item_id, (label, confidence) in weak.items():
        mine = current.get(item_id)
        if mine is not None and item_id not in decided and label != mine:
            lists["weak"].append(
                {"item_id": item_id, "label": mine, "suggested": label, "score": _r(confidence)}
            )
    if review:
        for item_id, given, predicted, confidence, _p_given, flagged in review["items"]:
            if item_id in decided or current.get(item_id) != given:
                continue
            if predicted != given and confidence >= config.review_confidence:
                lists["model"].append(
                    {
                        "item_id": item_id,
                        "label": given,
                        "suggested": predicted,
                        "score": confidence,
                    }
                )
            if flagged:
                lists["likely_error"].append(
                    {
                        "item_id": item_id,
                        "label": given,
                        "suggested": predicted,
                        "score": confidence,
                    }
                )
    counts = {kind: len(entries) for kind, entries in lists.items()}
    for kind in lists:
        lists[kind].sort(key=lambda e: (-(e["score"] or 0), e["item_id"]))
        if limit is not None:
            lists[kind] = lists[kind][:limit]
    wanted = {e["item_id"] for entries in lists.values() for e in entries}
    with db.read_session(ws.engine) as session:
        items = (
            {
                item_id: (external_id, text)
                for item_id, external_id, text in session.exec(
                    select(Item.id, Item.external_id, Item.text).where(col(Item.id).in_(wanted))
                ).all()
            }
            if wanted
            else {}
        )
    for entries in lists.values():
        for entry in entries:
            external_id, text = items.get(entry["item_id"], (None, ""))
            entry["id"] = external_id
            entry["text"] = text
            entry["answers"] = {
                people.get(a, str(a)): lab for a, lab in answers.get(entry["item_id"], {}).items()
            }
            entry["weak"] = weak.get(entry["item_id"], (None, None))[0]
            entry["model"] = checked.get(entry["item_id"])
    return {
        "round": round_id,
        "counts": counts,
        "adjudicated": len(decided),
        "items": lists,
        "likely_errors_checked": len(review["items"]) if review else 0,
    }


def adjudicate(
    session: Session, *, lead: Annotator, item_id: int, label: str, labels: tuple[str, ...]
) -> Annotation:
    """Record the lead's final label: an annotation of its own that overrides the majority.

    A previous adjudication of the item is superseded; people's answers stay as they were.
    """
    if label not in labels:
        raise UnknownLabel(f"label {label!r} is not one of: {', '.join(labels)}")
    item = session.get(Item, item_id)
    if item is None:
        raise BadInput(f"no item has the row id {item_id} (it may have been removed)")
    if item.split != "pool":
        raise BadInput(f"item {item.external_id!r} is a gold item; its gold label is final")
    assert lead.id is not None
    previous = session.exec(
        select(Annotation).where(
            Annotation.item_id == item_id,
            Annotation.origin == ADJUDICATION,
            col(Annotation.superseded_by).is_(None),
        )
    ).all()
    decision = Annotation(
        item_id=item_id,
        annotator_id=lead.id,
        label=label,
        skipped=False,
        origin=ADJUDICATION,
        created_at=utcnow(),
    )
    session.add(decision)
    session.flush()
    for old in previous:
        old.superseded_by = decision.id
        session.add(old)
    session.flush()
    return decision


# --------------------------------------------------------------------------- everything


def summary(ws: Context) -> dict[str, Any]:
    """Every metric, as ``status --json`` carries it under coverage/quality/model/..."""
    from labeling.store.answers import human_labels

    labels = ws.labels
    with db.read_session(ws.engine) as session:
        # Read once, used by coverage, agreement and the review counts.
        answers = _current_answers(session, "pool")
        human = human_labels(session, labels)
        cover = coverage(session, labels, ws.config.weak_threshold, human=human)
        gold = gold_accuracy(session, labels)
        agree = agreement(session, labels, answers=answers)
        speed = throughput(session)
        drift = drift_reports(session)
    review = review_items(ws, limit=0, answers=answers, current=human)
    model = model_metrics(ws)
    cover["rounds"] = [
        {"round": r["round"], "labels": r["n_human"], **(r["coverage"] or {})}
        for r in model["rounds"]
        if r["coverage"]
    ]
    return {
        "coverage": cover,
        "quality": {
            "gold": gold,
            "agreement": agree,
            "review": {
                "round": review["round"],
                "counts": review["counts"],
                "adjudicated": review["adjudicated"],
                "likely_errors_checked": review["likely_errors_checked"],
            },
        },
        "model": model,
        "stopping": stopping(ws),
        "drift": drift,
        "throughput": speed,
    }


def stop_set_ids(ws: Context, pool_item_ids: np.ndarray) -> np.ndarray:
    """The fixed stop set: chosen once (seeded) among the pool, kept in models/stop_set.json.

    It need not be labelled; a stop set chosen again later would compare different items.
    """
    path = Path(ws.models_dir) / STOP_SET_FILE
    if path.exists():
        return np.array(json.loads(path.read_text())["item_ids"], dtype=np.int64)
    rng = np.random.default_rng(ws.config.queue_seed)
    n = min(ws.config.stop_set_size, len(pool_item_ids))
    chosen = np.sort(rng.choice(pool_item_ids, size=n, replace=False)) if n else pool_item_ids[:0]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"item_ids": chosen.tolist()}))
    tmp.replace(path)
    return chosen.astype(np.int64)
