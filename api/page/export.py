"""The work list as CSV (``/staff/export.csv``), for a spreadsheet or a mail merge.

Written for a person opening it in a spreadsheet: times in the member's site zone (the zone
is a column), and any cell a spreadsheet would read as a formula (starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return) is prefixed with a single quote (OWASP's advice on
CSV injection): a phone number ``+972...`` then reads ``'+972...``, as text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from api.page.listing import last_contact
from api.page.views import ACTION_BUTTONS, zone
from api.read.worklist import WorkItem, Worklist

COLUMNS = (
    "member_id",
    "name",
    "site",
    "site_name",
    "list",
    "severity",
    "days_absent",
    "usual_gap_days",
    "last_visit",
    "last_contact",
    "last_action",
    "phone",
    "email",
    "time_zone",
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def safe(cell: str) -> str:
    """A cell a spreadsheet will not evaluate."""
    return "'" + cell if cell.startswith(_FORMULA) else cell


def _local(value: datetime | None, tz: ZoneInfo) -> str:
    return "" if value is None else value.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _row(
    item: WorkItem, where: str, zones: Mapping[str, str], names: Mapping[str, str]
) -> list[str]:
    m = item.member
    site = m.site_id or ""
    tz = zone(zones.get(site))
    profile = m.profile
    latest = item.actions[-1].action if item.actions else ""
    return [
        m.member_id,
        m.display_name or "",
        site,
        names.get(site, ""),
        where,
        m.severity or "",
        "" if m.days_absent is None else f"{m.days_absent:.1f}",
        "" if m.usual_gap_days is None else f"{m.usual_gap_days:.1f}",
        _local(m.last_visit, tz),
        _local(last_contact(item), tz),
        ACTION_BUTTONS.get(latest, latest),
        (profile.phone or "") if profile else "",
        (profile.email or "") if profile else "",
        str(tz),
    ]


def worklist_csv(work: Worklist, *, zones: Mapping[str, str], names: Mapping[str, str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for where, items in (("to do", work.todo), ("contacted", work.contacted)):
        for item in items:
            writer.writerow([safe(c) for c in _row(item, where, zones, names)])
    return out.getvalue()
