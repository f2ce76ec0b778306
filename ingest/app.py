"""The ingest HTTP service: authenticate, validate, produce to Kafka, answer after the ack.

``create_app(settings)`` builds nothing heavy: the lifespan creates the database engine (API
key lookups) and the Kafka producer, and stops them on shutdown. Routes:

- ``POST /v1/events``: one event; 202 once the broker acknowledged it.
- ``POST /v1/events/batch``: ``{"events": [...]}``, validated item by item.
- ``/healthz``, ``/readyz`` (ready once the producer is started), ``/metrics``.

Every error is an RFC 9457 problem document naming the field at fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from aiokafka import AIOKafkaProducer
from fastapi import Depends, FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, Field, TypeAdapter
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from ingest.body import (
    Event,
    Rejection,
    authorize,
    batch_items,
    parse_json,
    read_body,
    require_json,
    validate_event,
)
from ingest.producer import BrokerUnavailable, produce, start_producer
from lapse import __version__, problems
from lapse.auth import Principal, authenticate
from lapse.db.engine import create_engine, session_factory
from lapse.health import service_router
from lapse.problems import Problem
from lapse.settings import Settings
from schemas.events import EventBatch, MemberEvent

log = logging.getLogger(__name__)

SCOPE = "events:write"
RETRY_AFTER_SECONDS = 5

EVENTS = Counter(
    "lapse_ingest_events_total",
    "Events received by ingest, by kind and outcome (accepted, rejected, failed).",
    ["kind", "outcome"],
)
REQUEST_SECONDS = Histogram(
    "lapse_ingest_request_duration_seconds",
    "Time to answer an ingest request, by route template.",
    ["route"],
)


# --- state and dependencies ------------------------------------------------------------------


@dataclass(slots=True)
class IngestState:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    producer: AIOKafkaProducer | None = None


def get_state(request: Request) -> IngestState:
    state = request.app.state.ingest
    assert isinstance(state, IngestState)
    return state


StateDep = Annotated[IngestState, Depends(get_state)]

_bearer = HTTPBearer(auto_error=False, description=f"An API key with scope `{SCOPE}`.")
CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def require_writer(state: StateDep, credentials: CredentialsDep) -> Principal:
    """The caller's key: 401 when missing, unknown or revoked; 403 without ``events:write``."""
    if credentials is None:
        raise Problem(
            401,
            "Unauthorized",
            "send Authorization: Bearer <API key>",
            type_="unauthorized",
            headers={"WWW-Authenticate": 'Bearer realm="lapse"'},
        )
    try:
        async with state.sessions() as session:
            principal = await authenticate(session, credentials.credentials)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("API key lookup failed: %s", type(exc).__name__)
        raise Problem(
            503,
            "Service unavailable",
            "API keys cannot be checked right now; retry later",
            type_="unavailable",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        ) from None
    if principal is None:
        raise Problem(
            401,
            "Unauthorized",
            "unknown or revoked API key",
            type_="unauthorized",
            headers={"WWW-Authenticate": 'Bearer realm="lapse", error="invalid_token"'},
        )
    if not principal.allows(SCOPE):
        raise Problem(
            403,
            "Forbidden",
            f"the API key lacks scope {SCOPE}",
            type_="forbidden",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{SCOPE}"'},
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(require_writer)]


def get_producer(state: StateDep) -> AIOKafkaProducer:
    if state.producer is None:
        raise Problem(
            503,
            "Service unavailable",
            "not connected to Kafka yet; retry later",
            type_="unavailable",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return state.producer


ProducerDep = Annotated[AIOKafkaProducer, Depends(get_producer)]


# --- responses -------------------------------------------------------------------------------


class Accepted(BaseModel):
    accepted: int = Field(description="How many events the broker acknowledged.")
    event_ids: list[str] = Field(description="Their ids, in request order.")


class FieldError(BaseModel):
    pointer: str = Field(description="JSON pointer into the request body.")
    field: str | None = Field(description="The field, dotted (``events.3.site_id``).")
    message: str


class RejectedItem(BaseModel):
    index: int = Field(description="Position of the item in ``events``.")
    event_id: str | None = Field(description="The item's ``event_id``, when it had a string one.")
    reason: str = Field(description="``invalid`` (fix the event) or ``forbidden`` (wrong key).")
    errors: list[FieldError]


class BatchResult(Accepted):
    rejected: list[RejectedItem] = Field(description="Items not written; empty on 202.")


def _problem_doc(description: str) -> dict[str, Any]:
    return {"description": description, "content": {problems.PROBLEM_JSON: {}}}


_COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _problem_doc("Malformed JSON."),
    401: _problem_doc("Missing, unknown or revoked API key (with `WWW-Authenticate: Bearer`)."),
    403: _problem_doc("The key lacks `events:write`, or the event is another tenant's/site's."),
    413: _problem_doc("Body larger than the configured limit."),
    415: _problem_doc("Not `application/json`."),
    422: _problem_doc("Invalid event(s); `errors` names each field."),
    503: _problem_doc("Kafka did not acknowledge in time; retry after `Retry-After` seconds."),
}


def _body_schema(name: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
    }


# --- helpers ---------------------------------------------------------------------------------


def _deadline(settings: Settings) -> float:
    # The producer gives up after request_timeout_ms; a little slack covers the metadata wait.
    return settings.kafka_request_timeout_ms / 1000 + 0.5


async def _produce_or_503(
    producer: AIOKafkaProducer, settings: Settings, events: list[Event]
) -> None:
    try:
        await produce(producer, settings.events_topic, events, _deadline(settings))
    except BrokerUnavailable as exc:
        for event in events:
            EVENTS.labels(event.kind, "failed").inc()
        log.warning("broker did not acknowledge %d event(s): %s", len(events), exc)
        raise Problem(
            503,
            "Service unavailable",
            "Kafka did not acknowledge the event(s) in time; retry later (events are "
            "deduplicated by event_id, so resending is safe)",
            type_="broker-unavailable",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        ) from None
    for event in events:
        EVENTS.labels(event.kind, "accepted").inc()


async def _read_json(request: Request, settings: Settings) -> Any:
    require_json(request)
    return parse_json(await read_body(request, settings.max_body_bytes))


# --- routes ----------------------------------------------------------------------------------


async def post_event(
    request: Request, principal: PrincipalDep, state: StateDep, producer: ProducerDep
) -> Accepted:
    """Write one event (`AccessEvent` or `MembershipEvent`, told apart by `kind`).

    The answer is 202 only after Kafka acknowledged the write (acks=all). The event's
    `tenant_id` must be the API key's tenant, and for a key bound to a site an access event's
    `site_id` must be that site (403 naming the field otherwise). On 503 resend the same
    event: a timed-out write may still have landed, and consumers deduplicate by `event_id`.
    """
    try:
        raw = await _read_json(request, state.settings)
    except Problem:
        EVENTS.labels("unknown", "rejected").inc()
        raise
    result = validate_event(raw)
    refused = authorize(result, principal) if isinstance(result, Event) else result
    if refused is not None:
        EVENTS.labels(refused.kind, "rejected").inc()
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
            errors=refused.errors,
        )
    assert isinstance(result, Event)
    await _produce_or_503(producer, state.settings, [result])
    log.debug("accepted %s for key %s", result.event_id, principal.key_id)
    return Accepted(accepted=1, event_ids=[result.event_id])


async def post_batch(
    request: Request,
    response: Response,
    principal: PrincipalDep,
    state: StateDep,
    producer: ProducerDep,
) -> BatchResult:
    """Write up to `max_batch_events` events: `{"events": [...]}`, validated item by item.

    Valid items are written and acknowledged by Kafka; invalid ones are not written and are
    listed in `rejected`, each with its `index`, `event_id` (when it had one), `reason`
    (`invalid`: fix the event; `forbidden`: another tenant's or site's event for this key)
    and `errors` naming each field (`events.<index>.<field>`). One body shape for every
    success:

        {"accepted": 2, "event_ids": ["e1", "e3"],
         "rejected": [{"index": 1, "event_id": "e2", "reason": "invalid",
                       "errors": [{"pointer": "/events/1/site_id",
                                   "field": "events.1.site_id", "message": "Field required"}]}]}

    - **202**: every item accepted (`rejected` is empty).
    - **200**: some accepted, some rejected: check `rejected`; resend only those, fixed.
    - **422** problem: no item valid (or the envelope itself is wrong); `rejected` lists
      every item as above and `errors` all their field errors.
    - **503** problem: Kafka did not acknowledge every valid item; resend the whole batch
      (consumers deduplicate by `event_id`).
    """
    try:
        raw = await _read_json(request, state.settings)
        items = batch_items(raw, state.settings.max_batch_events)
    except Problem:
        EVENTS.labels("unknown", "rejected").inc()
        raise
    valid: list[Event] = []
    rejected: list[Rejection] = []
    for index, item in enumerate(items):
        prefix = ("events", index)
        result = validate_event(item, prefix)
        refused = authorize(result, principal, prefix) if isinstance(result, Event) else result
        if refused is None:
            assert isinstance(result, Event)
            valid.append(result)
        else:
            refused.index = index
            rejected.append(refused)
    for r in rejected:
        EVENTS.labels(r.kind, "rejected").inc()
    if not valid:
        raise Problem(
            422,
            "Invalid request",
            f"none of the {len(items)} events is valid",
            type_="validation",
            rejected=[r.as_item() for r in rejected],
            errors=[e for r in rejected for e in r.errors],
        )
    await _produce_or_503(producer, state.settings, valid)
    if rejected:
        response.status_code = 200
        log.info(
            "batch: %d accepted, %d rejected (key %s)", len(valid), len(rejected), principal.key_id
        )
    return BatchResult(
        accepted=len(valid),
        event_ids=[e.event_id for e in valid],
        rejected=[RejectedItem.model_validate(r.as_item()) for r in rejected],
    )


# --- timing middleware -----------------------------------------------------------------------


class _RequestTiming:
    """Observe every request to a matched route, labelled by its template (never the path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            route = getattr(scope.get("route"), "path", None)
            if isinstance(route, str):
                REQUEST_SECONDS.labels(route).observe(time.perf_counter() - start)


# --- the app ---------------------------------------------------------------------------------


def create_app(settings: Settings) -> FastAPI:
    """The ingest app; the engine and the producer are made by its lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        state = IngestState(settings, session_factory(engine))
        app.state.ingest = state

        async def connect() -> None:
            try:
                state.producer = await start_producer(settings)
            except Exception:
                log.exception("kafka producer start failed; ingest stays not ready")

        starter = asyncio.create_task(connect(), name="ingest-producer-start")
        try:
            yield
        finally:
            starter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starter
            producer, state.producer = state.producer, None
            if producer is not None:
                try:
                    async with asyncio.timeout(_deadline(settings) + 1):
                        await producer.stop()
                except Exception:
                    log.warning("kafka producer did not stop cleanly", exc_info=True)
            await engine.dispose()

    app = FastAPI(
        title="Lapse ingest",
        version=__version__,
        summary="Member events in: authenticated, validated, acknowledged by Kafka.",
        lifespan=lifespan,
    )
    problems.install(app)
    app.add_middleware(_RequestTiming)

    async def ready() -> str | None:
        state: IngestState | None = getattr(app.state, "ingest", None)
        if state is None or state.producer is None:
            return "kafka producer not started"
        return None

    app.include_router(service_router(ready))
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

    def openapi() -> dict[str, Any]:
        # The routes read their body themselves (size limit, item-by-item validation), so the
        # event schemas are added to the document here.
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
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
