"""QA reports: ``report.csv`` (one row per case and label), a self-contained ``report.html``
and ``report.json`` (the run: inputs, options, date, version).

The HTML has no external resources: plots are inline SVG drawn here, so the report opens
anywhere and can be mailed as one file. It shows the run's inputs above the table. The CSV
stays a plain table (other tools read it by column name); its ``slice`` column lists, in the
order of ``flags``, the slice (display axis 0) each flag points at.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from napari_medseg import __version__
from napari_medseg.core.atomic import write_text
from napari_medseg.review.qa import CaseQA, QAOptions

COLUMNS = (
    "case",
    "label",
    "name",
    "dice",
    "iou",
    "hd95_mm",
    "assd_mm",
    "volume_ml_mask",
    "volume_ml_reference",
    "flags",
    "slice",
)
METRICS = ("dice", "iou", "hd95_mm", "assd_mm", "volume_ml_mask", "volume_ml_reference")
NAN = float("nan")
FEW_VALUES = 10  # up to this many values are drawn as dots, not as a histogram


def report_rows(results: list[CaseQA]) -> list[dict]:
    """One row per case and label; whole-mask flags repeat on each label of the case."""
    rows = []
    for res in results:
        by_label = {m.label: m for m in res.metrics}
        for label in res.labels or [None]:
            m = by_label.get(label)
            row = {
                "case": res.case,
                "label": "" if label is None else label,
                "name": res.names.get(label, f"label_{label}") if label is not None else "",
            }
            row.update({k: getattr(m, k) if m is not None else NAN for k in METRICS})
            flags = res.flags_for(label)
            row["flags"] = ";".join(f.name for f in flags)
            slices = ["" if f.slice_index is None else str(f.slice_index) for f in flags]
            row["slice"] = ";".join(slices) if any(slices) else ""
            rows.append(row)
    return rows


def _fmt(value) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(row[k]) for k in COLUMNS})
    return buf.getvalue()


def worst_first(rows: list[dict]) -> list[dict]:
    """Rows ordered by lowest Dice (no Dice counts as worst), then by most flags."""

    def key(row):
        dice = row["dice"]
        return (-1.0 if math.isnan(dice) else dice, -len([f for f in row["flags"].split(";") if f]))

    return sorted(rows, key=key)


def svg_values(values: list[float], title: str, width: int = 320, height: int = 160) -> str:
    """An inline SVG of the finite ``values``: each value as a labelled dot when there are
    few (a histogram of one or two values says nothing), else a histogram with about
    sqrt(n) bins."""
    vals = [v for v in values if isinstance(v, float | int) and math.isfinite(v)]
    esc = html.escape(title)
    if not vals:
        text = f'<text x="10" y="20">{esc}: no values</text>'
        return f'<svg width="{width}" height="{height}">{text}</svg>'
    lo, hi = min(vals), max(vals)
    span = (hi - lo) or 1.0
    head = f'<text x="10" y="14" font-size="12">{esc} (n={len(vals)})</text>'
    axis = (
        f'<text x="10" y="{height - 6}" font-size="10">{lo:.3g}</text>'
        f'<text x="{width - 10}" y="{height - 6}" font-size="10" text-anchor="end">'
        f"{hi:.3g}</text>"
    )
    if len(vals) <= FEW_VALUES:
        x0, plot_w, mid = 20, width - 40, height / 2
        marks = "".join(
            f'<circle cx="{x0 + (v - lo) / span * plot_w:.1f}" cy="{mid:.1f}" r="5" '
            f'fill="#3b7dd8"><title>{v:.4g}</title></circle>'
            f'<text x="{x0 + (v - lo) / span * plot_w:.1f}" y="{mid - 10 - 12 * (i % 3):.1f}" '
            f'font-size="10" text-anchor="middle">{v:.3g}</text>'
            for i, v in enumerate(sorted(vals))
        )
        line = f'<line x1="{x0}" y1="{mid}" x2="{x0 + plot_w}" y2="{mid}" stroke="#999"/>'
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'class="plot">{head}{line}{marks}{axis}</svg>'
        )
    bins = max(5, min(20, round(math.sqrt(len(vals)))))
    counts = [0] * bins
    for v in vals:
        counts[min(bins - 1, int((v - lo) / span * bins))] += 1
    top, pad, bw = max(counts), 24, (width - 20) / bins
    bars = "".join(
        f'<rect x="{10 + i * bw:.1f}" y="{height - pad - c / top * (height - 2 * pad):.1f}" '
        f'width="{bw - 1:.1f}" '
        f'height="{c / top * (height - 2 * pad):.1f}" fill="#3b7dd8"><title>{c}</title></rect>'
        for i, c in enumerate(counts)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="plot">'
        f"{head}{bars}{axis}</svg>"
    )


def svg_flag_counts(rows: list[dict], width: int = 320) -> str:
    counts: dict[str, int] = {}
    for row in rows:
        for flag in filter(None, row["flags"].split(";")):
            counts[flag] = counts.get(flag, 0) + 1
    if not counts:
        return '<svg width="320" height="30"><text x="10" y="20">no flags</text></svg>'
    top, height = max(counts.values()), 20 * len(counts) + 24
    bars = "".join(
        f'<text x="4" y="{30 + i * 20}" font-size="11">{html.escape(name)}</text>'
        f'<rect x="130" y="{19 + i * 20}" width="{c / top * (width - 170):.1f}" height="14" '
        'fill="#d8573b"/>'
        f'<text x="{136 + c / top * (width - 170):.1f}" y="{30 + i * 20}" font-size="11">{c}</text>'
        for i, (name, c) in enumerate(sorted(counts.items(), key=lambda kv: -kv[1]))
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="plot">'
        f'<text x="4" y="12" font-size="12">flags (rows)</text>{bars}</svg>'
    )


def run_info(
    dataset: str | Path,
    masks: str | Path,
    reference: str | Path | None,
    options: QAOptions | None = None,
) -> dict:
    """What produced a report: inputs, thresholds, date (UTC) and napari-medseg version."""
    return {
        "dataset": str(Path(dataset).resolve()),
        "masks": str(Path(masks).resolve()),
        "reference": str(Path(reference).resolve()) if reference else "the dataset's own masks",
        "options": {
            k: sorted(v) if isinstance(v, frozenset) else v
            for k, v in asdict(options or QAOptions()).items()
        },
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "version": f"napari-medseg {__version__}",
    }


def _run_html(run: dict | None) -> str:
    if not run:
        return ""
    cells = {k: json.dumps(v) if isinstance(v, dict) else str(v) for k, v in run.items()}
    items = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in cells.items()
    )
    return f'<table class="run">{items}</table>'


def to_html(rows: list[dict], title: str = "Mask QA", run: dict | None = None) -> str:
    plots = [svg_values([r[k] for r in rows], k) for k in ("dice", "hd95_mm", "assd_mm")]
    plots.append(svg_flag_counts(rows))
    head = "".join(f"<th>{c}</th>" for c in COLUMNS)
    body = "".join(
        "<tr"
        + (' class="flagged"' if r["flags"] else "")
        + ">"
        + "".join(f"<td>{html.escape(_fmt(r[c]))}</td>" for c in COLUMNS)
        + "</tr>"
        for r in worst_first(rows)
    )
    cases = len({r["case"] for r in rows})
    flagged = len({r["case"] for r in rows if r["flags"]})
    style = (
        "body{font-family:sans-serif;margin:20px} table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
        "tr.flagged{background:#fde8e4} table.run{margin-bottom:12px}"
        "table.run th,table.run td{text-align:left}"
        ".plot{border:1px solid #eee;margin:4px}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{_run_html(run)}"
        f"<p>{cases} cases, {flagged} flagged, {len(rows)} case/label rows. Worst cases first.</p>"
        f"<div>{''.join(plots)}</div><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        "</body></html>"
    )


def write_report(
    results: list[CaseQA], out: str | Path, title: str = "Mask QA", run: dict | None = None
) -> Path:
    """Write ``report.csv``, ``report.html`` and (given ``run``, see :func:`run_info`)
    ``report.json`` into ``out``, each file atomically."""
    rows = report_rows(results)
    out = Path(out)
    write_text(out / "report.csv", to_csv(rows))
    write_text(out / "report.html", to_html(rows, title, run))
    if run:
        summary = {
            **run,
            "cases": len(results),
            "flagged": sorted(r.case for r in results if r.flags),
        }
        write_text(out / "report.json", json.dumps(summary, indent=2) + "\n")
    return out
