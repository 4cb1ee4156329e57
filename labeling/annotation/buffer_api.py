"""The Workspace call behind the buffered Label page (labeling.annotation.buffer): one batch of
a browser tab's operations in, acknowledgements and new items out.
:class:`labeling.workspace.Workspace` inherits it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session

from labeling.annotation import buffer, progress, suggestions, users
from labeling.annotation.buffer import Ack, Op
from labeling.annotation.leases import QueueItem, promoted_round
from labeling.annotation.progress import EmptyQueue, Progress
from labeling.annotation.suggestions import Suggestion
from labeling.context import Context
from labeling.store.models import Annotator


@dataclass(frozen=True)
class ModelGuess:
    """The promoted model's guess for an item (the sidebar's "Show the model's guess")."""

    prediction: str
    confidence: float | None
    round_id: int


@dataclass(frozen=True)
class ShownItem:
    """An item as a tab shows it: the leased item, the guess pre-selected with it under
    ``suggestions``, and the model's guess when the tab asked for hints."""

    item: QueueItem
    suggestion: Suggestion
    hint: ModelGuess | None = None


@dataclass(frozen=True)
class BatchReply:
    """What a tab learns from one batch (see labeling/ui/label_route.py for its JSON)."""

    acks: list[Ack]
    undone: dict[str, ShownItem]
    items: list[ShownItem]
    dropped: list[tuple[str, str]]
    round_id: int | None
    done: bool
    empty: EmptyQueue | None = None
    progress: Progress | None = None


class BufferAPI(Context):
    """The buffered Label page's batches."""

    def label_batch(
        self,
        annotator: str,
        *,
        tab: str,
        ops: Sequence[Op],
        keep: Sequence[str],
        want: int,
        reorder: bool = False,
        hints: bool = False,
        counts: bool = False,
        close: bool = False,
    ) -> BatchReply:
        """Apply a tab's operations in order (each once ever, by its client id), then bring
        its buffer to ``want`` unanswered items (at most ``1 + prefetch``): ``keep`` lists the
        items it holds now, the one on screen first. One transaction for all of it. ``close``:
        apply the operations, then hand back everything the tab holds. The progress counts
        come when ``counts`` asks, and with every answer or skip acknowledged."""
        settings = self._batch_settings()
        want = max(0, min(want, 1 + self.config.prefetch))
        with self._write() as session:
            me = users.get_annotator(session, annotator)
            acks, undone = buffer.apply_ops(
                session, annotator=me, tab=tab, ops=ops, settings=settings
            )
            if close:
                buffer.release_tab(session, annotator=me, tab=tab)
                undone, keep, want = {}, [], 0
            refill = buffer.refill(
                session,
                annotator=me,
                tab=tab,
                keep=keep,
                want=want,
                reorder=reorder,
                settings=settings,
                brought=[item.item_id for item in undone.values()],
            )
            round_id = promoted_round(session)
        answered = {op.cid for op in ops if op.kind in ("answer", "skip")}
        counts = counts or any(ack.ok and ack.cid in answered for ack in acks)
        with self._read() as session:
            assert me.id is not None
            shown = self._shown(session, me.id, [*undone.values(), *refill.items], hints)
            empty = None
            if refill.done and not refill.items and len(keep) <= len(refill.dropped):
                empty = progress.why_empty(session, me, overlap=self.config.overlap)
            numbers = self._progress(session, me) if counts else None
        return BatchReply(
            acks=acks,
            undone={cid: shown[item.item_id] for cid, item in undone.items()},
            items=[shown[item.item_id] for item in refill.items],
            dropped=refill.dropped,
            round_id=round_id,
            done=refill.done,
            empty=empty,
            progress=numbers,
        )

    def _batch_settings(self) -> buffer.Settings:
        return buffer.Settings(
            labels=self.labels,
            multilabel=self.multilabel,
            overlap=self.config.overlap,
            lease_seconds=self.config.lease_seconds,
            gold_rate=self.config.gold_rate,
        )

    def _progress(self, session: Session, me: Annotator) -> Progress:
        """The progress line's numbers, as on the one-item page (one definition)."""
        return progress.progress_line(
            session, me, engine=self.engine, db_url=self.db_url, overlap=self.config.overlap
        )

    def _shown(
        self, session: Session, annotator_id: int, items: list[QueueItem], hints: bool
    ) -> dict[int, ShownItem]:
        """The guess and (``hints``) the model's guess of each item, read once per item."""
        shown = {}
        for item in items:
            # A revisit by undo starts from the person's own answer, never from a guess.
            guess = suggestions.NONE
            if not item.is_undo and self.config.suggestions != suggestions.OFF:
                guess = suggestions.suggestion_for(
                    self, session, annotator_id=annotator_id, item_id=item.item_id
                )
            hint = None
            if hints:
                prediction, confidence, round_id = suggestions.model_guess(
                    self, session, item.item_id
                )
                if prediction is not None and round_id is not None:
                    hint = ModelGuess(prediction, confidence, round_id)
            shown[item.item_id] = ShownItem(item=item, suggestion=guess, hint=hint)
        return shown
