"""The Queue page in a real browser: an engineer opens it and reads an annotator's queue, and
looking leases nothing (``labelloop serve`` driven by Debian's Chromium)."""

from __future__ import annotations

import pytest
from sqlmodel import Session, col, select

from labeling import Workspace
from labeling.store.models import Lease
from tests.browser import (
    chromium,
    chromium_path,
    one_item_page,
    serve,
    sign_in_with_form,
    tfidf_only,
    wait_idle,
)

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="needs Debian's chromium (.ci/setup installs it)"
)


def _leases(root) -> list[tuple[int, int]]:
    with Workspace.open(root) as ws, Session(ws.engine) as session:
        return [
            (lease.item_id, lease.annotator_id)
            for lease in session.exec(select(Lease).order_by(col(Lease.id)))
        ]


def test_an_engineer_reads_an_annotators_queue_without_leasing(tmp_path):
    root = tmp_path / "queue"
    with Workspace.create(root, labels=["spam", "ham"], name="queue") as ws:
        path = tmp_path / "pool.csv"
        path.write_text("id,text\n" + "".join(f"q{k},message {k}\n" for k in range(8)))
        ws.import_file(path, id_field="id")
        ws.add_user("ann")
        token = ws.add_user("erin", role="engineer")[1]
        held = ws.next_item("ann").external_id
        second = ws.queue_preview("ann")["items"][1]["id"]
    tfidf_only(root)  # the page reads no features: the round worker embeds nothing meanwhile
    one_item_page(root)
    before = _leases(root)
    with serve(root) as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        sign_in_with_form(page, server.url, token)
        page.get_by_role("link", name="Queue").click()
        wait_idle(page)
        table = page.get_by_test_id("stDataFrame").first
        # The grid is a canvas; its cells are also in a hidden accessible copy.
        for text in (held, "you hold it now: your next claim serves it again", second):
            table.get_by_text(text, exact=True).first.wait_for(state="attached", timeout=20_000)
        assert page.get_by_text("No promoted round yet").count() == 1
    assert _leases(root) == before
