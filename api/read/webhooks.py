"""Webhook subscriptions and their delivery log as the api reads and changes them.

Called by ``/v1/webhooks`` and the staff page's admin section (``api.page.admin``) alike;
a caller's subscription is found through ``api.read.scope.scoped``, so another tenant's (or
another site's, for a site-bound key) is "no such", exactly like one that does not exist.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.read.scope import scoped
from api.signing import generate_secret
from api.urls import check_url
from plumbing.settings import Settings
from records.api_keys import Principal
from records.sealing import Sealer
from records.tables import DeliveryAttempt, WebhookDelivery, WebhookSubscription
from schemas import AlertType


async def guard_url(url: str, settings: Settings) -> str:
    """The URL a subscription may deliver to (UnsafeUrl if refused: not https, or a private,
    loopback or link-local address unless ``LAPSE_WEBHOOK_ALLOW_PRIVATE``)."""
    return await check_url(
        url,
        allow_private=settings.webhook_allow_private,
        resolve_seconds=settings.webhook_connect_timeout_seconds,
    )


async def add_subscription(
    session: AsyncSession,
    settings: Settings,
    *,
    tenant_id: str,
    site_id: str | None,
    url: str,
    event_types: list[AlertType],
    description: str | None,
) -> tuple[WebhookSubscription, str]:
    """A new enabled subscription added to the session (the caller commits) and its signing
    secret in plain (shown once; stored sealed). UnsafeUrl if the URL is refused."""
    checked = await guard_url(url, settings)
    secret = generate_secret()
    sub = WebhookSubscription(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        url=checked,
        event_types=list(event_types),
        site_id=site_id,
        secret=Sealer.from_settings(settings).seal(secret),
        enabled=True,
        description=description,
        failed_deliveries_in_row=0,
        created_at=datetime.now(UTC),
    )
    session.add(sub)
    return sub, secret


def set_enabled(
    sub: WebhookSubscription, enabled: bool, now: datetime, by: str = "the API"
) -> None:
    """Disable (deliveries wait; ``by``: through what, kept as the reason), or re-enable and
    clear the failure record."""
    if enabled and not sub.enabled:
        sub.enabled = True
        sub.disabled_reason = sub.disabled_at = sub.failing_since = None
        sub.failed_deliveries_in_row = 0
    elif not enabled and sub.enabled:
        sub.enabled = False
        sub.disabled_reason = f"disabled through {by}"
        sub.disabled_at = now


async def subscriptions_of(
    session: AsyncSession, principal: Principal
) -> list[WebhookSubscription]:
    """The caller's subscriptions (only its site's for a site-bound caller), oldest first."""
    rows = await session.scalars(
        select(WebhookSubscription)
        .where(*scoped(principal, WebhookSubscription))
        .order_by(WebhookSubscription.created_at, WebhookSubscription.id)
    )
    return list(rows)


async def subscription(
    session: AsyncSession, principal: Principal, webhook_id: str, *, for_update: bool = False
) -> WebhookSubscription | None:
    """The caller's subscription, or None (another tenant's or site's is none too)."""
    query = select(WebhookSubscription).where(
        WebhookSubscription.id == webhook_id, *scoped(principal, WebhookSubscription)
    )
    if for_update and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    sub: WebhookSubscription | None = await session.scalar(query)
    return sub


async def delete_subscription(session: AsyncSession, sub: WebhookSubscription) -> None:
    """Delete it, its deliveries and their attempts (ON DELETE CASCADE); the caller commits."""
    await session.execute(delete(WebhookSubscription).where(WebhookSubscription.id == sub.id))


async def attempts_of(session: AsyncSession, ids: list[str]) -> dict[str, list[DeliveryAttempt]]:
    out: dict[str, list[DeliveryAttempt]] = {i: [] for i in ids}
    if ids:
        rows = await session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_(ids))
            .order_by(DeliveryAttempt.id)
        )
        for a in rows:
            out[a.delivery_id].append(a)
    return out


async def deliveries(
    session: AsyncSession,
    sub: WebhookSubscription,
    *,
    status: str | None,
    alert_id: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[WebhookDelivery]:
    """The subscription's deliveries, newest first, after the cursor's (created_at, id),
    at most ``limit``."""
    query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == sub.id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if alert_id is not None:
        query = query.where(WebhookDelivery.alert_id == alert_id)
    if after is not None:
        created_at, last_id = after
        query = query.where(
            or_(
                WebhookDelivery.created_at < created_at,
                and_(WebhookDelivery.created_at == created_at, WebhookDelivery.id < last_id),
            )
        )
    query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    return list(await session.scalars(query.limit(limit)))


async def delivery(
    session: AsyncSession, sub: WebhookSubscription, delivery_id: str
) -> WebhookDelivery | None:
    """One delivery of the subscription, locked for update (PostgreSQL) to be retried."""
    query = select(WebhookDelivery).where(
        WebhookDelivery.id == delivery_id, WebhookDelivery.subscription_id == sub.id
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row: WebhookDelivery | None = await session.scalar(query)
    return row


async def requeue_failed(
    session: AsyncSession,
    sub: WebhookSubscription,
    since: datetime,
    until: datetime | None,
    now: datetime,
) -> int:
    """Make the subscription's failed deliveries created in [since, until) due ``now``
    again; how many (the caller commits)."""
    query = update(WebhookDelivery).where(
        WebhookDelivery.subscription_id == sub.id,
        WebhookDelivery.status == "failed",
        WebhookDelivery.created_at >= since,
    )
    if until is not None:
        query = query.where(WebhookDelivery.created_at < until)
    ids = list(
        await session.scalars(
            query.values(status="pending", next_attempt_at=now, leased_until=None).returning(
                WebhookDelivery.id
            )
        )
    )
    return len(ids)
