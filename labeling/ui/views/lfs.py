"""The LF page (engineers and admins): what each LF covers and how accurate it is, and a
rule builder that shows, while you type, what a keyword or regex rule would match.

Regexes typed here run on RE2, which takes linear time whatever the pattern, and patterns
are limited in size, so no pattern can hang the app.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from labeling import figures
from labeling.annotation.session import UserSession
from labeling.errors import LabelloopError
from labeling.ui.views import common
from labeling.weak.votes import LFRow


def _spec(prefix: str = "ll_rule_", name: str | None = None) -> dict[str, Any] | None:
    """The rule typed into the widgets keyed ``prefix...``, or None while it is incomplete.

    The rule builder's widgets are ``ll_rule_*``; each stored rule's edit form has its own
    prefix and a fixed ``name`` (a rule keeps its name when edited).
    """
    state = st.session_state
    if name is None:
        name = (state.get(f"{prefix}name") or "").strip() or "draft"
    label = state.get(f"{prefix}label")
    # Multi-label only: the rule votes its label absent (the key is set only there).
    absent = {"absent": True} if state.get(f"{prefix}absent") else {}
    if state.get(f"{prefix}kind") == "regex":
        pattern = state.get(f"{prefix}pattern") or ""
        if not pattern:
            return None
        return {
            "kind": "regex",
            "name": name,
            "label": label,
            "pattern": pattern,
            "case_sensitive": bool(state.get(f"{prefix}case")),
        } | absent
    words = [w.strip() for w in (state.get(f"{prefix}keywords") or "").split(",") if w.strip()]
    if not words:
        return None
    return {
        "kind": "keyword",
        "name": name,
        "label": label,
        "keywords": words,
        "case_sensitive": bool(state.get(f"{prefix}case")),
        "whole_word": bool(state.get(f"{prefix}whole", True)),
    } | absent


def _rule_builder(user: UserSession) -> None:
    st.subheader("New rule")
    cols = st.columns([2, 2, 2])
    cols[0].radio("Kind", ["keyword", "regex"], key="ll_rule_kind", horizontal=True)
    cols[1].text_input("Name", key="ll_rule_name", placeholder="kw_refund")
    cols[2].selectbox("Votes for", list(user.labels), key="ll_rule_label")
    if st.session_state.get("ll_rule_kind") == "regex":
        st.text_input("Pattern (RE2)", key="ll_rule_pattern", placeholder=r"https?://|www\.")
    else:
        st.text_input("Any of these words (comma-separated)", key="ll_rule_keywords")
        st.checkbox("Whole words only", value=True, key="ll_rule_whole")
    st.checkbox("Case-sensitive", key="ll_rule_case")
    if user.workspace.multilabel:
        st.checkbox("Votes the label absent (the item does not have it)", key="ll_rule_absent")
    spec = _spec()
    if spec is None:
        st.caption("Type keywords or a pattern to see what the rule matches.")
        return
    try:
        preview = user.preview_rule(spec)
    except LabelloopError as exc:
        st.error(common.plain(exc))
        return
    left, right = st.columns(2)
    left.metric("Matches in the pool", f"{preview['matches']:,}", f"{preview['coverage']:.1%}")
    if preview["accuracy"] is None:
        right.metric("Right on human labels", "–", help="No human-labelled item matches yet")
    else:
        right.metric(
            "Right on human labels",
            f"{preview['correct']}/{preview['human_labelled_matches']}",
            f"{preview['accuracy']:.0%}",
        )
    for sample in preview["samples"]:
        st.text(sample[:300])  # data: plain text only
    if st.button("Save rule", key="ll_rule_save", type="primary", disabled=spec["name"] == "draft"):
        try:
            user.add_rule(spec)
            st.success(f"Saved {common.plain(spec['name'])}. Apply LFs to store its votes.")
        except LabelloopError as exc:
            st.error(common.plain(exc))


def _analysis(report: dict[str, Any]) -> None:
    for error in report["errors"]:
        st.warning(common.plain(error))
    records = report["lfs"]
    if not records:
        st.info(
            "No applied LFs yet. Put LF files in the workspace's lfs/ folder or add a rule "
            "below, then press Apply LFs."
        )
        return
    _coverage_metrics(report["totals"])
    table = _lf_table(records)
    pct = st.column_config.NumberColumn(format="percent")
    st.dataframe(
        table,
        hide_index=True,
        key="ll_lf_table",
        column_config={
            "coverage": pct,
            "overlaps": pct,
            "conflicts": pct,
            "gold accuracy": pct,
        },
    )
    _lf_chart(table)


def _coverage_metrics(totals: dict[str, Any]) -> None:
    """The same four figures, names and help as the Metrics page and `labelloop status`."""
    cols = st.columns(4)
    for col, (key, name, text) in zip(cols, figures.COVERAGE_FIGURES, strict=True):
        col.metric(
            name,
            figures.share(totals[key]),
            help=f"{text} {figures.count(totals['counts'][key])} of "
            f"{figures.plural(totals['pool'], 'pool item')}"
            + (f"; weak_threshold is {totals['weak_threshold']}." if key == "weak" else "."),
        )


def _right_of(record: dict[str, Any], kind: str) -> str:
    """``right/n`` against human labels or gold, or a dash when there is nothing to compare."""
    n = record.get(f"{kind}_n") or 0
    return "–" if not n else f"{record[f'{kind}_correct']}/{n}"


def _lf_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per LF (multi-label: per LF, label and direction): what it votes, how much it
    covers, how often it is right."""
    return pd.DataFrame(
        [
            {
                "LF": r["lf"] if "direction" not in r else f"{r['lf']} ({r['polarity'][0]})",
                "kind": r["kind"],
                "polarity": ", ".join(r["polarity"]),
                "coverage": r["coverage"],
                "overlaps": r["overlaps"],
                "conflicts": r["conflicts"],
                "right/human": _right_of(r, "human"),
                "right/gold": _right_of(r, "gold"),
                "gold accuracy": r.get("gold_accuracy"),
                "faults": r["faults"],
            }
            for r in records
        ]
    )


def _lf_chart(table: pd.DataFrame) -> None:
    """Coverage and gold accuracy per LF, side by side."""
    long = table.melt(
        id_vars=["LF"], value_vars=["coverage", "gold accuracy"], var_name="measure"
    ).dropna()
    st.altair_chart(
        alt.Chart(long)
        .mark_bar()
        .encode(
            y=alt.Y("LF:N", sort=None, title=None),
            x=alt.X(
                "value:Q", axis=alt.Axis(format="%"), title=None, scale=alt.Scale(domain=[0, 1])
            ),
            color=alt.Color("measure:N", title=None),
            yOffset="measure:N",
            tooltip=["LF", "measure", alt.Tooltip("value:Q", format=".1%")],
        ),
        width="stretch",
    )


def _votes(n: int) -> str:
    return f"{n:,} vote{'' if n == 1 else 's'}"


def _edit_form(user: UserSession, rule: LFRow) -> None:
    """Change or delete one stored rule; widgets keyed by the rule's name."""
    name, spec = rule["name"], rule["spec"]
    prefix = f"ll_edit_{name}_"
    labels = list(user.labels)
    cols = st.columns([2, 2])
    cols[0].radio(
        "Kind",
        ["keyword", "regex"],
        index=0 if spec.get("kind") == "keyword" else 1,
        key=f"{prefix}kind",
        horizontal=True,
    )
    cols[1].selectbox(
        "Votes for",
        labels,
        index=labels.index(rule["label"]) if rule["label"] in labels else 0,
        key=f"{prefix}label",
    )
    if st.session_state.get(f"{prefix}kind") == "regex":
        st.text_input("Pattern (RE2)", value=spec.get("pattern", ""), key=f"{prefix}pattern")
    else:
        st.text_input(
            "Any of these words (comma-separated)",
            value=", ".join(spec.get("keywords", [])),
            key=f"{prefix}keywords",
        )
        st.checkbox("Whole words only", value=spec.get("whole_word", True), key=f"{prefix}whole")
    st.checkbox("Case-sensitive", value=spec.get("case_sensitive", False), key=f"{prefix}case")
    if user.workspace.multilabel:
        st.checkbox(
            "Votes the label absent", value=spec.get("absent", False), key=f"{prefix}absent"
        )
    edited = _spec(prefix, name)
    left, right = st.columns(2)
    if left.button("Save changes", key=f"{prefix}save", disabled=edited is None):
        assert edited is not None
        try:
            user.edit_rule(name, edited)
        except LabelloopError as exc:
            st.error(common.plain(exc))
            return
        st.session_state["ll_rule_notice"] = (
            f"Saved {name}. Its old votes no longer count; apply LFs to re-apply it to every item."
        )
        st.rerun()  # the analysis and the stale-weak-labels warning above change too
    sure = right.checkbox(
        f"Delete {name} and its {_votes(rule['votes'])}", key=f"ll_delete_{name}_confirm"
    )
    if right.button("Delete rule", key=f"ll_delete_{name}", type="primary", disabled=not sure):
        try:
            gone = user.delete_rule(name)
        except LabelloopError as exc:
            st.error(common.plain(exc))
            return
        st.session_state["ll_rule_notice"] = f"Deleted {name} and its {_votes(gone)}."
        st.rerun()


def _rules(user: UserSession) -> None:
    # Read again (cheap): a rule saved by the builder above shows at once.
    rules = [r for r in user.lf_list() if r["kind"] != "code"]
    notice = st.session_state.pop("ll_rule_notice", None)
    if notice:
        st.success(common.plain(notice))
    if not rules:
        return
    st.subheader("Rules")
    for rule in rules:
        spec = rule["spec"]
        what = ", ".join(spec.get("keywords", [])) or spec.get("pattern", "")
        cols = st.columns([5, 1])
        votes = f"not {rule['label']}" if spec.get("absent") else rule["label"]
        cols[0].text(f"{rule['name']} ({rule['kind']} → {votes}): {what}"[:200])
        active = cols[1].toggle("on", value=rule["active"], key=f"ll_rule_on_{rule['name']}")
        if active != rule["active"]:
            user.set_rule_active(rule["name"], active)
            st.rerun()
        with st.expander(f"Edit or delete {rule['name']}"):
            _edit_form(user, rule)


def render() -> None:
    user = common.require_engineer("LF")
    if user is None:
        return
    st.title("Labelling functions")
    cols = st.columns([1, 1, 2])
    if cols[0].button("Apply LFs", key="ll_lf_apply", type="primary", icon=":material/bolt:"):
        try:
            with st.spinner("Applying..."):
                done = user.apply_lfs()
            applied = figures.plural(len(done["lfs"]), "LF")
            st.toast(f"Applied {applied} in {figures.seconds(done['seconds'])}.")
        except LabelloopError as exc:
            st.error(common.plain(exc))
    if cols[1].button("Fit weak labels", key="ll_lf_label", icon=":material/model_training:"):
        try:
            with st.spinner("Fitting the label model..."):
                done = user.fit_weak_labels()
            st.toast(
                f"{done['model']}: {figures.plural(done['weak_labels'], 'weak label')}"
                + (f"; gold: {figures.weak_gold_words(done)}" if done["gold_n"] else "")
            )
            if done["message"]:
                st.info(common.plain(done["message"]))
        except LabelloopError as exc:
            st.error(common.plain(exc))
    if user.weak_labels_stale():
        st.warning(
            "The weak labels are out of date: LF votes changed since they were fitted (a rule "
            "edited, deleted or switched, an LF file changed, new votes applied). Rounds use "
            "them as they are until you press Fit weak labels."
        )
    _analysis(user.lf_analysis())
    st.divider()
    _rule_builder(user)
    _rules(user)
