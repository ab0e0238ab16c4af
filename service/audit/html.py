"""report.html: one self-contained page (inline CSS and SVG, no script, nothing fetched) that an imaging
committee reads at a glance, drawn from summary.json alone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

VERDICTS = ("usually-appropriate", "may-be-appropriate", "usually-not-appropriate", "no-criteria-apply")
COLOURS = {
    "usually-appropriate": "#2e7d32",
    "may-be-appropriate": "#f9a825",
    "usually-not-appropriate": "#c62828",
    "no-criteria-apply": "#9e9e9e",
}
LABELS = {
    "usually-appropriate": "usually appropriate",
    "may-be-appropriate": "may be appropriate",
    "usually-not-appropriate": "usually not appropriate",
    "no-criteria-apply": "no criteria apply",
}
MAX_CLINICIANS = 15
MAX_MISSING = 10


def _legend() -> str:
    items = "".join(
        f'<span class="key"><span class="swatch" style="background:{COLOURS[v]}"></span>{LABELS[v]}</span>'
        for v in VERDICTS
    )
    return f'<p class="legend">{items}</p>'


def stacked_bars(title: str, groups: Mapping[str, Mapping[str, int]], *, label_width: int = 150) -> str:
    """Horizontal bars, one per group, split by verdict; each bar's length is its share of the group."""
    if not groups:
        return f"<h3>{escape(title)}</h3><p>No judged orders.</p>"
    row, width = 26, 460
    height = row * len(groups) + 10
    parts = [
        f'<svg role="img" aria-label="{escape(title)}" width="{label_width + width + 70}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for index, (name, counts) in enumerate(groups.items()):
        total = sum(counts.values())
        y = 5 + index * row
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end" class="label">{escape(name)}</text>'
        )
        x = float(label_width)
        for verdict in VERDICTS:
            count = counts.get(verdict, 0)
            if not count:
                continue
            length = width * count / total
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y}" width="{length:.1f}" height="{row - 6}" '
                f'fill="{COLOURS[verdict]}"><title>{escape(name)}: {count} {LABELS[verdict]}</title></rect>'
            )
            x += length
        parts.append(f'<text x="{label_width + width + 6}" y="{y + 15}" class="label">{total}</text>')
    parts.append("</svg>")
    return f"<h3>{escape(title)}</h3>{_legend()}{''.join(parts)}"


def column_chart(title: str, groups: Mapping[str, Mapping[str, int]]) -> str:
    """Vertical stacked columns by month: height is the number of orders."""
    if not groups:
        return f"<h3>{escape(title)}</h3><p>No judged orders.</p>"
    height, column = 220, 34
    peak = max(sum(c.values()) for c in groups.values()) or 1
    width = 40 + column * len(groups)
    parts = [
        f'<svg role="img" aria-label="{escape(title)}" width="{width}" height="{height + 40}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<text x="0" y="12" class="label">{peak}</text>',
        f'<line x1="30" y1="{height}" x2="{width}" y2="{height}" stroke="#555"/>',
    ]
    for index, (month, counts) in enumerate(groups.items()):
        x = 34 + index * column
        y = float(height)
        for verdict in VERDICTS:
            count = counts.get(verdict, 0)
            if not count:
                continue
            size = (height - 20) * count / peak
            y -= size
            parts.append(
                f'<rect class="bar" x="{x}" y="{y:.1f}" width="{column - 6}" height="{size:.1f}" '
                f'fill="{COLOURS[verdict]}"><title>{month}: {count} {LABELS[verdict]}</title></rect>'
            )
        parts.append(
            f'<text x="{x + (column - 6) / 2}" y="{height + 14}" text-anchor="middle" class="small">'
            f"{escape(month[2:])}</text>"
        )
    parts.append("</svg>")
    return f"<h3>{escape(title)}</h3>{_legend()}{''.join(parts)}"


def line_chart(title: str, points: Sequence[tuple[str, float | None, str]]) -> str:
    """A rate (0-100%) over time; `points` are (label, rate or None, tooltip)."""
    usable = [(label, rate, tip) for label, rate, tip in points if rate is not None]
    if not usable:
        return f"<h3>{escape(title)}</h3><p>No patient in the measure's denominator.</p>"
    height, step = 200, 46
    width = 60 + step * len(usable)
    parts = [
        f'<svg role="img" aria-label="{escape(title)}" width="{width}" height="{height + 40}" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    for tick in (0, 25, 50, 75, 100):
        y = height - (height - 20) * tick / 100
        parts.append(f'<line x1="40" y1="{y:.1f}" x2="{width}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="34" y="{y + 4:.1f}" text-anchor="end" class="small">{tick}%</text>')
    coordinates = []
    for index, (label, rate, tip) in enumerate(usable):
        x = 60 + index * step
        y = height - (height - 20) * float(rate or 0)
        coordinates.append(f"{x},{y:.1f}")
        parts.append(
            f'<circle class="point" cx="{x}" cy="{y:.1f}" r="4" fill="#1565c0">'
            f"<title>{escape(tip)}</title></circle>"
        )
        parts.append(
            f'<text x="{x}" y="{height + 14}" text-anchor="middle" class="small">{escape(label)}</text>'
        )
    parts.insert(
        1, f'<polyline points="{" ".join(coordinates)}" fill="none" stroke="#1565c0" stroke-width="2"/>'
    )
    parts.append("</svg>")
    return f"<h3>{escape(title)}</h3>{''.join(parts)}"


def plain_bars(title: str, counts: Mapping[str, int], total: int) -> str:
    if not counts:
        return f"<h3>{escape(title)}</h3><p>Nothing was missing.</p>"
    row, width, label_width = 24, 360, 330
    peak = max(counts.values())
    parts = [
        f'<svg role="img" aria-label="{escape(title)}" width="{label_width + width + 110}" '
        f'height="{row * len(counts) + 10}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for index, (name, count) in enumerate(counts.items()):
        y = 5 + index * row
        length = width * count / peak
        share = f"{100 * count / total:.0f}% of orders" if total else ""
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 14}" text-anchor="end" class="label">{escape(name)}</text>'
            f'<rect class="bar" x="{label_width}" y="{y}" width="{length:.1f}" height="{row - 6}" '
            'fill="#6a1b9a">'
            f"<title>{escape(name)}: {count}</title></rect>"
            f'<text x="{label_width + length + 6:.1f}" y="{y + 14}" class="label">{count} ({share})</text>'
        )
    parts.append("</svg>")
    return f"<h3>{escape(title)}</h3>{''.join(parts)}"


def _missing_label(key: str) -> str:
    kind, _, name = key.partition(":")
    return f"{name} (not checked)" if kind == "unchecked" else name


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}
h3{margin-bottom:.2em}.label{font-size:12px;fill:#222}.small{font-size:10px;fill:#444}
.legend{font-size:12px;margin:.2em 0}.key{margin-right:1em}
.swatch{display:inline-block;width:10px;height:10px;margin-right:4px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
.note{color:#555;font-size:13px}.figure{font-size:1.3em;font-weight:600}
"""


def render(summary: Mapping[str, Any]) -> str:
    orders = summary["orders"]
    measure = summary["measure"]
    total = orders["judged"]
    mix = orders["appropriateness"]
    clinicians = sorted(orders["byOrderer"].items(), key=lambda item: (-sum(item[1].values()), item[0]))
    shown_clinicians = dict(clinicians[:MAX_CLINICIANS])
    missing = dict(list(orders["couldNotBeChecked"].items())[:MAX_MISSING])
    missing_labelled = {_missing_label(key): count for key, count in missing.items()}
    year = measure["year"]
    year_data = measure["years"].get(str(year)) if year is not None else None
    rate_points: list[tuple[str, float | None, str]] = []
    if year_data:
        for month, counts in year_data["byMonth"].items():
            rate = counts["numerator"] / counts["denominator"] if counts["denominator"] else None
            tip = f"{month}: {counts['numerator']} of {counts['denominator']} without imaging"
            rate_points.append((month[5:], rate, tip))
    yearly = [
        (
            name,
            data["rate"],
            f"{name}: {data['numerator']} of {data['denominator']} without imaging",
        )
        for name, data in measure["years"].items()
    ]
    bad = summary["input"]["badInput"]
    not_appropriate = mix.get("usually-not-appropriate", 0)
    share = f"{100 * not_appropriate / total:.0f}%" if total else "n/a"
    measure_rows = [
        (
            name,
            data["initialPopulation"],
            sum(data["exclusions"].values()),
            data["denominator"],
            data["numerator"],
            "n/a" if data["rate"] is None else f"{100 * data['rate']:.1f}%",
            "n/a" if data["imagingRate"] is None else f"{100 * data['imagingRate']:.1f}%",
        )
        for name, data in measure["years"].items()
    ]
    window = summary["window"]
    sections = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Lumbar imaging audit</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Lumbar spine imaging: retrospective audit</h1>",
        f'<p class="note">{escape(summary["rulesTitle"])}, rules version {escape(summary["rulesVersion"])}. '
        f"Orders from {escape(window['from'] or 'the first')} to {escape(window['to'] or 'the last')} "
        f"in the export. Patients: {escape(summary['patientIds'])}.</p>",
        f'<p><span class="figure">{total}</span> lumbar imaging orders judged for '
        f"{summary['patientsWithJudgedOrders']} of {summary['patients']} patients; "
        f'<span class="figure">{share}</span> usually not appropriate. '
        f"{orders['ratingWithheld']} verdicts are provisional (data that could not be checked could change "
        "them).</p>",
        "<h2>Appropriateness (ACR 2021)</h2>",
        stacked_bars("By modality", orders["byModality"], label_width=80),
        column_chart("By month of the order", orders["byMonth"]),
        stacked_bars(
            f"By ordering clinician (the {len(shown_clinicians)} with most orders of {len(clinicians)})",
            shown_clinicians,
        ),
        plain_bars("Most common missing data (what could not be checked)", missing_labelled, total),
        f"<h2>Quality measure: {escape(measure['measure'])} {escape(measure['title'])}</h2>",
        f'<p class="note">{escape(measure["definition"])} (defined in {measure["definitionYear"]}). '
        f"{escape(measure['scoring'])}.</p>",
        _table(
            measure_rows,
            (
                "year",
                "initial population",
                "excluded",
                "denominator",
                "numerator (no imaging)",
                "rate",
                "imaging",
            ),
        ),
        line_chart(f"Rate without imaging within 28 days, by month of diagnosis, {year}", rate_points),
        line_chart("Rate by year", yearly),
        "<h3>What this project does differently from the measure</h3>",
        "<ul>" + "".join(f"<li>{escape(text)}</li>" for text in measure["differences"]) + "</ul>",
        "<h2>Input</h2>",
        f"<p>{summary['input']['lines']} lines in {len(summary['input']['files'])} files; "
        f"<strong>{bad['count']}</strong> unusable lines skipped and listed in {escape(bad['file'])}.</p>",
        _table(sorted(bad["byReason"].items()), ("why", "lines")) if bad["byReason"] else "",
        '<p class="note">Parts of the record the export holds: '
        + escape(", ".join(summary["input"]["suppliedParts"]))
        + (
            f"; read only in part: {escape(', '.join(summary['input']['partsReadInPart']))}"
            if summary["input"]["partsReadInPart"]
            else ""
        )
        + ".</p>",
        "</body></html>",
    ]
    return "\n".join(sections) + "\n"
