"""``labelloop report OUT.html``: the Metrics page as one self-contained HTML file.

Charts are rendered to inline SVG with ``vl-convert`` (no scripts, no network), tables are
plain HTML, and every value from the data is escaped. The file can be mailed or archived.
"""

from __future__ import annotations

import html
import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeling import charts
from labeling.errors import BadInput

if TYPE_CHECKING:
    from labeling.workspace import Workspace

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #1f2937; line-height: 1.45; padding: 0 1rem; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #e5e7eb; }
.sub { color: #6b7280; margin-top: 0; }
.cards { display: grid; grid-template-columns: repeat(5, 1fr); gap: 0.8rem; margin: 1.2rem 0; }
.card { border: 1px solid #e5e7eb; border-radius: 8px; padding: 0.7rem 0.9rem; }
.card .v { font-size: 1.7rem; font-weight: 600; } .card .k { color: #6b7280; font-size: 0.85rem; }
.warn, .ok { padding: 0.6rem 0.9rem; margin: 0.5rem 0; }
.warn { background: #fef3c7; border-left: 4px solid #d97706; }
.ok { background: #dcfce7; border-left: 4px solid #16a34a; }
.note { color: #4b5563; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
.charts figure { margin: 0; } .charts p { color: #6b7280; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.92rem; }
th, td { border-bottom: 1px solid #e5e7eb; padding: 0.3rem 0.7rem; text-align: left; }
th { background: #f9fafb; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _fmt(value: Any, kind: str = "") -> str:
    if value is None:
        return "-"
    if kind == "pct":
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return _e(value)


def _table(rows: list[dict[str, Any]], kinds: dict[str, str] | None = None) -> str:
    if not rows:
        return '<p class="note">Nothing yet.</p>'
    kinds = kinds or {}
    head = "".join(f"<th>{_e(k)}</th>" for k in rows[0])
    body = []
    for row in rows:
        cells = []
        for key, value in row.items():
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            cls = ' class="n"' if numeric else ""
            cells.append(f"<td{cls}>{_fmt(value, kinds.get(key, ''))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _svg(chart: Any) -> str:
    import vl_convert

    return str(vl_convert.vegalite_to_svg(chart.to_json()))


def render_html(ws: Workspace, *, summary: dict[str, Any] | None = None) -> str:
    """The report for a workspace, as a string of HTML."""
    status = ws.status()
    summary = summary if summary is not None else ws.metrics()
    cover = summary["coverage"]
    quality = summary["quality"]
    model = summary["model"]
    promoted = next((r for r in model["rounds"] if r["round"] == model["promoted"]), None)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>labelloop report: {_e(status['workspace'])}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>labelloop report: {_e(status['workspace'])}</h1>",
        f"<p class='sub'>Generated {now}. Labels: {_e(', '.join(status['labels']))}. "
        f"{status['items']['pool']:,} pool items, {status['items']['gold']:,} gold items, "
        f"{status['annotators']:,} annotators, {status['rounds']:,} rounds.</p>",
    ]
    cards = [
        ("Labelled by people", _fmt(cover["human"], "pct")),
        ("Covered, people or weak", _fmt(cover["combined"], "pct")),
        ("Accuracy on gold checks", _fmt(quality["gold"]["accuracy"], "pct")),
        ("Krippendorff's alpha", _fmt(quality["agreement"]["alpha"])),
        ("Model macro-F1", _fmt(promoted["macro_f1"] if promoted else None)),
    ]
    parts.append(
        "<div class='cards'>"
        + "".join(
            f"<div class='card'><div class='v'>{v}</div><div class='k'>{_e(k)}</div></div>"
            for k, v in cards
        )
        + "</div>"
    )
    for report in summary["drift"]:
        if report.get("drifted"):
            parts.append(
                f"<div class='warn'>Drift in import {_e(report['batch'])} "
                f"({_e(report['source'])}): {_e(report['message'])}</div>"
            )
    stop = summary["stopping"]
    kind = "ok" if stop["stop"] else "note"
    parts.append(f"<div class='{kind}'>Stopping hint: {_e(stop['message'])}</div>")

    parts.append("<h2>Charts</h2><div class='charts'>")
    for name, chart in charts.all_charts(summary).items():
        title = name.replace("_", " ")
        if chart is None:
            parts.append(f"<figure><p>{_e(title.capitalize())}: not enough data yet.</p></figure>")
        else:
            parts.append(f"<figure>{_svg(chart)}</figure>")
    parts.append("</div>")

    parts.append("<h2>Coverage</h2>")
    parts.append(
        _table(
            [
                {"source": k, "items": cover["counts"][k], "share of pool": cover[k]}
                for k in ("human", "lf", "weak", "combined")
            ],
            {"share of pool": "pct"},
        )
    )
    parts.append(
        _table(
            [{"class": label, **v} for label, v in cover["per_class"].items()],
            {"human": "pct", "weak": "pct", "combined": "pct"},
        )
    )

    parts.append("<h2>Annotators</h2>")
    speed = summary["throughput"]
    gold = quality["gold"]["annotators"]
    parts.append(
        _table(
            [
                {
                    "annotator": name,
                    "labels": speed.get(name, {}).get("labels", 0),
                    "labels per hour": speed.get(name, {}).get("labels_per_hour"),
                    "median s per item": speed.get(name, {}).get("median_seconds"),
                    "skip rate": speed.get(name, {}).get("skip_rate"),
                    "gold answered": gold.get(name, {}).get("n", 0),
                    "gold accuracy": gold.get(name, {}).get("accuracy"),
                }
                for name in sorted(set(speed) | set(gold))
            ],
            {"skip rate": "pct", "gold accuracy": "pct"},
        )
    )
    agreement = quality["agreement"]
    parts.append(
        f"<h2>Agreement</h2><p>Krippendorff's alpha {_fmt(agreement['alpha'])} over "
        f"{agreement['alpha_items']:,} items with two or more answers.</p>"
    )
    parts.append(
        _table(
            [
                {"annotator": p["a"], "with": p["b"], "shared items": p["n"], "kappa": p["kappa"]}
                for p in agreement["pairs"]
            ]
        )
    )
    review = quality["review"]
    parts.append("<h2>Review</h2>")
    parts.append(
        _table(
            [
                {"list": "people disagree", "items": review["counts"]["disagreement"]},
                {"list": "confident model disagrees", "items": review["counts"]["model"]},
                {"list": "weak label disagrees", "items": review["counts"]["weak"]},
                {
                    "list": "likely label errors (cleanlab)",
                    "items": review["counts"]["likely_error"],
                },
                {"list": "adjudicated by a lead", "items": review["adjudicated"]},
            ]
        )
    )
    parts.append("<h2>Rounds</h2>")
    parts.append(
        _table(
            [
                {
                    "round": r["round"],
                    "promoted": "yes" if r["promoted"] else "",
                    "human labels": r["n_human"],
                    "weak labels": r["n_weak"],
                    "evaluated on": r["evaluation"],
                    "accuracy": r["accuracy"],
                    "macro-F1": r["macro_f1"],
                }
                for r in reversed(model["rounds"])
            ]
        )
    )
    parts.append(
        "<h2>Raw numbers</h2><details><summary>status --json metrics</summary><pre>"
        + _e(json.dumps(summary, indent=1, default=str))
        + "</pre></details>"
    )
    parts.append(
        f"<p class='sub'>labelloop on Python {_e(platform.python_version())}.</p></body></html>"
    )
    return "\n".join(parts)


def write_report(ws: Workspace, out: Path) -> Path:
    """Write the report; the file appears whole or not at all."""
    if out.suffix.lower() not in (".html", ".htm"):
        raise BadInput(f"{out}: the report is HTML; give a file name ending in .html")
    if not out.parent.exists():
        raise BadInput(f"{out.parent}: folder does not exist")
    text = render_html(ws)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out
