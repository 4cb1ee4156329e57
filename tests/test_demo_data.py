"""Tests for the seeded demo data generator and the committed files in datasets/demo."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from labeling.demo import words as demo_data

DEMO_DIR = Path(__file__).resolve().parents[1] / "datasets" / "demo"
FILE_NAMES = ("pool.csv", "gold.csv", "answers.csv")


@pytest.fixture(scope="module")
def data() -> demo_data.DemoData:
    return demo_data.generate()


@pytest.mark.parametrize("name", FILE_NAMES)
def test_committed_files_match_a_fresh_write(tmp_path: Path, name: str) -> None:
    written = demo_data.write(tmp_path)
    assert [path.name for path in written] == list(FILE_NAMES)
    assert (tmp_path / name).read_bytes() == (DEMO_DIR / name).read_bytes(), (
        f"datasets/demo/{name} is stale: regenerate it with "
        "`python -m labeling.demo.words datasets/demo`"
    )


def test_files_are_utf8_without_bom_with_unix_line_endings(tmp_path: Path) -> None:
    for path in demo_data.write(tmp_path):
        raw = path.read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf")
        assert b"\r" not in raw
        raw.decode("utf-8")


def test_written_files_round_trip(tmp_path: Path, data: demo_data.DemoData) -> None:
    demo_data.write(tmp_path, data)

    def read(name: str) -> list[dict[str, str]]:
        with (tmp_path / name).open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))

    assert read("pool.csv") == data.pool
    assert read("gold.csv") == data.gold
    assert read("answers.csv") == data.answers


def test_pool_file_carries_no_labels(data: demo_data.DemoData) -> None:
    with (DEMO_DIR / "pool.csv").open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    assert header == ["id", "text", "channel"]
    assert all(set(row) == {"id", "text", "channel"} for row in data.pool)
    assert all(set(row) == {"id", "text", "channel", "label"} for row in data.gold)
    assert all(set(row) == {"id", "label"} for row in data.answers)


def test_same_seed_gives_equal_data(data: demo_data.DemoData) -> None:
    assert demo_data.generate() == data
    assert demo_data.generate(seed=7) == demo_data.generate(seed=7)


def test_different_seed_gives_different_data(data: demo_data.DemoData) -> None:
    other = demo_data.generate(seed=demo_data.DEFAULT_SEED + 1)
    assert other.pool != data.pool
    assert other.gold != data.gold


def test_sizes(data: demo_data.DemoData) -> None:
    assert len(data.pool) >= 2000
    assert len(data.gold) >= 100
    assert len(data.answers) == len(data.pool)


def test_custom_sizes_are_respected() -> None:
    small = demo_data.generate(seed=3, n_pool=300, n_gold=50)
    assert len(small.pool) == len(small.answers) == 300
    assert len(small.gold) == 50


def test_all_classes_present_and_pool_not_too_imbalanced(data: demo_data.DemoData) -> None:
    assert demo_data.LABELS == ("billing", "technical", "shipping", "account", "feedback")
    gold_counts = Counter(row["label"] for row in data.gold)
    pool_counts = Counter(row["label"] for row in data.answers)
    assert set(gold_counts) == set(demo_data.LABELS)
    assert set(pool_counts) == set(demo_data.LABELS)
    for label in demo_data.LABELS:
        assert pool_counts[label] >= 0.10 * len(data.pool), label


def test_channels_are_known(data: demo_data.DemoData) -> None:
    channels = {"email", "chat", "web_form", "app_review"}
    assert {row["channel"] for row in data.pool} <= channels
    assert {row["channel"] for row in data.gold} <= channels


def test_ids_are_unique_and_well_formed(data: demo_data.DemoData) -> None:
    pool_ids = [row["id"] for row in data.pool]
    gold_ids = [row["id"] for row in data.gold]
    assert len(set(pool_ids)) == len(pool_ids)
    assert len(set(gold_ids)) == len(gold_ids)
    assert pool_ids[:2] == ["t00001", "t00002"]
    assert gold_ids[:2] == ["g0001", "g0002"]
    assert not set(pool_ids) & set(gold_ids)


def test_answers_align_with_pool(data: demo_data.DemoData) -> None:
    assert [row["id"] for row in data.answers] == [row["id"] for row in data.pool]


def test_gold_texts_are_distinct_and_not_in_pool(data: demo_data.DemoData) -> None:
    gold_texts = [row["text"] for row in data.gold]
    assert len(set(gold_texts)) == len(gold_texts)
    assert not set(gold_texts) & {row["text"] for row in data.pool}


def test_pool_has_a_few_duplicate_texts(data: demo_data.DemoData) -> None:
    counts = Counter(row["text"] for row in data.pool)
    extra_copies = sum(count - 1 for count in counts.values())
    assert 0 < extra_copies <= 0.02 * len(data.pool)


def test_texts_are_non_empty_and_stripped(data: demo_data.DemoData) -> None:
    for row in [*data.pool, *data.gold]:
        text = row["text"]
        assert text, row["id"]
        assert text == text.strip(), row["id"]
        assert "\n" not in text and "\r" not in text, row["id"]


# ---------------------------------------------------------------------------------------------
# `labelloop demo`: the workspace it builds shows the loop turned once.


def _readme_demo_paragraph() -> str:
    text = (DEMO_DIR.parents[1] / "README.md").read_text(encoding="utf-8")
    start = text.index("builds a demo workspace in `labelloop-demo/`")
    paragraph = text[start : text.index("`.ci/setup` installs", start)]
    return " ".join(paragraph.replace("`", "").split())


def test_demo_next_steps_are_the_readme_s() -> None:
    from labeling.demo.build import next_steps

    readme = _readme_demo_paragraph()
    for step in next_steps("labelloop-demo"):
        assert step in readme, f"the README's demo paragraph does not say: {step}"


def test_demo_turns_the_loop_once(tmp_path: Path, db_url: str | None, monkeypatch) -> None:
    import time

    from streamlit.testing.v1 import AppTest

    from labeling import Workspace
    from labeling.demo.build import DEMO_RULES, SIMULATED_ANSWERS, build_demo, next_steps

    root = tmp_path / "labelloop-demo"
    started = time.monotonic()
    info = build_demo(root, db_url=db_url)
    seconds = time.monotonic() - started
    loop = info["loop"]
    assert info["created"] and loop is not None
    assert loop["rules"] == [name for name, _, _ in DEMO_RULES]
    assert loop["votes"] > 500 and loop["weak_labels"] > 500
    assert loop["round_status"] == "succeeded" and loop["promoted"]
    assert loop["gold_macro_f1"] > 0.6
    status = info["status"]
    assert status["items"]["pool"] == 2400 and status["items"]["gold"] == 200
    assert status["annotations"] == SIMULATED_ANSWERS
    for step in next_steps(root):
        assert " ".join(step.split()) in " ".join(info["message"].split())
    print(f"demo build: {seconds:.1f} s")  # reported with -s; the README quotes the CPU time

    with Workspace.open(root, db_url=db_url) as ws:
        [round_] = ws.rounds()
        assert round_.promoted and round_.n_human > 0
        assert {row["name"] for row in ws.list_lfs()} == set(loop["rules"])
        ws.add_user("newcomer", role="admin")

    # The pages a newcomer opens first are not empty.
    monkeypatch.setenv("LABELLOOP_WORKSPACE", str(root))
    if db_url:
        monkeypatch.setenv("LABELLOOP_DB", db_url)
    else:
        monkeypatch.delenv("LABELLOOP_DB", raising=False)

    def page(module: str) -> AppTest:
        script = f"from labeling.ui.views import {module}\n{module}.render()\n"
        at = AppTest.from_string(script, default_timeout=60)
        at.session_state["ll_user"] = "newcomer"
        at.run()
        assert not at.exception, module
        return at

    assert len(page("lfs").dataframe) >= 1
    assert any(m.value == f"round {round_.id}" for m in page("model").metric)
    assert page("metrics").metric

    # Building again reuses the workspace: no second round, no second copy of the rules.
    again = build_demo(root, db_url=db_url)
    assert not again["created"] and again["loop"] is None
    assert again["status"]["annotations"] == SIMULATED_ANSWERS
    with Workspace.open(root, db_url=db_url) as ws:
        assert len(ws.rounds()) == 1
