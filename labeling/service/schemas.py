"""The HTTP API's request bodies, checked by pydantic; a body that does not fit gets a 400
whose message names the field, e.g. ``items[3].text: Field required`` (labeling.service.app).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Requests: at most this many items, texts or answers, and this many bytes.
MAX_ITEMS = 10_000
MAX_TEXTS = 10_000
MAX_ANSWERS = 200
MAX_BODY = 32 * 1024 * 1024
# A client's name (its buffer of leased items, like a browser tab's).
CLIENT = r"^[A-Za-z0-9_.-]{1,64}$"


class PushItems(BaseModel):
    """``POST /items``: items as objects with ``id``, ``text`` and any other fields."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"id": "t-1001", "text": "my card was charged twice", "channel": "email"}
                    ],
                    "split": "pool",
                }
            ]
        },
    )

    items: list[dict[str, Any]] = Field(max_length=MAX_ITEMS)
    split: Literal["pool", "gold"] = "pool"
    # The field of each item that holds its label (gold: required; default "label" there).
    label_field: str | None = None


class PredictTexts(BaseModel):
    """``POST /predict``: texts to classify with the promoted round (or ``round``)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"texts": ["where is my parcel?"]}]}
    )

    texts: list[str] = Field(max_length=MAX_TEXTS)
    round: int | None = Field(default=None, ge=1)


class QueueRound(BaseModel):
    """``POST /rounds``: queue a retraining round for the worker."""

    model_config = ConfigDict(extra="forbid")

    strategy: str | None = None


class Answer(BaseModel):
    """One answer of a labelling client: ``id`` is the client's id for it (a resend with the
    same id is acknowledged, never applied twice); ``label`` a label name, a list of names in
    a multi-label workspace, or null with ``skip``."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")
    item: str = Field(min_length=1, max_length=512)
    label: str | list[str] | None = None
    skip: bool = False
    ms: int | None = Field(default=None, ge=0, le=86_400_000)


class Answers(BaseModel):
    """``POST /answers``: a client's answers, applied in order, then up to ``next`` items."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "client": "default",
                    "answers": [{"id": "a1b2c3d4e5", "item": "t-1001", "label": "billing"}],
                    "next": 1,
                }
            ]
        },
    )

    client: str = Field(default="default", pattern=CLIENT)
    answers: list[Answer] = Field(max_length=MAX_ANSWERS)
    next: int = Field(default=0, ge=0, le=21)
