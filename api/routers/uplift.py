"""``/v1/uplift``: whether reaching out brings members back, measured against the control
group (issue 22). Figures from ``api/read/uplift.py`` (read layer) and ``api/uplift_stats.py``
(the statistics, their method and why); a key bound to a site sees its site only."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field

from api.deps import AlertsReader, SessionDep
from api.read.uplift import read_uplift
from api.uplift_stats import DEFAULT_SETTLE_DAYS, Comparison
from plumbing.openapi import problem_response
from plumbing.problems import Problem

router = APIRouter(prefix="/v1/uplift", tags=["uplift"])


class IntervalOut(BaseModel):
    low: float
    high: float


class ArmOut(BaseModel):
    episodes: int
    back: int = Field(description="the member came back within the settle days")
    cancelled: int
    away: int = Field(description="still away when the settle days had passed")
    back_share: float | None
    cancelled_share: float | None
    stayed_months: float | None = Field(
        description="mean months the member stayed a member after the episode opened (up to a year)"
    )


class ComparisonOut(BaseModel):
    group: str
    contact: ArmOut
    control: ArmOut
    difference: float | None = Field(description="share back, contact minus control")
    interval: IntervalOut | None = Field(description="95 % interval of the difference")
    cancelled_difference: float | None
    cancelled_interval: IntervalOut | None
    months_kept_per_100: float | None = Field(
        description="member-months kept per 100 contacted episodes (contact minus control)"
    )
    more_needed: int | None = Field(
        description="settled episodes still needed before the interval can exclude zero at "
        "the observed rates and split; 0 once it does; null when no number would"
    )
    verdict: str
    randomised: bool = Field(
        description="false for per-action rows: staff choose the action, only the arms are drawn"
    )


class PeriodOut(BaseModel):
    start: AwareDatetime
    end: AwareDatetime | None
    share: float


class UpliftOut(BaseModel):
    as_of: AwareDatetime
    site_id: str | None
    settle_days: float
    settled: int
    pending: int = Field(description="episodes opened less than settle_days ago")
    outside_holdout: int = Field(description="episodes opened while no holdout was in force")
    periods: list[PeriodOut]
    method: str
    overall: ComparisonOut
    by_period: list[ComparisonOut]
    by_severity: list[ComparisonOut]
    by_site: list[ComparisonOut]
    by_action: list[ComparisonOut]
    by_policy: list[ComparisonOut]


def _out(c: Comparison) -> ComparisonOut:
    return ComparisonOut.model_validate(asdict(c))


@router.get(
    "",
    response_model=UpliftOut,
    responses={403: problem_response("The key is bound to another site.")},
)
async def uplift(
    principal: AlertsReader,
    session: SessionDep,
    as_of: Annotated[
        AwareDatetime | None, Query(description="the report's moment (default: now)")
    ] = None,
    settle_days: Annotated[
        float, Query(gt=0, le=365, description="days after which an episode is settled")
    ] = DEFAULT_SETTLE_DAYS,
    site_id: Annotated[str | None, Query(max_length=128)] = None,
) -> UpliftOut:
    if principal.site_id is not None:
        if site_id is not None and site_id != principal.site_id:
            raise Problem(
                403,
                "Forbidden",
                "this API key is bound to another site",
                type_="forbidden",
            )
        site_id = principal.site_id
    when = as_of if as_of is not None else datetime.now(UTC)
    read = await read_uplift(
        session, principal.tenant_id, as_of=when, site_id=site_id, settle_days=settle_days
    )
    r = read.report
    return UpliftOut(
        as_of=when,
        site_id=site_id,
        settle_days=r.settle_days,
        settled=r.settled,
        pending=r.pending,
        outside_holdout=read.outside,
        periods=[PeriodOut(start=p.start, end=p.end, share=p.share) for p in read.periods],
        method=r.method,
        overall=_out(r.overall),
        by_period=[_out(c) for c in r.by_period],
        by_severity=[_out(c) for c in r.by_severity],
        by_site=[_out(c) for c in r.by_site],
        by_action=[_out(c) for c in r.by_action],
        by_policy=[_out(c) for c in r.by_policy],
    )
