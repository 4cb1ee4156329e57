"""HTML and JavaScript in item text and in label names stay inert in a real browser.

``labelloop serve`` in headless Chromium: the markup shows as the characters typed, no script
runs (``window.__pwned`` stays undefined, no dialog opens) and no element is made from it; on
the one-item Label page (Streamlit's elements) and on the buffered one (our component, which
sets every text with ``textContent``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session, select

from labeling import Workspace
from labeling.store.models import Annotation
from tests.browser import chromium, chromium_path, one_item_page, serve, wait_idle

pytestmark = pytest.mark.skipif(chromium_path() is None, reason="needs Debian's chromium")

TEXT_PAYLOAD = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'
LABEL_SCRIPT = "<script>window.__pwned=1</script>"
LABEL_IMG = '<img src=x onerror="window.__pwned=1;alert(1)">'
LABEL_MD = "[click](javascript:window.__pwned=1)"
LABELS = [LABEL_SCRIPT, LABEL_IMG, LABEL_MD]


@pytest.fixture
def root(tmp_path: Path) -> tuple[Path, str]:
    with Workspace.create(tmp_path / "xss", labels=LABELS, name="xss") as ws:
        path = tmp_path / "pool.jsonl"
        path.write_text(json.dumps({"id": "x1", "text": TEXT_PAYLOAD}) + "\n", encoding="utf-8")
        ws.import_file(path, id_field="id")
        token = ws.add_user("ann")[1]
    return tmp_path / "xss", token


def _inert(page) -> None:
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("a[href^='javascript:']").count() == 0


def _dialog_probe(page, url: str, dialogs: list[str]) -> None:
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(url)
    page.evaluate("() => window.alert('probe')")  # the hook sees a real dialog
    assert dialogs == ["probe"]
    dialogs.clear()


def test_markup_on_the_buffered_label_page_is_shown_not_run(root: tuple[Path, str]) -> None:
    folder, token = root
    dialogs: list[str] = []
    with serve(folder) as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        _dialog_probe(page, server.url, dialogs)
        page.goto(f"{server.url}?token={token}")
        page.locator(".ll-b-root .ll-b-text").wait_for(timeout=30_000)
        assert page.locator(".ll-b-root .ll-b-text").inner_text() == TEXT_PAYLOAD
        buttons = [b.inner_text() for b in page.locator(".ll-b-root button").all()]
        for label in LABELS:
            assert any(label in text for text in buttons), (label, buttons)
        _inert(page)
        page.keyboard.press("2")  # answer with the <img ...> label
        page.get_by_text("Nothing to label").first.wait_for(timeout=20_000)
        page.wait_for_function("() => window.__labelloopBufferState().outbox === 0")
        _inert(page)
        assert not dialogs, f"a script ran: {dialogs}"
    with Workspace.open(folder) as ws, Session(ws.engine) as session:
        assert session.exec(select(Annotation.label)).all() == [LABEL_IMG]


def test_markup_in_text_and_labels_is_shown_not_run(root: tuple[Path, str]) -> None:
    folder, token = root
    one_item_page(folder)
    dialogs: list[str] = []
    with serve(folder) as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(server.url)
        page.evaluate("() => window.alert('probe')")  # the hook sees a real dialog
        assert dialogs == ["probe"]
        dialogs.clear()

        page.goto(f"{server.url}?token={token}")
        wait_idle(page, buttons=len(LABELS) + 2)
        shown = page.locator(".st-key-ll_text [data-testid='stText']").inner_text(timeout=10_000)
        assert shown == TEXT_PAYLOAD
        buttons = [b.inner_text() for b in page.locator(".stButton button").all()]
        for label in (LABEL_SCRIPT, LABEL_IMG):
            assert any(label in text for text in buttons), (label, buttons)
        # Markdown in a label name shows as typed too (the pages escape it).
        assert any(LABEL_MD in text for text in buttons), (LABEL_MD, buttons)
        assert page.evaluate("() => typeof window.__pwned") == "undefined"
        assert page.locator("img[src='x']").count() == 0
        assert page.locator("a[href^='javascript:']").count() == 0

        page.keyboard.press("2")  # answer with the <img ...> label
        page.get_by_text("Nothing").first.wait_for(timeout=20_000)
        wait_idle(page)
        assert page.evaluate("() => typeof window.__pwned") == "undefined"
        assert not dialogs, f"a script ran: {dialogs}"
    with Workspace.open(folder) as ws, Session(ws.engine) as session:
        assert session.exec(select(Annotation.label)).all() == [LABEL_IMG]
