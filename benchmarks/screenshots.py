"""Screenshots of every page in headless Chromium, on the demo workspace.

Writes ``docs/screenshots/*.png`` (1366x800, a laptop screen). We look at these before calling
a page done: text readable, buttons large and consistent, progress visible.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labeling import Workspace, lfs, rounds  # noqa: E402
from labeling.demo import build_demo  # noqa: E402
from tests.browser import chromium, serve, wait_idle  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
DEMO = Path(__file__).resolve().parents[1] / "datasets" / "demo"
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


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "demo"
        build_demo(root)
        answers = dict(
            line.split(",", 1)
            for line in (DEMO / "answers.csv").read_text().splitlines()[1:]
            if line
        )
        with Workspace.open(root) as ws:
            _, annotator = ws.add_user("alice")
            ws.add_user("bob")
            # Two rounds of 40 true answers each, so the Model page has a curve to show.
            for _round in range(2):
                for _ in range(40):
                    item = ws.next_item("bob")
                    ws.annotate(item.item_id, "bob", answers[item.external_id].strip())
                rounds.retrain(ws)
            for spec in DEMO_RULES:
                lfs.add_rule(ws, spec)
            lfs.apply(ws)
            lfs.fit_weak_labels(ws)
        with serve(root) as server, chromium() as browser:
            page = browser.new_page(viewport={"width": 1366, "height": 800})
            page.goto(server.url)
            wait_idle(page)
            page.screenshot(path=str(OUT / "sign-in.png"))
            page.goto(server.sign_in_url)
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
                ("Team", "team"),
            )
            for name, file in pages:
                page.get_by_role("link", name=name).click()
                time.sleep(0.5)
                wait_idle(page)
                time.sleep(1.5)
                page.screenshot(path=str(OUT / f"{file}.png"), full_page=True)
            other = browser.new_page(viewport={"width": 1366, "height": 800})
            other.goto(f"{server.url}?token={annotator}")
            wait_idle(other, buttons=7)
            time.sleep(0.5)
            other.screenshot(path=str(OUT / "annotator.png"))
    print(f"wrote {len(list(OUT.glob('*.png')))} screenshots to docs/screenshots/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
