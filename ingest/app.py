"""The ingest HTTP service: authenticate, validate, produce to Kafka, answer after the ack.

``create_app(settings)`` builds nothing heavy: the lifespan creates the database engine (API
keys, deduplication, sites) and the Kafka producer, and stops them on shutdown. Routes:

- ``POST /v1/events``: one event; 202 once the broker acknowledged it.
- ``POST /v1/events/batch``: ``{"events": [...]}``, validated item by item.
- ``PUT /v1/sites/{site_id}``, ``GET /v1/sites``: sites and their time zones (``admin``).
- ``/healthz``, ``/readyz`` (ready once the producer is started), ``/metrics``.

Every event goes through :class:`ingest.intake.Intake` (validation, authorisation, the
future-skew rule, deduplication by ``event_id``, produce, remember); the routes add the body
limits and the per-key rate limit. Every error is an RFC 9457 problem naming the field.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, Field, TypeAdapter

from ingest import dedup, sites
from ingest.body import batch_items, parse_json, read_body, require_json, valid_batch
from ingest.coalesce import Coalescer
from ingest.data_until import SiteProgress
from ingest.deps import (
    KEY_CACHE_SECONDS,
    IngestState,
    KeyCache,
    get_state,
    intake_for,
    principal_of,
    unavailable,
)
from ingest.intake import (
    EVENTS,
    Admission,
    Intake,
    Writer,
    produce_deadline,
    purge_dedup,
    utcnow,
)
from ingest.kisi import kisi_router
from ingest.limits import RateLimiter, retry_after
from ingest.producer import BrokerUnavailable, start_producer
from plumbing import openapi, problems
from plumbing.database import create_engine, session_factory
from plumbing.health import service_router
from plumbing.http_metrics import RequestMetrics
from plumbing.problems import Problem
from plumbing.runtime import tune_gc
from plumbing.settings import Settings
from records.api_keys import Principal
from schemas.events import EventBatch, MemberEvent

log = logging.getLogger(__name__)

REQUEST_SECONDS = Histogram(
    "lapse_ingest_request_duration_seconds",
    "Time to answer an ingest request, by route template and status.",
    ["route", "status"],
)
RATE_LIMITED = Counter(
    "lapse_ingest_rate_limited_events_total",
    "Events refused with 429 because their API key exceeded its rate.",
)
DEDUP_PURGE_EVERY_SECONDS = 3600.0


# --- responses -------------------------------------------------------------------------------


class Accepted(BaseModel):
    accepted: int = Field(
        description="How many events are acknowledged by the broker (now or by an earlier "
        "request with the same `event_id`)."
    )
    event_ids: list[str] = Field(description="Their ids, in request order.")
    duplicates: int = Field(
        0,
        description="How many of them were already acknowledged (a retry, or a repeat within "
        "the batch) and were not written again.",
    )


class FieldError(BaseModel):
    pointer: str = Field(description="JSON pointer into the request body.")
    field: str | None = Field(description="The field, dotted (``events.3.site_id``).")
    message: str


class RejectedItem(BaseModel):
    index: int = Field(description="Position of the item in ``events``.")
    event_id: str | None = Field(description="The item's ``event_id``, when it had a string one.")
    reason: str = Field(
        description="``invalid`` (fix the event), ``forbidden`` (another tenant's or site's "
        "event for this key) or ``future`` (``occurred_at`` too far ahead: fix the clock)."
    )
    errors: list[FieldError]


class BatchResult(Accepted):
    rejected: list[RejectedItem] = Field(description="Items not written; empty on 202.")


_problem_doc = openapi.problem_response


_COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _problem_doc("Malformed JSON."),
    401: _problem_doc("Missing, unknown or revoked API key (with `WWW-Authenticate: Bearer`)."),
    403: _problem_doc("The key lacks `events:write`, or the event is another tenant's/site's."),
    413: _problem_doc("Body larger than the configured limit."),
    415: _problem_doc("Not `application/json`."),
    422: _problem_doc("Invalid event(s), or `occurred_at` too far in the future."),
    429: _problem_doc("The key's rate limit is exceeded; retry after `Retry-After` seconds."),
    503: _problem_doc("Kafka did not acknowledge in time; retry after `Retry-After` seconds."),
}


def _body_schema(name: str) -> dict[str, Any]:
    return {
        "security": [{"HTTPBearer": []}],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        },
    }


# --- helpers ---------------------------------------------------------------------------------


async def _read_json(request: Request, settings: Settings) -> Any:
    return _parse(await _read(request, settings))


async def _read(request: Request, settings: Settings) -> bytes:
    try:
        require_json(request)
        return await read_body(request, settings.max_body_bytes)
    except Problem:
        EVENTS.labels("unknown", "rejected").inc()
        raise


def _parse(body: bytes) -> Any:
    try:
        return parse_json(body)
    except Problem:
        EVENTS.labels("unknown", "rejected").inc()
        raise


def _charge(state: IngestState, principal: Principal, events: int) -> None:
    """429 when the key has spent its tokens; nothing is read further nor produced."""
    wait = state.limiter.take(principal.key_id, events)
    if wait > 0:
        RATE_LIMITED.inc(events)
        raise Problem(
            429,
            "Too many requests",
            f"the API key's limit is {state.limiter.rate:g} events/s (bursts of "
            f"{state.limiter.burst}); retry after the Retry-After seconds",
            type_="rate-limited",
            headers={"Retry-After": retry_after(wait)},
        )


async def _admit(
    intake: Intake, items: Sequence[object], principal: Principal, prefix: Any
) -> Admission:
    try:
        return await intake.admit(items, principal, prefix)
    except BrokerUnavailable as exc:
        log.warning("broker did not acknowledge a request's event(s): %s", exc)
        raise unavailable(
            "Kafka did not acknowledge the event(s) in time; retry later (events are "
            "deduplicated by event_id, so resending is safe)",
            type_="broker-unavailable",
        ) from None


# --- routes ----------------------------------------------------------------------------------


async def _writer(request: Request) -> tuple[IngestState, Principal, Intake]:
    """The caller's state, key and intake, checked in the order dependencies would (401/403,
    then 503 until Kafka is connected) but without FastAPI's dependency resolution: in the
    profile of the single-event benchmark it took more CPU than the endpoint itself. The
    OpenAPI document still names the bearer scheme (``_body_schema``)."""
    state = get_state(request)
    principal = await principal_of(state, request, "events:write")
    return state, principal, intake_for(state)


def _json(model: BaseModel, status: int) -> Response:
    """The answer serialised once by pydantic (FastAPI would validate it again first)."""
    return Response(model.model_dump_json(), status, media_type="application/json")


async def post_event(request: Request) -> Response:
    """Write one event (`AccessEvent` or `MembershipEvent`, told apart by `kind`).

    The answer is 202 only after Kafka acknowledged the write (acks=all). The event's
    `tenant_id` must be the API key's tenant, and for a key bound to a site an access event's
    `site_id` must be that site (403 naming the field otherwise). `occurred_at` must carry a
    UTC offset and be at most `LAPSE_MAX_FUTURE_SKEW_SECONDS` ahead (422 otherwise); old
    events are accepted. On 503 resend the same event: an `event_id` already acknowledged is
    answered 202 with `duplicates: 1` and not written again.
    """
    state, principal, intake = await _writer(request)
    raw = await _read_json(request, state.settings)
    _charge(state, principal, 1)
    admission = await _admit(intake, [raw], principal, None)
    if admission.rejected:
        refused = admission.rejected[0]
        fields = ", ".join(e["field"] or "body" for e in refused.errors[:5])
        if refused.reason == "forbidden":
            raise Problem(
                403,
                "Forbidden",
                f"the API key may not write this event: {fields}",
                type_="forbidden",
                errors=refused.errors,
            )
        raise Problem(
            422,
            "Invalid request",
            f"invalid field(s): {fields}",
            type_="validation",
            reason=refused.reason,
            errors=refused.errors,
        )
    accepted = Accepted(accepted=1, event_ids=admission.event_ids, duplicates=admission.duplicates)
    return _json(accepted, 202)


async def post_batch(request: Request) -> Response:
    """Write up to `max_batch_events` events: `{"events": [...]}`, validated item by item.

    Valid items are written and acknowledged by Kafka; invalid ones are not written and are
    listed in `rejected`, each with its `index`, `event_id` (when it had one), `reason`
    (`invalid`: fix the event; `forbidden`: another tenant's or site's event for this key;
    `future`: `occurred_at` too far ahead, fix the device clock) and `errors` naming each
    field (`events.<index>.<field>`). Items whose `event_id` was already acknowledged (a
    retry) or repeats one earlier in the batch count as accepted and in `duplicates`, and
    are not written again. One body shape for every success:

        {"accepted": 2, "event_ids": ["e1", "e3"], "duplicates": 0,
         "rejected": [{"index": 1, "event_id": "e2", "reason": "invalid",
                       "errors": [{"pointer": "/events/1/site_id",
                                   "field": "events.1.site_id", "message": "Field required"}]}]}

    - **202**: every item accepted (`rejected` is empty).
    - **200**: some accepted, some rejected: check `rejected`; resend only those, fixed.
    - **422** problem: no item valid (or the envelope itself is wrong); `rejected` lists
      every item as above and `errors` all their field errors.
    - **429** problem: the key's rate limit (counted in events) is spent; nothing written.
    - **503** problem: Kafka did not acknowledge every valid item; resend the whole batch
      (acknowledged ids are deduplicated).
    """
    state, principal, intake = await _writer(request)
    body = await _read(request, state.settings)
    limit = state.settings.max_batch_events
    # Every item valid (the usual batch): validated whole; else item by item, to say why.
    items: Sequence[object] | None = valid_batch(body, limit)
    if items is None:
        raw = _parse(body)
        try:
            items = list(batch_items(raw, limit))
        except Problem:
            EVENTS.labels("unknown", "rejected").inc()
            raise
    _charge(state, principal, len(items))
    admission = await _admit(intake, items, principal, ("events",))
    rejected = [r.as_item() for r in admission.rejected]
    if not admission.accepted:
        raise Problem(
            422,
            "Invalid request",
            f"none of the {len(items)} events is valid",
            type_="validation",
            rejected=rejected,
            errors=[e for r in admission.rejected for e in r.errors],
        )
    status = 202
    if rejected:
        status = 200  # the intake logged one line summing up the rejections
    result = BatchResult(
        accepted=len(admission.accepted),
        event_ids=admission.event_ids,
        duplicates=admission.duplicates,
        rejected=[RejectedItem.model_validate(r) for r in rejected],
    )
    return _json(result, status)


# --- the app ---------------------------------------------------------------------------------


def create_app(
    settings: Settings,
    *,
    now: Callable[[], datetime] = utcnow,
    monotonic: Callable[[], float] = time.monotonic,
    key_cache_seconds: float = KEY_CACHE_SECONDS,
) -> FastAPI:
    """The ingest app; the engine and the producer are made by its lifespan.

    ``now`` (wall clock: the future-skew rule, dedup timestamps) and ``monotonic`` (the rate
    limiter, the API key cache) are injectable for tests.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        limiter = RateLimiter(settings.rate_events_per_second, settings.rate_burst, monotonic)
        sessions = session_factory(engine)
        state = IngestState(
            settings, sessions, limiter, now, keys=KeyCache(key_cache_seconds, monotonic)
        )
        state.store = dedup.open_store(settings.database_url, sessions)
        state.progress = SiteProgress(state.store.data_reached, now)
        app.state.ingest = state
        tune_gc()
        starter = asyncio.create_task(_connect(state), name="ingest-producer-start")
        purger = asyncio.create_task(_purge_periodically(state), name="ingest-dedup-purge")
        try:
            yield
        finally:
            for task in (starter, purger):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await _close(state)
            await engine.dispose()

    app = FastAPI(
        title="Lapse ingest",
        version=openapi.package_version(),
        summary="Member events in: authenticated, validated, acknowledged by Kafka.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    problems.install(app)
    openapi.install_docs(app)
    app.add_middleware(RequestMetrics, histogram=REQUEST_SECONDS)

    async def ready() -> str | None:
        state: IngestState | None = getattr(app.state, "ingest", None)
        if state is None or state.producer is None:
            return "kafka producer not started"
        return None

    app.include_router(service_router(ready))
    _add_event_routes(app)
    app.include_router(sites.router)
    app.include_router(kisi_router(settings))
    app.openapi = lambda: _document(app)  # type: ignore[method-assign]
    return app


# --- the lifespan's steps --------------------------------------------------------------------


async def _connect(state: IngestState) -> None:
    """Start the Kafka producer (in the background: the app answers /healthz meanwhile, and
    /readyz once this is done); a failure leaves the ingest not ready, and is logged."""
    try:
        producer = await start_producer(state.settings)
    except Exception:
        log.exception("kafka producer start failed; ingest stays not ready")
        return
    assert state.store is not None
    writer = Writer(state.settings, state.store, producer, state.now, state.progress)
    state.singles = Coalescer(writer)
    state.producer = producer


async def _purge_periodically(state: IngestState) -> None:
    """Forget deduplication ids past the retention, every ``DEDUP_PURGE_EVERY_SECONDS``.
    Every instance purges; the DELETE is idempotent, so that is harmless."""
    while True:
        try:
            gone = await purge_dedup(state.sessions, state.settings, state.now())
            if gone:
                log.info("forgot %d deduplication id(s) past the retention", gone)
        except Exception:
            log.warning("purging old deduplication ids failed", exc_info=True)
        await asyncio.sleep(DEDUP_PURGE_EVERY_SECONDS)


async def _close(state: IngestState) -> None:
    """Flush the coalescer, stop the producer (within the produce deadline), write how far
    the sites' acknowledged data reached and close the dedup store, in that order: what is
    pending is written before what it needs goes."""
    producer, state.producer = state.producer, None
    if state.singles is not None:
        await state.singles.close()
    if producer is not None:
        try:
            async with asyncio.timeout(produce_deadline(state.settings) + 1):
                await producer.stop()
        except Exception:
            log.warning("kafka producer did not stop cleanly", exc_info=True)
    if state.progress is not None:
        await state.progress.close()
    if state.store is not None:
        await state.store.close()


# --- the routes and their document -----------------------------------------------------------


def _add_event_routes(app: FastAPI) -> None:
    app.add_api_route(
        "/v1/events",
        post_event,
        methods=["POST"],
        status_code=202,
        response_model=Accepted,
        responses=_COMMON_ERRORS,
        openapi_extra=_body_schema("MemberEvent"),
        tags=["events"],
    )
    app.add_api_route(
        "/v1/events/batch",
        post_batch,
        methods=["POST"],
        status_code=202,
        response_model=BatchResult,
        responses={
            200: {"description": "Partly accepted: see `rejected`.", "model": BatchResult},
            **_COMMON_ERRORS,
        },
        openapi_extra=_body_schema("EventBatch"),
        tags=["events"],
    )


def _document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, made once. The routes read their body themselves (size limit,
    item-by-item validation), so the event schemas are added to the document here."""
    if app.openapi_schema is None:
        doc = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            routes=app.routes,
        )
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        template = "#/components/schemas/{model}"
        for name, adapter in (
            ("MemberEvent", TypeAdapter(MemberEvent)),
            ("EventBatch", TypeAdapter(EventBatch)),
        ):
            schema = adapter.json_schema(ref_template=template)
            schemas.update(schema.pop("$defs", {}))
            schemas[name] = schema
        app.openapi_schema = openapi.finish(doc)
    return app.openapi_schema
