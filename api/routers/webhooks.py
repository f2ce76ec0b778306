"""``/v1/webhooks``: subscriptions, their delivery log, manual redelivery and test pings.

Everything is scoped by the caller's tenant (and site, for a site-bound key): another
tenant's subscription or delivery answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from api.deps import (
    DispatcherDep,
    SessionDep,
    SettingsDep,
    WebhooksManager,
    decode_cursor,
    encode_cursor,
    not_found,
)
from api.read import webhooks
from api.signing import generate_secret
from api.urls import UnsafeUrl
from plumbing.openapi import problem_response
from plumbing.problems import Problem
from records.api_keys import Principal
from records.sealing import Sealer
from records.tables import DeliveryAttempt, WebhookDelivery, WebhookSubscription
from schemas import ALERT_TYPES, AlertType
from schemas.events import NOTE_PATTERN

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

Url = Annotated[str, Field(min_length=1, max_length=2048)]
EventTypes = Annotated[list[AlertType], Field(min_length=1)]
DeliveryStatus = Literal["pending", "succeeded", "failed"]


def _dedupe(types: list[AlertType]) -> list[AlertType]:
    return list(dict.fromkeys(types))


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url
    event_types: EventTypes = Field(default_factory=lambda: list(ALERT_TYPES))
    site_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    description: Annotated[str, Field(max_length=500, pattern=NOTE_PATTERN)] | None = None

    _types = field_validator("event_types")(_dedupe)


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    event_types: EventTypes | None = None
    description: Annotated[str, Field(max_length=500, pattern=NOTE_PATTERN)] | None = None
    enabled: bool | None = Field(
        default=None,
        description="false disables (deliveries wait); true re-enables and clears the failure "
        "record of an automatically disabled subscription.",
    )

    @field_validator("event_types")
    @classmethod
    def _types(cls, v: list[AlertType] | None) -> list[AlertType] | None:
        return None if v is None else _dedupe(v)


class WebhookOut(BaseModel):
    id: str
    url: str
    description: str | None
    event_types: list[str]
    site_id: str | None
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why it is disabled: by the API, a 410 Gone, or sustained failure."
    )
    disabled_at: AwareDatetime | None
    failing_since: AwareDatetime | None = Field(
        description="First failed attempt of the current streak of failures (null when healthy)."
    )
    failed_deliveries_in_row: int
    previous_secret_expires_at: AwareDatetime | None = Field(
        description="While set, deliveries are signed with the new and the previous secret."
    )
    created_at: AwareDatetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="Shown only once, here: store it to verify signatures.")


class WebhookList(BaseModel):
    items: list[WebhookOut]


class RotatedSecret(BaseModel):
    secret: str = Field(description="The new secret, shown only once, here.")
    previous_secret_expires_at: AwareDatetime | None = Field(
        description="Until then deliveries carry two signatures (new, then previous)."
    )


class Recovered(BaseModel):
    requeued: int = Field(description="Failed deliveries put back in the queue.")


class AttemptOut(BaseModel):
    attempted_at: AwareDatetime
    status_code: int | None
    error: str | None
    duration_ms: float
    response_excerpt: str | None


class DeliveryOut(BaseModel):
    id: str = Field(description="The webhook-id header, the same on every attempt.")
    alert_id: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: AwareDatetime
    next_attempt_at: AwareDatetime | None
    delivered_at: AwareDatetime | None
    attempt_log: list[AttemptOut]


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


class TestResult(BaseModel):
    ok: bool
    status_code: int | None
    duration_ms: float
    error: str | None
    response_excerpt: str | None


def _out(sub: WebhookSubscription, now: datetime) -> WebhookOut:
    """The subscription as shown; ``now`` (the dispatcher's clock) ends a rotation's overlap."""
    until = sub.previous_secret_until
    return WebhookOut(
        id=sub.id,
        url=sub.url,
        description=sub.description,
        event_types=list(sub.event_types),
        site_id=sub.site_id,
        enabled=sub.enabled,
        disabled_reason=None if sub.enabled else sub.disabled_reason,
        disabled_at=None if sub.enabled else sub.disabled_at,
        failing_since=sub.failing_since,
        failed_deliveries_in_row=sub.failed_deliveries_in_row or 0,
        previous_secret_expires_at=until if sub.previous_secret and until and until > now else None,
        created_at=sub.created_at,
    )


def _delivery_out(row: WebhookDelivery, attempts: list[DeliveryAttempt]) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        alert_id=row.alert_id,
        status=row.status,
        attempts=row.attempts,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        delivered_at=row.delivered_at,
        attempt_log=[
            AttemptOut(
                attempted_at=a.attempted_at,
                status_code=a.status_code,
                error=a.error,
                duration_ms=a.duration_ms,
                response_excerpt=a.response_excerpt,
            )
            for a in attempts
        ],
    )


def _invalid_url(exc: UnsafeUrl) -> Problem:
    return Problem(
        422,
        "Invalid request",
        f"invalid field(s): url: {exc}",
        type_="validation",
        errors=[{"pointer": "/url", "field": "url", "message": str(exc)}],
    )


async def _checked_url(url: str, settings: SettingsDep) -> str:
    try:
        return await webhooks.guard_url(url, settings)
    except UnsafeUrl as exc:
        raise _invalid_url(exc) from exc


async def _subscription(
    session: SessionDep, principal: Principal, webhook_id: str, *, for_update: bool = False
) -> WebhookSubscription:
    sub = await webhooks.subscription(session, principal, webhook_id, for_update=for_update)
    if sub is None:
        raise not_found("webhook")
    return sub


@router.post("", status_code=201, response_model=WebhookCreated)
async def create_webhook(
    body: WebhookCreate,
    principal: WebhooksManager,
    session: SessionDep,
    settings: SettingsDep,
    dispatcher: DispatcherDep,
) -> WebhookCreated:
    site_id = body.site_id
    if principal.site_id is not None:
        if site_id not in (None, principal.site_id):
            raise Problem(
                403, "Forbidden", "this API key is bound to another site", type_="forbidden"
            )
        site_id = principal.site_id
    try:
        sub, secret = await webhooks.add_subscription(
            session,
            settings,
            tenant_id=principal.tenant_id,
            site_id=site_id,
            url=body.url,
            event_types=list(body.event_types),
            description=body.description,
        )
    except UnsafeUrl as exc:
        raise _invalid_url(exc) from exc
    await session.commit()
    return WebhookCreated(**_out(sub, dispatcher.now()).model_dump(), secret=secret)


@router.get("", response_model=WebhookList)
async def list_webhooks(
    principal: WebhooksManager, session: SessionDep, dispatcher: DispatcherDep
) -> WebhookList:
    rows = await webhooks.subscriptions_of(session, principal)
    now = dispatcher.now()
    return WebhookList(items=[_out(s, now) for s in rows])


@router.get("/{webhook_id}", response_model=WebhookOut)
async def get_webhook(
    webhook_id: str, principal: WebhooksManager, session: SessionDep, dispatcher: DispatcherDep
) -> WebhookOut:
    return _out(await _subscription(session, principal, webhook_id), dispatcher.now())


@router.patch("/{webhook_id}", response_model=WebhookOut)
async def update_webhook(
    webhook_id: str,
    body: WebhookUpdate,
    principal: WebhooksManager,
    session: SessionDep,
    settings: SettingsDep,
    dispatcher: DispatcherDep,
) -> WebhookOut:
    sub = await _subscription(session, principal, webhook_id, for_update=True)
    if body.url is not None:
        sub.url = await _checked_url(body.url, settings)
    if body.event_types is not None:
        sub.event_types = list(body.event_types)
    if body.description is not None:
        sub.description = body.description
    if body.enabled is not None:
        webhooks.set_enabled(sub, body.enabled, dispatcher.now())
    await session.commit()
    return _out(sub, dispatcher.now())


@router.post("/{webhook_id}/rotate-secret", response_model=RotatedSecret)
async def rotate_secret(
    webhook_id: str,
    principal: WebhooksManager,
    session: SessionDep,
    settings: SettingsDep,
    dispatcher: DispatcherDep,
) -> RotatedSecret:
    """A new secret now; the current one keeps signing too until the overlap ends.

    Rotating again during an overlap drops the oldest secret at once: at most two sign.
    """
    sub = await _subscription(session, principal, webhook_id, for_update=True)
    now = dispatcher.now()  # the clock the deliveries end the overlap by
    overlap = settings.webhook_secret_overlap_seconds
    if overlap > 0:
        sub.previous_secret = sub.secret
        sub.previous_secret_until = now + timedelta(seconds=overlap)
    else:
        sub.previous_secret = sub.previous_secret_until = None
    secret = generate_secret()
    sub.secret = Sealer.from_settings(settings).seal(secret)
    await session.commit()
    return RotatedSecret(secret=secret, previous_secret_expires_at=sub.previous_secret_until)


@router.post(
    "/{webhook_id}/recover",
    status_code=202,
    response_model=Recovered,
    responses={409: problem_response("The webhook is disabled: enable it first.")},
)
async def recover(
    webhook_id: str,
    principal: WebhooksManager,
    session: SessionDep,
    dispatcher: DispatcherDep,
    since: Annotated[AwareDatetime, Query(description="deliveries created at or after")],
    until: Annotated[AwareDatetime | None, Query(description="and before")] = None,
) -> Recovered:
    """Re-queue every failed delivery of the subscription in a time window (as Svix does).

    Each keeps its webhook-id, so a receiver that did get one after all can de-duplicate.
    """
    sub = await _subscription(session, principal, webhook_id)
    if not sub.enabled:
        raise Problem(409, "Conflict", "the webhook is disabled: enable it first", type_="conflict")
    requeued = await webhooks.requeue_failed(session, sub, since, until, dispatcher.now())
    await session.commit()
    return Recovered(requeued=requeued)


@router.delete("/{webhook_id}", status_code=204)
async def delete_webhook(
    webhook_id: str, principal: WebhooksManager, session: SessionDep
) -> Response:
    sub = await _subscription(session, principal, webhook_id)
    await webhooks.delete_subscription(session, sub)
    await session.commit()
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryPage)
async def list_deliveries(
    webhook_id: str,
    principal: WebhooksManager,
    session: SessionDep,
    status: DeliveryStatus | None = None,
    alert_id: Annotated[str | None, Query(max_length=36)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DeliveryPage:
    sub = await _subscription(session, principal, webhook_id)
    rows = await webhooks.deliveries(
        session,
        sub,
        status=status,
        alert_id=alert_id,
        after=decode_cursor(cursor) if cursor is not None else None,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    attempts = await webhooks.attempts_of(session, [r.id for r in rows])
    last = rows[-1] if more else None
    return DeliveryPage(
        items=[_delivery_out(r, attempts[r.id]) for r in rows],
        next_cursor=encode_cursor(last.created_at, last.id) if last else None,
    )


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/retry",
    status_code=202,
    response_model=DeliveryOut,
    responses={
        409: problem_response("The delivery is being attempted now, or the webhook is disabled.")
    },
)
async def retry_delivery(
    webhook_id: str,
    delivery_id: str,
    principal: WebhooksManager,
    session: SessionDep,
    dispatcher: DispatcherDep,
) -> DeliveryOut:
    sub = await _subscription(session, principal, webhook_id)
    row = await webhooks.delivery(session, sub, delivery_id)
    if row is None:
        raise not_found("delivery")
    now = dispatcher.now()
    if row.leased_until is not None and row.leased_until > now:
        raise Problem(
            409, "Conflict", "this delivery is being attempted right now", type_="conflict"
        )
    if not sub.enabled:
        raise Problem(409, "Conflict", "the webhook is disabled: enable it first", type_="conflict")
    row.status = "pending"
    row.next_attempt_at = now
    row.leased_until = None
    await session.commit()
    return _delivery_out(row, (await webhooks.attempts_of(session, [row.id]))[row.id])


@router.post("/{webhook_id}/test", response_model=TestResult)
async def test_webhook(
    webhook_id: str, principal: WebhooksManager, session: SessionDep, dispatcher: DispatcherDep
) -> TestResult:
    sub = await _subscription(session, principal, webhook_id)
    # Do not hold a transaction open across a request to somebody else's server.
    await session.commit()
    result = await dispatcher.ping(sub)
    return TestResult(
        ok=result.ok,
        status_code=result.status_code,
        duration_ms=round(result.duration * 1000.0, 3),
        error=result.error,
        response_excerpt=result.excerpt,
    )
