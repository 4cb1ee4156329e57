"""The service layer behind the UI: roles, the label/skip/undo flow, progress, empty queues.

Runs on SQLite and PostgreSQL (``--backend``).
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from labeling import Workspace
from labeling.annotation.session import UserSession
from labeling.config import load_config
from labeling.errors import BadInput, Forbidden, NothingToUndo, UnknownAnnotator
from labeling.store.models import Annotation, Item, Lease, Round, Score, SignInLink, utcnow
from labeling.ui.server import prepare


@pytest.fixture
def ws(tmp_path, db_url):
    ws = Workspace.create(tmp_path / "svc", labels=["a", "b", "c"], db_url=db_url)
    path = tmp_path / "pool.csv"
    path.write_text("id,text,channel\n" + "".join(f"i{k},text {k},web\n" for k in range(30)))
    ws.import_file(path, id_field="id")
    yield ws
    ws.close()


def _people(ws: Workspace) -> dict[str, UserSession]:
    tokens = {}
    for name, role in (("ann", "annotator"), ("bob", "annotator"), ("eve", "engineer")):
        tokens[name] = ws.add_user(name, role=role)[1]
    tokens["ada"] = ws.add_user("ada", role="admin")[1]
    return {name: UserSession.sign_in(ws, token) for name, token in tokens.items()}


def test_sign_in_with_a_wrong_or_revoked_token_is_refused(ws):
    _, token = ws.add_user("ann")
    assert UserSession.sign_in(ws, token).name == "ann"
    for bad in ("", "   ", "ll_nope_nope", token[:-1] + ("x" if token[-1] != "x" else "y")):
        with pytest.raises(UnknownAnnotator):
            UserSession.sign_in(ws, bad)
    ws.deactivate_user("ann")
    with pytest.raises(UnknownAnnotator):
        UserSession.sign_in(ws, token)


def test_roles_are_checked_in_the_service_layer(ws, tmp_path):
    people = _people(ws)
    ann, eve, ada = people["ann"], people["eve"], people["ada"]
    forbidden = [
        lambda: ann.export_bytes("csv"),
        lambda: ann.import_file(tmp_path / "pool.csv", id_field="id"),
        lambda: ann.preview_file(tmp_path / "pool.csv"),
        lambda: ann.list_users(),
        lambda: ann.status(),
        lambda: ann.add_user("mallory", role="admin"),
        lambda: ann.deactivate_user("bob"),
        lambda: ann.update_settings(overlap=2, lease_seconds=600),
        lambda: eve.add_user("mallory"),
        lambda: eve.deactivate_user("ann"),
        lambda: eve.update_settings(overlap=2, lease_seconds=600),
    ]
    for call in forbidden:
        with pytest.raises(Forbidden):
            call()
    assert ann.can("annotator") and not ann.can("engineer")
    assert eve.can("engineer") and not eve.can("admin")
    assert ada.can("admin")
    assert b"id,text" in eve.export_bytes("csv")
    assert [p["name"] for p in eve.list_users()] == ["ann", "bob", "eve", "ada"]
    name, token = ada.add_user("newbie")
    assert name == "newbie" and token.startswith("ll_")
    assert UserSession.sign_in(ws, token).name == "newbie"


def test_demoted_or_deactivated_person_loses_access_at_the_next_call(ws):
    people = _people(ws)
    ada, ann = people["ada"], people["ann"]
    item = ann.current_item()
    assert item is not None
    ada.deactivate_user("ann")
    with pytest.raises(UnknownAnnotator):
        ann.current_item()
    # Their held item went straight back to the queue.
    assert people["bob"].current_item().item_id == item.item_id
    with pytest.raises(BadInput):
        ada.deactivate_user("ada")


def test_answer_records_and_prefetches_the_next_item(ws):
    ann = _people(ws)["ann"]
    first = ann.current_item()
    nxt = ann.answer(first.item_id, "b", duration_ms=1234)
    assert nxt is not None and nxt.item_id != first.item_id
    # The pre-fetched item is leased already: asking again gives the same one.
    assert ann.current_item().item_id == nxt.item_id
    with Session(ws.engine) as session:
        row = session.exec(select(Annotation).where(Annotation.item_id == first.item_id)).one()
    assert (row.label, row.duration_ms, row.skipped) == ("b", 1234, False)


def test_undo_brings_back_the_item_and_supersedes_the_answer(ws):
    ann = _people(ws)["ann"]
    first = ann.current_item()
    second = ann.answer(first.item_id, "a")
    back = ann.undo()
    assert back.item_id == first.item_id and back.is_undo and back.previous_label == "a"
    after = ann.answer(back.item_id, "c")
    assert after.item_id == second.item_id  # back to where the annotator was
    with Session(ws.engine) as session:
        rows = session.exec(
            select(Annotation)
            .where(Annotation.item_id == first.item_id)
            .order_by(col(Annotation.id))
        ).all()
    assert [r.label for r in rows] == ["a", "c"]
    assert rows[0].superseded_by == rows[1].id and rows[1].superseded_by is None


def test_nothing_to_undo(ws):
    with pytest.raises(NothingToUndo):
        _people(ws)["ann"].undo()


def test_skip_then_the_next_item(ws):
    ann = _people(ws)["ann"]
    first = ann.current_item()
    nxt = ann.skip(first.item_id, duration_ms=10)
    assert nxt.item_id != first.item_id
    with Session(ws.engine) as session:
        row = session.exec(select(Annotation).where(Annotation.item_id == first.item_id)).one()
    assert row.skipped and row.label is None


def test_two_annotators_at_once_never_share_an_item(ws):
    people = _people(ws)
    seen: dict[str, list[int]] = {"ann": [], "bob": []}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work(name: str) -> None:
        try:
            user = people[name]
            barrier.wait()
            item = user.current_item()
            while item is not None:
                seen[name].append(item.item_id)
                item = user.answer(item.item_id, "a")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in seen]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert not set(seen["ann"]) & set(seen["bob"])
    assert len(seen["ann"]) + len(seen["bob"]) == 30


def test_overlap_two_gives_each_item_to_exactly_two_annotators(ws):
    people = _people(ws)
    people["ada"].update_settings(overlap=2, lease_seconds=600)
    assert load_config(ws.root).overlap == 2
    served: dict[int, set[str]] = {}
    for name in ("ann", "bob", "eve", "ada"):
        user = people[name]
        item = user.current_item()
        while item is not None:
            served.setdefault(item.item_id, set()).add(name)
            item = user.answer(item.item_id, "b")
    assert len(served) == 30
    assert all(len(names) == 2 for names in served.values())
    with Session(ws.engine) as session:
        assert set(session.exec(select(Item.n_labels)).all()) == {2}


def test_an_expired_lease_returns_to_the_queue(ws):
    people = _people(ws)
    held = people["ann"].current_item()
    with Session(ws.engine) as session:
        session.execute(
            update(Lease).values(expires_at=utcnow() - timedelta(seconds=1))
        )  # ann walked away
        session.commit()
    assert people["bob"].current_item().item_id == held.item_id


def test_progress_and_why_the_queue_is_empty(ws):
    people = _people(ws)
    ann, bob = people["ann"], people["bob"]
    item = ann.current_item()
    for _ in range(29):
        item = ann.answer(item.item_id, "a")
    # One item left, and ann holds it: bob is told it is with others.
    assert bob.current_item() is None
    assert bob.why_empty().reason == "leased_to_others"
    assert ann.answer(item.item_id, "a") is None
    assert ann.why_empty().reason == "all_labelled"
    progress = ann.progress()
    assert (progress.mine, progress.today, progress.pool) == (30, 30, 30)


def test_seen_all_and_empty_pool(tmp_path, ws):
    people = _people(ws)
    people["ada"].update_settings(overlap=2, lease_seconds=600)
    ann = people["ann"]
    item = ann.current_item()
    while item is not None:
        item = ann.answer(item.item_id, "a")
    assert ann.why_empty().reason == "seen_all"
    empty = Workspace.create(tmp_path / "empty", labels=["a", "b"])
    _, token = empty.add_user("zed")
    assert UserSession.sign_in(empty, token).why_empty().reason == "empty_pool"
    empty.close()


def test_the_promoted_round_is_recorded_and_hinted(ws):
    ann = _people(ws)["ann"]
    with Session(ws.engine) as session:
        round_ = Round(status="succeeded", promoted=True)
        session.add(round_)
        session.flush()
        for item_id in session.exec(select(Item.id)).all():
            session.add(
                Score(
                    round_id=round_.id, item_id=item_id, score=0.5, prediction="c", confidence=0.7
                )
            )
        session.commit()
        round_id = round_.id
    item = ann.current_item()
    assert item.round_id == round_id
    hint = ann.hint(item.item_id)
    assert (hint.prediction, hint.confidence, hint.round_id) == ("c", 0.7, round_id)
    ann.answer(item.item_id, "a")
    with Session(ws.engine) as session:
        assert session.exec(select(Annotation.round_id)).one() == round_id


def test_no_hint_before_a_model(ws):
    ann = _people(ws)["ann"]
    assert ann.hint(ann.current_item().item_id) is None


def test_my_stats(ws):
    ann = _people(ws)["ann"]
    item = ann.current_item()
    item = ann.answer(item.item_id, "a", duration_ms=2000)
    item = ann.answer(item.item_id, "b", duration_ms=4000)
    ann.skip(item.item_id)
    stats = ann.my_stats()
    assert stats["labels"] == 2 and stats["skips"] == 1
    assert stats["by_label"] == {"a": 1, "b": 1, "c": 0}
    # Of 2 s, 4 s and the skip's few milliseconds: the Metrics page's median (skips included).
    assert stats["median_seconds"] == 2.0
    assert sum(stats["per_day"].values()) == 2


def test_settings_are_validated(ws):
    ada = _people(ws)["ada"]
    with pytest.raises(BadInput, match="overlap"):
        ada.update_settings(overlap=0, lease_seconds=600)
    with pytest.raises(BadInput, match="lease_seconds"):
        ada.update_settings(overlap=1, lease_seconds=1)
    assert load_config(ws.root).overlap == 1


def test_serve_prepares_an_admin_and_a_link_that_expires(ws):
    launch = prepare(ws, host="127.0.0.1", port=8501, link_hours=1)
    assert launch.created_admin and launch.admin == "admin"
    assert launch.sign_in_url.startswith("http://127.0.0.1:8501/?token=ls_")
    user = UserSession.sign_in(ws, launch.token)
    assert user.name == "admin" and user.can("admin")
    again = prepare(ws, host="0.0.0.0", port=9000, link_hours=1)
    assert not again.created_admin and again.url == "http://127.0.0.1:9000/"
    with Session(ws.engine) as session:
        session.execute(update(SignInLink).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    with pytest.raises(UnknownAnnotator):
        UserSession.sign_in(ws, launch.token)
