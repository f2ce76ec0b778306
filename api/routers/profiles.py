"""``/v1/members/{member_id}/profile``: the person behind a member id (records/profiles.py).

Writing needs the ``events:write`` scope and a key of the whole tenant, as the member's
external ids do (a profile is the tenant's, not a site's). Reading needs ``alerts:read``.
Profiles are personal data: answered only to the tenant's own keys (another tenant's member is
a 404, as is a member with no profile), never logged, erased with the member
(``DELETE /v1/members/{id}``), never in webhook payloads. Validation errors name the field,
never the value.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AlertsReader, SessionDep, TenantWriter, not_found, valid_member_id
from records.profiles import Profile, ProfileIn, profile_of, profile_of_row, set_profile

router = APIRouter(prefix="/v1/members", tags=["members"])


@router.get("/{member_id}/profile", response_model=Profile)
async def get_profile(member_id: str, principal: AlertsReader, session: SessionDep) -> Profile:
    """The member's profile; 404 when none is set (as for another tenant's member)."""
    profile = await profile_of(session, principal.tenant_id, member_id)
    if profile is None:
        raise not_found("profile")
    return profile


@router.put("/{member_id}/profile", response_model=Profile | None)
async def put_profile(
    member_id: str, body: ProfileIn, principal: TenantWriter, session: SessionDep
) -> Profile | None:
    """Replace the member's profile (a field left out is "not known"). A profile with every
    field null deletes it and answers null. The member need not have visited yet: a CRM may
    send its members before their first visit."""
    valid_member_id(member_id)
    row = await set_profile(session, principal.tenant_id, member_id, body)
    await session.commit()
    return profile_of_row(row) if row is not None else None
