"""How a figure is written: one function per kind of number, shared by the pages, the CLI and
the HTML report, so the same figure reads the same everywhere ("18.8%" on the page and in the
report, never "18.75%" in one and "19%" in the other).
"""

from __future__ import annotations

from typing import Any

DASH = "-"

# Each coverage figure: its key, the one name every surface gives it, and what it counts (the
# help tooltip on the pages, a footnote in the report; docs/quality.md says the same).
COVERAGE_FIGURES: tuple[tuple[str, str, str], ...] = (
    (
        "human",
        "Labelled by people",
        "Pool items with a label from people: the majority of their current answers (a tie "
        "goes to the label listed first), or a lead's decision. Skips do not count.",
    ),
    (
        "lf",
        "Covered by LFs",
        "Pool items on which at least one active LF voted. A vote is not yet a label: LFs "
        "can tie, and most abstain on most items.",
    ),
    (
        "weak",
        "Confident weak labels",
        "Pool items whose weak label (the label model's reading of the LF votes) is at least "
        "weak_threshold confident. Items where every LF abstains or the LFs tie have none.",
    ),
    (
        "combined",
        "Covered, people or weak",
        "Pool items with a label from people or a confident weak label: what the next round "
        "trains on. Where both exist, the people's label wins.",
    ),
)


def share(value: float | None) -> str:
    """A fraction from 0 to 1 as a percentage with one decimal: 0.21875 -> "21.9%"."""
    return DASH if value is None else f"{value:.1%}"


def score(value: float | None) -> str:
    """Kappa, alpha, macro-F1 and other scores: three decimals, 0.8 -> "0.800"."""
    return DASH if value is None else f"{value:.3f}"


def count(value: int | None) -> str:
    """A number of things, with thousands separators: 1234 -> "1,234"."""
    return DASH if value is None else f"{value:,}"


def rate(value: float | None) -> str:
    """Labels per hour and other rates: whole numbers, 6524.258 -> "6,524"."""
    return DASH if value is None else f"{value:,.0f}"


def seconds(value: float | None) -> str:
    """A duration in seconds with one decimal: 2.46 -> "2.5 s"."""
    return DASH if value is None else f"{value:,.1f} s"


def plural(n: int, noun: str, plural_noun: str | None = None) -> str:
    """ "1 item", "2 items", "1,200 items"; ``plural_noun`` where adding "s" is wrong."""
    word = noun if n == 1 else (plural_noun or f"{noun}s")
    return f"{n:,} {word}"


def right_of(correct: int | None, n: int | None) -> str:
    """Counts before a share: "9/10 (90.0%)"; a dash when nothing was scored."""
    if not n or correct is None:
        return DASH
    return f"{correct:,}/{n:,} ({share(correct / n)})"


def people(by_role: dict[str, int]) -> str:
    """Active people by role, annotators first: "3 annotators, 1 lead, 1 admin"."""
    order = ("annotator", "lead", "engineer", "admin")
    parts = [plural(by_role.get("annotator", 0), "annotator")]
    parts += [plural(by_role[role], role) for role in order[1:] if by_role.get(role)]
    return ", ".join(parts)


# Per annotator, the column names every surface uses and what each counts.
ANNOTATOR_COLUMNS: dict[str, str] = {
    "annotator": "The person's name.",
    "current labels": "Labels the person has now: answers not changed or undone since "
    "(the Labels figure on their My stats page).",
    "answers given": "Every answer given, labels and skips, changed and undone ones "
    "included: the work done.",
    "labels per hour": "Labels given (changed ones included) per hour of labelling time; "
    "time on one item counts up to 5 minutes.",
    "median time per item": "Median time from serving an item to its answer, over every "
    "answer given (skips and changed answers included).",
    "skip rate": "Skips among all answers given.",
    "gold answered": "Current answers on hidden gold items.",
    "gold accuracy": "Share of those answers that match the gold label.",
}


def annotator_rows(
    throughput: dict[str, dict[str, Any]], gold: dict[str, dict[str, Any]]
) -> list[dict[str, str]]:
    """The annotators table, written out (Metrics page and report show these strings)."""
    rows = []
    for name in sorted(set(throughput) | set(gold)):
        s = throughput.get(name, {})
        g = gold.get(name, {})
        rows.append(
            {
                "annotator": name,
                "current labels": count(s.get("current_labels", 0)),
                "answers given": count(s.get("answers", 0)),
                "labels per hour": rate(s.get("labels_per_hour")),
                "median time per item": seconds(s.get("median_seconds")),
                "skip rate": share(s.get("skip_rate")),
                "gold answered": count(g.get("n", 0)),
                "gold accuracy": share(g.get("accuracy")),
            }
        )
    return rows


def coverage_rows(cover: dict[str, Any]) -> list[dict[str, str]]:
    """The coverage table, written out: one row per figure of :data:`COVERAGE_FIGURES`."""
    return [
        {
            "figure": name,
            "pool items": count(cover["counts"][key]),
            "share of pool": share(cover[key]),
        }
        for key, name, _meaning in COVERAGE_FIGURES
    ]


def pair_rows(pairs: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Agreement per pair of annotators, written out."""
    return [
        {
            "annotator": p["a"],
            "with": p["b"],
            "shared items": count(p["n"]),
            "kappa": score(p["kappa"]),
            "agree": share(p["observed"]),
        }
        for p in pairs
    ]


def label_kappa_rows(agreement: dict[str, Any]) -> list[dict[str, str]]:
    """Multi-label agreement per label (the mean kappa of pairs on its presence); none for
    single-label agreement."""
    return [
        {"label": label, "kappa": score(kappa)}
        for label, kappa in agreement.get("per_label_kappa", {}).items()
    ]


def interval_share(found: dict[str, Any], key: str = "correct") -> str:
    """A rate with its counts and 95% interval: "18/20 (90.0%, 69.9-97.2%)"; a dash at n 0."""
    if not found["n"]:
        return DASH
    return (
        f"{found[key]:,}/{found['n']:,} ({share(found['rate'])}, "
        f"{found['low']:.1%}-{found['high']:.1%})"
    )


def anchoring_rows(anchoring: dict[str, Any]) -> list[dict[str, str]]:
    """The anchoring check (labeling.quality.anchoring) per person, then everyone."""
    rows = [("everyone", anchoring), *anchoring["annotators"].items()]
    return [
        {
            "annotator": name,
            "gold, guess shown": interval_share(found["shown"]),
            "gold, guess withheld": interval_share(found["withheld"]),
            "difference": DASH
            if found["difference"] is None
            else f"{found['difference']['value']:+.1%} "
            f"({found['difference']['low']:+.1%} to {found['difference']['high']:+.1%})",
            "wrong guesses taken": interval_share(found["wrong_accepted"], "accepted"),
        }
        for name, found in rows
    ]


# Per guidelines version, the column names every surface uses and what each counts.
VERSION_COLUMNS: dict[str, str] = {
    "guidelines": "The guidelines version newest when the answers were given; none: before "
    "any guidelines were written.",
    "since": "When that version was recorded (UTC).",
    "answers given": "Every answer given under it, labels and skips, changed and undone ones "
    "included.",
    "gold accuracy": "Current answers on gold items given under it that match the gold "
    "label, with the 95% interval.",
    "agreement (α)": "Krippendorff's alpha over the pool items two or more people answered, "
    "all under this version; items answered under several versions are left out.",
    "items (α)": "The pool items that alpha rests on.",
}


def version_rows(by_guidelines: dict[str, Any]) -> list[dict[str, str]]:
    """The figures per guidelines version (labeling.quality.by_guidelines), oldest first."""
    return [
        {
            "guidelines": "none" if v["version"] is None else f"version {v['version']}",
            "since": DASH if v["since"] is None else v["since"][:16].replace("T", " "),
            "answers given": count(v["answers"]),
            "gold accuracy": interval_share(v["gold"]),
            "agreement (α)": score(v["agreement"]["alpha"]),
            "items (α)": count(v["agreement"]["items"]),
        }
        for v in by_guidelines["versions"]
    ]


def gold_figure_name(gold: dict[str, Any]) -> str:
    """What the gold accuracy figure is called: exact match for sets (they carry a Jaccard)."""
    return "Exact match on gold checks" if "jaccard" in gold else "Accuracy on gold checks"


def round_rows(model: dict[str, Any]) -> list[dict[str, str]]:
    """One row per succeeded round, newest first, written out; P/R per class."""
    rows = []
    for r in reversed(model["rounds"]):
        row = {
            "round": str(r["round"]),
            "promoted": "yes" if r["promoted"] else "",
            "human labels": count(r["n_human"]),
            "weak labels": count(r["n_weak"]),
            "evaluated on": str(r["evaluation"]),
            "accuracy": share(r["accuracy"]),
            "macro-F1": score(r["macro_f1"]),
        }
        for label in model["labels"]:
            per = (r["per_class"] or {}).get(label)
            row[f"{label} P/R"] = (
                f"{score(per['precision'])} / {score(per['recall'])}" if per else DASH
            )
        rows.append(row)
    return rows


def weak_gold_words(report: dict[str, Any]) -> str:
    """The label model's gold accuracy in words (``lf label``, the LF page's toast).

    Two figures that differ by design, both said: on the gold items that got a weak label,
    and over every gold item with the uncovered ones guessed at random (Snorkel's score).
    """
    covered = right_of(report.get("gold_covered_correct"), report.get("gold_covered_n"))
    uncovered = report.get("gold_uncovered", 0)
    words = f"right on {covered} of the gold items with a weak label"
    if report.get("gold_accuracy") is not None:
        words += (
            f"; {share(report['gold_accuracy'])} over all {plural(report['gold_n'], 'gold item')}"
            + (
                f", the {count(uncovered)} without one (no vote, or a tie) guessed at random"
                if uncovered
                else ""
            )
        )
    return words


def drift_check(report: dict[str, Any]) -> str:
    """One import's drift check in words, passed or not: what was compared, AUC, threshold."""
    where = f"Import {report['batch']} ({report['source']})"
    if "error" in report:
        return f"{where}: the drift check failed ({report['error']}); the import stands."
    if report.get("auc") is None:
        return f"{where}: not checked, {report.get('note', 'no AUC')}."
    compared = (
        f"{plural(report.get('items', 0), 'new item')} against "
        f"{plural(report.get('reference_items', 0), report.get('reference', 'pool') + ' item')}"
    )
    auc, threshold = f"{report['auc']:.2f}", report["threshold"]
    if report.get("drifted"):
        return f"{where}: drift, AUC {auc} >= threshold {threshold} ({compared})."
    return f"{where}: no drift, AUC {auc} < threshold {threshold} ({compared})."
