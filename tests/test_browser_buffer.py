"""The buffered Label page (``prefetch`` > 0) in a real browser: ``labelloop serve`` driven by
Debian's Chromium.

The page holds the item on screen plus ``prefetch`` more, paints the next one on the key press
and sends the answers to ``POST /label/batch`` in the background. Whatever happens to those
requests (slow, lost, a reload, a second tab), the store must hold each answer exactly once, for
the item that was on screen when its key went down. A press is made pending on purpose by
intercepting the route in the browser (``page.route``), never by sleeping.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from labeling import Workspace
from labeling.store import labelsets
from labeling.store.models import Annotation, Item, Lease
from tests.browser import chromium, chromium_path, serve, sign_in_with_form, tfidf_only

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="needs Debian's chromium (.ci/setup installs it)"
)

LABELS = ["billing", "refund", "outage", "other"]
PREFETCH = 3
ROUTE = "**/label/batch"
CAPTION = ".ll-b-root [data-testid='stCaptionContainer']"


def _workspace(
    tmp_path: Path,
    *,
    prefetch: int = PREFETCH,
    task: str = "single-label",
    items: int = 80,
    suggestions: bool = False,
    labels: tuple[str, ...] = tuple(LABELS),
    role: str = "annotator",
) -> tuple[Path, str]:
    """A workspace of ``items`` messages and one annotator; ``suggestions``: the weak label
    (a keyword rule for the first label, which every message matches) is suggested."""
    root = tmp_path / "buffer"
    with Workspace.create(root, labels=list(labels), name="buffer", task=task) as ws:
        path = tmp_path / "pool.csv"
        path.write_text("id,text\n" + "".join(f"b{n:03d},message {n}\n" for n in range(items)))
        ws.import_file(path, id_field="id")
        if suggestions:
            rule = {"kind": "keyword", "name": "msg", "label": LABELS[0], "keywords": ["message"]}
            ws.add_rule(rule)
            ws.apply_lfs()
            ws.fit_weak_labels()
        token = ws.add_user("ann", role=role)[1]
    tfidf_only(root)
    toml = root / "labelloop.toml"
    text = re.sub(r"(?m)^prefetch = \d+$", f"prefetch = {prefetch}", toml.read_text())
    if suggestions:
        text = text.replace('suggestions = "off"', 'suggestions = "weak"')
    toml.write_text(text)
    assert f"prefetch = {prefetch}" in toml.read_text()
    return root, token


def _answers(root: Path) -> list[tuple[str, str | None, bool]]:
    """Every answer in the store, in the order written: (item, label, current)."""
    with Workspace.open(root) as ws, Session(ws.engine) as session:
        rows = session.exec(
            select(Item.external_id, Annotation.label, Annotation.superseded_by)
            .join(Annotation, col(Annotation.item_id) == col(Item.id))
            .order_by(col(Annotation.id))
        ).all()
    return [(name, label, superseded is None) for name, label, superseded in rows]


def _current(root: Path) -> dict[str, list[str | None]]:
    found: dict[str, list[str | None]] = {}
    for name, label, current in _answers(root):
        if current:
            found.setdefault(name, []).append(label)
    return found


@contextmanager
def _labelling(tmp_path: Path, **options: Any) -> Iterator[tuple[Path, Any, Any, str]]:
    """A served workspace and a signed-in page showing the buffered Label page."""
    root, token = _workspace(tmp_path, **options)
    with serve(root) as server, chromium() as browser:
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.goto(f"{server.url}?token={token}")
        _ready(page, held=min(options.get("items", 80), 1 + options.get("prefetch", PREFETCH)))
        _settled(page)
        yield root, context, page, server.url


def _ready(page: Any, *, held: int = 1 + PREFETCH) -> None:
    """Wait until the page holds ``held`` items (the one on screen and the prefetched ones)."""
    page.wait_for_function(
        "(n) => window.__labelloopBufferState"
        " && window.__labelloopBufferState().buffer.length >= n",
        arg=held,
        timeout=30_000,
    )


def _state(page: Any) -> dict[str, Any]:
    return dict(page.evaluate("window.__labelloopBufferState()"))


def _settled(page: Any, *, timeout: float = 30_000) -> None:
    """Wait until every operation is acknowledged and no request is in flight."""
    page.wait_for_function(
        "() => { const s = window.__labelloopBufferState();"
        " return s.outbox === 0 && !s.inFlight && s.buffer.length > 0; }",
        timeout=timeout,
    )


def _on_screen(page: Any) -> str:
    return str(page.locator(CAPTION).inner_text(timeout=10_000)).removeprefix("Item ").strip()


def _press(page: Any, key: str) -> str:
    """Press ``key`` on the item on screen; the item it was pressed on."""
    shown = _on_screen(page)
    page.keyboard.press(key)
    return shown


def _pending_badge(page: Any) -> str:
    return str(page.locator(".ll-b-pending").inner_text(timeout=10_000))


class _Held:
    """Holds every request to the route unanswered until :meth:`release` (the request stays
    in flight, so what is pressed meanwhile is not sent); ``lose_first``: the first request
    reaches the server, which applies it, and its reply is lost on the way back."""

    def __init__(self, page: Any, *, lose_first: bool = False) -> None:
        self.page = page
        self.lose_first = lose_first
        self.held: list[Any] = []
        page.route(ROUTE, self.handle)

    def handle(self, route: Any) -> None:
        if self.lose_first:
            self.lose_first = False
            route.fetch()
            route.abort()
        else:
            self.held.append(route)

    def release(self) -> None:
        for route in self.held:
            route.abort()  # the client sends it all again, to the server this time
        self.page.unroute(ROUTE)


def _in_flight(page: Any) -> None:
    page.wait_for_function("() => window.__labelloopBufferState().inFlight")


# Presses dispatched from inside the page, 10 ms apart, each noting the item on screen when its
# key went down (null: none was, and the page says the press was not applied).
FIFTY_PRESSES = """async (n) => {
    const seen = [];
    for (let i = 0; i < n; i += 1) {
        const caption = document.querySelector(".ll-b-root [data-testid='stCaptionContainer']");
        seen.push(caption ? caption.textContent.slice(5) : null);
        const key = String(1 + (i % 3));
        window.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true }));
        await new Promise((done) => setTimeout(done, 10));
    }
    return seen;
}"""


# 100 presses a second outrun the refill of a 3-item buffer whenever a reply takes over 30 ms,
# which a loaded 2-core machine (CI's) allows: this test holds 8 items ahead, so that it checks
# that presses land in order and once, not how fast the machine is.
FAST_PREFETCH = 8


def _fifty_presses(tmp_path: Path) -> tuple[list[str | None], list[tuple[str, str | None, bool]]]:
    with _labelling(tmp_path, prefetch=FAST_PREFETCH) as (root, _context, page, _url):
        seen = page.evaluate(FIFTY_PRESSES, 50)
        _settled(page)
        assert _state(page)["lastError"] is None
    return seen, _answers(root)


def test_fifty_presses_ten_ms_apart_land_in_order_and_once(tmp_path):
    seen, stored = _fifty_presses(tmp_path)
    # Each on the item on screen when its key went down, once, in the order pressed...
    assert stored == [
        (name, LABELS[at % 3], True) for at, name in enumerate(seen) if name is not None
    ]
    # ...and the buffer never ran dry: every press found an item.
    assert None not in seen, f"{seen.count(None)} of 50 presses found no item on screen"


def test_a_reload_with_pending_answers_loses_none_and_doubles_none(tmp_path):
    with _labelling(tmp_path) as (root, _context, page, _url):
        # The first answer reaches the server but its reply is lost; the rest never leave.
        held = _Held(page, lose_first=True)
        given = {_press(page, "1"): ["billing"]}
        page.wait_for_function("() => window.__labelloopBufferState().lastError !== null")
        for key in "234":  # the rest of the buffer: no refill comes while the route is held
            given[_press(page, key)] = [LABELS[int(key) - 1]]
        assert _pending_badge(page) == "4 answers sending"
        assert _current(root) == {next(iter(given)): ["billing"]}
        held.release()
        page.reload()
        _ready(page)
        _settled(page)
        assert page.locator(".ll-b-pending").is_hidden()
        shown = _on_screen(page)
    assert _current(root) == given
    assert len(_answers(root)) == 4
    assert shown not in given


def _tab_holds(root: Path, tab: str) -> list[str]:
    """The items the store holds for browser tab ``tab``."""
    with Workspace.open(root) as ws, Session(ws.engine) as session:
        return list(
            session.exec(
                select(Item.external_id)
                .join(Lease, col(Lease.item_id) == col(Item.id))
                .where(Lease.tab == tab)
            ).all()
        )


def test_a_closed_page_hands_back_its_items_and_its_pending_answers_land_once(tmp_path):
    with _labelling(tmp_path) as (root, _context, page, _url):
        tab = _state(page)["tab"]
        assert sorted(_tab_holds(root, tab)) == sorted(_state(page)["buffer"])
        held = _Held(page)  # the answers stay in the browser, unacknowledged
        given = {_press(page, key): [LABELS[int(key) - 1]] for key in "12"}
        assert _pending_badge(page) == "2 answers sending"
        assert _current(root) == {}
        held.release()
        # Closed as a person closes a tab: the page's pagehide handlers run, nothing waits.
        page.close(run_before_unload=True)
        deadline = time.monotonic() + 15
        while _tab_holds(root, tab) and time.monotonic() < deadline:
            time.sleep(0.2)
        # Handed back at once, not after the tab's short hold (three minutes).
        assert _tab_holds(root, tab) == []
    assert _current(root) == given
    assert len(_answers(root)) == 2


def test_a_reload_releases_and_gets_the_same_items_back_without_a_word(tmp_path):
    with _labelling(tmp_path) as (root, _context, page, _url):
        given = {_press(page, "1"): ["billing"]}
        _settled(page)
        before, tab = _on_screen(page), _state(page)["tab"]
        page.reload()  # its pagehide sends a release, which the reloaded page sends again
        _ready(page)
        _settled(page)
        assert _on_screen(page) == before
        assert page.locator(".ll-b-warning").count() == 0
        assert sorted(_tab_holds(root, tab)) == sorted(_state(page)["buffer"])
        assert len(_state(page)["buffer"]) == 1 + PREFETCH
    assert _current(root) == given and len(_answers(root)) == 1


def test_the_progress_line_moves_with_each_acknowledged_answer(tmp_path):
    with _labelling(tmp_path) as (_root, _context, page, _url):
        line = page.locator(".ll-b-progress-text")
        assert "you today: 0" in line.inner_text(timeout=10_000)
        for done, key in enumerate("123", start=1):
            _press(page, key)
            _settled(page)
            # The reply to the answer's batch carries the counts: no wait for the next refresh.
            # (The pool-wide counts are cached for a few seconds, as on the one-item page.)
            assert f"you today: {done}" in line.inner_text(timeout=2_000)


def test_two_tabs_of_one_person_never_share_an_item_nor_double_an_answer(tmp_path):
    with _labelling(tmp_path) as (root, context, first, url):
        second = context.new_page()
        second.goto(url)
        _ready(second)
        given: dict[str, list[str | None]] = {}
        for turn in range(12):
            page = (first, second)[turn % 2]
            page.bring_to_front()
            key = "12"[turn % 2]
            given.setdefault(_press(page, key), []).append(LABELS[int(key) - 1])
        _settled(first)
        _settled(second)
        one, two = _state(first), _state(second)
        assert one["tab"] != two["tab"]
        assert not set(one["buffer"]) & set(two["buffer"])
        # A duplicated tab copies sessionStorage (tab id, buffer, outbox): the copy notices,
        # takes a new id and drops what it copied, which belongs to the original.
        stored = first.evaluate("sessionStorage.getItem('labelloop-buffer')")
        copy = context.new_page()
        copy.add_init_script(f"sessionStorage.setItem('labelloop-buffer', {json.dumps(stored)})")
        copy.goto(url)
        copy.wait_for_function(
            "(tab) => window.__labelloopBufferState && window.__labelloopBufferState().tab !== tab",
            arg=_state(first)["tab"],
            timeout=30_000,
        )
        _ready(copy)
        _settled(copy)
        three, one = _state(copy), _state(first)
        assert three["tab"] != one["tab"]
        assert not set(three["buffer"]) & set(one["buffer"])
        assert not set(three["buffer"]) & set(_state(second)["buffer"])
        given.setdefault(_press(copy, "3"), []).append("outage")
        _settled(copy)
    assert _current(root) == given
    assert all(len(labels) == 1 for labels in given.values())


def test_undo_goes_back_across_a_pending_and_an_acknowledged_answer(tmp_path):
    with _labelling(tmp_path) as (root, _context, page, _url):
        first = _press(page, "1")
        _settled(page)
        held = _Held(page)
        second = _press(page, "2")
        _in_flight(page)
        # Sent, not acknowledged: taking it back is an undo operation, shown at once.
        page.keyboard.press("u")
        assert _on_screen(page) == second
        going_back = page.locator(".ll-b-info").inner_text()
        assert going_back.startswith("Going back: your earlier answer was “refund”.")
        page.keyboard.press("u")
        assert _on_screen(page) == first
        assert "“billing”" in page.locator(".ll-b-info").inner_text()
        assert _pending_badge(page) == "1 answer sending"
        assert _press(page, "3") == first
        assert _press(page, "4") == second
        # Made while a request is in flight, so never sent: undo cancels it in the tab.
        third = _press(page, "1")
        page.keyboard.press("u")
        assert _on_screen(page) == third
        assert page.locator(".ll-b-info").count() == 0
        assert _press(page, "2") == third
        held.release()
        _settled(page)
    assert _current(root) == {first: ["outage"], second: ["other"], third: ["refund"]}
    assert [name for name, _label, _current in _answers(root)].count(third) == 1


def test_multilabel_toggles_and_enter_submit_the_set(tmp_path):
    with _labelling(tmp_path, task="multi-label") as (root, _context, page, _url):
        given = {}
        shown = _on_screen(page)
        for key in ("1", "3"):
            page.keyboard.press(key)
        assert page.locator(".ll-b-chosen").inner_text() == "Chosen: billing, outage"
        page.keyboard.press("Enter")
        given[shown] = ("billing", "outage")
        given[_press(page, "0")] = ()
        shown = _on_screen(page)
        for key in ("2", "2", "4"):
            page.keyboard.press(key)
        page.keyboard.press("Enter")
        given[shown] = ("other",)
        # Enter with nothing chosen says so and keeps the item.
        shown = _on_screen(page)
        page.keyboard.press("Enter")
        note = page.locator(".ll-b-note")
        assert note.inner_text(timeout=10_000).startswith(f"Nothing chosen for item {shown}")
        assert _on_screen(page) == shown
        _settled(page)
    assert _current(root) == {
        name: [labelsets.encode(names, tuple(LABELS))] for name, names in given.items()
    }


def test_enter_accepts_the_suggestion_and_each_answer_records_what_was_shown(tmp_path):
    with _labelling(tmp_path, suggestions=True) as (root, _context, page, _url):
        suggested = page.locator(".ll-b-root", has_text="Suggested by the weak label")
        assert "billing · Enter accepts it" in suggested.inner_text()
        accepted = _press(page, "Enter")
        corrected = _press(page, "2")
        _settled(page)
        # A revisit by undo starts from the person's own answer, never from a guess.
        page.keyboard.press("u")
        assert _on_screen(page) == corrected
        assert page.locator(".ll-b-accept").count() == 0
        assert "Suggested by" not in page.locator(".ll-b-root").inner_text()
        _settled(page)
    with Workspace.open(root) as ws, Session(ws.engine) as session:
        rows = session.exec(
            select(Item.external_id, Annotation.label, Annotation.suggestion)
            .join(Annotation, col(Annotation.item_id) == col(Item.id))
            .where(col(Annotation.suggestion_source) == "weak")
            .order_by(col(Annotation.id))
        ).all()
    assert [tuple(row) for row in rows] == [
        (accepted, "billing", "billing"),
        (corrected, "refund", "billing"),
    ]


def test_sign_out_with_answers_still_sending_asks_before_dropping_them(tmp_path):
    with _labelling(tmp_path) as (root, _context, page, _url):
        asked: list[str] = []
        answers = iter([False, True])  # keep them the first time, drop them the second
        page.on(
            "dialog",
            lambda dialog: (
                asked.append(dialog.message),
                dialog.accept() if next(answers) else dialog.dismiss(),
            ),
        )
        held = _Held(page)
        _press(page, "1")
        _in_flight(page)
        sign_out = page.locator(".st-key-ll_sign_out button")
        sign_out.click()
        page.wait_for_function("() => document.querySelector('.ll-b-pending') !== null")
        for _ in range(150):  # the page tries to send them for 5 s, then asks
            if asked:
                break
            page.wait_for_timeout(100)
        assert asked == ["1 answer has not reached the server. Sign out and discard them?"]
        assert _state(page)["pending"] == 1
        assert page.get_by_text("Signed in as ann").count() == 1
        sign_out.click()
        page.get_by_text("Sign-in token").wait_for(timeout=20_000)
        assert len(asked) == 2
        assert (
            json.loads(page.evaluate("sessionStorage.getItem('labelloop-buffer')"))["outbox"] == []
        )
        held.release()
    assert _answers(root) == []


def test_answers_made_while_signed_out_are_kept_and_sent_after_signing_in_again(tmp_path):
    with _labelling(tmp_path) as (root, _context, page, url):
        held = _Held(page)
        given = {_press(page, "1"): ["billing"]}
        _in_flight(page)
        given[_press(page, "2")] = ["refund"]
        with Workspace.open(root) as ws:
            token = ws.new_user_token("ann")[1]  # the old one, and its session, end here
        held.release()
        warning = page.locator(".ll-b-signed-out")
        assert warning.inner_text(timeout=20_000) == (
            "Signed out: sign in again; 2 answers are kept in this tab and will be sent."
        )
        assert _current(root) == {}
        sign_in_with_form(page, url, token)
        _ready(page)
        _settled(page)
        assert page.locator(".ll-b-signed-out").count() == 0
    assert _current(root) == given


def test_the_sidebar_keys_and_the_legend_work_around_the_buffer(tmp_path):
    with _labelling(tmp_path) as (root, _context, page, _url):
        shown = _on_screen(page)
        page.keyboard.press("x")
        legend = page.locator(".ll-b-note")
        assert legend.inner_text(timeout=10_000) == (
            "Key X does nothing here. Keys: 1-4 label (the number pad too) · S skip · U undo "
            "· ? guidelines"
        )
        # ? opens the guidelines over the page; nothing is answered behind them.
        page.keyboard.press("?")
        dialog = page.locator("[data-testid='stDialog']")
        # Open, and done opening: an Escape pressed while the dialog still animates in (a
        # loaded machine) can be lost, and the dialog then stays.
        page.locator("[data-testid='stDialog']:not([data-entering])").wait_for(timeout=20_000)
        page.keyboard.press("1")
        page.keyboard.press("Escape")
        dialog.wait_for(state="detached", timeout=20_000)
        assert _on_screen(page) == shown
        # The sidebar's toggle reruns the page: the buffer stays, and the hints come.
        before = _state(page)
        page.locator("[data-testid='stSidebar'] [data-testid='stCheckbox']").first.click()
        hint = page.locator(".ll-b-hint")
        assert hint.inner_text(timeout=20_000) == "Model hint: no model has scored this item yet."
        _settled(page)
        assert _state(page)["buffer"] == before["buffer"]
        assert _state(page)["tab"] == before["tab"]
        assert _press(page, "Numpad3") == shown
        _settled(page)
    assert _current(root) == {shown: ["outage"]}


def test_a_newly_promoted_round_reorders_the_buffer_behind_the_item_on_screen(tmp_path):
    with _labelling(tmp_path) as (root, _context, page, _url):
        sent: list[dict[str, Any]] = []
        page.on(
            "request",
            lambda request: (
                sent.append(json.loads(request.post_data or "{}"))
                if request.url.endswith("/label/batch")
                else None
            ),
        )
        given = {}
        for key in "12121212":
            given[_press(page, key)] = [LABELS[int(key) - 1]]
        _settled(page)
        assert not any(body["reorder"] for body in sent)
        with Workspace.open(root) as ws:
            assert ws.retrain().promoted
        given[_press(page, "1")] = ["billing"]  # its reply names the new round
        shown = _on_screen(page)
        page.wait_for_function("() => window.__labelloopBufferState().round !== null")
        _settled(page)
        reordered = [body for body in sent if body["reorder"]]
        assert len(reordered) == 1
        assert reordered[0]["keep"][0] == shown
        assert _on_screen(page) == shown
        assert len(_state(page)["buffer"]) == 1 + PREFETCH
        given[_press(page, "2")] = ["refund"]
        _settled(page)
    assert _current(root) == given


def test_the_empty_queue_says_why_and_undo_still_goes_back(tmp_path):
    with _labelling(tmp_path, items=3) as (root, _context, page, _url):
        given = {_press(page, key): [LABELS[int(key) - 1]] for key in "123"}
        page.get_by_text("Nothing to label right now.").wait_for(timeout=20_000)
        page.wait_for_function("() => window.__labelloopBufferState().outbox === 0")
        with Workspace.open(root) as ws:
            why = ws.why_empty("ann").message
        assert page.locator(".ll-b-empty").inner_text() == why
        assert page.locator(CAPTION).count() == 0
        last = list(given)[-1]
        page.keyboard.press("u")
        assert _on_screen(page) == last
        # With the mouse this time.
        page.locator(".ll-b-labels button", has_text="other").click()
        given[last] = ["other"]
        page.get_by_text("Nothing to label right now.").wait_for(timeout=20_000)
        page.wait_for_function("() => window.__labelloopBufferState().outbox === 0")
    assert _current(root) == given


def test_labels_past_the_ninth_are_found_by_name_with_the_picker(tmp_path):
    many = (*LABELS, "praise", "bug", "feature", "pricing", "legal", "privacy", "sales")
    with _labelling(tmp_path, labels=many) as (root, _context, page, _url):
        shown = _on_screen(page)
        page.keyboard.press("/")
        page.keyboard.type("pri")
        picker = page.locator(".ll-b-picker")
        assert picker.inner_text().splitlines()[1:3] == ["▸ 8 pricing", "10 privacy"]
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Enter")
        assert picker.count() == 0
        given = {shown: ["privacy"]}
        # S and U are text in the picker; Escape closes it and nothing is answered.
        shown = _on_screen(page)
        page.keyboard.press("/")
        page.keyboard.type("sa")  # not a skip: S is text here
        assert picker.inner_text().splitlines()[1] == "▸ 11 sales"
        page.keyboard.press("Escape")
        assert _on_screen(page) == shown
        given[_press(page, "9")] = ["legal"]
        _settled(page)
    assert _current(root) == given


def test_an_operation_the_route_refuses_as_malformed_is_dropped_and_the_rest_goes_on(tmp_path):
    with _labelling(tmp_path) as (root, _context, page, _url):
        refusal = "ops[0].label: expected a label name, one of billing, refund, outage, other"
        page.route(
            ROUTE,
            lambda route: route.fulfill(
                status=400, content_type="application/json", json={"error": refusal}
            ),
            times=1,
        )
        refused = _press(page, "1")
        warning = page.locator(".ll-b-warning", has_text=refusal)
        assert warning.inner_text(timeout=20_000) == f"Not saved (item {refused}): {refusal}"
        given = {_press(page, "2"): ["refund"]}
        _settled(page)
        assert _state(page)["history"] == 1
    assert _current(root) == given


def test_an_engineer_stops_and_starts_labelling_and_the_buffer_follows(tmp_path):
    root, token = _workspace(tmp_path, role="engineer")
    with serve(root) as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(f"{server.url}label?token={token}")
        page.get_by_role("button", name="Start labelling").click()
        _ready(page)
        _settled(page)
        given = {_press(page, "1"): ["billing"]}
        _settled(page)
        # Stopping hands the items back: nobody holds them, and the page leases none meanwhile.
        page.get_by_role("button", name="Stop labelling").click()
        page.get_by_role("button", name="Start labelling").wait_for(timeout=20_000)
        page.wait_for_function(
            "() => { const s = window.__labelloopBufferState();"
            " return s.outbox === 0 && !s.inFlight; }",
            timeout=30_000,
        )
        page.get_by_role("button", name="Start labelling").click()
        _ready(page)
        _settled(page)
        # What was handed back is not said to have "left your queue": it was asked for.
        assert page.locator(".ll-b-warning").count() == 0
        given[_press(page, "2")] = ["refund"]
        _settled(page)
    assert _current(root) == given


def test_prefetch_zero_keeps_the_one_item_page(tmp_path):
    with _labelling_classic(tmp_path) as page:
        assert page.locator(".st-key-ll_buttons").count() == 1
        assert page.locator(".ll-b-root").count() == 0


@contextmanager
def _labelling_classic(tmp_path: Path) -> Iterator[Any]:
    root, token = _workspace(tmp_path, prefetch=0)
    with serve(root) as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(f"{server.url}?token={token}")
        page.locator(".st-key-ll_buttons").wait_for(timeout=30_000)
        yield page
