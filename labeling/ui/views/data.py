"""The Data page (engineers and admins): browse and search the items (see
:mod:`labeling.ui.views.browse`), open one (:mod:`labeling.ui.views.item`), upload and import a
file, export the labels, remove and restore items.

An upload goes through the same checks as ``labelloop import``: the whole file is validated
first and a bad file changes nothing; the error names the row and the field.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from labeling.annotation.session import UserSession
from labeling.data.exporter import ORIGINS
from labeling.data.importer import ImportReport, duplicate_texts_warning
from labeling.data.removal import BatchInfo, RemovalReport
from labeling.errors import LabelloopError
from labeling.ui.views import browse, common, item
from labeling.ui.views.opened import opened_item

UPLOAD_DIR_KEY = "ll_upload_dir"
NONE = "(none)"
KEEP_REPEATS = "Keep repeated texts"
FORMATS = {"CSV": "csv", "JSON Lines": "jsonl", "Parquet": "parquet"}
MIME = {"csv": "text/csv", "jsonl": "application/x-ndjson", "parquet": "application/octet-stream"}


def _saved_upload(upload: object) -> tuple[Path, str]:
    """Write the upload to this session's scratch folder (the importer reads files); returns
    the copy's path and the file's own name, which is what messages call it."""
    folder = st.session_state.get(UPLOAD_DIR_KEY)
    if folder is None or not Path(folder).is_dir():
        folder = tempfile.mkdtemp(prefix="labelloop-upload-")
        st.session_state[UPLOAD_DIR_KEY] = folder
    name = Path(getattr(upload, "name", "upload.csv")).name or "upload.csv"
    path = Path(folder) / name
    path.write_bytes(upload.getvalue())  # type: ignore[attr-defined]
    return path, name


def _import_section(user: UserSession) -> None:
    st.subheader("Import")
    st.caption(
        "CSV, TSV, JSON Lines or Parquet. The whole file is checked before anything is stored."
    )
    upload = st.file_uploader(
        "File to import", type=["csv", "tsv", "jsonl", "parquet"], key="ll_upload"
    )
    if upload is None:
        return
    path, name = _saved_upload(upload)
    try:
        columns, rows = user.preview_file(path, source_name=name)
    except LabelloopError as exc:
        st.error(common.plain(exc))
        return
    st.write(f"First {len(rows)} rows of {common.plain(name)}:")
    st.dataframe(pd.DataFrame(rows, columns=columns), hide_index=True, height=240)
    config_text = user.workspace.config.text_field
    if config_text not in columns:
        st.info(
            f"This file has no field {common.plain(repr(config_text))} (the workspace's text "
            "field): choose the column that holds the text.",
            icon=":material/info:",
        )
    mapping = _mapping_form(columns, config_text)
    if mapping is None:
        return
    try:
        with st.spinner("Checking and importing..."):
            report = user.import_file(path, source_name=name, **mapping)
    except LabelloopError as exc:
        st.error(f"Nothing was imported. {common.plain(exc)}")
        return
    _show_import(report)


def _mapping_form(columns: list[str], config_text: str) -> dict[str, Any] | None:
    """The form mapping the file's columns; the import's keyword arguments once submitted."""
    with st.form("ll_import_form"):
        cols = st.columns(2)
        # No guess: without the workspace's text field nothing is chosen, and an import
        # without a choice is refused by the importer's own check, as `labelloop import` is.
        text_field = cols[0].selectbox(
            "Text field",
            columns,
            index=columns.index(config_text) if config_text in columns else None,
            placeholder="Choose the column with the text",
            key="ll_map_text",
        )
        id_field = cols[1].selectbox(
            "Id field", [NONE, *columns], key="ll_map_id", help="(none): ids from the text"
        )
        cols = st.columns(2)
        label_field = cols[0].selectbox("Label field", [NONE, *columns], key="ll_map_label")
        split = cols[1].selectbox(
            "Split", ["pool", "gold"], key="ll_map_split", help="gold: items with known answers"
        )
        keep_repeats = st.checkbox(
            KEEP_REPEATS,
            key="ll_map_keep_repeats",
            help="Import rows whose text is already in the workspace (or earlier in the file) "
            "under another id. By default they are skipped and counted.",
        )
        submitted = st.form_submit_button("Import", type="primary")
    if not submitted:
        return None
    return {
        "text_field": text_field,
        "id_field": None if id_field == NONE else id_field,
        "label_field": None if label_field == NONE else label_field,
        "split": split,
        "allow_duplicate_texts": keep_repeats,
    }


def _show_import(report: ImportReport) -> None:
    """What the import did: counts, texts repeated, and the drift check's verdict."""
    st.success(
        f"Imported {report.imported:,} {'item' if report.imported == 1 else 'items'} "
        f"into {report.split}; {report.duplicates:,} duplicate ids skipped."
    )
    repeated = duplicate_texts_warning(report, option=f'"{KEEP_REPEATS}"')
    if repeated:
        st.warning(common.plain(repeated[0].upper() + repeated[1:] + "."))
    drift = report.drift or {}
    if drift.get("drifted"):
        extra = " A round is queued and these items are served first." if drift.get("round") else ""
        st.warning(f"Drift: {common.plain(drift['message'])}{extra}", icon=":material/warning:")
    elif drift.get("auc") is not None:
        st.caption(
            f"Drift check: these items look like the {drift['reference']} items "
            f"(AUC {drift['auc']:.2f}, warning at {drift['threshold']})."
        )


def _export_section(user: UserSession) -> None:
    st.subheader("Export")
    st.caption(
        "One row per item with its final label (a lead's decision, else the majority of "
        "current answers) and how it was decided."
    )
    cols = st.columns([2, 2, 3])
    kind = cols[0].selectbox("Format", list(FORMATS), key="ll_export_format")
    log = cols[1].toggle("Annotation log instead", key="ll_export_log")
    origins = st.multiselect(
        "Only these origins",
        list(ORIGINS),
        key="ll_export_origin",
        placeholder="All rows",
        help="Items whose final label came from: human answers (majority, tie-break, "
        "correction), an imported file, or a lead's adjudication. With the annotation log: "
        "the annotations of that origin.",
    )
    fmt = FORMATS[kind]
    if cols[2].button("Prepare file", key="ll_export_prepare", icon=":material/download:"):
        try:
            payload = user.export_bytes(fmt, annotations=log, origins=origins or None)
            st.session_state["ll_export"] = (fmt, log, payload)
            st.session_state["ll_export_origins"] = tuple(origins)
        except LabelloopError as exc:
            st.error(common.plain(exc))
    ready = st.session_state.get("ll_export")
    prepared_for = st.session_state.get("ll_export_origins", ())
    if ready is not None and ready[:2] == (fmt, log) and prepared_for == tuple(origins):
        name = f"{user.workspace.config.name}-{'annotations' if log else 'labels'}.{fmt}"
        st.download_button(
            f"Download {name} ({len(ready[2]) / 1024:,.0f} KB)",
            data=ready[2],
            file_name=name,
            mime=MIME[fmt],
            key="ll_export_download",
            type="primary",
        )


def _removal_section(user: UserSession) -> None:
    st.subheader("Remove items")
    st.caption(
        "Removed items leave the queue, rounds, metrics and export; their answers stay, and "
        "Restore brings them back as they were. Choose a whole import or list external ids."
    )
    batches = user.import_batches()
    if batches:
        _batches_table(batches)
    cols = st.columns([3, 2])
    choice = cols[0].selectbox(
        "Import",
        [None, *[b.batch_id for b in batches]],
        format_func=lambda k: (
            "(list ids instead)"
            if k is None
            else next(
                f"{b.batch_id}: {b.source_name} ({b.imported:,} items)"
                for b in batches
                if b.batch_id == k
            )
        ),
        key="ll_remove_batch",
    )
    typed = cols[1].text_area(
        "External ids", key="ll_remove_ids", help="One per line, or separated by commas."
    )
    ids = [part.strip() for part in typed.replace(",", "\n").splitlines() if part.strip()]
    _removal_buttons(user, choice, ids)


def _batches_table(batches: list[BatchInfo]) -> None:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "import": b.batch_id,
                    "file": b.source_name,
                    "split": b.split,
                    "items": b.imported,
                    "removed": b.removed,
                    "imported at": f"{b.created_at:%Y-%m-%d %H:%M}",
                }
                for b in batches
            ]
        ),
        hide_index=True,
        key="ll_batches",
    )


def _change_items(
    change: Callable[..., RemovalReport], done: str, choice: int | None, ids: list[str], what: str
) -> None:
    """Remove or restore the chosen import (``choice``) or the listed items, and say so."""
    try:
        report = change(None if choice is not None else ids, batch=choice)
    except LabelloopError as exc:
        st.error(common.plain(exc))
    else:
        st.success(f"{done} {report.changed:,} of the {what}.")


def _removal_buttons(user: UserSession, choice: int | None, ids: list[str]) -> None:
    """Remove (asked, then confirmed) or restore the chosen import or the listed items."""
    what = (
        f"import {choice}"
        if choice is not None
        else f"{len(ids):,} listed item{'s' if len(ids) != 1 else ''}"
    )
    chosen = choice is not None or bool(ids)
    buttons = st.columns(3)
    if buttons[0].button("Remove...", key="ll_remove_ask", disabled=not chosen):
        st.session_state["ll_remove_pending"] = (choice, ids)
    if buttons[1].button("Restore", key="ll_restore", disabled=not chosen):
        _change_items(user.restore_items, "Restored", choice, ids, what)
    pending = st.session_state.get("ll_remove_pending")
    if pending is not None and pending == (choice, ids):
        st.warning(f"Remove {what}? Their answers are kept and Restore undoes it.")
        if buttons[2].button("Yes, remove", key="ll_remove_confirm", type="primary"):
            st.session_state.pop("ll_remove_pending", None)
            _change_items(user.remove_items, "Removed", choice, ids, what)


def render() -> None:
    user = common.require_engineer("Data")
    if user is None:
        return
    st.title("Data")
    status = user.status()
    items = status["items"]
    cols = st.columns(4)
    cols[0].metric("Pool items", f"{items['pool']:,}")
    cols[1].metric("Gold items", f"{items['gold']:,}")
    cols[2].metric("Labelled", f"{items['labelled']:,}")
    cols[3].metric("Annotations", f"{status['annotations']:,}")
    opened = opened_item()
    if opened is not None:
        item.render_item(user, opened)
        return
    find, load, export, remove = st.tabs(["Browse", "Import", "Export", "Remove"])
    with find:
        browse.render_browser(user)
    with load:
        _import_section(user)
    with export:
        _export_section(user)
    with remove:
        _removal_section(user)
