"""Helpers for the api tests: real uvicorn servers on free ports, a webhook receiver, data."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from plumbing.runtime import serve_on_free_port
from records.api_keys import create_key
from records.outbox import add_alerts
from schemas import Alert, Reason


async def until(
    check: Callable[[], Awaitable[Any]], *, within: float = 5.0, interval: float = 0.02
) -> Any:
    """Poll ``check`` until it returns something truthy; return that."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s (last: {value!r})")
        await asyncio.sleep(interval)


serve = serve_on_free_port  # the tests' name for it


class Clock:
    """An injected clock (``create_app(now=...)``) that stands still until the test moves
    ``now``; it starts at the wall time, so what it stamps (a signature's timestamp) stays
    near the receivers' clocks."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """A webhook endpoint answering from a script of statuses (then 200), recording requests."""

    script: list[int | tuple[int, dict[str, str]]] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append(Received(dict(request.headers), body, time.monotonic()))
        step = self.script.pop(0) if self.script else 200
        status, headers = step if isinstance(step, tuple) else (step, {})
        text = "ok" if status < 300 else f"failing with {status} " + "x" * 1000
        return Response(text, status_code=status, headers=headers)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.handle, methods=["POST"])])


async def make_key(
    sessions: async_sessionmaker[AsyncSession],
    tenant: str,
    scopes: tuple[str, ...] = ("alerts:read", "webhooks:manage"),
    site_id: str | None = None,
) -> str:
    async with sessions() as session:
        plain, _ = await create_key(session, tenant, scopes=scopes, site_id=site_id)
        await session.commit()
    return plain


def make_alert(
    tenant: str,
    member: str = "m-1",
    *,
    type_: str = "at_risk",
    site: str | None = "site-1",
) -> Alert:
    return Alert.model_validate(
        {
            "alert_id": str(uuid.uuid4()),
            "episode_id": str(uuid.uuid4()),
            "type": type_,
            "tenant_id": tenant,
            "member_id": member,
            "site_id": site,
            "severity": "medium",
            "policy": "fixed",
            "reasons": [Reason(code="absent_beyond_threshold", figures={"days_absent": 46})],
            "deadline": datetime(2025, 1, 1, tzinfo=UTC),
            "raised_at": datetime.now(UTC),
        }
    )


async def store_alerts(sessions: async_sessionmaker[AsyncSession], alerts: list[Alert]) -> None:
    async with sessions() as session:
        await add_alerts(session, alerts)
        await session.commit()


@asynccontextmanager
async def api(app: FastAPI, key: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """Serve the api app and yield a client for it (authenticated when ``key`` is given)."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    async with (
        serve(app) as base,
        httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client,
    ):
        assert (await client.get("/healthz")).status_code == 200
        yield client


def episode(
    tenant: str,
    member: str,
    types: list[str],
    *,
    start: datetime,
    step_days: float = 10.0,
    site: str | None = "site-1",
    reason: str = "absent_beyond_threshold",
) -> list[Alert]:
    """The alerts of one episode (same episode id), ``step_days`` apart in event time."""
    from datetime import timedelta

    eid = str(uuid.uuid4())
    severity = {"at_risk": "medium", "escalated": "high", "recovered": "low", "churned": "high"}
    out = []
    for i, t in enumerate(types):
        out.append(
            Alert.model_validate(
                {
                    "alert_id": str(uuid.uuid4()),
                    "episode_id": eid,
                    "type": t,
                    "tenant_id": tenant,
                    "member_id": member,
                    "site_id": site,
                    "severity": severity[t],
                    "policy": "fixed",
                    "reasons": [Reason(code=reason if i == 0 else f"member_{t}", figures={})],
                    "deadline": None,
                    "raised_at": start + timedelta(days=step_days * i),
                }
            )
        )
    return out
