"""The Data page's browser end to end, in Debian's Chromium: search, open an item from the
results table, correct its label, then bulk-label a search after answering its audit sample
with the keyboard; the store must then hold exactly that correction and that batch.
"""

from __future__ import annotations

import json
import os

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect
from sqlmodel import Session, col, select

from labeling import Workspace
from labeling.store.models import BULK, CORRECTION, Annotation, BulkBatch, Item
from tests.browser import chromium, chromium_path, serve, wait_idle

LABELS = ["spam", "ham"]
N_EACH = 20  # the default audit sample: 20 of 20 right clears the 0.8 threshold

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="needs Debian's chromium (.ci/setup installs it)"
)


@pytest.fixture
def served_workspace(tmp_path):
    ws = Workspace.create(tmp_path / "browse", labels=LABELS, name="browse")
    path = tmp_path / "pool.jsonl"
    with path.open("w") as handle:
        for k in range(N_EACH):
            handle.write(json.dumps({"id": f"r{k:02d}", "text": f"refund asked {k}"}) + "\n")
            handle.write(json.dumps({"id": f"p{k:02d}", "text": f"parcel lost {k}"}) + "\n")
    ws.import_file(path, id_field="id")
    ws.close()
    return tmp_path / "browse"


def _search(page, words: str, total: int) -> None:
    page.locator(".st-key-ll_q_text input").fill(words)
    page.keyboard.press("Enter")
    page.get_by_text(f"of {total}", exact=False).first.wait_for(timeout=20_000)
    wait_idle(page)


def _click_first_row(page) -> None:
    """Tick the first row of the results table (a canvas grid: its row marker, on the left)."""
    grid = page.locator("[data-testid='stDataFrame']").first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 12, box["y"] + 35 + 17)


def _choose(page, key_prefix: str, option: str) -> None:
    """Pick ``option`` in the select box whose key starts with ``key_prefix``."""
    page.locator(f"[class*='st-key-{key_prefix}'] input").first.click()
    page.keyboard.type(option)
    page.keyboard.press("Enter")


def _opened_item(page) -> str:
    caption = page.locator("[data-testid='stCaptionContainer']", has_text="Item ").first
    return caption.inner_text(timeout=20_000).strip().split("Item ", 1)[1].strip()


def _answer_sample(page, dialog, number: int) -> None:
    """Press Y for sample item ``number`` once its own buttons are on screen. A key sent while
    Streamlit redraws can be lost (docs/ui.md); a person would press again, and so do we: the
    page applies a press only to the sample item on screen, so a repeat cannot count twice."""
    caption = dialog.get_by_text(f"Sample item {number} of {N_EACH}")
    caption.wait_for(timeout=20_000)
    shown = caption.inner_text().rsplit("Item ", 1)[1].strip()
    dialog.locator(f".st-key-ll_audit_yes_{shown}").wait_for(timeout=20_000)
    for _attempt in range(3):
        wait_idle(page)
        page.keyboard.press("y")
        try:
            caption.wait_for(state="detached", timeout=5_000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"three presses of Y did not answer sample item {shown}")


def test_search_open_correct_and_bulk_label_with_an_audit(served_workspace):
    root = served_workspace
    with serve(root) as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.goto(server.sign_in_url)
        wait_idle(page)
        page.get_by_role("link", name="Data").click()
        wait_idle(page)
        _search(page, "refund", N_EACH)

        _click_first_row(page)
        page.get_by_role("button", name="Back to results").wait_for(timeout=20_000)
        wait_idle(page)
        corrected = _opened_item(page)
        assert corrected.startswith("r")
        _choose(page, "ll_correct_label_", "ham")
        page.get_by_label("Note (optional)").fill("asks for money back")
        page.get_by_role("button", name="Correct the label").click()
        page.get_by_text("label corrected to ham").wait_for(timeout=20_000)
        wait_idle(page)
        item_address = page.url  # the item page's own address: a link to it
        assert item_address.endswith(f"/data?item={corrected}")
        page.get_by_role("button", name="Back to results").click()
        # The search survived the item page.
        expect(page.locator(".st-key-ll_q_text input")).to_have_value("refund", timeout=20_000)
        wait_idle(page)

        _search(page, "parcel", N_EACH)
        page.get_by_role("button", name=f"Label these {N_EACH} as spam").click()
        dialog = page.get_by_role("dialog")
        dialog.wait_for(timeout=20_000)
        for answered in range(N_EACH):
            _answer_sample(page, dialog, answered + 1)
        dialog.get_by_text(f"All {N_EACH} sample items checked").wait_for(timeout=20_000)
        wait_idle(page)
        dialog.get_by_role("button", name="Confirm").click()
        page.get_by_text(f"Labelled {N_EACH} items as spam in batch").wait_for(timeout=20_000)

        # The link opens the item page (a fresh load).
        page.goto(item_address)
        wait_idle(page)
        if os.environ.get("LABELLOOP_SCREENSHOTS"):
            page.screenshot(path=os.environ["LABELLOOP_SCREENSHOTS"], full_page=True)
        assert _opened_item(page) == corrected

    with Workspace.open(root) as ws, Session(ws.engine) as session:
        names = dict(session.exec(select(Item.id, Item.external_id)).all())
        rows = session.exec(select(Annotation).where(col(Annotation.superseded_by).is_(None))).all()
        batches = session.exec(select(BulkBatch)).all()
    corrections = [(names[r.item_id], r.label) for r in rows if r.origin == CORRECTION]
    assert corrections == [(corrected, "ham")]
    bulk = sorted((names[r.item_id], r.label, r.batch) for r in rows if r.origin == BULK)
    assert len(batches) == 1 and batches[0].status == "applied"
    assert bulk == [(f"p{k:02d}", "spam", batches[0].id) for k in range(N_EACH)]
    assert json.loads(batches[0].audit)["checked"] == N_EACH
