"""The api service application. Nothing is built at import time: call :func:`create_app`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from sqlalchemy import text

from api.delivery import USER_AGENT, Dispatcher
from api.import_metrics import import_metrics
from api.page import access as page_access
from api.page import admin as page_admin
from api.page import holdout as page_holdout
from api.page import routes as page
from api.relay import run_relay
from api.routers import (
    actions,
    alerts,
    external_ids,
    holdout,
    leavers,
    members,
    profiles,
    uplift,
    webhooks,
    winback,
)
from api.routers import forget as forget_routes
from plumbing import health, openapi, problems
from plumbing.database import create_engine, session_factory
from plumbing.http_metrics import API_REQUEST_SECONDS, RequestMetrics
from plumbing.settings import Settings

log = logging.getLogger(__name__)


def delivery_client(settings: Settings) -> httpx.AsyncClient:
    """The HTTP client webhooks go out on: no redirects, no proxies from the environment."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            connect=settings.webhook_connect_timeout_seconds,
            read=settings.webhook_read_timeout_seconds,
            write=settings.webhook_read_timeout_seconds,
            pool=settings.webhook_connect_timeout_seconds,
        ),
        follow_redirects=False,
        trust_env=False,
        headers={"user-agent": USER_AGENT},
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
    )


def create_app(
    settings: Settings, *, deliver: bool = True, now: Callable[[], datetime] | None = None
) -> FastAPI:
    """The api: alerts, members, actions and webhooks.

    With ``deliver`` it also runs the webhook delivery worker, and (``alerts_relay``, with a
    Kafka bootstrap) the relay of the alerts outbox onto the alerts topic.

    ``now`` is the app's clock (default: the wall clock): the delivery worker's and the
    webhook routes' (a rotated secret's overlap, which secrets sign), through the Dispatcher,
    and the staff page's (a locked-out login's expiry), as ``app.state.clock``.
    """
    worker: asyncio.Task[None] | None = None
    relay: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal worker, relay
        engine = create_engine(settings.database_url)
        client = delivery_client(settings)
        sessions = session_factory(engine)
        dispatcher = Dispatcher(settings, sessions, client, now=now)
        if not dispatcher.sealer.enabled:
            log.warning(
                "LAPSE_SECRET_KEY is not set: webhook secrets are stored unencrypted "
                "(docs/webhooks.md, `lapse secrets new-key`)"
            )
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessions = sessions
        app.state.dispatcher = dispatcher
        if deliver:
            worker = asyncio.create_task(dispatcher.run(), name="lapse-webhook-delivery")
            if settings.alerts_relay and settings.kafka_bootstrap:
                relay = asyncio.create_task(run_relay(settings, sessions), name="lapse-relay")
            elif settings.alerts_relay:
                log.warning("alerts relay off: no Kafka bootstrap (LAPSE_KAFKA_BOOTSTRAP)")
        try:
            yield
        finally:
            if relay is not None:
                # An unmarked batch is republished by the next relay (same ce_id).
                relay.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await relay
                relay = None
            if worker is not None:
                # A delivery in flight is simply retried once its lease lapses.
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
                worker = None
            await client.aclose()
            await engine.dispose()

    async def ready() -> str | None:
        if worker is not None and worker.done():
            return "the webhook delivery worker stopped"
        if relay is not None and relay.done():
            return "the alerts relay stopped"
        engine = getattr(app.state, "engine", None)
        if engine is None:
            return "starting"
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            log.warning("readiness: database unreachable: %s", exc)
            return "database unreachable"
        return None

    app = FastAPI(
        title="Lapse API",
        version=openapi.package_version(),
        summary="Alerts, members, actions and webhooks; the staff page under /staff.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.clock = now
    problems.install(app)
    openapi.install_docs(app)
    app.add_middleware(RequestMetrics, histogram=API_REQUEST_SECONDS)
    app.include_router(health.service_router(ready, before_scrape=import_metrics(app)))
    app.include_router(alerts.router)
    app.include_router(alerts.episodes_router)
    app.include_router(actions.router)
    app.include_router(members.router)
    app.include_router(external_ids.router)
    app.include_router(profiles.router)
    app.include_router(webhooks.router)
    app.include_router(leavers.router)
    app.include_router(winback.router)
    app.include_router(holdout.router)
    app.include_router(uplift.router)
    app.include_router(forget_routes.router)
    app.include_router(page.router)  # the staff page, /staff (api/page/)
    app.include_router(page_admin.router)  # its administration, /staff/admin
    app.include_router(page_holdout.router)  # the control group, /staff/reports/holdout
    app.add_exception_handler(page_access.PageRefusal, page_access.refusal_handler)

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi.finish(
                get_openapi(
                    title=app.title, version=app.version, summary=app.summary, routes=app.routes
                )
            )
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
    return app
