"""Every label reachable by keyboard on the Label page, in a real browser (``labelloop serve``
driven by Debian's Chromium).

With more than nine labels, ``/`` opens the picker: letters narrow the labels by name, the
arrows move among the matches, Enter picks, Escape closes; S and U are text inside it. A page of
nine labels keeps digits, S and U, and ``/`` there does nothing (and says so). The store must
hold exactly the answers given with the keyboard.
"""

from __future__ import annotations

import pytest
from sqlmodel import Session, col, select

from labeling import Workspace
from labeling.store.models import Annotation, Item
from tests.browser import (
    chromium,
    chromium_path,
    item_id,
    one_item_page,
    serve,
    tfidf_only,
    wait_idle,
    wait_item_change,
)

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="needs Debian's chromium (.ci/setup installs it)"
)

EMOTIONS = [
    "admiration",
    "amusement",
    "anger",
    "annoyance",
    "approval",
    "caring",
    "confusion",
    "curiosity",
    "desire",
    "disappointment",
    "disapproval",
    "sadness",
    "surprise",
]
# A name with HTML and Markdown in it: shown and stored as written, found by its words.
URGENT = "<b>urgent</b> *now*"


def _workspace(tmp_path, labels: list[str]) -> tuple[object, str]:
    root = tmp_path / "keys"
    with Workspace.create(root, labels=labels, name="keys") as ws:
        path = tmp_path / "pool.csv"
        path.write_text("id,text\n" + "".join(f"k{n:02d},message {n}\n" for n in range(30)))
        ws.import_file(path, id_field="id")
        token = ws.add_user("ann")[1]
    tfidf_only(root)
    one_item_page(root)
    return root, token


def _stored(root) -> dict[str, list[str | None]]:
    """Current answers by item external id (a list, to catch an item answered twice)."""
    with Workspace.open(root) as ws, Session(ws.engine) as session:
        rows = session.exec(
            select(Item.external_id, Annotation.label)
            .join(Annotation, col(Annotation.item_id) == col(Item.id))
            .where(col(Annotation.superseded_by).is_(None))
        ).all()
    found: dict[str, list[str | None]] = {}
    for external_id, label in rows:
        found.setdefault(external_id, []).append(label)
    return found


def _note(page, wanted: str) -> str:
    note = page.locator("#ll-key-note", has_text=wanted)
    note.wait_for(state="visible", timeout=10_000)
    return str(note.inner_text())


def _keys(page, *keys: str) -> None:
    for key in keys:
        page.keyboard.press(key)


def _keys_at_once(page, *keys: str) -> None:
    """Press ``keys`` in one go, in a single task of the page: no update from the server can
    land between them, as for a fast typist racing a slow redraw (Playwright's own presses are
    round trips, which a loaded machine can stretch past a redraw)."""
    page.evaluate(
        """(keys) => {
            for (const key of keys) {
                window.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true }));
            }
        }""",
        list(keys),
    )


def _answer(page, buttons: int, *keys: str) -> str:
    """Press ``keys`` on a settled page; wait for the next item; return its id."""
    wait_idle(page, buttons=buttons)
    before = item_id(page)
    _keys(page, *keys)
    wait_item_change(page, before)
    wait_idle(page, buttons=buttons)
    return item_id(page)


def test_label_eleven_and_later_by_keyboard_only(tmp_path):
    labels = [*EMOTIONS, URGENT]
    root, token = _workspace(tmp_path, labels)
    buttons = len(labels) + 2  # the labels, Skip and Undo
    given: dict[str, list[str | None]] = {}
    with serve(root) as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 800})
        page.goto(f"{server.url}?token={token}")
        wait_idle(page, buttons=buttons)
        picker = page.locator("#ll-label-picker")

        # Label 11 by name: "dis" matches disappointment (10) and disapproval (11); the arrow
        # moves to the second, whose button is outlined; Enter picks it.
        current = item_id(page)
        _keys(page, "/", "d", "i", "s")
        picker.get_by_text("disapproval").wait_for(timeout=10_000)
        assert "disappointment" in picker.inner_text()
        page.keyboard.press("ArrowDown")
        outlined = page.locator("button[data-ll-pick]")
        outlined.get_by_text("disapproval").wait_for(timeout=10_000)
        assert page.locator("button[data-ll-dim]").count() == len(labels) - 2  # the rest fade
        given[current] = ["disapproval"]
        page.keyboard.press("Enter")
        wait_item_change(page, current)
        assert picker.is_hidden()
        wait_idle(page, buttons=buttons)
        current = item_id(page)

        # S is text in the picker, not a skip: "sad" finds label 12.
        given[current] = ["sadness"]
        current = _answer(page, buttons, "/", "s", "a", "d", "Enter")
        # The first match is enough: "su" is label 13, surprise.
        given[current] = ["surprise"]
        current = _answer(page, buttons, "/", "S", "u", "Enter")
        # U is text too; the name shows as written, and a word inside it matches.
        wait_idle(page, buttons=buttons)
        _keys(page, "/", "u", "r", "g")
        picker.get_by_text(f"14  {URGENT}").wait_for(timeout=10_000)
        given[current] = [URGENT]
        page.keyboard.press("Enter")
        wait_item_change(page, current)
        wait_idle(page, buttons=buttons)
        current = item_id(page)

        # Nothing matches: Enter says so and keeps the item; Escape closes the picker.
        wait_idle(page, buttons=buttons)
        _keys(page, "/", "x", "y", "z", "Enter")
        assert _note(page, "No label matches").startswith("No label matches \u201cxyz\u201d")
        page.keyboard.press("Escape")
        picker.wait_for(state="hidden", timeout=10_000)
        assert item_id(page) == current
        assert page.locator("button[data-ll-dim], button[data-ll-pick]").count() == 0
        # A click anywhere closes it too (here on the item's text, which answers nothing).
        _keys(page, "/", "c")
        picker.wait_for(state="visible", timeout=10_000)
        page.locator(".st-key-ll_text").click()
        picker.wait_for(state="hidden", timeout=10_000)
        assert item_id(page) == current
        # Digits still label the first nine, and S still skips once the picker is closed.
        given[current] = ["desire"]
        current = _answer(page, buttons, "9")
        given[current] = [None]
        current = _answer(page, buttons, "/", "c", "a", "Escape", "s")

        # A key that means nothing names the picker.
        page.keyboard.press("x")
        assert _note(page, "Key X") == (
            "Key X does nothing here (1-9 label, / finds any of the 14 labels by name, "
            "S skips, U undoes, ? opens the guidelines)."
        )

        # The picker opened just after a digit, while that answer is on its way, closes when the
        # next item comes on screen: what would be typed in it was meant for the item before.
        given[current] = ["admiration"]
        _keys_at_once(page, "1", "/")
        _note(page, "another item came on screen")
        wait_item_change(page, current)
        assert picker.is_hidden()
        wait_idle(page, buttons=buttons)
        current = item_id(page)

        # A pick made before the next item is drawn is for the item it was made on, which is
        # answered already: it is not applied to the next one, and a note says so.
        given[current] = ["amusement"]
        _keys_at_once(page, "2", "/", "d", "i", "s", "Enter")
        assert _note(page, "Enter (disappointment)") == (
            "Enter (disappointment) was not applied: it was pressed on the screen before, "
            "ahead of this item."
        )
        wait_item_change(page, current)
        wait_idle(page, buttons=buttons)
        unanswered = item_id(page)
        # Nothing left in the listener: no press held, none sent and still waiting for its run.
        page.wait_for_function(
            """() => {
                const s = window.__labelloopKeysState();
                return s.waiting === 0 && (s.sent === null || s.sent.ran) && !s.picker.open;
            }""",
            timeout=10_000,
        )
        wait_idle(page, buttons=buttons)
        assert item_id(page) == unanswered
    stored = _stored(root)
    assert stored == given
    assert unanswered not in stored


def test_a_nine_label_page_labels_with_digits_and_has_no_picker(tmp_path):
    labels = EMOTIONS[:9]
    root, token = _workspace(tmp_path, labels)
    buttons = len(labels) + 2
    given: dict[str, list[str | None]] = {}
    with serve(root) as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 800})
        page.goto(f"{server.url}?token={token}")
        wait_idle(page, buttons=buttons)
        current = item_id(page)
        given[current] = ["desire"]
        current = _answer(page, buttons, "9")
        given[current] = ["anger"]
        current = _answer(page, buttons, "Numpad3")
        page.keyboard.press("/")
        assert (
            _note(page, "Key /")
            == "Key / does nothing here (1-9 label, S skips, U undoes, ? opens the guidelines)."
        )
        assert page.locator("#ll-label-picker").count() == 0
        given[current] = ["admiration"]
        current = _answer(page, buttons, "1")
    assert _stored(root) == given
