"""The Data page's browser: search box, filters, one page of results, counts per label.

Every search runs in the store (``Workspace.search``): the page holds one page of 50 rows and
the counts of the whole result, never the pool. The search box and the filters keep their
values across reruns (each widget has a key in ``st.session_state``); a new search starts again
at its first page. Clicking a row opens the item page (:mod:`labeling.ui.views.item`).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pandas as pd
import streamlit as st

from labeling.annotation.session import UserSession
from labeling.data.search import SORTS, SearchQuery, query_from_options
from labeling.data.search_syntax import rule_spec
from labeling.errors import BadInput, LabelloopError
from labeling.store.models import ORIGINS
from labeling.ui.views import bulk, common, similar
from labeling.ui.views.opened import NONCE_KEY, open_item, remember_search, restore_search

PAGE_SIZE = 50
ANY = "Any"
NONE_LABEL = "(none)"
ANY_VOTE = "any vote"
ABSTAIN = "abstain"
SPLIT_CHOICES = {"pool and gold": None, "pool": "pool", "gold": "gold", "removed": "removed"}
DISAGREEMENT_CHOICES = {ANY: None, "between people": "people", "model vs. label": "model"}
FLAGGED_CHOICES = {ANY: None, "flagged": True, "not flagged": False}
OFFSET_KEY = "ll_page_offset"
SIGNATURE_KEY = "ll_page_signature"
CHOICES_SECONDS = 30
NAME_CHARS = re.compile(r"[^a-z0-9]+")
SEARCH_HELP = (
    'Whole words, any case: `refund late` needs both words, `"money back"` a phrase, '
    "`refund OR chargeback` either one, `-spam` leaves out items with that word, `refund*` "
    "words starting with refund."
)


def _choice(key: str, label: str, options: list[str], column: Any, **extra: Any) -> str:
    """A select box whose value survives reruns; a value no longer offered falls back."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = options[0]
    return str(column.selectbox(label, options, key=key, **extra))


@st.cache_data(ttl=CHOICES_SECONDS, show_spinner=False)
def _choices(root: str, name: str) -> tuple[list[str], list[str], dict[str, str]]:
    """The filters' choices: people, LFs and imports (``name``: whose role is checked). Kept
    for a few seconds: the LF list counts every vote, too slow to redo at each click on a
    large store."""
    user = UserSession(common.workspace(), name)
    people = [p["name"] for p in user.list_users()]
    lfs = [lf["name"] for lf in user.lf_list()]
    batches = {f"{b.batch_id}: {b.source_name}": str(b.batch_id) for b in user.import_batches()}
    return people, lfs, batches


def _filters(user: UserSession) -> dict[str, Any]:
    """The filter widgets, their options from the workspace; the search options they give."""
    labels = list(user.labels)
    people, lfs, batches = _choices(str(user.workspace.root), user.name)
    options: dict[str, Any] = {}
    row = st.columns(4)
    label = _choice("ll_f_label", "Label", [ANY, NONE_LABEL, *labels], row[0])
    if label == NONE_LABEL:
        options["unlabelled"] = True
    elif label != ANY:
        options["label"] = label
    options["annotator"] = _choice("ll_f_annotator", "Answered by", [ANY, *people], row[1])
    options["origin"] = _choice("ll_f_origin", "Origin of an answer", [ANY, *ORIGINS], row[2])
    options["weak_label"] = _choice("ll_f_weak", "Weak label", [ANY, *labels], row[3])
    row = st.columns(4)
    options["predicted"] = _choice("ll_f_predicted", "Model predicts", [ANY, *labels], row[0])
    low, high = row[1].slider(
        "Model confidence", 0.0, 1.0, (0.0, 1.0), step=0.05, key="ll_f_confidence"
    )
    options["min_confidence"] = low if low > 0.0 else None
    options["max_confidence"] = high if high < 1.0 else None
    lf = _choice("ll_f_lf", "LF", [ANY, *lfs], row[2])
    # multi-label LFs may vote a label absent: "not:LABEL", as search --lf takes it
    absent = [f"not:{label}" for label in labels] if user.multilabel else []
    vote = _choice("ll_f_lf_vote", "LF vote", [ANY_VOTE, *labels, *absent, ABSTAIN], row[3])
    if lf != ANY:
        options["lf"] = lf if vote == ANY_VOTE else f"{lf}={vote}"
    last = st.columns(5)
    disagreement = _choice("ll_f_disagree", "Disagreement", list(DISAGREEMENT_CHOICES), last[0])
    options["disagreement"] = DISAGREEMENT_CHOICES[disagreement]
    flagged = _choice("ll_f_flagged", "Flagged", list(FLAGGED_CHOICES), last[1])
    options["flagged"] = FLAGGED_CHOICES[flagged]
    options["split"] = SPLIT_CHOICES[_choice("ll_f_split", "Split", list(SPLIT_CHOICES), last[2])]
    batch = _choice("ll_f_batch", "Import", [ANY, *batches], last[3])
    options["batch"] = batches.get(batch)
    options["sort"] = _choice("ll_f_sort", "Sort by", list(SORTS), last[4])
    return {k: v for k, v in options.items() if v is not None and v != ANY}


def _page_offset(signature: str) -> int:
    """The current page's offset; a search or filter that changed starts at the first page."""
    if st.session_state.get(SIGNATURE_KEY) != signature:
        st.session_state[SIGNATURE_KEY] = signature
        st.session_state[OFFSET_KEY] = 0
    return int(st.session_state.get(OFFSET_KEY, 0))


def _move(step: int) -> None:
    st.session_state[OFFSET_KEY] = max(0, int(st.session_state.get(OFFSET_KEY, 0)) + step)


def _counts(result: dict[str, Any], labels: tuple[str, ...]) -> None:
    """The whole result's items per label, as a small bar chart in the toml's label order."""
    counts = result["counts"]
    order = [label for label in labels if label in counts] + [
        label for label in counts if label not in labels
    ]
    names = [label or NONE_LABEL for label in order]
    frame = pd.DataFrame({"label": names, "items": [counts[label] for label in order]})
    st.caption(
        "Items per current label in the whole result: "
        + ", ".join(f"{common.plain(n)} {c:,}" for n, c in zip(names, frame["items"], strict=True))
    )
    if len(frame) > 1:
        st.bar_chart(
            frame,
            x="label",
            y="items",
            x_label="",
            y_label="items",
            horizontal=True,
            height=60 + 26 * len(frame),
            sort=False,
        )


def _results_table(result: dict[str, Any], multilabel: bool) -> None:
    """One page of results; a click on a row opens that item (a set shows as its names)."""
    rows = result["items"]
    frame = pd.DataFrame(
        [
            {
                "id": r["id"],
                "text": " ".join(str(r["text"]).split())[:200],
                "label": (
                    common.label_text(r["label"], True)
                    if multilabel and r["label"] is not None
                    else r["label"]
                ),
                "predicted": (
                    common.label_text(r["predicted"], True)
                    if multilabel and r["predicted"] is not None
                    else r["predicted"]
                ),
                "confidence": r["confidence"],
                "weak label": r["weak_label"],
                "split": r["split"],
            }
            for r in rows
        ],
        columns=["id", "text", "label", "predicted", "confidence", "weak label", "split"],
    )
    event = st.dataframe(
        frame,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key=f"ll_results_{st.session_state.get(NONCE_KEY, 0)}",
        column_config={
            "id": st.column_config.TextColumn("id", width="small"),
            "text": st.column_config.TextColumn("text", width="large"),
            "confidence": st.column_config.NumberColumn("confidence", format="%.2f"),
        },
        height=min(38 + 35 * max(len(frame), 1), 560),
    )
    chosen = event.selection.rows if event is not None else []
    if chosen:
        open_item(str(frame["id"].iloc[chosen[0]]))
        st.rerun()


def _pager(total: int, offset: int, shown: int) -> None:
    cols = st.columns([2, 1, 1])
    if total:
        cols[0].caption(f"Items {offset + 1:,}-{offset + shown:,} of {total:,}")
    cols[1].button(
        "Previous",
        key="ll_page_previous",
        disabled=offset == 0,
        on_click=_move,
        args=(-PAGE_SIZE,),
        icon=":material/chevron_left:",
    )
    cols[2].button(
        "Next",
        key="ll_page_next",
        disabled=offset + shown >= total,
        on_click=_move,
        args=(PAGE_SIZE,),
        icon=":material/chevron_right:",
    )


def _open_by_id() -> None:
    typed = st.session_state.get("ll_open_id", "").strip()
    if typed:
        open_item(typed)
        st.session_state["ll_open_id"] = ""


def rule_name(text: str) -> str:
    """A rule name made from the search's words (``kw_refund_or_return``), to be changed."""
    slug = NAME_CHARS.sub("_", text.lower()).strip("_")
    return f"kw_{slug[:40].rstrip('_') or 'search'}"


def _save_as_rule(user: UserSession, text: str) -> None:
    """ "Save as rule": the search as a keyword rule for a chosen label, or why it cannot be."""
    with st.expander("Save this search as a keyword rule", icon=":material/rule:"):
        reason = None
        try:
            spec = rule_spec(text, name="preview", label=user.labels[0])
        except BadInput as exc:
            reason = str(exc) if text.strip() else "type words to search for first"
        if reason:
            st.caption(f"Not possible: {common.plain(reason)}.")
        elif spec["kind"] == "keyword":
            words = ", ".join(repr(k) for k in spec["keywords"])  # type: ignore[attr-defined]
            st.caption(
                f"The rule votes its label where a text has any of {common.plain(words)} (whole "
                "words, any case); the label model then weighs it with the other LFs. Filters "
                "are not part of the rule."
            )
        else:
            st.caption(
                "With a prefix (word*) the search becomes a regex rule; the label model weighs "
                "it with the other LFs. Filters are not part of the rule."
            )
        cols = st.columns([2, 2, 1])
        label = cols[0].selectbox("Votes", list(user.labels), key="ll_rule_label")
        name = cols[1].text_input("Rule name", value=rule_name(text), key=f"ll_rule_name_{text}")
        cols[2].write("")
        if cols[2].button("Save as rule", key="ll_rule_save", disabled=reason is not None):
            try:
                user.rule_from_search(name.strip(), text, str(label))
            except LabelloopError as exc:
                st.error(common.plain(exc))
            else:
                _choices.clear()  # the new rule is one of the LF filter's choices
                st.success(
                    f"Saved the rule {common.plain(name.strip())}; apply LFs on the LFs page "
                    "to count its votes."
                )


def render_browser(user: UserSession) -> None:
    """The browser: search, filters, counts, one page of results, bulk label, save as rule."""
    restore_search()
    cols = st.columns([4, 1])
    text = cols[0].text_input(
        "Search",
        key="ll_q_text",
        placeholder='refund OR "money back" -spam',
        help=SEARCH_HELP,
    )
    cols[1].text_input(
        "Open item", key="ll_open_id", placeholder="id", on_change=_open_by_id, help="External id"
    )
    with st.expander("Filters", expanded=True, icon=":material/filter_list:"):
        options = _filters(user)
    remember_search()
    signature = json.dumps([text, options], sort_keys=True, default=str)
    offset = _page_offset(signature)
    try:
        result = user.search(text, limit=PAGE_SIZE, offset=offset, **options)
        if offset and not result["items"]:  # the result shrank under this page: the first
            st.session_state[OFFSET_KEY] = offset = 0
            result = user.search(text, limit=PAGE_SIZE, offset=0, **options)
        query: SearchQuery = query_from_options(user.labels, text=text, **options)
    except LabelloopError as exc:
        st.error(common.plain(exc))
        return
    if not result["total"]:
        st.info("No items match this search.", icon=":material/search_off:")
    else:
        _counts(result, user.labels)
        _results_table(result, user.multilabel)
        _pager(result["total"], offset, len(result["items"]))
        target = bulk.Target(result["total"], query=query, described="this search", key="search")
        bulk.bulk_box(user, target)
    _save_as_rule(user, text)
    similar.like_text_section(user)
    bulk.batches_section(user)
