"""``/v1/holdout``: the tenant's control group, and why a member is in it.

A manager holds back a share of new episodes (``PUT``, admin scope, a key of the whole
tenant): they are stored and scored but never sent to webhooks or the alerts topic, nor
listed for contact, so the uplift report can compare them with the contacted ones
(schemas/holdout.py, records/holdout.py). ``share: 0`` stops it. Every change is a
period of its own (``GET`` lists them), so a report never mixes episodes drawn under
different shares. The members and episodes API and the staff page say plainly which
episodes are held back and why (``HoldoutNote``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from api.deps import AlertsReader, SessionDep, require
from api.read.holdout import HoldoutOut, holdout_of
from plumbing.problems import Problem
from records import holdout
from records.api_keys import Principal
from schemas.holdout import MAX_SHARE, HoldoutReason

router = APIRouter(prefix="/v1/holdout", tags=["holdout"])
Admin = Annotated[Principal, Depends(require("admin"))]


class HoldoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    share: float = Field(
        ge=0,
        le=MAX_SHARE,
        description=f"the share of new episodes held back, more than 0 and at most {MAX_SHARE}"
        " (0.1: one in ten); 0 stops the holdout",
        examples=[0.1],
    )
    reason: HoldoutReason | None = Field(
        default=None, description="why it was set or stopped, kept with the period"
    )


@router.get("", response_model=HoldoutOut)
async def get_holdout(principal: AlertsReader, session: SessionDep) -> HoldoutOut:
    """The share in force and every period so far."""
    return await holdout_of(session, principal.tenant_id)


@router.put("", response_model=HoldoutOut)
async def put_holdout(body: HoldoutIn, principal: Admin, session: SessionDep) -> HoldoutOut:
    """Set the share held back from episodes opened from now on, or stop (``share: 0``).
    Episodes already open keep their group. Setting the share in force changes nothing."""
    if principal.site_id is not None:
        raise Problem(
            403,
            "Forbidden",
            "the holdout applies to the whole tenant: use a key not bound to a site",
            type_="forbidden",
        )
    if body.share == 0:
        change = await holdout.stop(
            session, principal.tenant_id, by=principal.key_id, reason=body.reason
        )
    else:
        change = await holdout.set_share(
            session, principal.tenant_id, body.share, by=principal.key_id, reason=body.reason
        )
    await session.commit()
    out = await holdout_of(session, principal.tenant_id)
    out.changed = change.changed
    return out
