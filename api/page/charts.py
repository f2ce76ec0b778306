"""The reports' charts as inline SVG, each with the same figures as a table beside it.

Pure: rows in, markup out, in the person's language. The charts are drawn in percentages
of their width (no ``viewBox`` scaling), so text keeps its size on a phone and a label never
runs past the edge; in a right-to-left page they are mirrored (bars grow from the right,
time runs from right to left), with ``direction`` set on the ``<svg>`` so each label's
start is on the reading side.

Bars of "which actions bring members back" show the recovery rate (recovered / closed
episodes); an action with no closed episode yet gets no bar and says so, rather than a bar
of zero that reads as "never works".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from html import escape
from typing import Protocol
from zoneinfo import ZoneInfo

from api.page import i18n
from api.page.i18n import t
from api.read.trends import MEASURES, Measure, WeekTrend

ROW_H = 58
# The longest bar, in percent of the chart's width: room is left for its value ("100%").
BAR_MAX = 84.0
TREND_H = 128
TREND_BASE = 100  # the baseline's y: columns grow up from it, week labels below it
TREND_TOP = 22


class SummaryRow(Protocol):
    @property
    def action(self) -> str: ...
    @property
    def episodes(self) -> int: ...
    @property
    def recovered(self) -> int: ...
    @property
    def churned(self) -> int: ...
    @property
    def still_open(self) -> int: ...
    @property
    def recovery_rate(self) -> float | None: ...
    @property
    def median_days_to_return(self) -> float | None: ...


def e(value: object) -> str:
    return escape(str(value), quote=True)


def bdi_t(lang: str, key: str, **values: object) -> str:
    """``t(lang, key, ...)`` as markup, each value in ``<bdi>``: a date or figure keeps its
    own order inside a sentence of the other direction ("5 בדצמבר 2026", "12 alerts")."""
    marks = {k: f"\0{i}\0" for i, k in enumerate(values)}
    text = e(t(lang, key, **marks))
    for i, k in enumerate(values):
        text = text.replace(f"\0{i}\0", f"<bdi>{e(values[k])}</bdi>")
    return text


def action_name(kind: str, lang: str = "en") -> str:
    known = ("call", "message", "incentive", "other", "none")
    return t(lang, f"rep.action.{kind}") if kind in known else kind


def pct(value: float) -> str:
    return f"{value:.0%}"


def rate_text(row: SummaryRow, lang: str = "en") -> str:
    """``6 of 8 came back``; ``no closed episode yet`` when none has closed."""
    if row.recovery_rate is None:
        return t(lang, "rep.out.no_closed")
    return t(lang, "rep.out.came_back_of", n=row.recovered, closed=row.recovered + row.churned)


def _x(percent: float, rtl: bool) -> str:
    """A horizontal position in percent of the width, mirrored in a right-to-left page."""
    return f"{100 - percent if rtl else percent:g}%"


def _svg(svg_id: str, height: int, title: str, desc: str, body: str, *, rtl: bool, cls: str) -> str:
    return (
        f'<svg id="{svg_id}" class="{cls}" width="100%" height="{height}" role="img" '
        f'direction="{"rtl" if rtl else "ltr"}" aria-labelledby="{svg_id}-title {svg_id}-desc">'
        f'<title id="{svg_id}-title">{e(title)}</title>'
        f'<desc id="{svg_id}-desc">{e(desc)}</desc>{body}</svg>'
    )


def outcome_bars(rows: Sequence[SummaryRow], *, lang: str = "en", svg_id: str = "outcomes") -> str:
    """One row per action: its name and "n of m came back" on a line of their own, then the
    bar (the share of closed episodes where the member came back) and that share."""
    rtl = i18n.direction(lang) == "rtl"
    parts: list[str] = []
    for i, row in enumerate(rows):
        y = i * ROW_H
        parts.append(
            f'<text class="ch-name" x="{_x(0, rtl)}" y="{y + 18}">'
            f"{e(action_name(row.action, lang))} · {e(rate_text(row, lang))}</text>"
        )
        if row.recovery_rate is not None:
            w = max(round(row.recovery_rate * BAR_MAX, 2), 0.5)
            x = _x(w, rtl) if rtl else "0%"
            parts.append(
                f'<rect class="ch-bar ch-{e(row.action)}" x="{x}" y="{y + 26}" '
                f'width="{w:g}%" height="22"/>'
                f'<text class="ch-value" x="{_x(w, rtl)}" dx="{-6 if rtl else 6}" y="{y + 43}">'
                f"{pct(row.recovery_rate)}</text>"
            )
    desc = "; ".join(
        f"{action_name(r.action, lang)}: "
        + (rate_text(r, lang) if r.recovery_rate is None else f"{pct(r.recovery_rate)}, ")
        + ("" if r.recovery_rate is None else rate_text(r, lang))
        for r in rows
    )
    return _svg(
        svg_id,
        ROW_H * len(rows),
        t(lang, "rep.out.chart"),
        desc + ".",
        "".join(parts),
        rtl=rtl,
        cls="bars",
    )


def outcome_table(rows: Sequence[SummaryRow], lang: str = "en") -> str:
    body = []
    for r in rows:
        rate = "–" if r.recovery_rate is None else pct(r.recovery_rate)
        median = "–" if r.median_days_to_return is None else f"{r.median_days_to_return:.1f}"
        body.append(
            f'<tr><th scope="row">{e(action_name(r.action, lang))}</th>'
            f"<td>{r.episodes}</td><td>{r.recovered}</td><td>{r.churned}</td>"
            f"<td>{r.still_open}</td><td>{rate}</td><td>{median}</td></tr>"
        )
    head = "".join(
        f'<th scope="col">{e(t(lang, f"rep.out.{k}"))}</th>'
        for k in ("action", "episodes", "recovered", "churned", "open", "rate", "median")
    )
    return table_wrap(
        t(lang, "rep.out.caption"),
        f'<table class="outcomes"><caption>{e(t(lang, "rep.out.caption"))}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>",
        lang,
    )


def table_wrap(caption: str, table: str, lang: str = "en") -> str:
    """A table that scrolls sideways inside its own box on a narrow screen (the page does
    not): a named, focusable region so a keyboard can scroll it too."""
    label = e(t(lang, "rep.table_region", caption=caption))
    return f'<div class="table-wrap" role="region" tabindex="0" aria-label="{label}">{table}</div>'


def week_label(monday: date) -> str:
    """``30/11``: day and month, read the same in English and Hebrew."""
    return f"{monday.day}/{monday.month}"


def trend_chart(trends: Sequence[WeekTrend], what: Measure, *, lang: str = "en") -> str:
    """One measure week by week as columns (oldest first in reading order), the count above
    each column, every other week's date below."""
    rtl = i18n.direction(lang) == "rtl"
    n = max(len(trends), 1)
    slot = 100 / n
    top = max((w.count(what) for w in trends), default=0) or 1
    parts = [
        f'<line class="ch-axis" x1="0%" y1="{TREND_BASE}" x2="100%" y2="{TREND_BASE}"/>',
    ]
    for i, week in enumerate(trends):
        v = week.count(what)
        h = round((TREND_BASE - TREND_TOP) * v / top, 1)
        left = i * slot + slot * 0.18
        width = slot * 0.64
        x = 100 - left - width if rtl else left
        centre = _x((i + 0.5) * slot, rtl)
        if v:
            parts.append(
                f'<rect class="tr-bar tr-{what}" x="{x:.3f}%" y="{TREND_BASE - h}" '
                f'width="{width:.3f}%" height="{h}"/>'
            )
        parts.append(
            f'<text class="tr-value" x="{centre}" y="{TREND_BASE - h - 5}" '
            f'text-anchor="middle">{v}</text>'
        )
        if (len(trends) - 1 - i) % 2 == 0:
            parts.append(
                f'<text class="tr-week" x="{centre}" y="{TREND_BASE + 18}" '
                f'text-anchor="middle">{week_label(week.monday)}</text>'
            )
    measure = t(lang, f"rep.measure.{what}")
    values = "; ".join(
        t(lang, "rep.trends.value", date=week_label(w.monday), n=w.count(what)) for w in trends
    )
    return _svg(
        f"trend-{what}",
        TREND_H,
        t(lang, "rep.trends.chart", measure=measure),
        t(lang, "rep.trends.desc", measure=measure, values=values),
        "".join(parts),
        rtl=rtl,
        cls="trend",
    )


def trend_charts(trends: Sequence[WeekTrend], lang: str = "en") -> str:
    """The four measures as small charts side by side (one above the other on a phone)."""
    return "".join(
        f'<figure class="trend-one"><figcaption class="trend-name">'
        f'<span class="key tr-key-{m}" aria-hidden="true"></span>'
        f"{e(t(lang, f'rep.measure.{m}'))}</figcaption>{trend_chart(trends, m, lang=lang)}</figure>"
        for m in MEASURES
    )


def trend_table(trends: Sequence[WeekTrend], lang: str = "en") -> str:
    """The same figures as the charts, a week a row (newest first)."""
    utc = ZoneInfo("UTC")
    rows = []
    for w in reversed(trends):
        # Day and month (the ISO week beside it carries the year): fits a phone's column.
        when = i18n.short_date(lang, datetime.combine(w.monday, datetime.min.time(), utc), utc)
        cells = "".join(f"<td>{w.count(m)}</td>" for m in MEASURES)
        rows.append(
            f'<tr><th scope="row"><bdi>{e(when)}</bdi> <span class="iso">'
            f'<bdi dir="ltr">{w.iso}</bdi></span></th>{cells}</tr>'
        )
    head = f'<th scope="col">{e(t(lang, "rep.trends.week"))}</th>' + "".join(
        f'<th scope="col">{e(t(lang, f"rep.measure.{m}"))}</th>' for m in MEASURES
    )
    caption = t(lang, "rep.trends.caption")
    return table_wrap(
        caption,
        f'<table class="trends"><caption>{e(caption)}</caption><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>",
        lang,
    )
