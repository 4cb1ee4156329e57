"""The zero-shot start: scores and calibration, the ``auto`` rule, the prior's fade as labels
arrive, the LF ``zero_shot`` in the analysis, the fallbacks (the LLM LF's kept votes, then
diversity) and ``simulate --zero-shot``. Workspace tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from labeling import Workspace
from labeling.annotation.guidelines import LabelGuide
from labeling.cli.main import app
from labeling.config import write_config
from labeling.rounds import zero_shot_round
from labeling.rounds.zero_shot import (
    DEFAULT_TEMPERATURE,
    Calibration,
    align_columns,
    all_defined,
    blend,
    cosine_scores,
    description_texts,
    fade_weight,
    fit_calibration,
    prior_batch,
    probabilities,
    vote_codes,
)
from labeling.store.models import Item, LabelingFunction, LFVote, Score
from tests.conftest import YOUTUBE

runner = CliRunner()
SPAM = [
    "subscribe to my channel for free gift cards",
    "check out my channel and click this link to win money",
    "visit my page, follow me and get cheap deals",
    "make money fast from home, click the link in my profile",
    "free iphone giveaway, subscribe and share now",
]
HAM = [
    "this song is beautiful, I love her voice",
    "great video, the dancing is amazing",
    "I have listened to this song a hundred times",
    "the singer looks so happy in this clip",
    "this music brings back memories of summer",
]
DEFINITIONS = {
    "spam": "Advertising or self-promotion: asks to subscribe, visit a channel or click a link.",
    "ham": "A genuine comment by a viewer about the song, the video or the singer.",
}


def _workspace(tmp_path, db_url, *, defined: bool = True, zero_shot: str = "auto") -> Workspace:
    """40 pool comments, 8 gold ones (4 per label); tf-idf rounds, no hidden gold checks."""
    ws = Workspace.create(tmp_path / "zs", labels=["spam", "ham"], db_url=db_url)
    ws.config = replace(ws.config, featurizer="tfidf", gold_rate=0.0, zero_shot=zero_shot)
    write_config(ws.root, ws.config)
    pool = tmp_path / "pool.csv"
    texts = [f"{t} {i}" for i in range(4) for t in SPAM + HAM]
    pool.write_text("id,text\n" + "".join(f'p{i},"{t}"\n' for i, t in enumerate(texts)))
    ws.import_file(pool, id_field="id")
    gold = tmp_path / "gold.csv"
    rows = [(t, "spam") for t in SPAM[:4]] + [(t, "ham") for t in HAM[:4]]
    gold.write_text(
        "id,text,label\n" + "".join(f'g{i},"{t} gold",{y}\n' for i, (t, y) in enumerate(rows))
    )
    ws.import_file(gold, id_field="id", label_field="label", split="gold")
    ws.add_user("eng", role="engineer")
    ws.add_user("ann")
    if defined:
        ws.edit_guidelines(
            {"labels": {k: {"definition": v} for k, v in DEFINITIONS.items()}}, by="eng"
        )
    return ws


def _zero_shot_votes(ws: Workspace) -> dict[int, str]:
    with Session(ws.engine) as session:
        lf = session.exec(
            select(LabelingFunction).where(LabelingFunction.name == "zero_shot")
        ).first()
        if lf is None:
            return {}
        return {
            v.item_id: v.label for v in session.exec(select(LFVote).where(LFVote.lf_id == lf.id))
        }


def _texts(ws: Workspace) -> dict[int, str]:
    with Session(ws.engine) as session:
        return {i.id: i.text for i in session.exec(select(Item)).all()}


# ------------------------------------------------------------------------------ the numbers


def test_cosine_scores_and_the_softmax_at_the_default_temperature():
    items = np.array([[1, 0], [0.6, 0.8], [0, 1]], dtype=np.float32)
    labels = np.array([[1, 0], [0, 1]], dtype=np.float32)
    cosines = cosine_scores(items, labels)
    assert np.allclose(cosines, [[1, 0], [0.6, 0.8], [0, 1]])
    proba = probabilities(cosines, Calibration(DEFAULT_TEMPERATURE, np.zeros(2)))
    assert np.allclose(proba.sum(axis=1), 1)
    assert proba[0, 0] == pytest.approx(1 / (1 + np.exp(-1 / DEFAULT_TEMPERATURE)))
    assert proba[1, 1] > 0.5 and vote_codes(proba, 0.99).tolist() == [0, -1, 1]


def test_calibration_is_fitted_on_gold_and_defaults_without_enough():
    rng = np.random.default_rng(0)
    true_temperature, bias = 0.1, np.array([0.5, -0.5, 0.0])
    cosines = rng.uniform(0, 0.6, size=(600, 3))
    proba = probabilities(cosines, Calibration(true_temperature, bias))
    y = np.array([rng.choice(3, p=row) for row in proba])
    fitted = fit_calibration(cosines, y)
    assert fitted.gold == 600
    assert fitted.temperature == pytest.approx(true_temperature, rel=0.25)
    assert fitted.bias[0] > fitted.bias[2] > fitted.bias[1]
    few = fit_calibration(cosines[:5], np.array([0, 0, 1, 1, 2]))  # < 3 per label
    assert few.gold == 0 and few.temperature == DEFAULT_TEMPERATURE


def test_descriptions_use_definitions_and_include_notes_else_the_name():
    guides = {"spam": LabelGuide(definition="Ads.", include="Links too.")}
    assert description_texts(["spam", "ham"], guides) == ["spam: Ads. Links too.", "ham"]
    assert not all_defined(["spam", "ham"], guides)
    assert all_defined(["spam"], guides)


def test_the_prior_fades_exactly_as_defined():
    weights = [fade_weight(n, 20.0) for n in (0, 10, 20, 60, 180)]
    assert weights == [1.0, 20 / 30, 0.5, 0.25, 0.1]
    assert fade_weight(50, 0.0) == 0.0


@settings(max_examples=50, deadline=None)
@given(
    st.integers(0, 1000),
    st.floats(0.0, 500.0),
    st.lists(st.floats(0.01, 1.0), min_size=3, max_size=3),
)
def test_a_blend_of_distributions_is_a_distribution_over_the_models_classes(n, fade, raw):
    prior = np.array([raw]) / sum(raw)
    model = np.array([[0.3, 0.7]])
    aligned = align_columns(prior, ["a", "b", "c"], ["c", "a"])
    mixed = blend(aligned, model, fade_weight(n, fade))
    assert mixed.shape == (1, 2) and mixed.sum() == pytest.approx(1.0)
    assert aligned[0, 0] == pytest.approx(raw[2] / (raw[2] + raw[0]))


def test_a_cold_batch_gives_every_label_candidates_a_rare_one_too():
    rng = np.random.default_rng(1)
    prior = np.full((300, 3), 0.05)
    prior[:, 0] = 0.9  # nearly every item looks like label 0
    prior[290:, 0], prior[290:, 2] = 0.1, 0.85  # ten look like the rare label 2
    prior[280:290, 0], prior[280:290, 1] = 0.1, 0.85
    prior /= prior.sum(axis=1, keepdims=True)
    features = rng.normal(size=(300, 8))
    chosen, scores = prior_batch(prior, features, 6, rng=rng)
    assert len(set(chosen.tolist())) == 6
    assert {0, 1, 2} <= set(prior[chosen].argmax(axis=1).tolist())
    assert set(np.argsort(-scores)[:6].tolist()) == set(chosen.tolist())


# ------------------------------------------------------------------------------ in a workspace


def test_auto_is_off_without_definitions(tmp_path, db_url):
    ws = _workspace(tmp_path, db_url, defined=False)
    metrics = json.loads(ws.retrain().metrics)
    assert metrics["strategy"] == "cold_start" and "zero_shot" not in metrics
    assert not _zero_shot_votes(ws)
    ws.close()


def test_auto_is_on_with_definitions_and_the_lf_is_analysed_on_gold(tmp_path, db_url):
    ws = _workspace(tmp_path, db_url)
    done = ws.retrain()
    metrics = json.loads(done.metrics)
    assert done.status == "succeeded", done.error
    assert metrics["strategy"] == "zero_shot_start"
    found = metrics["zero_shot"]
    assert found["source"] == "embeddings" and found["descriptions"] == 2
    assert found["calibration"]["fitted_on_gold"] == 8
    votes = _zero_shot_votes(ws)
    assert votes and found["lf_votes"] == len(votes)
    texts = _texts(ws)
    right = sum((texts[i].split(" ")[0] in {t.split(" ")[0] for t in SPAM}) == (v == "spam")
                for i, v in votes.items())  # fmt: skip
    assert right / len(votes) > 0.7
    rows = {r["name"]: r for r in ws.list_lfs()}
    assert rows["zero_shot"]["kind"] == "zero_shot"
    record = next(r for r in ws.lf_analysis()["lfs"] if r["lf"] == "zero_shot")
    assert record["kind"] == "zero_shot" and record["gold_n"] >= 1
    assert 0 <= record["gold_accuracy"] <= 1
    # the first batch holds items the prior gives to each label
    with Session(ws.engine) as session:
        top = session.exec(
            select(Score.item_id).where(Score.round_id == done.id).order_by(col(Score.score).desc())
        ).all()[:4]
    assert {votes.get(item_id) for item_id in top} >= {"spam", "ham"}
    assert ws.next_item("ann").item_id == top[0]
    ws.close()


def test_auto_stays_off_in_a_multilabel_workspace(tmp_path):
    ws = Workspace.create(tmp_path / "m", labels=["spam", "ham"], task="multi-label")
    ws.add_user("eng", role="engineer")
    guides = ws.edit_guidelines(
        {"labels": {k: {"definition": v} for k, v in DEFINITIONS.items()}}, by="eng"
    )
    assert all_defined(ws.labels, guides.labels)
    assert not zero_shot_round.zero_shot_on(ws, guides)
    ws.close()


def test_on_without_definitions_describes_labels_by_name(tmp_path, db_url):
    ws = _workspace(tmp_path, db_url, defined=False, zero_shot="on")
    metrics = json.loads(ws.retrain().metrics)
    assert metrics["zero_shot"]["source"] == "embeddings"
    assert metrics["zero_shot"]["descriptions"] == 0
    ws.close()


def test_the_prior_fades_as_labels_arrive(tmp_path, db_url):
    ws = _workspace(tmp_path, db_url)
    ws.retrain()
    texts = _texts(ws)
    spam_words = {t.split(" ")[0] for t in SPAM}
    weights = []
    labelled = 0
    for n_labels in (4, 10):
        while labelled < n_labels:
            item = ws.next_item("ann")
            spam = texts[item.item_id].split(" ")[0] in spam_words
            ws.annotate(item.item_id, "ann", "spam" if spam else "ham")
            labelled += 1
        metrics = json.loads(ws.retrain().metrics)
        assert metrics["n_human"] == n_labels
        weights.append(metrics["zero_shot"]["weight"])
    assert weights == [round(20 / 24, 4), round(20 / 30, 4)]
    ws.close()


def test_new_items_get_the_lfs_votes_as_a_recomputation_would(tmp_path, db_url):
    ws = _workspace(tmp_path, db_url)
    ws.retrain()
    more = tmp_path / "more.csv"
    more.write_text(
        "id,text\nn1,click the link on my channel for free money\nn2,I love this song\n"
    )
    ws.import_file(more, id_field="id")
    ws.retrain()
    kept = _zero_shot_votes(ws)
    with Session(ws.engine) as session:
        lf = session.exec(
            select(LabelingFunction).where(LabelingFunction.name == "zero_shot")
        ).one()
        lf.version = "stale"  # the next round recomputes every vote
        session.add(lf)
        session.commit()
    ws.retrain()
    assert _zero_shot_votes(ws) == kept
    ws.close()


def test_without_the_embedding_package_the_llm_votes_then_diversity(tmp_path, db_url, monkeypatch):
    monkeypatch.setattr(zero_shot_round, "embeddings_installed", lambda: False)
    ws = _workspace(tmp_path, db_url)
    metrics = json.loads(ws.retrain().metrics)
    assert metrics["strategy"] == "cold_start"
    assert metrics["zero_shot"]["source"] == "none"
    texts = _texts(ws)
    with Session(ws.engine) as session:
        lf = LabelingFunction(name="llm", kind="llm", spec="{}", version="v1", applied_version="v1")
        session.add(lf)
        session.flush()
        for item_id, text in texts.items():
            if "channel" in text or "song" in text:
                vote = "spam" if "channel" in text else "ham"
                session.add(LFVote(lf_id=lf.id, item_id=item_id, lf_version="v1", label=vote))
        session.commit()
    metrics = json.loads(ws.retrain().metrics)
    assert metrics["strategy"] == "zero_shot_start"
    assert metrics["zero_shot"]["source"] == "llm"
    assert metrics["zero_shot"]["llm_gold_accuracy"] == 1.0
    assert not _zero_shot_votes(ws)  # the LLM's votes are its own LF already
    ws.close()


# ------------------------------------------------------------------------------ simulate


def test_simulate_zero_shot_reports_both_curves_and_the_gain(tmp_path):
    descriptions = tmp_path / "labels.toml"
    descriptions.write_text(
        '0 = "a genuine comment about the song or the video"\n'
        '1 = "advertising: subscribe to my channel, click my link"\n'
    )
    args = [
        "simulate", str(YOUTUBE / "Youtube01-Psy.csv"), "--text-field", "CONTENT",
        "--label-field", "CLASS", "--test", str(YOUTUBE / "Youtube05-Shakira.csv"),
        "--budget", "20", "--batch", "10", "--seeds", "1", "--featurizer", "tfidf",
    ]  # fmt: skip
    done = runner.invoke(app, [*args, "--zero-shot", "--descriptions", str(descriptions), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    found = report["zero_shot"]
    assert 0 <= found["prior_macro_f1"] <= 1 and found["fade"] == 20.0
    curve = found["strategies"]["diverse_uncertainty"]["curve"]
    assert [p["labels"] for p in curve] == [10, 20]
    for point in curve:
        assert point["gain"] == pytest.approx(point["with"] - point["without"], abs=1e-4)
    plain = report["strategies"]["diverse_uncertainty"]["curve"]
    assert [p["macro_f1"] for p in plain] == [p["without"] for p in curve]
    missing = runner.invoke(app, [*args, "--zero-shot"])
    assert missing.exit_code == 2 and "--descriptions" in missing.output
    descriptions.write_text('spam = "ads"\n')
    unknown = runner.invoke(app, [*args, "--zero-shot", "--descriptions", str(descriptions)])
    assert unknown.exit_code == 2 and "'spam'" in unknown.output


@settings(max_examples=25, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["v1", "v2"]), st.integers(0, 6), st.booleans()),
        min_size=1,
        max_size=6,
    )
)
def test_stored_votes_match_a_recomputation_through_any_sequence(tmp_path_factory, steps):
    """store_votes through random rounds (a prior version, new items imported before it, a
    round killed part way): after each full round the LF's votes are exactly the prior's
    sure votes over every item, as if written from scratch."""
    root = tmp_path_factory.mktemp("zs_property")
    ws = Workspace.create(root / "ws", labels=["spam", "ham"])
    try:
        n_items = 0

        def code(item_id: int, version: str) -> int:  # the prior: fixed per item and version
            return (item_id * (3 if version == "v1" else 5)) % 3 - 1  # -1: not sure

        for version, new, killed in steps:
            if new:
                rows = "".join(f"i{n_items + k},text {n_items + k}\n" for k in range(new))
                (root / "more.csv").write_text("id,text\n" + rows)
                ws.import_file(root / "more.csv", id_field="id")
                n_items += new
            with Session(ws.engine) as session:
                ids = np.array(sorted(session.exec(select(Item.id)).all()), dtype=np.int64)
            codes = np.array([code(int(i), version) for i in ids], dtype=np.intp)
            if killed:  # a round stopped after its first half of the votes
                half = len(ids) // 2
                zero_shot_round.store_votes(ws, ids[:half], codes[:half], version)
            zero_shot_round.store_votes(ws, ids, codes, version)
            expected = {int(i): ws.labels[c] for i, c in zip(ids, codes, strict=True) if c >= 0}
            with Session(ws.engine) as session:
                stored = dict(
                    session.exec(
                        select(LFVote.item_id, LFVote.label)
                        .join(LabelingFunction, col(LabelingFunction.id) == col(LFVote.lf_id))
                        .where(LabelingFunction.name == "zero_shot")
                    ).all()
                )
            assert stored == expected
    finally:
        ws.close()
