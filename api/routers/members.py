"""``/v1/members``: a member's state as the detector holds it, and today's at-risk list.

The reads are ``api.read.members`` (the staff page's work list and member page call them too).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AlertsReader, SessionDep, not_found
from api.read import members
from api.read.members import AtRiskList, Member
from schemas.alerts import Arm
from schemas.holdout import CONTACT

router = APIRouter(prefix="/v1/members", tags=["members"])


@router.get("/at-risk", response_model=AtRiskList)
async def at_risk(
    principal: AlertsReader,
    session: SessionDep,
    site_id: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    arm: Annotated[
        Arm,
        Query(
            description="contact: the members to reach (the default); control: those the "
            "holdout holds back, not to be contacted"
        ),
    ] = CONTACT,
) -> AtRiskList:
    """Members with an open episode now, for one site (or all the key may see); by default
    only those to contact (episodes in the holdout's control group are left out)."""
    return await members.at_risk(session, principal, site_id=site_id, limit=limit, arm=arm)


@router.get("/{member_id}", response_model=Member)
async def get_member(member_id: str, principal: AlertsReader, session: SessionDep) -> Member:
    found = await members.member(session, principal, member_id)
    if found is None:
        raise not_found("member")
    return found
