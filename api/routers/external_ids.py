"""``/v1/members/{member_id}/external-ids``: the member's ids in the club's other systems.

The first brick of the member directory (records/directory.py): a Kisi user id mapped here makes
the Kisi events of that user land on the club's member. Writing needs the ``events:write``
scope (what a mapping changes is which member events are written under) and a key of the whole
tenant (a mapping is tenant-wide: a site-bound key may not move another site's events).
Reading needs ``alerts:read``. External ids are personal data: answered to the tenant's keys,
never logged, erased with the member (``DELETE /v1/members/{id}``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from api.deps import AlertsReader, SessionDep, TenantWriter, not_found, valid_member_id
from plumbing.openapi import problem_response
from plumbing.problems import Problem
from records.directory import (
    SYSTEM_PATTERN,
    ExternalIdTaken,
    delete_external_id,
    external_ids_of,
    set_external_id,
)
from schemas.events import LABEL_PATTERN

router = APIRouter(prefix="/v1/members", tags=["members"])

System = Annotated[
    str,
    Path(
        pattern=SYSTEM_PATTERN,
        description="The other system, in lower case: `kisi` is the one ingest reads today.",
    ),
]


class ExternalIdIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: Annotated[
        str, Field(min_length=1, max_length=128, pattern=LABEL_PATTERN, strict=True)
    ] = Field(description="The member's id in that system (Kisi: the user id, as text).")


class ExternalIds(BaseModel):
    member_id: str
    external_ids: dict[str, str] = Field(description="the member's id in each system")


@router.get("/{member_id}/external-ids", response_model=ExternalIds)
async def get_external_ids(
    member_id: str, principal: AlertsReader, session: SessionDep
) -> ExternalIds:
    """The member's ids in other systems; 404 when none is mapped (as for another tenant's
    member: the answer says nothing of whether the member exists)."""
    ids = await external_ids_of(session, principal.tenant_id, member_id)
    if not ids:
        raise not_found("external id")
    return ExternalIds(member_id=member_id, external_ids=ids)


@router.put(
    "/{member_id}/external-ids/{system}",
    response_model=ExternalIds,
    responses={409: problem_response("The external id already belongs to another member.")},
)
async def put_external_id(
    member_id: str,
    system: System,
    body: ExternalIdIn,
    principal: TenantWriter,
    session: SessionDep,
) -> ExternalIds:
    """Map the member's id in `system` (replacing their previous one there). Kisi events of
    that user are then written under this member, by every ingest replica within 30 seconds;
    events already received keep the member they were written under."""
    valid_member_id(member_id)
    try:
        await set_external_id(session, principal.tenant_id, member_id, system, body.external_id)
        await session.commit()
    except (ExternalIdTaken, IntegrityError):  # IntegrityError: a concurrent PUT won
        await session.rollback()
        raise Problem(
            409,
            "Conflict",
            f"this {system} id belongs to another member: delete it there first",
            type_="conflict",
        ) from None
    ids = await external_ids_of(session, principal.tenant_id, member_id)
    return ExternalIds(member_id=member_id, external_ids=ids)


@router.delete("/{member_id}/external-ids/{system}", response_model=ExternalIds)
async def delete_member_external_id(
    member_id: str, system: System, principal: TenantWriter, session: SessionDep
) -> ExternalIds:
    """Unmap the member's id in `system`: that user's events are no longer this member's."""
    if not await delete_external_id(session, principal.tenant_id, member_id, system):
        raise not_found("external id")
    await session.commit()
    ids = await external_ids_of(session, principal.tenant_id, member_id)
    return ExternalIds(member_id=member_id, external_ids=ids)
