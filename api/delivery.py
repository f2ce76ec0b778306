"""Durable, signed webhook delivery.

The ``alerts`` table is the outbox. :meth:`Dispatcher.fan_out` turns each new alert into one
``webhook_deliveries`` row per matching subscription (ids derived from subscription and alert,
so a re-run cannot double them). :meth:`Dispatcher.deliver_due` leases due deliveries in a
short transaction, sends them, and records each outcome in a transaction of its own. A
process that dies mid-flight leaves the lease to expire, and the delivery is sent again with
the same ``webhook-id``, so receivers can de-duplicate: delivery is at least once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx
from prometheus_client import Counter, Histogram
from sqlalchemy import func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.signing import signature_headers
from api.urls import UnresolvableHost, UnsafeUrl, resolve_target
from plumbing.settings import Settings
from records.sealing import Sealer
from records.tables import AlertRow, DeliveryAttempt, WebhookDelivery, WebhookSubscription
from records.types import UTCDateTime
from records.upsert import insert
from schemas import Alert, AlertCloudEvent
from schemas.ids import uuid5

log = logging.getLogger(__name__)

Outcome = Literal["success", "http_error", "network_error", "refused"]

ATTEMPTS = Counter(
    "lapse_webhook_attempts_total", "Webhook delivery attempts by outcome.", ["outcome"]
)
ATTEMPT_SECONDS = Histogram(
    "lapse_webhook_attempt_duration_seconds",
    "Duration of one webhook delivery attempt.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
)
DISABLED = Counter(
    "lapse_webhook_subscriptions_disabled",
    "Webhook subscriptions disabled automatically, by reason (gone, failing, failed_deliveries).",
    ["reason"],
)
ALERT_TO_DELIVERY = Histogram(
    "lapse_webhook_alert_to_delivery_seconds",
    "From an alert being stored to its successful webhook delivery.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 1800, 7200, 36000, 86400),
)

CLOUDEVENTS_JSON = "application/cloudevents+json"
USER_AGENT = "Lapse-Webhooks/1"
PING_TYPE = "io.lapse.webhook.ping.v1"
EXCERPT_CHARS = 512
MAX_RETRY_AFTER_SECONDS = 86_400.0
# Delivery ids are uuid5(NAMESPACE, "subscription_id:alert_id").
NAMESPACE = uuid.UUID("6c1f0d0e-2b7a-5d4e-9a51-6c61707365de")
_NS = NAMESPACE.bytes


def delivery_id(subscription_id: str, alert_id: str) -> str:
    return uuid5(_NS, f"{subscription_id}:{alert_id}".encode())


def matches(subscription: WebhookSubscription, alert: AlertRow) -> bool:
    if alert.type not in subscription.event_types:
        return False
    return subscription.site_id is None or subscription.site_id == alert.site_id


def alert_body(payload: dict[str, Any]) -> bytes:
    """The CloudEvents structured-mode JSON of a stored alert."""
    return AlertCloudEvent.wrap(Alert.model_validate(payload)).model_dump_json().encode()


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), or None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - now).total_seconds()), MAX_RETRY_AFTER_SECONDS)


@dataclass(frozen=True, slots=True)
class AttemptResult:
    outcome: Outcome
    status_code: int | None
    error: str | None
    duration: float
    excerpt: str | None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "success"


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: str
    attempts: int
    leased_until: datetime
    subscription_id: str
    url: str
    secret: str
    # The secret before a rotation, while its overlap lasts (a second signature).
    previous_secret: str | None
    # Whether the subscription was failing when claimed: a success must then reset it.
    sub_failing: bool
    alert_created_at: datetime
    payload: dict[str, Any]


def _correlation(item: _Claimed) -> dict[str, Any]:
    """Log ``extra`` tying a delivery attempt to its alert and episode (ids only)."""
    return {
        "delivery_id": item.id,
        "alert_id": item.payload.get("alert_id"),
        "episode_id": item.payload.get("episode_id"),
    }


async def _excerpt(response: httpx.Response) -> str | None:
    """The start of the response body, at most ``EXCERPT_CHARS`` characters (never all of it)."""
    buf = bytearray()
    async for chunk in response.aiter_bytes():
        buf.extend(chunk)
        if len(buf) >= EXCERPT_CHARS * 4:
            break
    if not buf:
        return None
    return bytes(buf).decode(response.encoding or "utf-8", errors="replace")[:EXCERPT_CHARS]


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


class Dispatcher:
    """Fans alerts out to subscriptions and delivers them; one per api process."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        client: httpx.AsyncClient,
        *,
        now: Callable[[], datetime] | None = None,
        batch_size: int = 100,
        concurrency: int = 16,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.client = client
        # Secrets are stored sealed (records.sealing) and opened only to sign.
        self.sealer = Sealer.from_settings(settings)
        self.now: Callable[[], datetime] = now or (lambda: datetime.now(UTC))
        self.batch_size = batch_size
        self.concurrency = concurrency
        self._jitter = jitter
        # One attempt may not take longer than this, in total (httpx's read timeout is per read).
        self.deadline = (
            settings.webhook_connect_timeout_seconds + settings.webhook_read_timeout_seconds
        )
        # Longer than any attempt plus its recording: a lease only lapses when a process died.
        self.lease = timedelta(seconds=self.deadline + 10.0)

    # -- fan-out ---------------------------------------------------------------------------

    async def fan_out(self) -> int:
        """Create the deliveries of a batch of new alerts; return how many alerts were taken."""
        now = self.now()
        async with self.sessions() as session, session.begin():
            query = (
                select(AlertRow)
                .where(AlertRow.fanned_out.is_(False))
                .order_by(AlertRow.created_at, AlertRow.alert_id)
                .limit(self.batch_size)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            alerts = list(await session.scalars(query))
            if not alerts:
                return 0
            subscriptions = await session.scalars(
                select(WebhookSubscription).where(
                    WebhookSubscription.tenant_id.in_({a.tenant_id for a in alerts}),
                    WebhookSubscription.enabled.is_(True),
                )
            )
            by_tenant: dict[str, list[WebhookSubscription]] = {}
            for sub in subscriptions:
                by_tenant.setdefault(sub.tenant_id, []).append(sub)
            rows = [
                {
                    "id": delivery_id(sub.id, alert.alert_id),
                    "subscription_id": sub.id,
                    "alert_id": alert.alert_id,
                    "tenant_id": alert.tenant_id,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "leased_until": None,
                    "created_at": now,
                }
                for alert in alerts
                for sub in by_tenant.get(alert.tenant_id, ())
                if matches(sub, alert)
            ]
            for start in range(0, len(rows), 1000):
                chunk = rows[start : start + 1000]
                await session.execute(
                    insert(session, WebhookDelivery).values(chunk).on_conflict_do_nothing()
                )
            await session.execute(
                update(AlertRow)
                .where(AlertRow.alert_id.in_([a.alert_id for a in alerts]))
                .values(fanned_out=True)
            )
        if rows:
            log.debug("fanned out %d alert(s) into %d delivery(ies)", len(alerts), len(rows))
        return len(alerts)

    # -- delivery --------------------------------------------------------------------------

    async def deliver_due(self) -> int:
        """Lease, send and record the due deliveries; return how many were taken."""
        claimed = await self._claim()
        if not claimed:
            return 0
        gate = asyncio.Semaphore(self.concurrency)

        async def one(item: _Claimed) -> None:
            async with gate:
                try:
                    await self._deliver(item)
                except Exception:
                    # Its lease expires and it is tried again.
                    log.exception("webhook delivery %s failed", item.id, extra=_correlation(item))

        await asyncio.gather(*(one(c) for c in claimed))
        return len(claimed)

    async def _claim(self) -> list[_Claimed]:
        now = self.now()
        until = now + self.lease
        async with self.sessions() as session, session.begin():
            query = (
                select(WebhookDelivery.id)
                .join(
                    WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id
                )
                .where(
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= now,
                    or_(
                        WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until <= now
                    ),
                    WebhookSubscription.enabled.is_(True),
                )
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(self.batch_size)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True, of=WebhookDelivery)
            ids = list(await session.scalars(query))
            if not ids:
                return []
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(ids))
                .values(leased_until=until)
            )
            result = await session.execute(
                select(
                    WebhookDelivery.id,
                    WebhookDelivery.attempts,
                    WebhookSubscription.id,
                    WebhookSubscription.url,
                    WebhookSubscription.secret,
                    WebhookSubscription.previous_secret,
                    WebhookSubscription.previous_secret_until,
                    WebhookSubscription.failing_since,
                    WebhookSubscription.failed_deliveries_in_row,
                    AlertRow.created_at,
                    AlertRow.payload,
                )
                .join(
                    WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id
                )
                .join(AlertRow, AlertRow.alert_id == WebhookDelivery.alert_id)
                .where(WebhookDelivery.id.in_(ids))
            )
            return [
                _Claimed(
                    did,
                    attempts,
                    until,
                    sid,
                    url,
                    secret,
                    self.previous_secret(previous, previous_until, now),
                    failing is not None or in_row > 0,
                    created,
                    payload,
                )
                for (
                    did,
                    attempts,
                    sid,
                    url,
                    secret,
                    previous,
                    previous_until,
                    failing,
                    in_row,
                    created,
                    payload,
                ) in result
            ]

    @staticmethod
    def previous_secret(previous: str | None, until: datetime | None, now: datetime) -> str | None:
        """The pre-rotation secret if its overlap has not ended (it then signs as well)."""
        if previous is None or until is None or until <= now:
            return None
        return previous

    async def _deliver(self, item: _Claimed) -> None:
        attempted_at = self.now()
        previous = item.previous_secret
        result = await self.attempt(
            item.url,
            item.id,
            self.sealer.open(item.secret),
            alert_body(item.payload),
            previous=self.sealer.open(previous) if previous is not None else None,
        )
        await self._record(item, result, attempted_at)
        log.log(
            logging.DEBUG if result.ok else logging.INFO,
            "webhook delivery %s attempt %d: %s %s",
            item.id,
            item.attempts + 1,
            result.outcome,
            result.status_code if result.status_code is not None else result.error,
            extra=_correlation(item),
        )
        if result.ok:
            ALERT_TO_DELIVERY.observe(
                max(0.0, (self.now() - item.alert_created_at).total_seconds())
            )

    def next_delay(self, attempts: int, retry_after: float | None) -> float | None:
        """Seconds until the next attempt after ``attempts`` failed ones, None when exhausted."""
        schedule: Sequence[float] = self.settings.webhook_retry_schedule
        if attempts < 1 or attempts > len(schedule):
            return None
        delay = schedule[attempts - 1] * (1.0 + self._jitter(-0.1, 0.1))
        if retry_after is not None and retry_after > delay:
            delay = retry_after
        return max(0.0, delay)

    async def _record(self, item: _Claimed, result: AttemptResult, attempted_at: datetime) -> None:
        finished = self.now()
        attempts = item.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_status_code": result.status_code,
            "last_error": result.error,
            "leased_until": None,
        }
        gone = result.status_code == 410
        if result.ok:
            values.update(status="succeeded", delivered_at=finished)
        elif gone:
            values.update(status="failed")
        else:
            delay = self.next_delay(attempts, result.retry_after)
            if delay is None:
                values.update(status="failed")
            else:
                values.update(next_attempt_at=finished + timedelta(seconds=delay))
        async with self.sessions() as session, session.begin():
            updated = await session.scalar(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == item.id,
                    WebhookDelivery.leased_until == item.leased_until,
                )
                .values(**values)
                .returning(WebhookDelivery.id)
            )
            if updated is None:
                # The lease lapsed (or the delivery was retried by hand, or deleted) meanwhile:
                # whoever holds it now decides its state; still log this attempt if it exists.
                log.warning("webhook delivery %s: lease lost, outcome not applied", item.id)
                exists = await session.scalar(
                    select(WebhookDelivery.id).where(WebhookDelivery.id == item.id)
                )
                if exists is None:
                    return
            session.add(
                DeliveryAttempt(
                    delivery_id=item.id,
                    attempted_at=attempted_at,
                    status_code=result.status_code,
                    error=result.error,
                    duration_ms=round(result.duration * 1000.0, 3),
                    response_excerpt=result.excerpt,
                )
            )
            await self._track_health(
                session,
                item,
                result,
                values.get("status", "pending"),
                finished,
            )

    async def _track_health(
        self,
        session: AsyncSession,
        item: _Claimed,
        result: AttemptResult,
        status: str,
        now: datetime,
    ) -> None:
        """Keep the subscription's failure record; disable it after sustained failure.

        Any success clears it. Every failed attempt keeps ``failing_since`` (the first failure
        of the streak); a delivery that ends failed counts in ``failed_deliveries_in_row``.
        """
        sub = WebhookSubscription
        if result.ok:
            if item.sub_failing:
                await session.execute(
                    update(sub)
                    .where(sub.id == item.subscription_id)
                    .values(failing_since=None, failed_deliveries_in_row=0)
                )
            return
        values: dict[str, Any] = {
            "failing_since": func.coalesce(sub.failing_since, literal(now, UTCDateTime()))
        }
        if status == "failed":
            values["failed_deliveries_in_row"] = sub.failed_deliveries_in_row + 1
        row = (
            await session.execute(
                update(sub)
                .where(sub.id == item.subscription_id, sub.enabled.is_(True))
                .values(**values)
                .returning(sub.failing_since, sub.failed_deliveries_in_row)
            )
        ).first()
        if row is None:
            return  # deleted or already disabled
        failing_since, in_row = row
        reason: tuple[str, str] | None = None
        window = self.settings.webhook_disable_after_failing_seconds
        most = self.settings.webhook_disable_after_failed_deliveries
        if result.status_code == 410:
            reason = ("gone", "the endpoint answered 410 Gone")
        elif (
            window > 0
            and failing_since is not None
            and (now - failing_since).total_seconds() >= window
        ):
            reason = ("failing", f"every attempt failed for {window:g}s")
        elif most > 0 and in_row >= most:
            reason = ("failed_deliveries", f"{in_row} deliveries in a row failed")
        if reason is None:
            return
        await session.execute(
            update(sub)
            .where(sub.id == item.subscription_id)
            .values(enabled=False, disabled_reason=reason[1], disabled_at=now)
        )
        DISABLED.labels(reason[0]).inc()
        log.warning("webhook subscription %s disabled: %s", item.subscription_id, reason[1])

    async def attempt(
        self,
        url: str,
        msg_id: str,
        secret: str,
        body: bytes,
        *,
        previous: str | None = None,
        observe: bool = True,
    ) -> AttemptResult:
        """POST one signed message; never raises for the receiver's or the network's faults."""
        timestamp = int(self.now().timestamp())
        headers = {
            "content-type": CLOUDEVENTS_JSON,
            "user-agent": USER_AGENT,
            **signature_headers(secret, msg_id, timestamp, body, previous=previous),
        }
        start = time.perf_counter()

        def failed(outcome: Outcome, error: str) -> AttemptResult:
            return AttemptResult(outcome, None, error, time.perf_counter() - start, None)

        result: AttemptResult
        try:
            # One deadline for the whole attempt, name resolution included.
            async with asyncio.timeout(self.deadline):
                target = await resolve_target(
                    url,
                    allow_private=self.settings.webhook_allow_private,
                    resolve_seconds=self.settings.webhook_connect_timeout_seconds,
                )
                async with self.client.stream(
                    "POST",
                    target.url,
                    content=body,
                    headers={**headers, **target.headers},
                    extensions=target.extensions,
                ) as response:
                    excerpt = await _excerpt(response)
        except UnresolvableHost as exc:
            result = failed("network_error", str(exc))
        except UnsafeUrl as exc:
            result = failed("refused", f"refused: {exc}")
        except TimeoutError:
            result = failed("network_error", f"timed out after {self.deadline:g}s")
        except (httpx.HTTPError, OSError) as exc:
            result = failed("network_error", _describe(exc))
        else:
            code = response.status_code
            ok = 200 <= code < 300
            retry_after = None
            if not ok:
                retry_after = retry_after_seconds(response.headers.get("retry-after"), self.now())
            result = AttemptResult(
                "success" if ok else "http_error",
                code,
                None if ok else f"HTTP {code}",
                time.perf_counter() - start,
                excerpt,
                retry_after,
            )
        if observe:
            ATTEMPTS.labels(result.outcome).inc()
            ATTEMPT_SECONDS.observe(result.duration)
        return result

    async def ping(self, subscription: WebhookSubscription) -> AttemptResult:
        """Send a signed test event to a subscription now (not recorded as a delivery)."""
        msg_id = f"ping_{uuid.uuid4()}"
        event = {
            "specversion": "1.0",
            "id": msg_id,
            "source": f"/lapse/{subscription.tenant_id}",
            "type": PING_TYPE,
            "subject": f"webhooks/{subscription.id}",
            "time": self.now().isoformat(),
            "datacontenttype": "application/json",
            "data": {"subscription_id": subscription.id},
        }
        body = json.dumps(event, separators=(",", ":")).encode()
        previous = self.previous_secret(
            subscription.previous_secret, subscription.previous_secret_until, self.now()
        )
        return await self.attempt(
            subscription.url,
            msg_id,
            self.sealer.open(subscription.secret),
            body,
            previous=self.sealer.open(previous) if previous is not None else None,
            observe=False,
        )

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """Fan out and deliver until cancelled; database errors are logged and backed off."""
        poll = self.settings.delivery_poll_seconds
        backoff = poll
        while True:
            try:
                fanned = await self.fan_out()
                sent = await self.deliver_due()
            except Exception:
                log.exception("webhook delivery loop failed; retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(max(backoff * 2, 0.5), 30.0)
                continue
            backoff = poll
            if not fanned and not sent:
                await asyncio.sleep(poll)
