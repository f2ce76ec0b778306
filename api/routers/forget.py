"""``DELETE /v1/members/{id}``: the right to be forgotten (admin scope).

The erasure itself is ``records.erasure.erase`` (shared with ``lapse members forget``); what it
cannot reach at once (events still in Kafka) is bounded by the topics' retention, see
docs/after-they-leave.md.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from api.deps import SessionDep, SettingsDep, not_found, require
from records.api_keys import Principal
from records.erasure import erase

router = APIRouter(prefix="/v1/members", tags=["members"])
Admin = Annotated[Principal, Depends(require("admin"))]


class Erased(BaseModel):
    erased: dict[str, int] = Field(description="rows deleted per table")
    tombstoned: bool = Field(description="replays of the member's events are ignored")


@router.delete("/{member_id}", response_model=Erased)
async def forget_member(
    member_id: str, principal: Admin, session: SessionDep, settings: SettingsDep
) -> Erased:
    if principal.site_id is not None:
        # A site-bound key sees part of a tenant: erasure is tenant-wide, so not for it.
        raise not_found("member")
    counts = await erase(
        session, principal.tenant_id, member_id, settings.forget_pepper.get_secret_value()
    )
    if counts is None:
        await session.rollback()
        raise not_found("member")
    await session.commit()
    return Erased(erased=counts, tombstoned=True)
