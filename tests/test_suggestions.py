"""Suggestions: the guess the Label page pre-selects (off, the weak label, the model), the
anchoring check's withheld draw on gold items, and what each answer records about it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlmodel import Session, select

from labeling import Workspace
from labeling.annotation.suggestions import Suggestion, holdout_draw
from labeling.config import write_config
from labeling.errors import BadInput, ConfigError, UnknownLabel
from labeling.store.models import Annotation

TEXTS = {
    f"p{i}": (f"buy cheap pills now {i}" if i % 2 else f"see you at lunch {i}") for i in range(8)
}


def _workspace(tmp_path, db_url=None, **settings) -> Workspace:
    ws = Workspace.create(tmp_path / "ws", labels=["spam", "ham"], db_url=db_url)
    pool = tmp_path / "pool.csv"
    pool.write_text("id,text\n" + "".join(f"{k},{v}\n" for k, v in TEXTS.items()))
    ws.import_file(pool, id_field="id")
    gold = tmp_path / "gold.csv"
    gold.write_text("id,text,label\n" + "".join(f"g{i},cheap pills {i},spam\n" for i in range(6)))
    ws.import_file(gold, id_field="id", label_field="label", split="gold")
    ws.add_rule({"kind": "keyword", "name": "pills", "label": "spam", "keywords": ["pills"]})
    ws.add_rule({"kind": "keyword", "name": "lunch", "label": "ham", "keywords": ["lunch"]})
    ws.apply_lfs()
    ws.fit_weak_labels()
    ws.add_user("ann")
    if settings:
        write_config(ws.root, replace(ws.config, **settings))
        ws.close()
        ws = (
            Workspace.open(tmp_path / "ws", db_url=db_url)
            if db_url
            else Workspace.open(tmp_path / "ws")
        )
    return ws


def _recorded(ws: Workspace) -> list[tuple[str | None, str | None, bool]]:
    with Session(ws.engine) as session:
        rows = session.exec(select(Annotation).where(Annotation.origin == "human")).all()
        return [(r.suggestion, r.suggestion_source, r.suggestion_withheld) for r in rows]


def test_off_by_default_suggests_and_records_nothing(tmp_path):
    ws = _workspace(tmp_path)
    item = ws.next_item("ann")
    assert ws.suggestion(item.item_id, "ann") == Suggestion()
    ws.annotate(item.item_id, "ann", "spam", suggestion=ws.suggestion(item.item_id, "ann"))
    assert _recorded(ws) == [(None, None, False)]
    ws.close()


def test_the_weak_label_is_suggested_and_recorded_with_the_answer(tmp_path, db_url):
    ws = _workspace(tmp_path, db_url, suggestions="weak", gold_rate=0.0)
    item = ws.next_item("ann")
    shown = ws.suggestion(item.item_id, "ann")
    expected = "spam" if "pills" in item.text else "ham"
    assert (shown.value, shown.source, shown.withheld) == (expected, "weak", False)
    assert shown.confidence is not None
    following = ws.answer_and_next(item.item_id, "ann", "ham", suggestion=shown)
    assert _recorded(ws) == [(expected, "weak", False)]
    ws.skip(following.item_id, "ann", suggestion=ws.suggestion(following.item_id, "ann"))
    assert len(_recorded(ws)) == 2 and _recorded(ws)[1][1] == "weak"
    ws.close()


def test_gold_items_are_withheld_by_a_fixed_draw(tmp_path):
    ws = _workspace(tmp_path, suggestions="weak", gold_rate=0.5, suggestion_holdout=1.0)
    seen_gold = 0
    for _ in range(14):
        item = ws.next_item("ann")
        if item is None:
            break
        shown = ws.suggestion(item.item_id, "ann")
        assert ws.suggestion(item.item_id, "ann") == shown  # the same on every look
        if item.external_id.startswith("g"):
            seen_gold += 1
            assert shown.withheld and shown.value is None and shown.source == "weak"
        else:
            assert not shown.withheld and shown.value is not None
        ws.annotate(item.item_id, "ann", "spam", suggestion=shown)
    assert seen_gold > 0
    withheld = [r for r in _recorded(ws) if r[2]]
    assert len(withheld) == seen_gold and all(r[0] is None for r in withheld)
    ws.close()


def test_the_draw_is_a_fair_share_and_independent_per_pair():
    draws = [holdout_draw(a, i, 0.3) for a in range(40) for i in range(500)]
    assert 0.28 < sum(draws) / len(draws) < 0.32
    assert not any(holdout_draw(1, i, 0.0) for i in range(200))
    assert all(holdout_draw(1, i, 1.0) for i in range(200))
    # one person's draws do not decide another's
    assert [holdout_draw(1, i, 0.5) for i in range(64)] != [
        holdout_draw(2, i, 0.5) for i in range(64)
    ]


def test_bad_suggestions_are_refused_and_nothing_is_recorded(tmp_path):
    ws = _workspace(tmp_path, suggestions="weak")
    item = ws.next_item("ann")
    with pytest.raises(UnknownLabel):
        ws.annotate(item.item_id, "ann", "spam", suggestion=Suggestion("eggs", "weak"))
    with pytest.raises(BadInput, match="suggestion source 'oracle'"):
        ws.annotate(item.item_id, "ann", "spam", suggestion=Suggestion("spam", "oracle"))
    assert _recorded(ws) == []
    ws.close()


def test_the_settings_are_checked(tmp_path):
    ws = _workspace(tmp_path)
    write_config(ws.root, replace(ws.config, suggestions="always"))
    ws.close()
    with pytest.raises(
        ConfigError, match="key 'suggestions': expected one of off, model, llm, weak"
    ):
        Workspace.open(tmp_path / "ws")


def test_the_model_suggests_its_promoted_prediction_as_the_hint_shows_it(tmp_path):
    ws = _workspace(tmp_path, suggestions="model", featurizer="tfidf", gold_rate=0.0)
    assert ws.suggestion(ws.next_item("ann").item_id, "ann").value is None  # no model yet
    for _ in range(4):
        item = ws.next_item("ann")
        ws.annotate(item.item_id, "ann", "spam" if "pills" in item.text else "ham")
    assert ws.retrain().status == "succeeded"
    item = ws.next_item("ann")
    shown = ws.suggestion(item.item_id, "ann")
    hint = ws.hint(item.item_id)
    assert hint is not None and (shown.value, shown.confidence) == (
        hint.prediction,
        hint.confidence,
    )
    assert shown.source == "model"
    ws.close()
