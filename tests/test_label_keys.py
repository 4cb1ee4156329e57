"""The Label page's keys on the Python side: which key each label button shows and answers to,
through AppTest (the browser side is in test_browser_label_keys.py).

Nine labels or fewer keep digits 1-9, S and U and nothing else; with more, labels after the
ninth show no key (the picker, opened with /, reaches them) and the page says so.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, col, select
from streamlit.testing.v1 import AppTest

from labeling import Workspace
from labeling.store.models import Annotation
from labeling.ui.views.label_keys import (
    DIGIT_LABELS,
    PICKER_KEY,
    button_key,
    has_picker,
    keys_help,
    label_keys,
    picker_help,
)
from tests.browser import one_item_page

TIMEOUT = 30
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
]


def test_the_first_nine_labels_have_digits_and_the_rest_the_picker():
    keys = label_keys(EMOTIONS)
    assert [k.number for k in keys] == list(range(1, 13))
    assert [k.name for k in keys] == EMOTIONS
    assert [k.key for k in keys] == [*"123456789", None, None, None]
    assert button_key(11, 42) == "label_11_42"


def test_nine_labels_or_fewer_keep_the_keys_they_had():
    for n in range(1, 10):
        assert not has_picker(n)
        assert picker_help(n) is None
        assert all(k.key == str(k.number) for k in label_keys(EMOTIONS[:n]))
    assert keys_help(2) == "Keys: 1-2 label (the number pad too) · S skip · U undo · ? guidelines"
    assert keys_help(9) == "Keys: 1-9 label (the number pad too) · S skip · U undo · ? guidelines"


def test_more_than_nine_labels_name_the_picker():
    assert has_picker(10)
    assert keys_help(12) == (
        "Keys: 1-9 label (the number pad too) · / find any of 12 labels by name · S skip · U undo"
        " · ? guidelines"
    )
    assert picker_help(12) is not None and picker_help(12).startswith("Labels 10-12 have no digit")


@pytest.fixture
def served_labels(tmp_path, monkeypatch, db_url):
    """A workspace with ``labels`` and 6 items and an annotator, served to AppTest (on each
    backend; one workspace per test, as each PostgreSQL database is)."""
    opened: list[Workspace] = []

    def make(labels: list[str]) -> Workspace:
        ws = Workspace.create(tmp_path / "ws", labels=labels, name="keys", db_url=db_url)
        one_item_page(ws)
        path = tmp_path / "pool.csv"
        path.write_text("id,text\n" + "".join(f"k{n},message {n}\n" for n in range(6)))
        ws.import_file(path, id_field="id")
        ws.add_user("ann")
        monkeypatch.setenv("LABELLOOP_WORKSPACE", str(ws.root))
        if db_url:
            monkeypatch.setenv("LABELLOOP_DB", db_url)
        else:
            monkeypatch.delenv("LABELLOOP_DB", raising=False)
        opened.append(ws)
        return ws

    yield make
    for ws in opened:
        ws.close()


def _label_page() -> AppTest:
    script = "from labeling.ui.views import common, label\ncommon.apply_style()\nlabel.render()\n"
    at = AppTest.from_string(script, default_timeout=TIMEOUT)
    at.session_state["ll_user"] = "ann"
    return at.run()


def _current_labels(ws: Workspace) -> list[str | None]:
    with Session(ws.engine) as session:
        rows = session.exec(
            select(Annotation)
            .where(col(Annotation.superseded_by).is_(None))
            .order_by(col(Annotation.id))
        ).all()
        return [r.label for r in rows]


def test_a_twelve_label_page_shows_digits_on_nine_buttons_and_says_how_to_reach_the_rest(
    served_labels,
):
    ws = served_labels(EMOTIONS)
    at = _label_page()
    assert not at.exception
    item = at.session_state["ll_item"]
    shown = {b.key: b.proto.shortcut for b in at.button if b.key and b.key.startswith("label_")}
    # The key a button shows is the key that works: digits on the first nine, none after.
    assert shown == {
        button_key(k.number, item.item_id): (k.key or "") for k in label_keys(EMOTIONS)
    }
    assert [b.label for b in at.button if b.key and b.key.startswith("label_")] == EMOTIONS
    assert any(c.value.startswith("Labels 10-12 have no digit") for c in at.caption)
    assert any("/ find any of 12 labels by name" in c.value for c in at.sidebar.caption)
    # The button the picker presses for label 11 answers with label 11.
    at.button(key=button_key(11, item.item_id)).click().run()
    assert not at.exception
    assert _current_labels(ws) == ["disapproval"]
    assert at.session_state["ll_item"].item_id != item.item_id


def test_a_nine_label_page_has_no_picker(served_labels):
    ws = served_labels(EMOTIONS[:9])
    at = _label_page()
    assert not at.exception
    item = at.session_state["ll_item"]
    shortcuts = [b.proto.shortcut for b in at.button if b.key and b.key.startswith("label_")]
    assert shortcuts == [*"123456789"]
    assert not any("have no digit" in c.value for c in at.caption)
    assert [c.value for c in at.sidebar.caption] == [
        "Keys: 1-9 label (the number pad too) · S skip · U undo · ? guidelines"
    ]
    at.button(key=button_key(9, item.item_id)).click().run()
    assert _current_labels(ws) == ["desire"]


def test_the_python_and_browser_halves_agree_on_the_digit_count():
    views = Path(__file__).resolve().parents[1] / "labeling/ui/views"
    script = (views / "keys_shared.js").read_text()  # both pages' keys (label_keys.js too)
    assert f"const DIGIT_LABELS = {DIGIT_LABELS};" in script
    assert f'const PICKER_KEY = "{PICKER_KEY}";' in script


def test_both_pages_load_the_shared_key_helpers_and_nothing_is_left_out():
    """The one-item page's listener runs after the shared helpers, in a block of its own (it
    runs again on each visit: its constants must not land in the page's global scope), and
    st.html's sanitizer drops a script with a "<" before a letter, "/" or "!"."""
    import re

    from labeling.ui.views import label, label_buffer

    assert label.KEYS_HTML.startswith("<script>{\n// What both Label pages")
    assert label.KEYS_HTML.endswith("})();\n\n}</script>")
    assert not re.search(r"<[/\w!]", label.KEYS_HTML[len("<script>") : -len("</script>")])
    assert label_buffer.PARTS[0] == "keys_shared.js" and label_buffer.PARTS[-1] == "label_buffer.js"
    shipped = {p.name for p in label_buffer.HERE.glob("*.js")}
    assert shipped == {*label_buffer.PARTS, "label_keys.js"}
