"""A round's model as a standalone scikit-learn pipeline: texts in, the round's probabilities out.

``labelloop model export DIR`` writes ``DIR/model.skops`` (the pipeline, saved with skops, not
pickle) and ``DIR/model-card.md`` (:mod:`labeling.rounds.model_card`). The pipeline holds
scikit-learn classes only, so it loads where labelloop is not installed:

* the featurizer is rebuilt from the round's fitted one: the tfidf featurizer as a
  ``FeatureUnion`` of its two fitted ``TfidfVectorizer`` halves (each weighted 1/sqrt(2)),
  followed, when it has one, by the LSA summary (its fitted ``TruncatedSVD`` and a
  ``Normalizer``) beside the n-grams; the hashing featurizer as its two ``HashingVectorizer``;
* a single-label round's classifier goes in as it was fitted (``LogisticRegression`` or
  ``SGDClassifier``);
* a multi-label round's per-label classifiers and their Platt sigmoids become one binary
  ``LogisticRegression`` per label whose weights fold the sigmoid in
  (``sigmoid(a * (w.x + b) + c)`` is a logistic model with weights ``a * w`` and intercept
  ``a * b + c``; a constant label is a zero-weight model at its probability), held by a
  fitted ``OneVsRestClassifier``, whose ``predict_proba`` is then P(label present) per label.

Rounds on sentence embeddings (``sentence-embeddings``, ``hybrid``) are refused: their
features come from a transformer model that no scikit-learn class can hold, and a pipeline
that needed labelloop (or a hand-written embedding step) to load would not be the standalone
model this command promises. The message names the setting that makes rounds exportable
(docs/models.md says why).

Before anything is written, the loaded-back pipeline predicts a sample of the workspace's
texts and must give the round's probabilities (to 1e-5) and labels; the folder is written
under a temporary name and renamed, so a failed export leaves nothing behind.
"""

from __future__ import annotations

import copy
import json
import secrets
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlmodel import col, select

from labeling.context import Context
from labeling.errors import BadInput, ExportFailed
from labeling.rounds.featurizers import NEEDS_EMBEDDINGS
from labeling.rounds.model_card import CardFacts, write_card
from labeling.rounds.multilabel import CalibratedLabel
from labeling.rounds.predict import RoundModel, featurizer_name, load_round, pick_round
from labeling.rounds.promotion import list_rounds
from labeling.store import db
from labeling.store.models import Item, Round

MODEL_FILE = "model.skops"
CARD_FILE = "model-card.md"
#: The largest difference from the round's probabilities the export accepts.
TOLERANCE = 1e-5
#: Texts of the workspace the exported pipeline is checked on.
CHECK_TEXTS = 500
#: Featurizers a pipeline of scikit-learn classes can reproduce.
EXPORTABLE = ("tfidf", "hashing")


class NotExportable(BadInput):
    """The round's model cannot be rebuilt from scikit-learn classes alone."""


@dataclass(frozen=True)
class ModelExport:
    """What ``labelloop model export`` wrote."""

    folder: str
    model: str
    card: str
    round_id: int
    featurizer: str
    labels: list[str]
    multilabel: bool
    trusted_types: list[str]
    checked_texts: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def export_model(ws: Context, out: Path, *, round_id: int | None = None) -> ModelExport:
    """Write round ``round_id``'s (default: the promoted round's) model to folder ``out``."""
    refuse_unexportable(ws, pick_round(ws, round_id))
    loaded = load_round(ws, round_id)
    target = _check_target(out)
    pipeline = build_pipeline(loaded)
    texts = sample_texts(ws, CHECK_TEXTS)
    # A hidden name beside the target (mkdir honours the umask, unlike mkdtemp's 0700).
    scratch = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    try:
        scratch.mkdir()
    except OSError as exc:
        raise ExportFailed(f"{out}: cannot write in {out.parent} ({exc.strerror})") from exc
    try:
        trusted = _dump(pipeline, scratch / MODEL_FILE)
        _check_loaded(scratch / MODEL_FILE, trusted, loaded, texts)
        facts = CardFacts.of(ws, loaded, trusted)
        write_card(scratch / CARD_FILE, facts)
        if target.exists():  # an empty folder (checked above): replaced by the new one
            target.rmdir()
        scratch.rename(target)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return ModelExport(
        folder=str(out),
        model=str(out / MODEL_FILE),
        card=str(out / CARD_FILE),
        round_id=loaded.round_id,
        featurizer=loaded.featurizer_name,
        labels=list(loaded.labels),
        multilabel=loaded.multilabel,
        trusted_types=trusted,
        checked_texts=len(texts),
    )


def refuse_unexportable(ws: Context, round_: Round) -> None:
    """Refuse a round whose featurizer is not plain scikit-learn, naming the rounds that are."""
    name = featurizer_name(json.loads(round_.metrics or "{}"))
    if name in EXPORTABLE:
        return
    others = exportable_rounds(ws)
    hint = (
        f"round{'s' if len(others) > 1 else ''} {', '.join(map(str, others))} can be exported "
        "(--round N); or "
        if others
        else ""
    )
    why = (
        "a transformer model (sentence embeddings) that no scikit-learn class holds"
        if name in NEEDS_EMBEDDINGS
        else "a featurizer this export cannot rebuild"
    )
    raise NotExportable(
        f"round {round_.id} trained on the {name!r} featurizer, whose "
        f"features come from {why}, so it cannot be a standalone scikit-learn pipeline; "
        f'{hint}set featurizer = "tfidf" (or "hashing") in labelloop.toml and retrain '
        "(docs/models.md)"
    )


def exportable_rounds(ws: Context) -> list[int]:
    """Succeeded rounds with a model whose featurizer a pipeline can reproduce."""
    found = []
    for round_ in list_rounds(ws):
        if round_.status != "succeeded" or round_.id is None:
            continue
        metrics = json.loads(round_.metrics or "{}")
        if featurizer_name(metrics) in EXPORTABLE and metrics.get("classifier"):
            found.append(round_.id)
    return found


def _check_target(out: Path) -> Path:
    """``out`` as a folder to create: refused when it is a file or a folder holding anything."""
    target = out.resolve()
    if target.exists() and not target.is_dir():
        raise ExportFailed(f"{out}: is a file; expected a folder to write the model in")
    if target.is_dir() and any(target.iterdir()):
        raise ExportFailed(f"{out}: the folder is not empty; name a new or empty folder")
    if not target.parent.is_dir():
        raise ExportFailed(f"{out}: the folder {out.parent} does not exist")
    return target


def sample_texts(ws: Context, n: int) -> list[str]:
    """Up to ``n`` texts of the workspace, spread over it by id, to check the export on."""
    with db.read_session(ws.engine) as session:
        ids = session.exec(select(Item.id).order_by(col(Item.id))).all()
        if not ids:
            return []
        picked = [ids[k] for k in np.linspace(0, len(ids) - 1, min(n, len(ids))).astype(int)]
        rows = session.exec(select(Item.text).where(col(Item.id).in_(sorted(set(picked))))).all()
    return [str(text) for text in rows]


def build_pipeline(loaded: RoundModel) -> Any:
    """The round's featurizer and classifier as a fitted scikit-learn ``Pipeline``."""
    from sklearn.pipeline import Pipeline  # scikit-learn: ~1 s; only an export needs it

    return Pipeline(
        [("features", _features(loaded)), ("classifier", _classifier(loaded))],
    )


def _features(loaded: RoundModel) -> Any:
    """The fitted featurizer's steps as scikit-learn transformers (same output, to the bit).

    The fitted vectorizers (the featurizer's ``fitted_steps``) are copied, with their
    vocabularies' numpy integers made Python ints: skops writes a numpy scalar as a file of
    its own (an 18,000-term vocabulary took 4.7 s to dump and made 18,000 files; as ints,
    0.3 s and one JSON document).
    """
    from sklearn.pipeline import FeatureUnion, Pipeline  # scikit-learn: ~1 s; export only
    from sklearn.preprocessing import Normalizer  # scikit-learn: ~1 s; export only

    word, char, lsa = loaded.featurizer.fitted_steps
    halves = [("word", _plain(word)), ("char", _plain(char))]
    # The tfidf and hashing halves are each L2-normalised and scaled by 1/sqrt(2), so that
    # together they have unit norm (labeling.rounds.featurizers).
    scale = float(1 / np.sqrt(2))
    ngrams = FeatureUnion(halves, transformer_weights={"word": scale, "char": scale})
    if lsa is None:
        return ngrams
    summary = Pipeline([("svd", copy.deepcopy(lsa)), ("normalize", Normalizer())])
    beside = FeatureUnion([("ngrams", "passthrough"), ("lsa", summary)])
    return Pipeline([("ngrams", ngrams), ("with_lsa", beside)])


def _plain(vectorizer: Any) -> Any:
    """A copy of a fitted vectorizer whose vocabulary (if any) maps to Python ints."""
    copied = copy.deepcopy(vectorizer)
    vocabulary = getattr(copied, "vocabulary_", None)
    if vocabulary is not None:
        copied.vocabulary_ = {term: int(index) for term, index in vocabulary.items()}
    return copied


def _classifier(loaded: RoundModel) -> Any:
    """The round's classifier; a multi-label round's as a ``OneVsRestClassifier``."""
    if not loaded.multilabel:
        return loaded.model
    from scipy import sparse  # comes with scikit-learn; only a multi-label export needs it
    from sklearn.linear_model import LogisticRegression  # scikit-learn: ~1 s; export only
    from sklearn.multiclass import OneVsRestClassifier  # scikit-learn: ~1 s; export only

    members = loaded.model.members
    width = _width(loaded)
    # Fitted on two made-up rows only to set its attributes (the binarizer, n_features_in_):
    # each label's estimator is then replaced by the round's, folded into a logistic model.
    holder = OneVsRestClassifier(LogisticRegression())
    made_up = np.array([np.ones(len(members)), np.zeros(len(members))], dtype=np.int64)
    holder.fit(sparse.csr_matrix((2, width), dtype=np.float32), made_up)
    estimators = []
    for column, member in enumerate(members):
        estimator = copy.deepcopy(holder.estimators_[column])
        coef, intercept = _folded(member, width, label=str(loaded.model.classes_[column]))
        estimator.coef_, estimator.intercept_ = coef, intercept
        estimators.append(estimator)
    holder.estimators_ = estimators
    return holder


def _folded(member: Any, width: int, *, label: str) -> tuple[np.ndarray, np.ndarray]:
    """One label's probability as logistic weights: ``(coef (1, width), intercept (1,))``."""
    if isinstance(member, float):  # a constant probability: zero weights, its log-odds
        p = min(max(member, 1e-12), 1 - 1e-12)
        return np.zeros((1, width)), np.array([np.log(p / (1 - p))])
    if not isinstance(member, CalibratedLabel) or not member.linear:
        raise NotExportable(
            f"label {label!r}: its classifier is not a linear model, so it cannot be folded "
            "into a scikit-learn logistic model; retrain the round with classifier = "
            '"logreg" and export the new round'
        )
    coef = np.asarray(member.estimator.coef_, dtype=np.float64)
    intercept = np.asarray(member.estimator.intercept_, dtype=np.float64)
    if member.slope is None:
        return coef.copy(), intercept.copy()
    return member.slope * coef, member.slope * intercept + member.offset


def _width(loaded: RoundModel) -> int:
    """Columns of the round's feature rows (what every per-label model reads)."""
    return int(loaded.featurizer.transform([""]).shape[1])


def _dump(pipeline: Any, path: Path) -> list[str]:
    """Save ``pipeline`` with skops (compressed); returns the types the file holds (Python's
    builtins aside), which the card's example passes to ``skops.io.load`` as trusted: those
    skops does not trust by default, and those it does, so a reader sees what loading runs."""
    import skops.io as sio  # skops: ~0.5 s; only a model export needs it

    sio.dump(pipeline, path, compression=zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(path) as archive:
        schema = json.loads(archive.read("schema.json"))
    held = {name for name in _type_names(schema) if not name.startswith("builtins.")}
    return sorted(held | set(sio.get_untrusted_types(file=path)))


def _type_names(node: Any) -> set[str]:
    """Every ``module.Class`` named in a skops schema (its nodes carry both keys)."""
    found: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            if "__class__" in current and "__module__" in current:
                found.add(f"{current['__module__']}.{current['__class__']}")
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return found


def _check_loaded(path: Path, trusted: list[str], loaded: RoundModel, texts: list[str]) -> None:
    """Load the written pipeline back and compare its predictions with the round's own."""
    import skops.io as sio  # skops: ~0.5 s; only a model export needs it

    if not texts:
        return
    pipeline = sio.load(path, trusted=trusted)
    expected = loaded.predict(texts)
    got = np.asarray(pipeline.predict_proba(texts), dtype=np.float64)
    if not loaded.multilabel:
        classes = [str(c) for c in pipeline.classes_]
        got = got[:, [classes.index(label) for label in expected.labels]]
        labels: list[Any] = [str(v) for v in pipeline.predict(texts)]
    else:
        got = got[:, loaded.columns]
        chosen = np.asarray(got >= 0.5)
        labels = [[expected.labels[k] for k in np.flatnonzero(row)] for row in chosen]
    worst = float(np.abs(got - expected.probabilities).max())
    differing = sum(a != b for a, b in zip(labels, expected.predicted, strict=True))
    if worst > TOLERANCE or differing:
        raise ExportFailed(
            f"the exported pipeline does not reproduce round {loaded.round_id}: probabilities "
            f"differ by up to {worst:.2e} and {differing} of {len(texts)} labels differ; "
            "nothing was written"
        )
