"""The manager's reports page: trends per week, which actions bring members back, and the
latest calibration in plain words (statistics behind a fold), in the person's language.

Pure markup from what the route read (``api.read.reports``, ``api.read.sites``,
``api.read.calibration``); the layout, site picker and escaping are the staff page's own
(``api.page.views``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import quote
from zoneinfo import ZoneInfo

from api.page import calibration, charts, i18n
from api.page.charts import bdi_t, e
from api.page.i18n import t
from api.page.views import BASE, layout, site_picker
from api.read.outcomes import ActionStats
from api.read.trends import MEASURES, WeekTrend
from records.tables import CalibrationReport


def _with_command(lang: str, key: str) -> str:
    """A sentence naming the command that makes the report, the command as code."""
    return e(t(lang, key, command="\0")).replace("\0", '<code dir="ltr">lapse calibrate</code>')


def trends_section(trends: Sequence[WeekTrend], zone_name: str, lang: str) -> str:
    hint = bdi_t(
        lang, "rep.trends.hint", weeks=i18n.plural(lang, "week", len(trends)), zone=zone_name
    )
    empty = not any(w.count(m) for w in trends for m in MEASURES)
    note = f'<p class="empty">{e(t(lang, "rep.trends.empty"))}</p>' if empty else ""
    return (
        '<section aria-labelledby="trends-h">'
        f'<h2 id="trends-h">{e(t(lang, "rep.trends.h2"))}</h2>'
        f'<p class="hint">{hint}</p>{note}'
        f'<div class="chart-wrap trends-wrap">{charts.trend_charts(trends, lang)}</div>'
        f"{charts.trend_table(trends, lang)}</section>"
    )


def outcomes_section(summary: Sequence[ActionStats], lang: str) -> str:
    if any(r.episodes for r in summary):
        body = (
            f'<figure class="chart-wrap">{charts.outcome_bars(summary, lang=lang)}</figure>'
            f"{charts.outcome_table(summary, lang)}"
        )
    else:
        body = f"<p>{e(t(lang, 'rep.out.none'))}</p>"
    return (
        '<section aria-labelledby="outcomes-h">'
        f'<h2 id="outcomes-h">{e(t(lang, "rep.out.h2"))}</h2>'
        f'<p class="hint">{e(t(lang, "rep.out.hint"))}</p>{body}</section>'
    )


def calibration_section(report: CalibrationReport | None, tz: ZoneInfo, lang: str) -> str:
    head = f'<h2 id="calibration-h">{e(t(lang, "cal.h2"))}</h2>'
    if report is None:
        return (
            f'<section aria-labelledby="calibration-h">{head}'
            f"<p>{_with_command(lang, 'cal.none')}</p></section>"
        )
    made = bdi_t(
        lang,
        "cal.made",
        date=i18n.date_text(lang, report.created_at, tz),
        start=i18n.date_text(lang, report.window_start, tz),
        end=i18n.date_text(lang, report.window_end, tz),
    )
    src = f"{BASE}/reports/calibration/{quote(str(report.id), safe='')}"
    full = f'<p><a href="{e(src)}">{_with_command(lang, "cal.full")}</a></p>'
    facts = calibration.read(report.policy, report.scores)
    if facts is None:
        body = f'<p class="hint">{made}</p><p>{_with_command(lang, "cal.unreadable")}</p>{full}'
    else:
        body = (
            f'<div class="cal-plain">{calibration.plain_words(facts, lang)}</div>'
            f'<p class="hint">{made}</p>{calibration.tested_on(facts, tz, lang)}'
            f'<details class="cal-details"><summary>{e(t(lang, "cal.details"))}</summary>'
            f"{calibration.statistics(facts, tz, lang)}{full}</details>"
        )
    return f'<section aria-labelledby="calibration-h">{head}{body}</section>'


def reports_page(
    summary: Sequence[ActionStats],
    trends: Sequence[WeekTrend],
    report: CalibrationReport | None,
    *,
    zone_name: str,
    tenant: str,
    csrf: str,
    sites: Sequence[str],
    site: str | None,
    fixed_site: bool,
    names: Mapping[str, str],
    assets: str,
    lang: str = "en",
    uplift: str = "",
) -> str:
    """The page; ``uplift``: the markup of "Does reaching out work?" (``api.page.uplift``),
    drawn after which actions bring members back."""
    tz = ZoneInfo(zone_name)
    main = (
        f"<h1>{e(t(lang, 'rep.h1'))}</h1>"
        f"{site_picker(sites, site, BASE + '/reports', fixed_site, lang, names)}"
        f"{trends_section(trends, zone_name, lang)}"
        f"{outcomes_section(summary, lang)}"
        f"{uplift}"
        f"{calibration_section(report, tz, lang)}"
    )
    return layout(
        t(lang, "rep.h1"),
        main,
        tenant=tenant,
        csrf=csrf,
        current="reports",
        assets=assets,
        lang=lang,
    )
