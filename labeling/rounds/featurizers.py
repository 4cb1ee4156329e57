"""Text featurizers for the active-learning model, and featurizing many texts a chunk at a time.

A featurizer turns texts into a matrix (sparse for n-grams, dense for embeddings). Each has a
``version`` string that changes whenever its output would change (name, parameters, library
version and, for fitted ones, a fingerprint of what was fitted), so cached features are reused
only when they would be identical (the cache is :mod:`labeling.rounds.feature_cache`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeAlias

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from labeling.errors import BadInput, LabelloopError
from labeling.rounds.embeddings import (
    DEFAULT_BATCH_SIZE,
    EmbeddingsUnavailable,
    embed,
    embeddings_installed,
    package_version,
    settings_fingerprint,
)

# A scipy CSR matrix (n-grams) or a dense numpy array (embeddings); scipy has no type hints.
Matrix: TypeAlias = Any

#: A workspace's setting: pick the representation each round by cross-validation
#: (:mod:`labeling.rounds.representations`); the registry below holds the fixed choices.
AUTO = "auto"
DEFAULT_FEATURIZER = AUTO
#: The fixed featurizer where one featurizer must be named (simulate's old default, LF tools).
BASE_FEATURIZER = "tfidf"
#: Featurizers that run the embedding model.
NEEDS_EMBEDDINGS = frozenset({"sentence-embeddings", "hybrid"})
#: Scales of the hybrid's tfidf and embedding blocks (see :class:`HybridFeaturizer`).
HYBRID_SCALES = (0.5, float(1 / np.sqrt(2)))
# Rows featurized (and cached) per chunk: bounds peak memory of one step, not the result size.
DEFAULT_CHUNK_ROWS = 50_000
# Below this many rows, starting worker processes costs more than it saves.
PARALLEL_MIN_ROWS = 40_000


class FeaturizerError(LabelloopError):
    """A featurizer cannot run (not fitted, optional package missing)."""


class UnknownFeaturizer(BadInput):
    """A featurizer name outside the registry."""


# A featurizer whose package is not installed (kept under its old name for callers).
FeaturizerUnavailable = EmbeddingsUnavailable


class Featurizer(Protocol):
    """What the rounds and the simulator need from a featurizer."""

    name: str
    #: Sparse output (n-grams) or dense (embeddings); decides how the cache stores rows.
    sparse: bool
    #: Stateless featurizers need no fit and can featurize any chunk on its own.
    stateless: bool

    @property
    def version(self) -> str: ...

    def fit(self, texts: Sequence[str]) -> Featurizer: ...

    def transform(self, texts: Sequence[str]) -> Matrix: ...


def digest(*parts: Any) -> str:
    """A SHA-256 hex digest of JSON-able parts (versions and folder names are built from it)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def content_key(text: str) -> str:
    """A stable key for an item's text (SHA-1 hex), for callers without their own hash."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class TfidfFeaturizer:
    """Word 1-2-gram and character 2-5-gram TF-IDF, plus a 50-d LSA summary, fitted on the pool.

    Word n-grams carry topic; character n-grams within word boundaries survive the misspellings,
    URLs and odd tokens of user text. Both halves are L2-normalised and scaled by 1/sqrt(2), so
    together they have unit norm. The LSA block (truncated SVD of that matrix over the pool,
    L2-normalised) adds what co-occurrence across the whole pool teaches: with a few dozen
    labels, a word never seen in a labelled item still lands near words that were. Measured on
    two data sets it lifts macro-F1 at 20 random labels by 6-10 points for a change of about
    one point either way under full supervision (see docs/active_learning.md). Fitting needs no
    labels, so the whole pool (labelled or not) is the right fitting set.
    """

    name = "tfidf"
    sparse = True
    stateless = False

    def __init__(
        self,
        *,
        word_ngrams: tuple[int, int] = (1, 2),
        char_ngrams: tuple[int, int] = (2, 5),
        min_df: int = 2,
        max_features: int | None = 200_000,
        lsa_components: int = 50,
    ) -> None:
        self.params = {
            "word_ngrams": list(word_ngrams),
            "char_ngrams": list(char_ngrams),
            "min_df": min_df,
            "max_features": max_features,
            "lsa_components": lsa_components,
        }
        self._lsa: Any = None
        common: dict[str, Any] = {
            "sublinear_tf": True,
            "lowercase": True,
            "strip_accents": "unicode",
            "max_features": max_features,
            "dtype": np.float32,
        }
        from sklearn.feature_extraction.text import TfidfVectorizer  # scikit-learn: ~1 s

        self._word = TfidfVectorizer(
            analyzer="word", ngram_range=word_ngrams, token_pattern=r"(?u)\b\w+\b", **common
        )
        self._char = TfidfVectorizer(analyzer="char_wb", ngram_range=char_ngrams, **common)
        self._min_df = min_df
        self._fingerprint: str | None = None

    @property
    def version(self) -> str:
        if self._fingerprint is None:
            raise FeaturizerError("the tfidf featurizer has no version before it is fitted")
        return f"tfidf-{digest(self.params, _sklearn_version(), self._fingerprint)[:16]}"

    def fit(self, texts: Sequence[str]) -> TfidfFeaturizer:
        texts = list(texts)
        if not texts:
            raise BadInput("cannot fit the tfidf featurizer on 0 texts")
        # min_df above the number of texts would leave an empty vocabulary on tiny pools.
        min_df = self._min_df if len(texts) >= 4 * self._min_df else 1
        for vectorizer in (self._word, self._char):
            vectorizer.set_params(min_df=min_df)
            vectorizer.fit(texts)
        self._fit_lsa(texts)
        fingerprint = hashlib.sha256()
        for vectorizer in (self._word, self._char):
            for term in sorted(vectorizer.vocabulary_):
                fingerprint.update(term.encode("utf-8", "surrogatepass") + b"\0")
            fingerprint.update(np.ascontiguousarray(vectorizer.idf_).tobytes())
        if self._lsa is not None:
            fingerprint.update(np.ascontiguousarray(self._lsa.components_).tobytes())
        self._fingerprint = fingerprint.hexdigest()
        return self

    @property
    def fitted_steps(self) -> tuple[Any, Any, Any]:
        """The word and character vectorizers and the LSA (None without one): what a model
        export rebuilds as plain scikit-learn steps (labeling.rounds.model_export)."""
        return self._word, self._char, self._lsa

    def _fit_lsa(self, texts: list[str]) -> None:
        from sklearn.decomposition import TruncatedSVD  # scikit-learn: ~1 s

        tfidf = self._tfidf(texts)
        # An SVD needs fewer components than both dimensions of the matrix it factorises.
        components = min(self.params["lsa_components"], min(tfidf.shape) - 1)
        self._lsa = None
        if components >= 1:
            self._lsa = TruncatedSVD(n_components=components, random_state=0).fit(tfidf)

    def _tfidf(self, texts: list[str]) -> sp.csr_matrix:
        halves = [self._word.transform(texts), self._char.transform(texts)]
        return (sp.hstack(halves, format="csr") * np.float32(1 / np.sqrt(2))).astype(np.float32)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        if self._fingerprint is None:
            raise FeaturizerError("fit the tfidf featurizer on the pool before transforming")
        tfidf = self._tfidf(list(texts))
        if self._lsa is None:
            return tfidf
        from sklearn.preprocessing import normalize  # scikit-learn: ~1 s

        summary = normalize(self._lsa.transform(tfidf)).astype(np.float32)
        return sp.hstack([tfidf, sp.csr_matrix(summary)], format="csr")


class HashingFeaturizer:
    """Hashed word 1-2-grams and character 3-4-grams: no fit, so no pass over a huge pool.

    The output depends on the parameters only, so any chunk can be featurized (and cached) on
    its own, in any process. Rows are L2-normalised per half and scaled as in TF-IDF. Without
    IDF weights common words weigh as much as rare ones, which costs some accuracy on small
    pools; pick it for pools too large to fit a vocabulary over.
    """

    name = "hashing"
    sparse = True
    stateless = True

    def __init__(
        self,
        *,
        word_ngrams: tuple[int, int] = (1, 2),
        char_ngrams: tuple[int, int] = (3, 4),
        n_features: int = 2**18,
    ) -> None:
        self.params = {
            "word_ngrams": list(word_ngrams),
            "char_ngrams": list(char_ngrams),
            "n_features": n_features,
        }
        common: dict[str, Any] = {
            "n_features": n_features,
            "alternate_sign": False,
            "lowercase": True,
            "strip_accents": "unicode",
            "dtype": np.float32,
        }
        from sklearn.feature_extraction.text import HashingVectorizer  # scikit-learn: ~1 s

        self._word = HashingVectorizer(
            analyzer="word", ngram_range=word_ngrams, token_pattern=r"(?u)\b\w+\b", **common
        )
        self._char = HashingVectorizer(analyzer="char_wb", ngram_range=char_ngrams, **common)

    @property
    def version(self) -> str:
        return f"hashing-{digest(self.params, _sklearn_version())[:16]}"

    @property
    def fitted_steps(self) -> tuple[Any, Any, Any]:
        """The word and character vectorizers, and no LSA (as TfidfFeaturizer's)."""
        return self._word, self._char, None

    def fit(self, texts: Sequence[str]) -> HashingFeaturizer:
        """Nothing to learn; kept so that every featurizer is used the same way."""
        return self

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        texts = list(texts)
        halves = [self._word.transform(texts), self._char.transform(texts)]
        return (sp.hstack(halves, format="csr") * np.float32(1 / np.sqrt(2))).astype(np.float32)


class SentenceEmbeddingFeaturizer:
    """all-MiniLM-L6-v2 sentence embeddings (384 dense dimensions, unit norm), from the bundled
    model of :mod:`labeling.rounds.embeddings`.

    Similar meanings land close together whatever the words, which helps most while labels are
    few and on topic data; n-grams win where exact tokens decide (spam, codes). Slower than
    n-grams on a CPU (a transformer per text), so a workspace embeds its pool in the background
    and caches the rows (docs/active_learning.md).
    """

    name = "sentence-embeddings"
    sparse = False
    stateless = True

    def __init__(self, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.params = {"batch_size": batch_size}
        self._package_version = package_version()

    @property
    def version(self) -> str:
        return f"sentence-embeddings-{digest(self._package_version, settings_fingerprint())[:16]}"

    def fit(self, texts: Sequence[str]) -> SentenceEmbeddingFeaturizer:
        return self

    def transform(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return embed(texts, batch_size=self.params["batch_size"])


class HybridFeaturizer:
    """The tfidf block and the embedding block side by side, each scaled to half the weight.

    The tfidf rows (n-grams plus the LSA summary) have norm sqrt(2) and the embeddings norm 1;
    scaling them by 1/2 and 1/sqrt(2) gives each block a squared norm of 1/2, so a row has unit
    norm and neither block drowns the other in the classifier's dot products. Rounds never
    store hybrid rows: they put the cached tfidf and embedding rows side by side when read
    (:class:`labeling.rounds.feature_cache.SideBySide`), so no row is featurized or stored twice.
    """

    name = "hybrid"
    sparse = True
    stateless = False

    def __init__(self, **tfidf_params: Any) -> None:
        self.tfidf = TfidfFeaturizer(**tfidf_params)
        self.embeddings = SentenceEmbeddingFeaturizer()
        self.params = {"tfidf": self.tfidf.params, "scales": list(HYBRID_SCALES)}

    @property
    def parts(self) -> tuple[Featurizer, Featurizer]:
        return (self.tfidf, self.embeddings)

    @property
    def version(self) -> str:
        return hybrid_version(self.tfidf.version, self.embeddings.version)

    def fit(self, texts: Sequence[str]) -> HybridFeaturizer:
        self.tfidf.fit(texts)
        return self

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        texts = list(texts)
        return side_by_side([part.transform(texts) for part in self.parts], HYBRID_SCALES)


def hybrid_version(tfidf_version: str, embeddings_version: str) -> str:
    """The hybrid's version, from its two blocks' versions and the scales."""
    return f"hybrid-{digest([tfidf_version, embeddings_version], list(HYBRID_SCALES))[:16]}"


def side_by_side(blocks: Sequence[Matrix], scales: Sequence[float]) -> sp.csr_matrix:
    """Blocks of the same rows, each multiplied by its scale, as one CSR matrix."""
    scaled = [
        sp.csr_matrix(block, dtype=np.float32) * np.float32(s)
        for block, s in zip(blocks, scales, strict=True)
    ]
    return sp.hstack(scaled, format="csr").astype(np.float32)


FEATURIZERS: dict[str, Callable[..., Featurizer]] = {
    "tfidf": TfidfFeaturizer,
    "hashing": HashingFeaturizer,
    "sentence-embeddings": SentenceEmbeddingFeaturizer,
    "hybrid": HybridFeaturizer,
}


def make_featurizer(name: str = BASE_FEATURIZER, **params: Any) -> Featurizer:
    """A new featurizer by registry name; ``params`` go to its constructor."""
    if name == AUTO:
        raise UnknownFeaturizer(
            "'auto' picks a featurizer per round and is not one itself; name one of: "
            + ", ".join(sorted(FEATURIZERS))
        )
    try:
        factory = FEATURIZERS[name]
    except KeyError:
        known = ", ".join(sorted(FEATURIZERS))
        raise UnknownFeaturizer(f"unknown featurizer {name!r}; known: {known}") from None
    return factory(**params)


def available_featurizers() -> list[str]:
    """Registry names that can run here (the embedding one only with its package)."""
    names = []
    for name in FEATURIZERS:
        if name in NEEDS_EMBEDDINGS and not embeddings_installed():
            continue
        names.append(name)
    return names


def featurize_in_chunks(
    featurizer: Featurizer, texts: Sequence[str], *, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Matrix:
    """Transform ``texts`` a chunk at a time (in parallel where it pays), one matrix back."""
    chunks = [texts[rows] for rows in iter_chunks(len(texts), chunk_rows)]
    parts = list(transform_all(featurizer, chunks))
    if not parts:
        return featurizer.transform([])
    return stack_rows(parts, sparse=featurizer.sparse)


def transform_all(
    featurizer: Featurizer,
    chunks: Iterable[Sequence[str]],
    *,
    n_chunks: int | None = None,
    n_rows: int | None = None,
) -> Iterator[Matrix]:
    """Each chunk's matrix, in order; n-gram chunks go to worker processes when there are many.

    scikit-learn's n-gram analyzers are pure Python and hold the GIL, so threads do not help;
    processes do, once a chunk is big enough to pay for shipping texts and results. Embedding
    models use every core by themselves and are not worth copying into workers. ``chunks`` may
    be a generator (give ``n_chunks`` and ``n_rows`` then): the workers pull a few chunks
    ahead, so only those are in memory.
    """
    if n_chunks is None or n_rows is None:
        chunks = list(chunks)
        n_chunks, n_rows = len(chunks), sum(map(len, chunks))
    workers = min(n_chunks, os.cpu_count() or 1)
    if workers < 2 or not featurizer.sparse or n_rows < PARALLEL_MIN_ROWS:
        for chunk in chunks:
            yield featurizer.transform(chunk)
        return
    from joblib import Parallel, delayed  # joblib: only worth loading for a big pool

    run = Parallel(n_jobs=workers, return_as="generator", pre_dispatch="n_jobs")
    yield from run(delayed(featurizer.transform)(chunk) for chunk in chunks)


def stack_rows(parts: Sequence[Matrix], *, sparse: bool) -> Matrix:
    """The parts' rows one under the other, as one sparse (CSR) or dense matrix."""
    if sparse:
        return sp.vstack(parts, format="csr")
    return np.vstack(parts)


def iter_chunks(n_rows: int, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[slice]:
    """Slices covering ``range(n_rows)`` in steps of ``chunk_rows``."""
    for start in range(0, n_rows, chunk_rows):
        yield slice(start, min(start + chunk_rows, n_rows))


def _sklearn_version() -> str:
    import sklearn  # ~1 s to import: only featurizing needs it

    return str(sklearn.__version__)
