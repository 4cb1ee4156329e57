"""``labelloop report OUT.html``: the Metrics page as one self-contained HTML file.

Charts are rendered to inline SVG with ``vl-convert`` (no scripts, no network), tables are
plain HTML, and every value from the data is escaped. The file can be mailed or archived.
"""

from __future__ import annotations

import html
import json
import platform
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labeling import figures
from labeling.errors import BadInput
from labeling.figures import drift_check, plural
from labeling.quality import charts

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #1f2937; line-height: 1.45; padding: 0 1rem;
       overflow-wrap: break-word; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #e5e7eb; }
.sub { color: #6b7280; margin-top: 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(9.5rem, 1fr));
         gap: 0.8rem; margin: 1.2rem 0; }
.card { border: 1px solid #e5e7eb; border-radius: 8px; padding: 0.7rem 0.9rem; }
.card .v { font-size: 1.7rem; font-weight: 600; } .card .k { color: #6b7280; font-size: 0.85rem; }
.warn, .ok, .pass { padding: 0.6rem 0.9rem; margin: 0.5rem 0; }
.warn { background: #fef3c7; border-left: 4px solid #d97706; }
.ok { background: #dcfce7; border-left: 4px solid #16a34a; }
.pass { background: #f3f4f6; border-left: 4px solid #9ca3af; }
.note { color: #4b5563; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 440px), 1fr));
          gap: 1rem; }
.charts figure { margin: 0; min-width: 0; } .charts p { color: #6b7280; }
/* Charts shrink with the screen; a table wider than the screen scrolls inside its box. */
.charts svg { max-width: 100%; height: auto; }
.wide { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.92rem; }
th, td { border-bottom: 1px solid #e5e7eb; padding: 0.3rem 0.7rem; text-align: left; }
th { background: #f9fafb; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
td { white-space: nowrap; } /* a figure is never broken across lines */
dl.help dt { font-weight: 600; } dl.help dd { margin: 0 0 0.4rem 0; color: #4b5563; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; }
@media (max-width: 480px) { body { margin: 1rem auto; padding: 0 0.6rem; }
  .card .v { font-size: 1.4rem; } th, td { padding: 0.25rem 0.4rem; } }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _numeric(text: str) -> bool:
    return bool(text) and (text[0].isdigit() or (text[0] == "-" and text[1:2].isdigit()))


def _table(rows: list[dict[str, str]]) -> str:
    """A table of figures already written out by :mod:`labeling.figures` (escaped here)."""
    if not rows:
        return '<p class="note">Nothing yet.</p>'
    head = "".join(f"<th>{_e(k)}</th>" for k in rows[0])
    body = []
    for row in rows:
        cells = []
        for value in row.values():
            text = str(value)
            cls = ' class="n"' if _numeric(text) else ""
            cells.append(f"<td{cls}>{_e(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<div class='wide'><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _help(entries: list[tuple[str, str]]) -> str:
    return (
        "<dl class='help'>"
        + "".join(f"<dt>{_e(name)}</dt><dd>{_e(text)}</dd>" for name, text in entries)
        + "</dl>"
    )


def _svg(chart: Any) -> str:
    import vl_convert  # an 84 MB native library; only the report draws SVG

    return str(vl_convert.vegalite_to_svg(chart.to_json()))


def render_html(status: dict[str, Any], summary: dict[str, Any]) -> str:
    """The report, as a string of HTML, from ``Workspace.status()`` and ``Workspace.metrics()``."""
    parts = [
        *_head(status),
        *_cards(summary),
        *_checks(summary),
        *_charts(summary),
        *_coverage(summary["coverage"]),
        *_people(summary),
        *_assisted(summary["quality"]),
        *_review(summary["quality"]["review"]),
        "<h2>Rounds</h2>",
        _table(figures.round_rows(summary["model"])),
        "<h2>Raw numbers</h2><details><summary>status --json metrics</summary><pre>"
        + _e(json.dumps(summary, indent=1, default=str))
        + "</pre></details>",
        f"<p class='sub'>labelloop on Python {_e(platform.python_version())}.</p></body></html>",
    ]
    return "\n".join(parts)


def _head(status: dict[str, Any]) -> list[str]:
    """The document's head, the title and the line on what the workspace holds."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>labelloop report: {_e(status['workspace'])}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>labelloop report: {_e(status['workspace'])}</h1>",
        f"<p class='sub'>Generated {now}. Labels: {_e(', '.join(status['labels']))}. "
        f"{plural(status['items']['pool'], 'pool item')}, "
        f"{plural(status['items']['gold'], 'gold item')}; active people: "
        f"{_e(figures.people(status['people_by_role']))}; "
        f"{plural(status['rounds'], 'round')}.</p>",
    ]


def _cards(summary: dict[str, Any]) -> list[str]:
    """The headline figures, one card each."""
    cover = summary["coverage"]
    quality = summary["quality"]
    model = summary["model"]
    promoted = next((r for r in model["rounds"] if r["round"] == model["promoted"]), None)
    meaning = {key: name for key, name, _text in figures.COVERAGE_FIGURES}
    cards = [
        (meaning["human"], figures.share(cover["human"])),
        (meaning["combined"], figures.share(cover["combined"])),
        (figures.gold_figure_name(quality["gold"]), figures.share(quality["gold"]["accuracy"])),
        *(
            [("Jaccard on gold checks", figures.score(quality["gold"]["jaccard"]))]
            if "jaccard" in quality["gold"]
            else []
        ),
        ("Krippendorff's alpha", figures.score(quality["agreement"]["alpha"])),
        ("Model macro-F1", figures.score(promoted["macro_f1"] if promoted else None)),
    ]
    return [
        "<div class='cards'>"
        + "".join(
            f"<div class='card'><div class='v'>{_e(v)}</div><div class='k'>{_e(k)}</div></div>"
            for k, v in cards
        )
        + "</div>"
    ]


def _checks(summary: dict[str, Any]) -> list[str]:
    """Each import's drift check, then the stopping hint."""
    parts = []
    for report in summary["drift"]:
        if report.get("drifted"):
            parts.append(
                f"<div class='warn'>{_e(drift_check(report))} {_e(report['message'])}</div>"
            )
        else:
            parts.append(f"<div class='pass'>{_e(drift_check(report))}</div>")
    stop = summary["stopping"]
    kind = "ok" if stop["stop"] else "note"
    parts.append(f"<div class='{kind}'>Stopping hint: {_e(stop['message'])}</div>")
    return parts


def _charts(summary: dict[str, Any]) -> list[str]:
    """Every chart as inline SVG, or a line saying it has not enough data yet."""
    parts = ["<h2>Charts</h2><div class='charts'>"]
    for name, chart in charts.all_charts(summary).items():
        title = name.replace("_", " ")
        if chart is None:
            parts.append(f"<figure><p>{_e(title.capitalize())}: not enough data yet.</p></figure>")
        else:
            parts.append(f"<figure>{_svg(chart)}</figure>")
    parts.append("</div>")
    return parts


def _coverage(cover: dict[str, Any]) -> list[str]:
    """Coverage overall and per class, with what each figure means."""
    meaning = {key: name for key, name, _text in figures.COVERAGE_FIGURES}
    per_class = [
        {"class": label}
        | {meaning[key]: figures.share(v[key]) for key in ("human", "lf", "weak", "combined")}
        for label, v in cover["per_class"].items()
    ]
    return [
        "<h2>Coverage</h2>",
        _table(figures.coverage_rows(cover)),
        _table(per_class),
        _help(
            [(name, text) for _key, name, text in figures.COVERAGE_FIGURES]
            + [("weak_threshold", str(cover["weak_threshold"]))]
        ),
    ]


def _people(summary: dict[str, Any]) -> list[str]:
    """Each annotator's numbers, then the agreement between them."""
    quality = summary["quality"]
    agreement = quality["agreement"]
    return [
        "<h2>Annotators</h2>",
        _table(figures.annotator_rows(summary["throughput"], quality["gold"]["annotators"])),
        _help(list(figures.ANNOTATOR_COLUMNS.items())[1:]),
        f"<h2>Agreement</h2><p>Krippendorff's alpha {figures.score(agreement['alpha'])} over "
        f"{plural(agreement['alpha_items'], 'pool item')} with two or more answers "
        "(gold items are scored against their gold label instead)"
        + (", with the MASI distance between label sets" if "alpha_distance" in agreement else "")
        + ".</p>",
        _table(figures.pair_rows(agreement["pairs"])),
        *(
            ["<h3>Agreement per label (Cohen's kappa on its presence)</h3>", _table(rows)]
            if (rows := figures.label_kappa_rows(agreement))
            else []
        ),
    ]


def _assisted(quality: dict[str, Any]) -> list[str]:
    """The anchoring check of suggestions, then gold accuracy and agreement per guidelines
    version: the Metrics page's tables."""
    anchoring = quality["anchoring"]
    versions = quality["by_guidelines"]
    spanning = versions["spanning_items"]
    return [
        "<h2>Suggestions and anchoring</h2>",
        _table(figures.anchoring_rows(anchoring))
        if anchoring["n"]
        else '<p class="note">No gold checks answered with suggestions on yet.</p>',
        "<p class='note'>Gold checks answered with suggestions on. A guess is withheld on a "
        "random share of gold items; if people are more often right with it withheld, or take "
        "wrong guesses often, the guess anchors them. Shares with their 95% interval.</p>",
        "<h2>By guidelines version</h2>",
        _table(figures.version_rows(versions)),
        _help(list(figures.VERSION_COLUMNS.items())),
        *(
            [
                f"<p class='note'>{_e(plural(spanning, 'pool item'))} answered under several "
                "versions are in no version's agreement.</p>"
            ]
            if spanning
            else []
        ),
    ]


def _review(review: dict[str, Any]) -> list[str]:
    """How many items each review list holds."""
    counts = review["counts"]
    lists = [
        ("people disagree", counts["disagreement"]),
        ("confident model disagrees", counts["model"]),
        ("weak label disagrees", counts["weak"]),
        ("likely label errors (cleanlab)", counts["likely_error"]),
        ("decided (adjudicated or corrected)", review["adjudicated"]),
    ]
    return [
        "<h2>Review</h2>",
        _table([{"list": name, "items": figures.count(n)} for name, n in lists]),
    ]


def write_report(out: Path, render: Callable[[], str]) -> Path:
    """Write the HTML ``render`` returns (called once ``out`` is checked); the file appears whole
    or not at all."""
    if out.suffix.lower() not in (".html", ".htm"):
        raise BadInput(f"{out}: the report is HTML; give a file name ending in .html")
    if not out.parent.exists():
        raise BadInput(f"{out.parent}: folder does not exist")
    text = render()
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out
