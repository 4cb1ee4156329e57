"""Screenshots of every page in headless Chromium, on the demo workspace.

Writes ``docs/screenshots/*.png`` (1366x800, a laptop screen). We look at these before calling
a page done: text readable, buttons large and consistent, progress visible. The demo's texts
in a multi-label workspace give ``label-multilabel.png``; ``--multilabel`` takes only that one.
"""

from __future__ import annotations

import csv
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labeling import Workspace
from labeling.config import write_config  # noqa: E402
from labeling.demo.build import build_demo  # noqa: E402
from tests.browser import chromium, serve, wait_idle  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
DEMO = Path(__file__).resolve().parents[1] / "datasets" / "demo"
YOUTUBE = (
    Path(__file__).resolve().parents[2] / "shared" / "datasets" / "youtube" / "Youtube01-Psy.csv"
)
# A few rules on the demo's support messages, so the LFs page has something to show.
DEMO_RULES = [
    {"kind": "keyword", "name": "kw_refund", "label": "billing",
     "keywords": ["refund", "charged", "invoice"]},
    {"kind": "keyword", "name": "kw_parcel", "label": "shipping",
     "keywords": ["parcel", "package", "delivery", "tracking"]},
    {"kind": "keyword", "name": "kw_password", "label": "account",
     "keywords": ["password", "login", "log in"]},
    {"kind": "regex", "name": "re_crash", "label": "technical",
     "pattern": r"crash(es|ed)?|error|bug"},
]  # fmt: skip


def _full_page(page, name: str) -> None:
    """A screenshot of the whole page: Streamlit scrolls inside its own container, so the
    viewport is made as tall as the page first."""
    tall = page.evaluate(
        "Math.max(...[...document.querySelectorAll('section, div')].map(e => e.scrollHeight))"
    )
    page.set_viewport_size({"width": 1366, "height": max(800, min(int(tall), 4000))})
    time.sleep(2.0)
    wait_idle(page)
    page.screenshot(path=str(OUT / f"{name}.png"))
    page.set_viewport_size({"width": 1366, "height": 800})


def _browser_screens(page) -> None:
    """The Data page's browser on a search, an item page with its similar items, and the audit
    dialog of a bulk label part-way through its sample."""
    page.get_by_role("link", name="Data").click()
    wait_idle(page)
    page.locator(".st-key-ll_q_text input").fill("refund OR charged")
    page.keyboard.press("Enter")
    time.sleep(0.5)
    wait_idle(page)
    _full_page(page, "data-browser")
    page.get_by_role("button", name="Label these").click()
    page.get_by_role("dialog").wait_for(timeout=20_000)
    for key in "yyyyyny":
        wait_idle(page)
        page.keyboard.press(key)
        time.sleep(0.6)
    wait_idle(page)
    page.screenshot(path=str(OUT / "bulk-audit.png"))
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    wait_idle(page)
    # An item people answered, so the item page shows a history.
    page.locator(".st-key-ll_f_label input").click()
    page.keyboard.type("billing")
    page.keyboard.press("Enter")
    time.sleep(0.5)
    wait_idle(page)
    grid = page.locator("[data-testid='stDataFrame']").first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 12, box["y"] + 35 + 17)  # the first row's marker
    page.get_by_role("button", name="Back to results").wait_for(timeout=20_000)
    wait_idle(page)
    page.get_by_role("tab", name="Find similar").click()
    page.get_by_role("button", name="Find similar").click()
    time.sleep(1.0)
    wait_idle(page)
    _full_page(page, "data-item")
    page.get_by_role("button", name="Back to results").click()
    wait_idle(page)


# A multi-label workspace on the demo's texts: what a support message is about, several at once.
TOPICS = ["billing", "refund", "shipping", "account", "technical", "urgent", "complaint",
          "praise", "feature request", "pricing", "security", "data export"]  # fmt: skip


def multilabel_screen(scratch: Path) -> None:
    """The Label page of a multi-label workspace: two labels chosen by digit, a third (past
    nine) through the picker, the chosen set named under the buttons."""
    root = scratch / "topics"
    with Workspace.create(root, labels=TOPICS, name="topics", task="multi-label") as ws:
        ws.import_file(DEMO / "pool.csv", id_field="id")
        token = ws.add_user("alice")[1]
    with serve(root) as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 800})
        page.goto(f"{server.url}?token={token}")
        buttons = len(TOPICS) + 4  # the labels, Submit, None of these, Skip and Undo
        for key in ("1", "6", "/", *"pric", "Enter"):  # billing, urgent; pricing by name
            wait_idle(page, buttons=buttons)
            page.keyboard.press(key)
            time.sleep(0.3)
        wait_idle(page, buttons=buttons)
        time.sleep(0.8)
        page.screenshot(path=str(OUT / "label-multilabel.png"))


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    if "--multilabel" in sys.argv[1:]:
        with tempfile.TemporaryDirectory() as scratch:
            multilabel_screen(Path(scratch))
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "demo"
        build_demo(root)
        answers = dict(
            line.split(",", 1)
            for line in (DEMO / "answers.csv").read_text().splitlines()[1:]
            if line
        )
        with (DEMO / "gold.csv").open(newline="", encoding="utf-8") as handle:
            answers |= {row["id"]: row["label"] for row in csv.DictReader(handle)}
        with Workspace.open(root) as ws:
            ws.config = replace(ws.config, overlap=2, gold_rate=0.1)
            write_config(ws.root, ws.config)
            _, annotator = ws.add_user("alice")
            ws.add_user("bob")
            for spec in DEMO_RULES:
                ws.add_rule(spec)
            ws.apply_lfs()
            ws.fit_weak_labels()
            # Three rounds of answers from two people (bob slips now and then, alice is slow
            # and careful), so the Model, Metrics and Review pages have something to show.
            slips = random.Random(0)
            labels = list(ws.labels)
            for _round in range(3):
                for name, slip, ms in (("bob", 0.15, 2500), ("alice", 0.03, 6000)):
                    for _ in range(40):
                        item = ws.next_item(name)
                        truth = answers[item.external_id].strip()
                        given = slips.choice(labels) if slips.random() < slip else truth
                        took = int(ms * (0.5 + slips.random()))
                        ws.annotate(item.item_id, name, given, duration_ms=took)
                ws.retrain()
            if YOUTUBE.exists():  # another domain: the Metrics page shows a drift warning
                ws.import_file(YOUTUBE, text_field="CONTENT", id_field="COMMENT_ID")
        with serve(root) as server, chromium() as browser:
            page = browser.new_page(viewport={"width": 1366, "height": 800})
            page.goto(server.url)
            wait_idle(page)
            page.screenshot(path=str(OUT / "sign-in.png"))
            page.goto(server.sign_in_url)
            wait_idle(page)
            # The admin lands on Metrics and leases an item only after Start labelling.
            page.get_by_role("link", name="Label").click()
            wait_idle(page)
            page.get_by_role("button", name="Start labelling").click()
            wait_idle(page, buttons=7)
            for key in "1234":
                page.keyboard.press(key)
                time.sleep(0.4)
                wait_idle(page, buttons=7)
            time.sleep(0.8)
            page.screenshot(path=str(OUT / "label.png"))
            page.keyboard.press("u")
            time.sleep(0.4)
            wait_idle(page, buttons=7)
            page.get_by_text("Show the model's guess").click()
            time.sleep(0.8)
            wait_idle(page, buttons=7)
            page.screenshot(path=str(OUT / "label-undo.png"))
            pages = (
                ("My stats", "stats"),
                ("Data", "data"),
                ("LFs", "lfs"),
                ("Model", "model"),
                ("Metrics", "metrics"),
                ("Queue", "queue"),
                ("Review", "review"),
                ("Team", "team"),
            )
            for name, file in pages:
                page.get_by_role("link", name=name).click()
                time.sleep(0.5)
                wait_idle(page)
                # Streamlit scrolls inside its own container, so a full-page shot needs a
                # viewport as tall as the page.
                tall = page.evaluate(
                    "Math.max(...[...document.querySelectorAll('section, div')]"
                    ".map(e => e.scrollHeight))"
                )
                page.set_viewport_size({"width": 1366, "height": max(800, min(int(tall), 4000))})
                time.sleep(2.0)
                wait_idle(page)
                page.screenshot(path=str(OUT / f"{file}.png"))
                page.set_viewport_size({"width": 1366, "height": 800})
            _browser_screens(page)
            other = browser.new_page(viewport={"width": 1366, "height": 800})
            other.goto(f"{server.url}?token={annotator}")
            wait_idle(other, buttons=7)
            time.sleep(0.5)
            other.screenshot(path=str(OUT / "annotator.png"))
        multilabel_screen(Path(scratch))
    print(f"wrote {len(list(OUT.glob('*.png')))} screenshots to docs/screenshots/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
