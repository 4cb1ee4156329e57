"""Model metrics over rounds, and when to stop labelling.

- **Model metrics**: per succeeded round, its gold (or cross-validated) scores, the pool's
  predicted label mix, the learning curve.
- **Stopping hint**: Cohen's kappa between successive promoted rounds' predictions on a fixed
  stop set (stabilising predictions, Bloodgood and Vijay-Shanker 2009). Each round predicts
  the stop set (:func:`stop_set_ids`) and writes ``stop_set.json`` in its folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sqlmodel import Session, col, select

from labeling.context import Context
from labeling.figures import plural, score
from labeling.quality.agreement import cohen_kappa
from labeling.quality.sources import round_file, rounded
from labeling.store import db
from labeling.store.models import Round

STOP_SET_FILE = "stop_set.json"
# Kappa between successive promoted rounds at or above this, three times running: stop.
STOP_KAPPA = 0.99
STOP_RUNS = 3


# The figures a multi-label round adds to each round's row (labeling.quality.multilabel).
SET_FIGURES = ("micro_f1", "hamming_loss", "subset_accuracy", "jaccard")


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
                # The featurizer and classifier trained, and with `auto` why (docs/status.md).
                "representation": metrics.get("representation"),
            }
            # Multi-label rounds: the set figures beside accuracy (exact match) and macro-F1.
            | {key: scored[key] for key in SET_FIGURES if key in scored}
        )
    promoted = next((row for row in reversed(rows) if row["promoted"]), None)
    return {
        "labels": list(ws.labels),
        "rounds": rows,
        "promoted": promoted["round"] if promoted else None,
        "representation": (rows[-1]["representation"] if rows else None),
        "learning_curve": [
            {"round": r["round"], "labels": r["n_human"], "macro_f1": r["macro_f1"]}
            for r in rows
            if r["macro_f1"] is not None
        ],
    }


def stopping(ws: Context) -> dict[str, Any]:
    """Kappa between successive promoted rounds' predictions on the stop set."""
    with db.read_session(ws.engine) as session:
        return stopping_in(session, ws)


def stopping_in(session: Session, ws: Context) -> dict[str, Any]:
    """:func:`stopping` as ``session`` sees the rounds (a promotion's own transaction, which
    tells webhooks when the hint first says stop)."""
    rounds = session.exec(
        select(Round)
        .where(Round.status == "succeeded", col(Round.promoted_at).is_not(None))
        .order_by(col(Round.id))
        .execution_options(populate_existing=True)
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
                {
                    "round": round_.id,
                    "previous": previous[0],
                    "n": len(common),
                    "kappa": rounded(kappa),
                }
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
        "message": stopping_message(series, run, promoted=len(rounds)),
    }


def stopping_message(series: list[dict[str, Any]], run: int, *, promoted: int) -> str:
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
