"""``/v1/sites``: a tenant's clubs and their IANA time zones.

Device timestamps carry their own UTC offset and are trusted as sent, so ingest does not need
the zone to place an event in time. The zone is stored now for what needs local time later
(opening hours, "today" for the front desk, local-day visit counts). Managing sites needs an
``admin`` key; a key bound to a site sees and changes only that site.
"""

from __future__ import annotations

import functools
import importlib.resources
import os
import zoneinfo
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ingest.deps import AdminDep, StateDep
from plumbing.openapi import problem_response
from plumbing.problems import Problem
from records.tables import Site
from schemas.events import ID_PATTERN, LABEL_PATTERN, addressable

# The contract's id grammar (schemas.events.Id): a site stored here is one events can name.
SiteId = Annotated[
    str,
    Path(min_length=1, max_length=128, pattern=ID_PATTERN, description="The club's id."),
    AfterValidator(addressable),
]
# Zone names of the IANA database that name no place: ``Factory`` (its abbreviation is
# "-00", "local time zone must be set") and the files tz installs beside the zones.
_NOT_A_PLACE = frozenset(("Factory", "localtime", "posixrules", "leapseconds", "leap-seconds"))


def _tz_file(name: str) -> str | None:
    """The text of one of the tz database's own files (zone1970.tab, tzdata.zi), if present."""
    for root in zoneinfo.TZPATH:
        path = os.path.join(root, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                return f.read()
    try:  # the tzdata package, where the system has no tz database
        return (importlib.resources.files("tzdata.zoneinfo") / name).read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return None


@functools.cache
def time_zones() -> frozenset[str]:
    """The canonical IANA zone names: the zones of ``zone1970.tab`` and ``zone.tab`` (one per
    place: ``Europe/Berlin``, ``America/Argentina/Cordoba``), and ``UTC``.

    Not every name the machine can load: ``localtime`` is this machine's own zone (a site
    would change zone with the host), ``Factory`` is no place, ``posix/…`` and ``right/…`` are
    copies (``right/`` counts leap seconds, which no club clock does), and a link
    (``Asia/Calcutta``, ``US/Eastern``) is refused with its zone's name so one site has one
    spelling. Without the tables (a minimal image) every loadable name but those is accepted.
    """
    loadable = zoneinfo.available_timezones()
    names = {"UTC"}
    for table in ("zone1970.tab", "zone.tab"):
        for line in (_tz_file(table) or "").splitlines():
            fields = line.split("\t")
            if not line.startswith("#") and len(fields) >= 3:
                names.add(fields[2])
    if len(names) == 1:
        names = {
            n
            for n in loadable
            if ("/" in n and not n.startswith(("posix/", "right/"))) or n == "UTC"
        }
    return frozenset(n for n in names & loadable if n not in _NOT_A_PLACE)


@functools.cache
def zone_links() -> dict[str, str]:
    """Link name -> zone name, from the tz database's ``tzdata.zi`` (empty without it)."""
    links = {}
    for line in (_tz_file("tzdata.zi") or "").splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] == "L":
            links[fields[2]] = fields[1]
    return links


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    time_zone: str = Field(max_length=64, description="IANA name, e.g. `Europe/Berlin`.")
    name: str = Field(default="", max_length=200, pattern=LABEL_PATTERN)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value in time_zones():
            return value
        target = zone_links().get(value)
        if value == "Etc/UTC" or target == "Etc/UTC":
            target = "UTC"  # the one spelling of UTC accepted (tz's zone is Etc/UTC)
        if target in time_zones():
            raise ValueError(f"{value} is an alias: send its IANA zone name, {target}")
        raise ValueError("not a canonical IANA time zone name (like Europe/Berlin)")


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


_doc = problem_response


router = APIRouter(
    prefix="/v1/sites",
    tags=["sites"],
    responses={
        401: _doc("Missing, unknown or revoked API key."),
        403: _doc("The key lacks `admin`, or is bound to another site."),
        422: _doc("Invalid site id, time zone or name."),
    },
)


@router.put(
    "/{site_id}",
    response_model=SiteOut,
    status_code=200,
    responses={
        201: {"description": "Created.", "model": SiteOut},
        409: problem_response("The site changed concurrently; retry."),
    },
)
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
