"""``/healthz``, ``/readyz`` and ``/metrics``, the same on every service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from plumbing.problems import problem_response

ReadyCheck = Callable[[], Awaitable[str | None]]
BeforeScrape = Callable[[], Awaitable[None]]


def service_router(
    ready: ReadyCheck,
    registry: CollectorRegistry = REGISTRY,
    *,
    before_scrape: BeforeScrape | None = None,
) -> APIRouter:
    """``ready`` returns None when the service can take traffic, else the reason it cannot.

    ``before_scrape`` refreshes metrics read from elsewhere (the database) before
    ``/metrics`` answers; it must not raise (a scrape still answers with what it has).
    """
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", response_model=None)
    async def readyz() -> Response | dict[str, str]:
        reason = await ready()
        if reason is not None:
            return problem_response(503, "Not ready", reason, headers={"Retry-After": "1"})
        return {"status": "ready"}

    @router.get("/metrics")
    async def metrics() -> Response:
        if before_scrape is not None:
            await before_scrape()
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
