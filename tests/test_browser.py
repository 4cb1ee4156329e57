"""End to end in a real browser: ``labelloop serve`` driven by Debian's Chromium (Playwright).

Two annotators label at the same time in two browser contexts, with the keyboard only; the
store must then hold exactly the answers given, and item text with HTML in it must show as
text with no script run. Sign-in leaves no secret in any address: a copied address of any
page opens the sign-in form in another browser, and sign-out and deactivation end a session.
"""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, col, select

from labeling import Workspace
from labeling.store.models import Annotation, Annotator, Item
from tests.browser import (
    chromium,
    chromium_path,
    item_id,
    one_item_page,
    serve,
    sign_in_form_shown,
    sign_in_with_form,
    tfidf_only,
    wait_idle,
    wait_item_change,
)

XSS = "<img src=x onerror=alert(1)><script>alert(2)</script>"
N_ITEMS = 60
LABELS = ["spam", "ham"]

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="needs Debian's chromium (.ci/setup installs it)"
)


@pytest.fixture
def served_workspace(tmp_path):
    ws = Workspace.create(tmp_path / "e2e", labels=LABELS, name="e2e")
    path = tmp_path / "pool.jsonl"
    with path.open("w") as handle:
        for k in range(N_ITEMS):
            text = XSS if k % 3 == 0 else f"plain message number {k} **not bold** [link](x)"
            handle.write(json.dumps({"id": f"i{k:02d}", "text": text}) + "\n")
    ws.import_file(path, id_field="id")
    tokens = {name: ws.add_user(name)[1] for name in ("ann", "bob")}
    ws.close()
    tfidf_only(tmp_path / "e2e")
    one_item_page(tmp_path / "e2e")
    return tmp_path / "e2e", tokens


def _text_on_screen(page) -> str:
    return page.locator(".st-key-ll_text [data-testid='stText']").inner_text(timeout=10_000)


def _press(page, key: str, before: str, *, buttons: int = 4) -> str:
    """Press ``key`` and wait until another item is on screen and the page has settled."""
    wait_idle(page, buttons=buttons)
    page.keyboard.press(key)
    wait_item_change(page, before)
    wait_idle(page, buttons=buttons)
    return item_id(page)


def test_two_annotators_label_with_the_keyboard(served_workspace):
    root, tokens = served_workspace
    dialogs: list[str] = []
    with serve(root) as server, chromium() as browser:
        contexts = [browser.new_context(viewport={"width": 1280, "height": 800}) for _ in range(2)]
        ann, bob = (ctx.new_page() for ctx in contexts)
        for page in (ann, bob):
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        # The dialog hook works: an alert we raise ourselves is caught.
        ann.goto(server.url)
        ann.evaluate("() => { window.alert('probe'); }")
        assert dialogs == ["probe"]
        dialogs.clear()

        ann.goto(f"{server.url}?token={tokens['ann']}")
        bob.goto(f"{server.url}?token={tokens['bob']}")
        wait_idle(ann, buttons=4)
        wait_idle(bob, buttons=4)
        assert "token=" not in ann.url  # the token left the address bar

        given: dict[str, str] = {}
        seen = {"ann": [item_id(ann)], "bob": [item_id(bob)]}
        xss_checked = 0
        current = seen["ann"][0]
        for n in range(20):
            if _text_on_screen(ann) == XSS or current in {f"i{k:02d}" for k in range(0, 60, 3)}:
                assert _text_on_screen(ann) == XSS  # shown literally, as text
                xss_checked += 1
            key = "1" if n % 2 == 0 else "2"
            given[current] = LABELS[int(key) - 1]
            current = _press(ann, key, current)
            assert current not in given
            seen["ann"].append(current)
            if n % 4 == 0:  # bob labels at the same time, in his own context
                seen["bob"].append(_press(bob, "2", seen["bob"][-1]))
        skipped = current
        current = _press(ann, "s", current)
        back = _press(ann, "u", current)
        assert back == skipped
        assert "earlier answer" in ann.get_by_test_id("stAlert").first.inner_text()
        given[skipped] = "spam"
        after = _press(ann, "1", back)
        assert after == current
        assert xss_checked >= 1
        assert not dialogs, f"a script ran: {dialogs}"
        assert not set(seen["ann"]) & set(seen["bob"]), "an item reached both annotators"
        for ctx in contexts:
            ctx.close()

    ws = Workspace.open(root)
    with Session(ws.engine) as session:
        ann_id = session.exec(select(Annotator.id).where(Annotator.name == "ann")).one()
        rows = session.exec(
            select(Annotation).where(Annotation.annotator_id == ann_id).order_by(col(Annotation.id))
        ).all()
        names = dict(session.exec(select(Item.id, Item.external_id)).all())
    ws.close()
    current_rows = [r for r in rows if r.superseded_by is None]
    assert {names[r.item_id]: r.label for r in current_rows} == given
    superseded = [r for r in rows if r.superseded_by is not None]
    assert (
        len(superseded) == 1 and superseded[0].skipped and names[superseded[0].item_id] == skipped
    )
    assert all(r.duration_ms is not None and r.duration_ms >= 0 for r in rows)
    assert len(rows) == 22


def test_data_page_upload_imports_through_the_same_checks(tmp_path):
    ws = Workspace.create(tmp_path / "up", labels=LABELS, name="upload")
    ws.close()
    tfidf_only(tmp_path / "up")
    good = tmp_path / "fresh.csv"
    good.write_text("id,text,channel\nu1,first uploaded text,web\nu2,second one,chat\n")
    bad = tmp_path / "broken.csv"
    bad.write_text("id,text\nu3,fine\nu4,\n")
    with serve(tmp_path / "up") as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server.sign_in_url)
        wait_idle(page)
        page.get_by_role("link", name="Data").click()
        wait_idle(page)
        page.get_by_role("tab", name="Import").click()
        for path, expected in ((bad, "Nothing was imported"), (good, "Imported 2 items")):
            page.locator("input[type=file]").set_input_files(str(path))
            # Wait for this file's preview: the previous file's one is still on screen.
            page.get_by_text(f"rows of {path.name}").first.wait_for(timeout=20_000)
            wait_idle(page)
            page.get_by_role("button", name="Import").click()
            page.get_by_text(expected).first.wait_for(timeout=20_000)
            wait_idle(page)
    with Workspace.open(tmp_path / "up") as ws:
        assert ws.status()["items"]["pool"] == 2  # the bad file added nothing


def _review_workspace(tmp_path, n_items: int = 16):
    """Overlap 2; ``a`` says spam to every item and ``b`` ham to every other one."""
    from dataclasses import replace

    from labeling.config import write_config

    ws = Workspace.create(tmp_path / "rev", labels=LABELS, name="review")
    path = tmp_path / "pool.jsonl"
    with path.open("w") as handle:
        for k in range(n_items):
            handle.write(json.dumps({"id": f"r{k:02d}", "text": f"message {k}"}) + "\n")
    ws.import_file(path, id_field="id")
    ws.config = replace(ws.config, overlap=2)
    write_config(ws.root, ws.config)
    for name in ("a", "b"):
        ws.add_user(name)
    for k in range(n_items):
        for name in ("a", "b"):
            item = ws.next_item(name)
            assert item is not None
            ws.annotate(item.item_id, name, "ham" if name == "b" and k % 2 == 0 else "spam")
    ws.close()
    tfidf_only(tmp_path / "rev")
    return tmp_path / "rev"


def _review_screen(page) -> tuple[str, str]:
    """(the item id the picker shows, the item id the card shows)."""
    shown = page.locator("[data-testid='stSelectbox'] input").first.input_value(timeout=10_000)
    card = page.evaluate(
        """() => [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
            .map((c) => c.innerText.trim()).find((t) => t.startsWith('Item '))"""
    )
    return shown.split(":", 1)[0].strip(), card.split("Item ", 1)[1].strip()


def test_review_picker_follows_the_card_after_a_decision(tmp_path):
    root = _review_workspace(tmp_path)
    with serve(root) as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server.sign_in_url)
        wait_idle(page)
        page.get_by_role("link", name="Review").click()
        wait_idle(page, buttons=2)
        picker, card = _review_screen(page)
        assert picker == card
        decided = [card]
        for key in ("2", "1", "2"):  # decide with the keyboard, three times
            before = card
            page.keyboard.press(key)
            wait_item_change(page, before)
            wait_idle(page, buttons=2)
            picker, card = _review_screen(page)
            assert picker == card, f"the picker shows {picker} while the card shows {card}"
            assert card not in decided
            decided.append(card)
        # Choosing in the picker moves the card.
        page.locator("[data-testid='stSelectbox']").first.click()
        options = page.get_by_role("option")
        options.last.wait_for(timeout=10_000)
        wanted = options.last.inner_text().split(":", 1)[0].strip()
        options.last.click()
        wait_item_change(page, card)
        wait_idle(page, buttons=2)
        assert wanted != card and _review_screen(page) == (wanted, wanted)
    with Workspace.open(root) as ws:
        assert ws.status()["items"]["pool"] == 16


def _stored(root) -> dict[str, list[str | None]]:
    """Current answers by item external id (a list, to catch an item answered twice)."""
    ws = Workspace.open(root)
    with Session(ws.engine) as session:
        rows = session.exec(
            select(Item.external_id, Annotation.label)
            .join(Annotation, col(Annotation.item_id) == col(Item.id))
            .where(col(Annotation.superseded_by).is_(None))
        ).all()
    ws.close()
    found: dict[str, list[str | None]] = {}
    for external_id, label in rows:
        found.setdefault(external_id, []).append(label)
    return found


def _note(page, wanted: str) -> str:
    """The keyboard's note (wrong key, press not applied), once it says ``wanted``."""
    note = page.locator("#ll-key-note", has_text=wanted)
    note.wait_for(state="visible", timeout=10_000)
    return str(note.inner_text())


def test_keyboard_number_pad_gap_presses_wrong_keys(served_workspace):
    root, tokens = served_workspace
    given: dict[str, str] = {}
    with serve(root) as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{server.url}?token={tokens['ann']}")
        wait_idle(page, buttons=4)
        # The number pad labels like the digit row.
        current = item_id(page)
        given[current] = LABELS[1]
        current = _press(page, "Numpad2", current)
        given[current] = LABELS[0]
        current = _press(page, "Numpad1", current)
        # A key that means nothing here says so, and changes nothing.
        wait_idle(page, buttons=4)
        page.keyboard.press("7")
        assert (
            _note(page, "Key 7")
            == "Key 7 does nothing here (1-2 label, S skips, U undoes, ? opens the guidelines)."
        )
        page.keyboard.press("x")
        assert _note(page, "Key X").startswith("Key X does nothing here")
        assert item_id(page) == current
        # A press made as soon as the next text shows (its buttons not drawn yet) is applied
        # to that item, not lost: press, wait only for the text to change, press again.
        for n in range(8):
            key = "1" if n % 2 == 0 else "2"
            given[current] = LABELS[int(key) - 1]
            page.keyboard.press(key)
            wait_item_change(page, current)
            current = item_id(page)
        wait_idle(page, buttons=4)
        # After a click on the sidebar's toggle (focus on it), keys still label.
        page.get_by_text("Show the model's guess").click()
        wait_idle(page, buttons=4)
        given[current] = LABELS[1]
        current = _press(page, "2", current)
        # Two presses at once on one item: the first answers it, the second is not applied
        # to the next item (never seen), and a note says so.
        given[current] = LABELS[0]
        _press_at_once(page, "1", "2")
        assert _note(page, "Key 2") == (
            "Key 2 was not applied: it was pressed on the screen before, ahead of this item."
        )
        wait_item_change(page, current)
        wait_idle(page, buttons=4)
        unanswered = item_id(page)
    stored = _stored(root)
    assert stored == {k: [v] for k, v in given.items()}
    assert unanswered not in stored


def _press_at_once(page, *keys: str) -> None:
    """Press ``keys`` within one task of the page, so no redraw can come between them.

    Two ``keyboard.press`` calls are two round trips to the browser: on a loaded machine the
    next item can be drawn between them, and the second press then rightly labels it.
    """
    page.evaluate(
        """(keys) => {
            const target = document.activeElement || document.body;
            for (const key of keys) {
                const init = { key, code: "Digit" + key, bubbles: true, cancelable: true };
                target.dispatchEvent(new KeyboardEvent("keydown", init));
                target.dispatchEvent(new KeyboardEvent("keyup", init));
            }
        }""",
        list(keys),
    )


def _secret_free(url: str, secrets: list[str]) -> bool:
    return "sid=" not in url and "token=" not in url and not any(s in url for s in secrets)


def test_no_address_carries_a_session_and_sessions_end(served_workspace):
    root, tokens = served_workspace
    with serve(root) as server, chromium() as browser:
        admin_token = server.sign_in_url.split("token=", 1)[1]
        secrets = [admin_token, *tokens.values()]
        admin_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        admin = admin_ctx.new_page()
        visited: list[str] = []
        admin.on("framenavigated", lambda frame: visited.append(frame.url))
        admin.goto(server.sign_in_url)  # by link
        admin.get_by_text("Signed in as admin").first.wait_for(timeout=20_000)
        wait_idle(admin)
        nav = admin.locator("[data-testid='stSidebarNav'] a")
        hrefs = [nav.nth(k).get_attribute("href") for k in range(nav.count())]
        assert len(hrefs) >= 8, hrefs  # every page an admin has
        copied = [admin.url]
        for k in range(len(hrefs)):
            admin.locator("[data-testid='stSidebarNav'] a").nth(k).click()
            wait_idle(admin)
            admin.wait_for_timeout(300)  # the address follows the page a moment later
            wait_idle(admin)
            copied.append(admin.url)
        annotator = browser.new_context().new_page()
        sign_in_with_form(annotator, server.url, tokens["ann"])  # by the form
        annotator.get_by_text("Signed in as ann").first.wait_for(timeout=20_000)
        copied.append(annotator.url)
        assert len({u.rstrip("/") for u in copied}) >= 8, copied
        # The page a role lands on (served at "/") answers at its own address too: a link or
        # a bookmark to /metrics or /label shows that page, not "Page not found".
        shown = (
            (admin, "metrics", admin.get_by_role("heading", name="Metrics", exact=True)),
            (annotator, "label", annotator.locator(".st-key-ll_text")),  # the item to label
        )
        for person, path, landmark in shown:
            person.goto(f"{server.url.rstrip('/')}/{path}")
            landmark.first.wait_for(timeout=20_000)
            wait_idle(person)
            assert person.get_by_text("Page not found").count() == 0, path
            assert person.url.rstrip("/").endswith(f"/{path}"), person.url
            copied.append(person.url)
        for url in copied + visited:
            assert _secret_free(url, secrets), url
        for url in copied:  # a copied address, opened in another browser, signs nobody in
            fresh = browser.new_context()
            page = fresh.new_page()
            page.goto(url)
            assert sign_in_form_shown(page), url
            assert _secret_free(page.url, secrets)
            fresh.close()

        # Sign-out ends the session in the server: its cookie no longer signs in.
        old_cookies = admin_ctx.cookies()
        assert [c["httpOnly"] for c in old_cookies if c["name"] == "labelloop_session"] == [True]
        admin.get_by_role("button", name="Sign out").click()
        assert sign_in_form_shown(admin)
        replay = browser.new_context()
        replay.add_cookies(old_cookies)
        page = replay.new_page()
        page.goto(server.url)
        assert sign_in_form_shown(page)
        replay.close()

        # Deactivation (here from outside the server, as the CLI does) ends it too.
        ann_cookies = annotator.context.cookies()
        with Workspace.open(root) as ws:
            ws.deactivate_user("ann")
        replay = browser.new_context()
        replay.add_cookies(ann_cookies)
        page = replay.new_page()
        page.goto(server.url)
        assert sign_in_form_shown(page)
        annotator.reload()
        assert sign_in_form_shown(annotator)
        # A wrong typed token is refused on the form, with no secret left in the address.
        page.locator("form[action='/auth/sign-in'] input[name=token]").fill("ll_nope_nope")
        page.locator("form[action='/auth/sign-in'] button[type=submit]").click()
        page.get_by_text("wrong, has expired or has been revoked").first.wait_for(timeout=20_000)
        assert _secret_free(page.url, secrets) and "nope" not in page.url


def test_a_double_clicked_add_on_the_team_page_adds_one_person_quietly(tmp_path):
    root = tmp_path / "team"
    with Workspace.create(root, labels=LABELS, name="team") as ws:
        token = ws.add_user("boss", role="admin")[1]
    with serve(root) as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in_with_form(page, server.url, token)
        page.get_by_role("link", name="Team").click()
        wait_idle(page)
        page.get_by_label("Name").fill("newbie")
        page.get_by_role("button", name="Add").dblclick()
        page.get_by_text("Added newbie as annotator").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1000)  # the second click's run
        wait_idle(page)
        alerts = [a.inner_text() for a in page.get_by_test_id("stAlert").all()]
        assert not [a for a in alerts if "expected" in a or "exists" in a], alerts
        table = page.get_by_test_id("stDataFrame").first
        # The table (a canvas grid; its cells are in a hidden accessible copy), without a reload.
        table.get_by_text("newbie").first.wait_for(state="attached", timeout=10_000)
        assert "token=" not in page.url
    with Workspace.open(root) as ws:
        assert [a.name for a in ws.list_users()] == ["boss", "newbie"]
