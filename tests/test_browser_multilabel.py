"""The Label page of a multi-label workspace in a real browser (``labelloop serve`` driven by
Debian's Chromium): digits and the picker toggle labels, Enter submits the set, 0 the empty
set, U brings the set back to change it. The store must hold exactly the sets given with the
keyboard, and a press made for an item that has gone is never applied to the next one.
"""

from __future__ import annotations

import pytest

from labeling import Workspace
from labeling.store import labelsets
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
from tests.test_browser_label_keys import EMOTIONS, _keys, _keys_at_once, _note, _stored

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="needs Debian's chromium (.ci/setup installs it)"
)

LABELS = EMOTIONS[:12]  # twelve: the last three are reached through the picker
BUTTONS = len(LABELS) + 4  # the labels, Submit, None of these, Skip and Undo


def _workspace(tmp_path) -> tuple[object, str]:
    root = tmp_path / "sets"
    with Workspace.create(root, labels=LABELS, name="sets", task="multi-label") as ws:
        path = tmp_path / "pool.csv"
        path.write_text("id,text\n" + "".join(f"m{n:02d},message {n}\n" for n in range(30)))
        ws.import_file(path, id_field="id")
        token = ws.add_user("ann")[1]
    tfidf_only(root)
    one_item_page(root)
    return root, token


def _set(*names: str) -> str:
    return labelsets.encode(names, tuple(LABELS))


CHOSEN = (
    '[class*="st-key-label_"] button[data-testid="stBaseButton-primary"] '
    '[data-testid="stMarkdownContainer"]'
)


def _chosen(page) -> list[str]:
    """The labels whose buttons show them chosen (the primary style), in label order."""
    wait_idle(page, buttons=BUTTONS)
    return [str(name).strip() for name in page.locator(CHOSEN).all_inner_texts()]


def _wait_chosen(page, names: list[str]) -> None:
    """Wait until the page shows exactly ``names`` chosen (each toggle is one server run)."""
    page.wait_for_function(
        """([selector, names]) => {
            if (document.querySelector('[data-stale="true"]')) return false;
            const shown = [...document.querySelectorAll(selector)].map((e) => e.textContent.trim());
            return JSON.stringify(shown) === JSON.stringify(names);
        }""",
        arg=[CHOSEN, names],
        timeout=20_000,
    )
    assert _chosen(page) == names


def _submit(page, *keys: str) -> str:
    """Press ``keys`` (ending with the submit), wait for the next item, return its id."""
    before = item_id(page)
    _keys(page, *keys)
    wait_item_change(page, before)
    wait_idle(page, buttons=BUTTONS)
    return item_id(page)


def test_toggle_submit_none_undo_and_the_picker_by_keyboard(tmp_path):
    root, token = _workspace(tmp_path)
    given: dict[str, list[str | None]] = {}
    with serve(root) as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 800})
        page.goto(f"{server.url}?token={token}")
        wait_idle(page, buttons=BUTTONS)
        chosen_line = page.locator(".st-key-ll_chosen")
        assert "Nothing chosen yet" in chosen_line.inner_text()

        # Two labels by digit, one of them off again; the marks and the line follow.
        first = item_id(page)
        _keys(page, "1", "3")
        _wait_chosen(page, ["admiration", "anger"])
        assert "Chosen: admiration, anger" in chosen_line.inner_text()
        page.keyboard.press("Numpad1")  # the number pad toggles too
        _wait_chosen(page, ["anger"])
        given[first] = [_set("anger")]
        second = _submit(page, "Enter")

        # Enter with nothing chosen sends nothing, and says how to answer none of these.
        page.keyboard.press("Enter")
        assert _note(page, "Nothing chosen").startswith("Nothing chosen yet")
        assert item_id(page) == second
        # 0 with a label chosen sends nothing either; with none chosen it is the empty set.
        page.keyboard.press("2")
        _wait_chosen(page, ["amusement"])
        page.keyboard.press("0")
        assert "labels are chosen" in _note(page, "Key 0")
        assert item_id(page) == second
        page.keyboard.press("2")
        _wait_chosen(page, [])
        given[second] = [_set()]
        third = _submit(page, "0")

        # Answer with a set, undo: the item comes back with that set chosen; change it.
        _keys(page, "1", "6")
        _wait_chosen(page, ["admiration", "caring"])
        fourth = _submit(page, "Enter")
        back = _submit(page, "u")
        assert back == third
        _wait_chosen(page, ["admiration", "caring"])
        _keys(page, "6", "2")
        _wait_chosen(page, ["admiration", "amusement"])
        given[third] = [_set("admiration", "amusement")]
        after_undo = _submit(page, "Enter")
        assert after_undo == fourth  # the item held before the undo comes back

        # Labels past nine through the picker: Enter in the picker toggles, then Enter submits.
        picker = page.locator("#ll-label-picker")
        _keys(page, "/", "d", "i", "s")
        picker.get_by_text("disapproval").wait_for(timeout=10_000)
        _keys(page, "ArrowDown", "Enter")
        _wait_chosen(page, ["disapproval"])
        assert picker.is_hidden()
        _keys(page, "/", "s", "a", "d", "Enter")  # S is text in the picker, not a skip
        _wait_chosen(page, ["disapproval", "sadness"])
        given[fourth] = [_set("disapproval", "sadness")]
        current = _submit(page, "Enter")

        # A fast typist: toggles and Enter in one go are held while the page redraws and
        # applied in order to the item they were made on.
        given[current] = [_set("amusement", "approval")]
        _keys_at_once(page, "2", "5", "Enter")
        wait_item_change(page, current)
        wait_idle(page, buttons=BUTTONS)
        current = item_id(page)

        # A toggle pressed after Enter, before the next item appeared, was for the item
        # answered: it is not applied to the next one, and a note says so.
        given[current] = [_set("annoyance")]
        _keys_at_once(page, "4", "Enter", "7")
        assert _note(page, "Key 7") == (
            "Key 7 was not applied: it was pressed on the screen before, ahead of this item."
        )
        wait_item_change(page, current)
        page.wait_for_function(
            """() => {
                const s = window.__labelloopKeysState();
                return s.waiting === 0 && (s.sent === null || s.sent.ran) && s.multi;
            }""",
            timeout=10_000,
        )
        untouched = item_id(page)
        assert _chosen(page) == []
        # S still skips.
        given[untouched] = [None]
        _submit(page, "s")
    assert _stored(root) == given
