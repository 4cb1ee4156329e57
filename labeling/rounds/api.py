"""The Workspace calls for retraining rounds: run one now, queue one for the worker, list,
promote, roll back, similar items over a round's features, the simulator, and a round's model
put to use (predicting texts and files, exporting it as a scikit-learn pipeline).
:class:`labeling.workspace.Workspace` inherits them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from labeling.context import Context, ProgressCallback
from labeling.rounds import embedding_pass, jobs, model_export, pipeline, predict, promotion
from labeling.rounds.embedding_pass import EmbeddingPassReport, FeatureStatus
from labeling.rounds.jobs import StageCallback
from labeling.rounds.model_export import ModelExport
from labeling.rounds.predict import Predictions
from labeling.rounds.predict_files import PredictFileReport, predict_file
from labeling.rounds.promotion import RoundSummary
from labeling.rounds.similar import DEFAULT_LIMIT, SimilarItem, find_similar
from labeling.rounds.simulate_sets import simulate_task_files
from labeling.store.labelsets import DEFAULT_LABEL_SEP
from labeling.store.models import Round


class RoundsAPI(Context):
    """Retraining rounds and what they produce."""

    def retrain(
        self,
        *,
        strategy: str | None = None,
        trigger: str = "cli",
        progress: StageCallback | None = None,
    ) -> Round:
        """Run a round now, in this process (a queued one is taken first); returns it, done.

        ``strategy``: a query strategy for this round (default: the toml's). ``progress`` is
        called with the name of each stage as it starts."""
        return pipeline.retrain(self, strategy=strategy, trigger=trigger, progress=progress)

    def queue_round(self, *, trigger: str = "button", strategy: str | None = None) -> Round:
        """Queue a round for the background worker (one already queued is reused)."""
        return jobs.queue_round(self, trigger=trigger, strategy=strategy)

    def rounds(self) -> list[Round]:
        """Every round, oldest first."""
        return promotion.list_rounds(self)

    def round_summaries(self) -> list[RoundSummary]:
        """Every round as ``labelloop rounds list --json`` shows it, oldest first."""
        return [promotion.round_summary(r) for r in promotion.list_rounds(self)]

    def get_round(self, round_id: int) -> Round:
        return promotion.get_round(self, round_id)

    @staticmethod
    def round_summary(round_: Round) -> RoundSummary:
        """A round as ``labelloop rounds list --json`` shows it: status, metrics, timings."""
        return promotion.round_summary(round_)

    def lower_priority(self) -> int:
        """Lower this process's CPU priority to the toml's ``round_nice`` (as the worker and
        ``labelloop retrain`` do, so labelling stays responsive); returns the niceness now."""
        return jobs.lower_priority(self.config.round_nice)

    def promote(self, round_id: int) -> Round:
        """Make a succeeded round's ranking the queue order (one flag, one transaction)."""
        return promotion.promote(self, round_id)

    def rollback(self) -> Round:
        """Go back to the previously promoted round; returns the round promoted now."""
        return promotion.rollback(self)

    def build_features(
        self,
        *,
        engine: str = "local",
        scheduler: str | None = None,
        workers: int | None = None,
        limit: int | None = None,
        chunk_rows: int = embedding_pass.PASS_CHUNK_ROWS,
        progress: ProgressCallback | None = None,
    ) -> EmbeddingPassReport | None:
        """Embed every item the feature cache lacks, the queue's next items first (resumable:
        a rerun continues where a killed pass stopped); None when the ``featurizer`` setting
        uses no embeddings. ``engine``: ``"local"`` or ``"dask"`` (on ``scheduler``, or a
        local cluster of ``workers`` processes); ``limit``: embed at most that many items;
        ``chunk_rows``: items embedded and written at a time (a kill loses at most those)."""
        embedding_pass.check_options(engine, scheduler, workers)
        if not embedding_pass.needs_embeddings(self.config.featurizer):
            return None
        return embedding_pass.run_pass(
            self,
            engine=engine,
            scheduler=scheduler,
            workers=workers,
            limit=limit,
            chunk_rows=chunk_rows,
            progress=progress,
        )

    def feature_status(self) -> FeatureStatus:
        """Per cached block (the embeddings): items, cached and missing, by distinct text."""
        return embedding_pass.feature_status(self)

    def similar(
        self,
        item_id: str | None = None,
        *,
        text: str | None = None,
        limit: int = DEFAULT_LIMIT,
        min_similarity: float | None = None,
    ) -> dict[str, list[SimilarItem]]:
        """The items most similar to item ``item_id`` (external id) or to ``text`` (exactly
        one of them), best first: ``{"items": [{"id", "text", "similarity", "split"}, ...]}``,
        cosine similarity over the promoted round's features (docs/data.md). The item itself
        and removed items are left out; ``limit`` caps the count, ``min_similarity`` keeps
        only items at least that similar."""
        return find_similar(self, item_id, text=text, limit=limit, min_similarity=min_similarity)

    def predict_texts(self, texts: Sequence[str], *, round_id: int | None = None) -> Predictions:
        """The promoted round's (or round ``round_id``'s) predictions for ``texts``: the same
        as the round stored for texts it saw (docs/models.md). The round's model is loaded
        once per process; a newly promoted round is used from the next call on. Raises
        :class:`~labeling.rounds.predict.NoModel` (no promoted round, a failed or cold-start
        round) or :class:`~labeling.rounds.predict.RoundNotFound`, both ``BadInput``."""
        return predict.predict_texts(self, texts, round_id=round_id)

    def predict_file(
        self,
        path: str | Path,
        out: str | Path,
        *,
        round_id: int | None = None,
        text_field: str | None = None,
        id_field: str | None = None,
        format: str | None = None,
        label_sep: str = DEFAULT_LABEL_SEP,
    ) -> PredictFileReport:
        """Predict every row of a CSV/TSV, JSONL or Parquet file into ``out`` (format from its
        extension): the id column (``id_field``, or a field called ``id``), ``label`` and one
        ``p_<label>`` column per label; streamed a chunk at a time, all or nothing."""
        return predict_file(
            self,
            Path(path),
            Path(out),
            round_id=round_id,
            text_field=text_field,
            id_field=id_field,
            fmt=format,
            label_sep=label_sep,
        )

    def export_model(self, out: str | Path, *, round_id: int | None = None) -> ModelExport:
        """Write the promoted round's (or round ``round_id``'s) model to folder ``out`` as a
        scikit-learn pipeline saved with skops (``model.skops``) and its ``model-card.md``."""
        return model_export.export_model(self, Path(out), round_id=round_id)

    # Play the loop on labelled files; no workspace needed (``labelloop simulate``).
    simulate = staticmethod(simulate_task_files)
