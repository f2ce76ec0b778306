"""The manager's reports page: "Does reaching out work?" (issue 22), the uplift report as a
section of its own for ``api/page/views.py``'s reports page to include (English, like the
rest of that page). Figures from ``api/read/uplift.py``, the same read as ``/v1/uplift``; every
value escaped on the way in.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from api.page.views import e
from api.read.uplift import UpliftRead, read_uplift
from api.uplift_stats import Comparison


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.0f} %"


def _difference(c: Comparison) -> str:
    if c.difference is None or c.interval is None:
        return "—"
    return (
        f"{c.difference * 100:+.0f} ({c.interval.low * 100:+.0f} to {c.interval.high * 100:+.0f})"
    )


def _rows(label: str, rows: list[Comparison]) -> str:
    out = []
    for c in rows:
        out.append(
            f"<tr><th scope=row>{e(label)} {e(c.group or '—')}</th>"
            f"<td>{e(c.contact.episodes)}</td><td>{e(_pct(c.contact.back_share))}</td>"
            f"<td>{e(c.control.episodes)}</td><td>{e(_pct(c.control.back_share))}</td>"
            f"<td>{e(_difference(c))}</td></tr>"
        )
    return "".join(out)


def section(read: UpliftRead) -> str:
    """The section: the verdict in plain words, what it rests on, and the table by group."""
    r = read.report
    o = r.overall
    head = (
        '<section aria-labelledby="uplift-h" class="uplift"><h2 id="uplift-h">'
        "Does reaching out work?</h2>"
    )
    if not read.periods:
        return head + (
            "<p>No control group yet. Hold back a share of new episodes "
            "(<code>lapse holdout set --share 10%</code>) to measure what contact changes: "
            "members nobody reaches, drawn at random, are the only fair comparison.</p>"
            "</section>"
        )
    facts = [
        f"{r.settled} settled episodes (came back, cancelled, or {r.settle_days:g} days passed)",
        f"{r.pending} still within {r.settle_days:g} days",
    ]
    if o.cancelled_difference is not None:
        facts.append(
            f"cancelled: contacted {_pct(o.contact.cancelled_share)}, "
            f"control {_pct(o.control.cancelled_share)}"
        )
    if o.months_kept_per_100 is not None:
        facts.append(f"about {o.months_kept_per_100:.0f} member-months kept per 100 contacted")
    table = (
        '<div class="table-wrap"><table><caption>Came back within '
        f"{e(f'{r.settle_days:g}')} days, contacted against the control group (difference in "
        "members per 100, 95 % interval)</caption><thead><tr><th scope=col>Group</th>"
        "<th scope=col>Contacted</th><th scope=col>Came back</th><th scope=col>Control</th>"
        "<th scope=col>Came back</th><th scope=col>Difference</th></tr></thead><tbody>"
        + _rows("All", [o])
        + _rows("Severity", r.by_severity)
        + _rows("Site", r.by_site)
        + _rows("Action*", r.by_action)
        + _rows("Policy", r.by_policy)
        + _rows("Period from", r.by_period)
        + "</tbody></table></div>"
    )
    return (
        head
        + f'<p class="verdict"><strong>{e(o.verdict)}</strong></p>'
        + "<ul>"
        + "".join(f"<li>{e(f)}</li>" for f in facts)
        + "</ul>"
        + table
        + '<p class="hint">* By action: contacted episodes with that action against the whole '
        "control group; staff choose the action, so only the groups are drawn at random.</p>"
        + "</section>"
    )


async def render(
    session: AsyncSession, tenant_id: str, *, as_of: datetime, site_id: str | None = None
) -> str:
    """The section for one tenant (and site): what the reports page's handler calls."""
    return section(await read_uplift(session, tenant_id, as_of=as_of, site_id=site_id))
