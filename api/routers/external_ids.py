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

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError

from api.deps import AlertsReader, SessionDep, not_found, require
from plumbing.openapi import problem_response
from plumbing.problems import Problem
from records.api_keys import Principal
from records.directory import (
    SYSTEM_PATTERN,
    ExternalIdTaken,
    delete_external_id,
    external_ids_of,
    set_external_id,
)
from schemas.events import LABEL_PATTERN, MemberId, pattern_message

router = APIRouter(prefix="/v1/members", tags=["members"])
Writer = Annotated[Principal, Depends(require("events:write"))]

System = Annotated[
    str,
    Path(
        pattern=SYSTEM_PATTERN,
        description="The other system, in lower case: `kisi` is the one ingest reads today.",
    ),
]
_MEMBER: TypeAdapter[str] = TypeAdapter(MemberId)


class ExternalIdIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: Annotated[
        str, Field(min_length=1, max_length=128, pattern=LABEL_PATTERN, strict=True)
    ] = Field(description="The member's id in that system (Kisi: the user id, as text).")


class ExternalIds(BaseModel):
    member_id: str
    external_ids: dict[str, str] = Field(description="the member's id in each system")


def _tenant_wide(principal: Principal) -> None:
    if principal.site_id is not None:
        raise Problem(
            403,
            "Forbidden",
            "external ids are the whole tenant's: use a key not bound to a site",
            type_="forbidden",
        )


def _valid_member(member_id: str) -> None:
    """A mapping to an id the contract refuses could route events to no addressable member."""
    try:
        _MEMBER.validate_python(member_id)
    except ValidationError:
        message = pattern_message("member_id") or "not a valid member id"
        raise Problem(
            422,
            "Invalid request",
            "invalid field(s): member_id",
            type_="validation",
            errors=[{"pointer": "/member_id", "field": "member_id", "message": message}],
        ) from None


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
    principal: Writer,
    session: SessionDep,
) -> ExternalIds:
    """Map the member's id in `system` (replacing their previous one there). Kisi events of
    that user are then written under this member, by every ingest replica within 30 seconds;
    events already received keep the member they were written under."""
    _tenant_wide(principal)
    _valid_member(member_id)
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
    member_id: str, system: System, principal: Writer, session: SessionDep
) -> ExternalIds:
    """Unmap the member's id in `system`: that user's events are no longer this member's."""
    _tenant_wide(principal)
    if not await delete_external_id(session, principal.tenant_id, member_id, system):
        raise not_found("external id")
    await session.commit()
    ids = await external_ids_of(session, principal.tenant_id, member_id)
    return ExternalIds(member_id=member_id, external_ids=ids)
