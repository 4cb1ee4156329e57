"""SQLModel tables of the labelloop store (see DESIGN.md, "Data model").

Annotations are append-only: a correction or an undo writes a new row and points the old one at
it through ``superseded_by``; nothing is ever deleted. Bulk paths (import, export) go through
SQLAlchemy Core on these same tables; the ORM serves the application's small writes.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Boolean, Column, Index, Text, UniqueConstraint, false, text
from sqlmodel import Field, SQLModel

# Schema changes are Alembic revisions (labeling/store/migrations/versions). ``schemainfo`` keeps
# ``schema_version`` for labelloop releases from before Alembic, which read nothing else: every
# revision sets it to its own number, so such a release refuses a store it does not know.
# A new store gets this value; it is the number of the newest revision.
SCHEMA_VERSION = 13

# The (id, split, label) index that a search names for its lookups (labeling.data.search).
ITEM_LOOKUP_INDEX = "ix_item_id_split_label"

SPLITS = ("pool", "gold")
# Item.split of a removed item (soft delete); Item.removed_from keeps the split to restore.
REMOVED = "removed"
# The system role owns annotations that no person made (labels that came with an import).
SYSTEM_ROLE = "system"
IMPORT_ANNOTATOR = "import"
# Annotation.origin: a person's answer from the queue; a label that came with an imported file;
# a lead's final decision on an item (it overrides the majority); a label an engineer or lead
# set from the item page (it overrides the majority too, and the latest decision wins); a
# label given to many items at once by one bulk action (the item's label only while no person
# has labelled it). See labeling.store.answers for how they decide an item's label.
HUMAN = "human"
IMPORT_ORIGIN = "import"
ADJUDICATION = "adjudication"
CORRECTION = "correction"
BULK = "bulk"
ORIGINS = (HUMAN, IMPORT_ORIGIN, ADJUDICATION, CORRECTION, BULK)
# Origins whose answer decides the item's label outright (the latest one wins).
DECISIONS = (ADJUDICATION, CORRECTION)
ROUND_STATUSES = ("queued", "running", "succeeded", "failed")
LF_KINDS = ("code", "keyword", "regex")
# Where a suggested answer comes from: the promoted round, the LLM LF, the weak label.
SUGGESTION_SOURCES = ("model", "llm", "weak")


def utcnow() -> datetime:
    """Aware UTC; every timestamp in the store is UTC."""
    return datetime.now(UTC)


class SchemaInfo(SQLModel, table=True):
    """Key/value facts about the store itself; ``schema_version`` keeps old releases out."""

    key: str = Field(primary_key=True)
    value: str


class ImportBatch(SQLModel, table=True):
    """One run of ``labelloop import``: where items came from and how fields were mapped."""

    id: int | None = Field(default=None, primary_key=True)
    source_name: str
    format: str
    split: str
    text_field: str
    id_field: str | None = None
    label_field: str | None = None
    # JSON list of the file's field names, in file order (union over rows for JSONL).
    fields: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    rows_read: int = 0
    imported: int = 0
    duplicates: int = 0
    # JSON: the drift check of this import against the labelled set (empty when not run).
    drift: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    # While > 0, this batch's items are served first; each new label on one counts it down.
    priority_left: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class Item(SQLModel, table=True):
    """One text to classify, with its whole source row."""

    __table_args__ = (
        Index("ix_item_split_rank", "split", "rank"),
        # Progress counts (labelled, still open) are range scans of this index, not table scans;
        # before the first model, claims walk it in rank order, one label count at a time.
        Index("ix_item_split_labels_rank", "split", "n_labels", "rank"),
        # The browser's label filter and its counts per label (labeling.data.search).
        Index("ix_item_split_label", "split", "label"),
        # A search's matches checked by id (labeling.data.search): a few MB, not the table.
        # SQLite only: PostgreSQL checks them in the heap (a GIN bitmap gives heap addresses)
        # and would only pay for the index on every write of a label.
        Index(ITEM_LOOKUP_INDEX, "id", "split", "label").ddl_if(dialect="sqlite"),
    )

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(unique=True, index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    # The source row as a JSON object (every field of the file, as read).
    source: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    content_hash: str = Field(index=True)
    split: str = "pool"
    gold_label: str | None = None
    # Current human labels (not skips, not superseded), kept in step by the queue service so
    # that "is this item done?" needs no join.
    n_labels: int = 0
    # Seeded random order used before a model has scored the pool (63-bit hash: BIGINT).
    rank: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    batch_id: int | None = Field(default=None, foreign_key="importbatch.id")
    created_at: datetime = Field(default_factory=utcnow)
    # Soft delete: a removed item has split "removed", which every pool and gold query leaves
    # out; these say which split it came from, when and by whom (labeling.data.removal).
    removed_from: str | None = None
    removed_at: datetime | None = None
    removed_by: str | None = None
    # The item's label now, as its current answers decide it (labeling.store.answers.
    # final_labels); None while it has none. Kept in step by every path that writes answers,
    # so that the browser can filter and count by label without reading the annotation log.
    label: str | None = None
    # Where the item's last change of label (or its removal, or its return) stands in the
    # feed of label changes, and when it was made (labeling.store.label_feed): ``GET /labels``
    # reads the items in this order. None: its label never changed.
    label_seq: int | None = Field(default=None, sa_column=Column(BigInteger, index=True))
    label_changed_at: datetime | None = None


class Annotator(SQLModel, table=True):
    """A person (or the system) who labels. Tokens are stored only as salted scrypt hashes."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    role: str = "annotator"
    # Public half of the sign-in token, used to find the row; the secret half is hashed.
    token_id: str | None = Field(default=None, unique=True, index=True)
    token_hash: str | None = None
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class SignInLink(SQLModel, table=True):
    """A short-lived sign-in token that ``labelloop serve`` prints for the first admin.

    Like Jupyter's launch token: whoever started the server may open the UI at once. Stored
    hashed as annotators' own tokens are; it expires, and the server removes it on exit.
    """

    id: int | None = Field(default=None, primary_key=True)
    token_id: str = Field(unique=True, index=True)
    token_hash: str
    annotator_id: int = Field(foreign_key="annotator.id")
    expires_at: datetime
    created_at: datetime = Field(default_factory=utcnow)


class Annotation(SQLModel, table=True):
    """One decision on one item: a label, or a skip. Append-only."""

    __table_args__ = (
        Index("ix_annotation_annotator_item", "annotator_id", "item_id"),
        Index("ix_annotation_item", "item_id"),
        # Deleting an answer (undoing a bulk batch) checks who points at it: a probe, not a
        # scan. Partial, so that no query for current answers ("IS NULL") is drawn to it.
        Index(
            "ix_annotation_superseded_by",
            "superseded_by",
            sqlite_where=text("superseded_by IS NOT NULL"),
            postgresql_where=text("superseded_by IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id")
    annotator_id: int = Field(foreign_key="annotator.id")
    label: str | None = None
    skipped: bool = False
    duration_ms: int | None = None
    # The round whose scores put the item in front of the annotator (None before any model).
    round_id: int | None = Field(default=None, foreign_key="round.id")
    superseded_by: int | None = Field(default=None, foreign_key="annotation.id")
    origin: str = "human"
    # The bulk action that wrote it (BulkBatch.id); None for every other origin.
    batch: str | None = Field(default=None, index=True)
    # Assisted labelling: the guess pre-selected when the answer was given (stored as a label
    # is; None: none shown), where it came from (SUGGESTION_SOURCES), and whether a guess was
    # withheld on purpose (a gold item drawn for the anchoring check).
    suggestion: str | None = None
    suggestion_source: str | None = None
    suggestion_withheld: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    # The guidelines version on screen when the answer was given (GuidelineVersion.version).
    guidelines_version: int | None = None
    created_at: datetime = Field(default_factory=utcnow)


class ClientOp(SQLModel, table=True):
    """An operation a browser tab sent (an answer, a skip, an undo or a flag), by the client id
    the tab gave it: a resend of an applied operation is acknowledged, never applied again.
    Rows are pruned after a retention (labeling.store.housekeeping), hence the indexes."""

    __table_args__ = (
        Index("ix_clientop_created_at", "created_at"),
        Index("ix_clientop_tab_created_at", "tab", "created_at"),
    )

    cid: str = Field(primary_key=True)
    annotator_id: int = Field(foreign_key="annotator.id")
    tab: str
    op: str
    item_id: int | None = Field(default=None, foreign_key="item.id")
    # The answer an answer or skip recorded (an undo of it names this operation's cid).
    annotation_id: int | None = Field(default=None, foreign_key="annotation.id")
    created_at: datetime = Field(default_factory=utcnow)


class Counter(SQLModel, table=True):
    """A named number that only grows: ``label`` numbers the feed of label changes
    (labeling.store.label_feed)."""

    name: str = Field(primary_key=True)
    value: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class Outbox(SQLModel, table=True):
    """One webhook delivery: written in the transaction of the event it tells of, sent by the
    worker with retries (labeling.store.outbox). The secret is never stored: it is read from
    the environment when the delivery is signed."""

    __table_args__ = (Index("ix_outbox_state_due", "state", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    event: str
    # The webhook's name in labelloop.toml and its URL when the event happened.
    hook: str
    url: str = Field(sa_column=Column(Text, nullable=False))
    # The JSON body, exactly as it is sent and signed.
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    # pending (to send at ``due_at``), delivered, or dead (out of tries).
    state: str = "pending"
    due_at: datetime = Field(default_factory=utcnow)
    attempts: int = 0
    delivered_at: datetime | None = None
    # The last try's HTTP status (None: no reply) and what went wrong, in words.
    last_status: int | None = None
    last_error: str | None = None


class Flag(SQLModel, table=True):
    """A note that something is wrong with an item, raised from the item page; shown on Review
    until someone resolves it."""

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    annotator_id: int = Field(foreign_key="annotator.id")
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(default_factory=utcnow)
    resolved_at: datetime | None = None
    resolved_by: str | None = None


class BulkBatch(SQLModel, table=True):
    """One bulk action: which items it labelled, why it was trusted, and whether it was undone.

    The record stays after an undo (the audit trail); its annotations do not.
    """

    id: str = Field(primary_key=True)
    annotator_id: int = Field(foreign_key="annotator.id")
    label: str
    # JSON: the search (query, filters) or the similar-items request that chose the items.
    selection: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    count: int = 0
    # JSON: the audit sample's answers and the precision estimate (empty: no audit).
    audit: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    # Whether the person confirmed below the precision threshold.
    override: bool = False
    # "applying" while its chunks are written, then "applied"; "undone" after an undo.
    status: str = "applying"
    created_at: datetime = Field(default_factory=utcnow)
    undone_at: datetime | None = None
    undone_by: str | None = None


class Lease(SQLModel, table=True):
    """An item handed to an annotator until ``expires_at``."""

    __table_args__ = (
        UniqueConstraint("item_id", "annotator_id", name="uq_lease_item_annotator"),
        Index("ix_lease_item_expires", "item_id", "expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id")
    annotator_id: int = Field(foreign_key="annotator.id", index=True)
    served_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    round_id: int | None = Field(default=None, foreign_key="round.id")
    # Set when the lease was made by undo: the annotation being revisited.
    undo_of: int | None = Field(default=None, foreign_key="annotation.id")
    # Whether the lease takes one of the item's ``overlap`` places. Revisiting one's own label
    # by undo does not: that label already holds the place.
    holds: bool = True
    # The browser tab whose buffer holds the item (labeling.annotation.buffer); None for the
    # one-item Label page, the CLI and the Python API.
    tab: str | None = None


class LabelingFunction(SQLModel, table=True):
    """A labelling function: Python code from ``lfs/`` or a keyword/regex rule stored as data."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    kind: str
    spec: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    label: str | None = None
    version: str
    active: bool = True
    # Incremental application: the version whose votes are stored, and the highest item id
    # they cover (items are numbered in import order, so newer items have higher ids).
    applied_version: str | None = None
    applied_through: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    # The last application: engine, seconds, faults and the first fault, as JSON.
    stats: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class LFVote(SQLModel, table=True):
    """A non-abstain vote of one LF version on one item (abstains are not stored)."""

    lf_id: int = Field(foreign_key="labelingfunction.id", primary_key=True)
    item_id: int = Field(foreign_key="item.id", primary_key=True, index=True)
    lf_version: str
    label: str


class WeakLabel(SQLModel, table=True):
    """The label model's output for one item: a weak label and how sure it is."""

    item_id: int = Field(foreign_key="item.id", primary_key=True)
    label: str
    confidence: float
    model: str
    updated_at: datetime = Field(default_factory=utcnow)


class Round(SQLModel, table=True):
    """One retraining round: train, evaluate, score the pool, maybe promote."""

    id: int | None = Field(default=None, primary_key=True)
    status: str = "queued"
    trigger: str = "manual"
    strategy: str | None = None
    n_human: int = 0
    n_weak: int = 0
    model_path: str | None = None
    metrics: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    promoted: bool = False
    # When it was last promoted: rollback goes back to the one promoted before.
    promoted_at: datetime | None = None
    error: str | None = None
    heartbeat: datetime | None = None
    # Which process runs it (pid@host) and what it is doing now, for the Model page.
    worker: str | None = None
    stage: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class Score(SQLModel, table=True):
    """A round's strategy score and prediction for one item."""

    # The claim walks this index from the top score down, over open items only: an item that
    # has all the labels it needs is marked closed, so the walk never steps over the items
    # labelled since the round (it did: 200-300 ms a claim after 50k labels).
    __table_args__ = (Index("ix_score_round_open_score", "round_id", "closed", "score"),)

    round_id: int = Field(foreign_key="round.id", primary_key=True)
    item_id: int = Field(foreign_key="item.id", primary_key=True)
    score: float
    prediction: str | None = None
    confidence: float | None = None
    closed: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )


class GuidelineVersion(SQLModel, table=True):
    """One version of the workspace's guidelines (a codebook); every edit adds one.

    ``body`` is JSON: ``{"overview": str, "labels": {label: {"definition", "include",
    "exclude", "examples": [external ids]}}}`` (labeling.annotation.guidelines).
    """

    id: int | None = Field(default=None, primary_key=True)
    version: int = Field(unique=True, index=True)
    author: str
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    body: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    created_at: datetime = Field(default_factory=utcnow)


class LLMAnswer(SQLModel, table=True):
    """A chat-completions answer kept so that a re-run costs nothing: one per (prompt
    version, model, item text), by ``key``, the digest of the three."""

    key: str = Field(primary_key=True)
    prompt_version: str
    model: str
    text_hash: str
    # The reply's text as the server gave it, and the vote parsed from it (a stored label or
    # set; None: the LF abstained, e.g. on a reply that names no label).
    reply: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    vote: str | None = None
    tokens: int = 0
    created_at: datetime = Field(default_factory=utcnow)
