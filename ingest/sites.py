"""``/v1/sites``: a tenant's clubs and their IANA time zones.

Device timestamps carry their own UTC offset and are trusted as sent, so ingest does not need
the zone to place an event in time. The zone is stored now for what needs local time later
(opening hours, "today" for the front desk, local-day visit counts). Managing sites needs an
``admin`` key; a key bound to a site sees and changes only that site.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ingest.deps import AdminDep, StateDep
from lapse import problems
from lapse.db.models import Site
from lapse.problems import Problem

# Like schemas.events.Id, and no control characters (PostgreSQL text refuses NUL).
_ID_PATTERN = r"^[^\s:\x00-\x1f\x7f]+$"
SiteId = Annotated[
    str, Path(min_length=1, max_length=128, pattern=_ID_PATTERN, description="The club's id.")
]


@functools.cache
def time_zones() -> frozenset[str]:
    """The IANA zone names this machine knows (system tzdata or the ``tzdata`` package)."""
    return frozenset(zoneinfo.available_timezones())


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    time_zone: str = Field(max_length=64, description="IANA name, e.g. `Europe/Berlin`.")
    name: str = Field(default="", max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in time_zones():
            raise ValueError("not an IANA time zone name (like Europe/Berlin)")
        return value


class SiteOut(BaseModel):
    site_id: str
    time_zone: str
    name: str
    created_at: datetime


class SiteList(BaseModel):
    sites: list[SiteOut]


def _out(row: Site) -> SiteOut:
    return SiteOut(
        site_id=row.site_id, time_zone=row.time_zone, name=row.name, created_at=row.created_at
    )


def _doc(description: str) -> dict[str, object]:
    return {"description": description, "content": {problems.PROBLEM_JSON: {}}}


router = APIRouter(
    prefix="/v1/sites",
    tags=["sites"],
    responses={
        401: _doc("Missing, unknown or revoked API key."),
        403: _doc("The key lacks `admin`, or is bound to another site."),
        422: _doc("Invalid site id, time zone or name."),
    },
)


@router.put("/{site_id}", response_model=SiteOut, status_code=200)
async def put_site(
    site_id: SiteId, body: SiteIn, principal: AdminDep, state: StateDep, response: Response
) -> SiteOut:
    """Create (201) or update (200) a site with its time zone."""
    if principal.site_id is not None and principal.site_id != site_id:
        raise Problem(403, "Forbidden", "the API key is bound to another site", type_="forbidden")
    for _attempt in range(2):
        async with state.sessions() as session:
            row = await session.get(Site, (principal.tenant_id, site_id))
            if row is None:
                row = Site(
                    tenant_id=principal.tenant_id,
                    site_id=site_id,
                    time_zone=body.time_zone,
                    name=body.name,
                    created_at=state.now(),
                )
                session.add(row)
                response.status_code = 201
            else:
                row.time_zone, row.name = body.time_zone, body.name
                response.status_code = 200
            try:
                await session.commit()
            except IntegrityError:  # created concurrently: update it instead
                continue
            return _out(row)
    raise Problem(409, "Conflict", "the site changed concurrently; retry", type_="conflict")


@router.get("", response_model=SiteList)
async def list_sites(principal: AdminDep, state: StateDep) -> SiteList:
    """The tenant's sites (only its own for a key bound to a site)."""
    query = select(Site).where(Site.tenant_id == principal.tenant_id).order_by(Site.site_id)
    if principal.site_id is not None:
        query = query.where(Site.site_id == principal.site_id)
    async with state.sessions() as session:
        rows = await session.scalars(query)
        return SiteList(sites=[_out(r) for r in rows])
