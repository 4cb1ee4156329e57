"""The ``snorkel`` engine: Snorkel's own ``PandasLFApplier`` over thin wrappers of our LFs.

A reference more than a workhorse: the contract test checks that it votes like the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from weak_supervision.apply.core import (
    AnyLF,
    ApplyOptions,
    EngineVotes,
    chunks,
    frame_row,
    prepare_frame,
    stack,
)
from weak_supervision.lf import ABSTAIN, FAULT, Row

if TYPE_CHECKING:
    import pandas as pd


class _SnorkelCall:
    """Snorkel's view of one of our LFs: a Series in, an int out, faults noted by row."""

    def __init__(self, lf: AnyLF, fault_rows: list[int]) -> None:
        self.lf = lf
        self.fault_rows = fault_rows

    def __call__(self, x: pd.Series) -> int:
        try:
            return self.lf.vote(Row(**{str(k): v for k, v in x.items()}))
        except Exception:  # Snorkel drops negative votes, so faults are noted here by row
            self.fault_rows.append(int(x.name))
            return ABSTAIN


def votes_snorkel(lfs: Sequence[AnyLF], frame: pd.DataFrame, options: ApplyOptions) -> EngineVotes:
    """Votes in chunks of ``chunk_rows``; Snorkel sees our LFs through :class:`_SnorkelCall`."""
    # Local: snorkel.labeling adds most of a second to an import; only this engine needs it.
    from snorkel.labeling import LabelingFunction as SnorkelLF
    from snorkel.labeling import PandasLFApplier

    prepared = prepare_frame(frame)
    fault_rows: list[list[int]] = [[] for _ in lfs]
    wrapped = [
        SnorkelLF(name=lf.name, f=_SnorkelCall(lf, rows))
        for lf, rows in zip(lfs, fault_rows, strict=True)
    ]
    applier = PandasLFApplier(wrapped)
    parts = []
    for start, stop in chunks(len(prepared), options.chunk_rows):
        votes = applier.apply(prepared.iloc[start:stop], progress_bar=False)
        parts.append(np.asarray(votes, dtype=np.int64).reshape(stop - start, len(lfs)))
        if options.progress is not None:
            options.progress(stop, len(prepared))
    L = stack(parts, len(lfs))
    for j, rows in enumerate(fault_rows):
        L[rows, j] = FAULT
    return EngineVotes(L, partial(frame_row, prepared), {})
