"""A tenant's sites as the api reads them: which the caller may choose, their time zones and
names (``lapse sites``; a site seen only on events has neither and is shown by its id).
"""

from __future__ import annotations

from sqlalchemy import select, union
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import CompoundSelect

from records.api_keys import Principal
from records.tables import AlertRow, MemberStateRow, Site


async def sites(session: AsyncSession, principal: Principal) -> list[str]:
    """The tenant's sites: configured ones, and any seen on members or alerts."""
    if principal.site_id is not None:
        return [principal.site_id]
    t = principal.tenant_id
    query: CompoundSelect[str | None] = union(
        select(Site.site_id).where(Site.tenant_id == t),
        select(MemberStateRow.site_id).where(
            MemberStateRow.tenant_id == t, MemberStateRow.site_id.is_not(None)
        ),
        select(AlertRow.site_id).where(AlertRow.tenant_id == t, AlertRow.site_id.is_not(None)),
    )
    return sorted({site for (site,) in await session.execute(query) if site})


async def site_zones(session: AsyncSession, tenant_id: str) -> dict[str, str]:
    rows = await session.execute(
        select(Site.site_id, Site.time_zone).where(Site.tenant_id == tenant_id)
    )
    return {site: zone for site, zone in rows}


async def site_names(session: AsyncSession, tenant_id: str) -> dict[str, str]:
    """The tenant's configured site names by site id (``lapse sites``; a site seen only on
    events has none and is shown by its id)."""
    rows = await session.execute(select(Site.site_id, Site.name).where(Site.tenant_id == tenant_id))
    return {site: name for site, name in rows if name}
