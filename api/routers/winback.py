"""``/v1/winback``: the tenant's win-back plan, today's candidates, and what win-back won.

The plan is read by the detector (re-read every ``LAPSE_LEAVERS_REFRESH_SECONDS``), which
raises ``win_back_due`` as a timer at each planned member's due time. Candidates are the
former members whose due time under the current plan has passed, who did not decline
contact (and who agreed to it, for reasons that need consent), highest return score first
(``detector.core.winback.return_score``; docs/after-they-leave.md).
"""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.deps import AlertsReader, SessionDep, require
from api.read.leavers import Former, members, winback_contacted
from detector.core.winback import DEFAULT_PLAN, WinbackPlan, return_score
from records import holdout
from records.api_keys import Principal
from records.tables import WinbackPlanRow
from schemas.alerts import Arm
from schemas.holdout import CONTACT, arm_for, share_at
from schemas.ids import departure_id
from schemas.units import DAY

router = APIRouter(prefix="/v1/winback", tags=["winback"])
Admin = Annotated[Principal, Depends(require("admin"))]


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after_days: Annotated[float, Field(ge=0, le=3650)] | None = Field(
        description="days after cancelling to try again; null: never"
    )
    needs_cause_addressed: bool = False
    cause_addressed: bool = Field(False, description="staff fixed what drove these leavers away")
    needs_consent: bool = False


class PlanIn(BaseModel):
    """Rules per exit reason; a reason left out keeps its default."""

    model_config = ConfigDict(extra="forbid")

    price: RuleIn | None = None
    service: RuleIn | None = None
    price_and_service: RuleIn | None = None
    moved: RuleIn | None = None
    health: RuleIn | None = None
    schedule: RuleIn | None = None
    competitor: RuleIn | None = None
    other: RuleIn | None = None


class PlanOut(BaseModel):
    stored: bool = Field(description="false: the documented default plan applies")
    rules: dict[str, RuleIn]
    updated_at: AwareDatetime | None


async def plan_of(session: SessionDep, tenant_id: str) -> tuple[WinbackPlan, WinbackPlanRow | None]:
    row = await session.get(WinbackPlanRow, tenant_id)
    return (WinbackPlan.from_dict(row.rules) if row else DEFAULT_PLAN), row


def _plan_out(plan: WinbackPlan, row: WinbackPlanRow | None) -> PlanOut:
    return PlanOut(
        stored=row is not None,
        rules={r: RuleIn(**v) for r, v in plan.to_dict().items()},
        updated_at=row.updated_at if row else None,
    )


@router.get("/plan", response_model=PlanOut)
async def get_plan(principal: AlertsReader, session: SessionDep) -> PlanOut:
    return _plan_out(*await plan_of(session, principal.tenant_id))


@router.put("/plan", response_model=PlanOut)
async def put_plan(body: PlanIn, principal: Admin, session: SessionDep) -> PlanOut:
    """Set the plan (admin). It applies to cancellations the detector sees after its next
    refresh; members already waiting keep the due time planned when they left."""
    plan, row = await plan_of(session, principal.tenant_id)
    rules = plan.to_dict()
    rules.update(body.model_dump(exclude_none=True))
    if row is None:
        row = WinbackPlanRow(tenant_id=principal.tenant_id)
        session.add(row)
    row.rules, row.updated_at, row.updated_by = rules, datetime.now(UTC), principal.key_id
    await session.commit()
    return _plan_out(WinbackPlan.from_dict(rules), row)


class Candidate(BaseModel):
    member_id: str
    site_id: str | None
    reason: str | None
    cancelled_at: AwareDatetime
    due_at: AwareDatetime
    tenure_days: float = Field(description="length of the tenure they left")
    visits_per_month: float = Field(description="in the three months before leaving")
    contact_ok: bool | None
    score: float = Field(description="return score in (0, 1); higher: likelier to come back")
    arm: Arm = Field(
        default=CONTACT,
        description="the win-back episode's group in the tenant's holdout (drawn at its due "
        "time): control candidates are held back, not to be contacted",
    )


class CandidateList(BaseModel):
    as_of: AwareDatetime
    items: list[Candidate] = Field(description="highest score first")


def candidates_of(formers: list[Former], plan: WinbackPlan, at: float) -> list[Candidate]:
    """The former members whose time has come and who may be contacted, best first."""
    out: list[Candidate] = []
    for f in formers:
        if not f.left or f.contact_ok is False:
            continue
        rule = plan.rule(f.reason)
        if rule.needs_consent and f.contact_ok is not True:
            continue
        due = plan.due(f.reason, f.departure.cancelled_at)
        if due is None or due > at:
            continue
        out.append(
            Candidate(
                member_id=f.state.member_id,
                site_id=f.state.site_id,
                reason=f.reason,
                cancelled_at=datetime.fromtimestamp(f.departure.cancelled_at, UTC),
                due_at=datetime.fromtimestamp(due, UTC),
                tenure_days=round(f.tenure_days, 1),
                visits_per_month=f.departure.visits_month,
                contact_ok=f.contact_ok,
                score=round(return_score(f.reason, f.tenure_days, f.departure.visits_month), 4),
            )
        )
    out.sort(key=lambda c: (-c.score, c.member_id))
    return out


@router.get("/candidates", response_model=CandidateList)
async def list_candidates(
    principal: AlertsReader,
    session: SessionDep,
    site_id: Annotated[str | None, Query(max_length=128)] = None,
    as_of: Annotated[AwareDatetime | None, Query(description="default now")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    arm: Annotated[
        Arm, Query(description="contact (the default): those to ask back; control: held back")
    ] = CONTACT,
) -> CandidateList:
    at = as_of or datetime.now(UTC)
    plan, _ = await plan_of(session, principal.tenant_id)
    _, formers = await members(session, principal, site_id)
    found = await with_arms(
        session, principal.tenant_id, candidates_of(formers, plan, at.timestamp())
    )
    return CandidateList(as_of=at, items=[c for c in found if c.arm == arm][:limit])


async def with_arms(session: SessionDep, tenant_id: str, found: list[Candidate]) -> list[Candidate]:
    """The candidates with their win-back episode's group: as stored with its
    ``win_back_due`` alert, else drawn as the detector will under the share in force at the
    due time (the same draw: records/holdout.py)."""
    periods = (await holdout.periods_of(session, [tenant_id])).get(tenant_id)
    if not periods:
        return found
    episodes = {
        c.member_id: departure_id(tenant_id, c.member_id, c.cancelled_at.timestamp()) for c in found
    }
    stored = await holdout.arms_of(session, tenant_id, episodes.values())
    for c in found:
        episode = episodes[c.member_id]
        c.arm = stored.get(episode) or arm_for(episode, share_at(periods, c.due_at))
    return found


class ReasonOutcome(BaseModel):
    reason: str
    leavers: int
    contacted: int = Field(
        description="a win_back_due alert was stored (passed consent) and not withdrawn since"
    )
    won_back: int
    first_tenure_days_median: float | None = Field(description="of the members won back")
    second_tenure_days_median: float | None = Field(
        description="of the members won back, to as_of while it goes on"
    )
    second_tenure_ongoing: int


class WinbackSummary(BaseModel):
    as_of: AwareDatetime
    items: list[ReasonOutcome]


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


@router.get("/summary", response_model=WinbackSummary)
async def summary(
    principal: AlertsReader,
    session: SessionDep,
    site_id: Annotated[str | None, Query(max_length=128)] = None,
    as_of: Annotated[AwareDatetime | None, Query(description="default now")] = None,
) -> WinbackSummary:
    """Per exit reason: leavers, contacted, won back, and the second tenure against the first."""
    at = (as_of or datetime.now(UTC)).timestamp()
    _, formers = await members(session, principal, site_id)
    contacted = await winback_contacted(session, principal.tenant_id)
    groups: dict[str, list[Former]] = {}
    for f in formers:
        groups.setdefault(f.reason or "unknown", []).append(f)
    items = []
    for reason, group in sorted(groups.items()):
        won = [f for f in group if f.departure.winback == "won" and f.departure.won_at]
        first = [(f.departure.tenures[0][1] - f.departure.tenures[0][0]) / DAY for f in won]
        second: list[float] = []
        ongoing = 0
        for f in won:
            start = f.departure.won_at or 0.0
            if len(f.departure.tenures) > 1:
                second.append((f.departure.tenures[1][1] - f.departure.tenures[1][0]) / DAY)
            else:
                second.append(max(0.0, at - start) / DAY)
                ongoing += 1
        items.append(
            ReasonOutcome(
                reason=reason,
                leavers=len(group),
                contacted=sum(
                    1 for f in group if f.state.member_id in contacted and f.contact_ok is not False
                ),
                won_back=len(won),
                first_tenure_days_median=_median(first),
                second_tenure_days_median=_median(second),
                second_tenure_ongoing=ongoing,
            )
        )
    return WinbackSummary(as_of=datetime.fromtimestamp(at, UTC), items=items)
