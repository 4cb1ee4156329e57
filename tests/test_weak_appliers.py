"""Engine contract: local, snorkel and dask give identical votes on the real YouTube pool.

The Dask cluster is one 2-worker ``LocalCluster`` for the module, with worker *processes*
(``processes=True``): LFs then really travel to other interpreters by pickling, including LFs
loaded from an ``lfs/`` file that the workers never imported, which threads would not test.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO, YOUTUBE
from weak_supervision import (
    ABSTAIN,
    ApplyError,
    KeywordRule,
    apply_lfs,
    labeling_function,
    load_lf_dir,
    rule_from_spec,
)

LABELS = ("ham", "spam")
EXAMPLE = REPO / "docs" / "examples" / "youtube_lfs.py"

FLAKY_LF = """
from weak_supervision import ABSTAIN, labeling_function

@labeling_function()
def reads_author(row):
    # Faults on purpose where AUTHOR is missing; elsewhere votes on a source field.
    return "spam" if row["AUTHOR"].lower().startswith("m") else ABSTAIN
"""


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    ) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def pool() -> pd.DataFrame:
    files = sorted(YOUTUBE.glob("Youtube0*.csv"))[:4]
    if len(files) != 4:
        pytest.fail(f"expected the YouTube files in {YOUTUBE}, found {files}")
    frames = [pd.read_csv(f, encoding="utf-8-sig", dtype=str, keep_default_na=False) for f in files]
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.rename(columns={"CONTENT": "text"})[["text", "AUTHOR", "COMMENT_ID"]]
    frame.loc[::97, "AUTHOR"] = None  # some rows without the field, so reads_author faults
    frame.loc[5, "text"] = None  # and one item without text
    assert len(frame) == 1586
    return frame


@pytest.fixture(scope="module")
def lfs(tmp_path_factory: pytest.TempPathFactory) -> list:
    folder = tmp_path_factory.mktemp("ws") / "lfs"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / "youtube_lfs.py")
    (folder / "flaky.py").write_text(FLAKY_LF)
    loaded = load_lf_dir(folder, LABELS)
    assert not loaded.errors
    namespace: dict = {}
    exec(compile(EXAMPLE.read_text(), str(EXAMPLE), "exec"), namespace)
    rules = [rule_from_spec(spec).bind(LABELS) for spec in namespace["RULES"]]
    return rules + loaded.lfs


@pytest.mark.parametrize("engine", ["snorkel", "dask"])
def test_every_engine_gives_the_local_votes(engine, pool, lfs, scheduler):
    local = apply_lfs(lfs, pool)
    other = apply_lfs(lfs, pool, engine=engine, scheduler=scheduler if engine == "dask" else None)
    assert other.L.shape == (1586, len(lfs)) and other.L.dtype == np.int64
    np.testing.assert_array_equal(other.L, local.L)
    assert other.faults == local.faults
    assert other.first_fault == local.first_fault
    assert other.versions == local.versions
    # The contract is only worth something if the votes are not trivial.
    assert ((local.L != ABSTAIN).sum(axis=0) > 0).all()
    assert local.faults["reads_author"] == 17
    assert local.first_fault["reads_author"].startswith("row 0: AttributeError: 'NoneType'")
    # The code LFs fault on the row without text; the rules abstain there.
    assert local.faults["short_comment"] == 1
    assert (local.L[5] == ABSTAIN).all()


def test_dask_without_a_scheduler_starts_its_own_cluster(lfs):
    frame = pd.DataFrame({"text": ["check out my channel", "love this song", "x"] * 10})
    done: list[tuple[int, int]] = []
    result = apply_lfs(
        lfs[:3], frame, engine="dask", n_workers=1, progress=lambda d, t: done.append((d, t))
    )
    np.testing.assert_array_equal(result.L, apply_lfs(lfs[:3], frame).L)
    assert done[-1] == (30, 30)


@pytest.mark.parametrize("engine", ["local", "snorkel"])
def test_progress_reports_every_chunk(engine, pool, lfs):
    done: list[tuple[int, int]] = []
    apply_lfs(
        lfs,
        pool.head(250),
        engine=engine,
        chunk_rows=100,
        progress=lambda d, t: done.append((d, t)),
    )
    assert done == [(100, 250), (200, 250), (250, 250)]


def test_source_fields_and_index_do_not_change_votes(lfs):
    @labeling_function()
    def by_channel(row):
        return "ham" if row["channel"] == "chat" else ABSTAIN

    frame = pd.DataFrame(
        {"text": ["a", "b", "c"], "channel": ["chat", "email", None]}, index=[10, 3, 7]
    )
    result = apply_lfs([by_channel.bind(LABELS)], frame, engine="snorkel")
    assert result.L[:, 0].tolist() == [0, -1, -1]


def test_bad_inputs_are_refused_with_what_was_found(lfs):
    rule = KeywordRule("k", "spam", ("x",)).bind(LABELS)
    with pytest.raises(ApplyError, match="unknown engine 'spark'"):
        apply_lfs([rule], pd.DataFrame({"text": ["x"]}), engine="spark")
    with pytest.raises(ApplyError, match="needs a 'text' column, found \\['body'\\]"):
        apply_lfs([rule], pd.DataFrame({"body": ["x"]}))
    with pytest.raises(ApplyError, match="row 1: text must be a string or missing, found int"):
        apply_lfs([rule], pd.DataFrame({"text": ["x", 3]}))
    with pytest.raises(ApplyError, match="duplicates \\['k'\\]"):
        apply_lfs([rule, rule], pd.DataFrame({"text": ["x"]}))
    with pytest.raises(ApplyError, match="call .bind\\(labels\\)"):
        apply_lfs([KeywordRule("k", "spam", ("x",))], pd.DataFrame({"text": ["x"]}))  # type: ignore[list-item]
    with pytest.raises(ApplyError, match="only applies to the dask engine"):
        apply_lfs([rule], pd.DataFrame({"text": ["x"]}), scheduler="tcp://127.0.0.1:1")


def test_an_empty_frame_or_no_lfs_give_an_empty_matrix(lfs):
    for engine in ("local", "snorkel"):
        result = apply_lfs(lfs, pd.DataFrame({"text": pd.Series([], dtype=object)}), engine=engine)
        assert result.L.shape == (0, len(lfs))
    for engine in ("local", "snorkel", "dask"):
        result = apply_lfs([], pd.DataFrame({"text": ["a", "b"]}), engine=engine)
        assert result.L.shape == (2, 0) and result.faults == {}


def test_dask_reads_partitions_where_they_lie(tmp_path, pool, lfs, scheduler):
    import dask.dataframe as dd

    path = tmp_path / "pool.parquet"
    pool.to_parquet(path)
    ddf = dd.read_parquet(path).repartition(npartitions=3)
    done: list[tuple[int, int]] = []
    result = apply_lfs(
        lfs, ddf, engine="dask", scheduler=scheduler, progress=lambda d, t: done.append((d, t))
    )
    local = apply_lfs(lfs, pool)
    np.testing.assert_array_equal(result.L, local.L)
    assert result.faults == local.faults and result.first_fault == local.first_fault
    assert done[-1] == (1586, 1586)
