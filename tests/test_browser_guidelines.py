"""``?`` and Enter on the Label page in a real browser (``labelloop serve`` driven by Debian's
Chromium): the guidelines open over the item, digits pressed while they are open answer nothing,
Escape closes them, and the next digit labels the item that was on screen all along; with
suggestions on, Enter accepts the pre-selected guess. An engineer pins that item as an example
from its item page, and the annotator's next ``?`` shows its text."""

from __future__ import annotations

from dataclasses import replace

import pytest

from labeling import Workspace
from labeling.config import write_config
from tests.browser import (
    chromium,
    chromium_path,
    item_id,
    one_item_page,
    serve,
    wait_idle,
    wait_item_change,
)
from tests.test_browser_label_keys import _stored

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="needs Debian's chromium (.ci/setup installs it)"
)

BUTTONS = 4  # spam, ham, Skip, Undo (the sidebar's Guidelines button counts too, not needed)


def test_question_mark_opens_the_guidelines_and_keys_wait_behind_them(tmp_path):
    root = tmp_path / "guides"
    with Workspace.create(root, labels=["spam", "ham"], name="guides") as ws:
        path = tmp_path / "pool.csv"
        path.write_text("id,text\n" + "".join(f"m{n},message {n}\n" for n in range(6)))
        ws.import_file(path, id_field="id")
        token = ws.add_user("ann")[1]
        eng_token = ws.add_user("eng", role="engineer")[1]
        ws.edit_guidelines(
            {"labels": {"spam": {"definition": "Ads, offers and links to follow."}}}, by="eng"
        )
        # every text has "message": the weak label, and so the suggestion, is ham
        ws.add_rule({"kind": "keyword", "name": "msg", "label": "ham", "keywords": ["message"]})
        ws.apply_lfs()
        ws.fit_weak_labels()
        write_config(root, replace(ws.config, suggestions="weak", featurizer="tfidf"))
    one_item_page(root)
    with serve(root) as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{server.url}?token={token}")
        wait_idle(page, buttons=BUTTONS)
        first = item_id(page)
        page.keyboard.press("?")
        dialog = page.get_by_role("dialog")
        dialog.get_by_text("Ads, offers and links to follow.").wait_for(timeout=20_000)
        page.keyboard.press("1")  # behind the dialog: answers nothing
        page.wait_for_timeout(500)
        assert _stored(root) == {}
        page.keyboard.press("Escape")
        dialog.wait_for(state="detached", timeout=20_000)
        wait_idle(page, buttons=BUTTONS)
        assert item_id(page) == first
        page.keyboard.press("2")
        wait_item_change(page, first)

        # the engineer pins the answered item from its item page (its label: ham)
        eng = browser.new_page(viewport={"width": 1280, "height": 900})
        eng.goto(f"{server.url}?token={eng_token}")
        wait_idle(eng)
        eng.goto(f"{server.url}data?item={first}")
        wait_idle(eng)
        eng.get_by_role("tab", name="Pin as example").click()
        eng.locator(f".st-key-ll_pin_item_{first} button").click()
        eng.get_by_text(f"Item {first} pinned as an example of ham").wait_for(timeout=20_000)
        wait_idle(eng)
        assert eng.locator(f".st-key-ll_unpin_item_{first} button").count() == 1

        wait_idle(page, buttons=BUTTONS)
        page.keyboard.press("?")
        dialog.get_by_text(f"{first}: message {first[1:]}").wait_for(timeout=20_000)
    assert _stored(root) == {first: ["ham"]}
    with Workspace.open(root) as ws:
        assert ws.guidelines().labels["ham"].examples == (first,)
