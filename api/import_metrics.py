"""Imports in Prometheus: the api reports ``import_runs`` when scraped.

``lapse import`` is a command, not a service: nothing scrapes it, and it may run from a
laptop. What it does is recorded anyway, per file, in ``import_runs`` (rows accepted and
rejected by reason, running or done: the table that lets a run resume), so the api reads that
table at each scrape and exposes it. Every api instance reports the same figures: aggregate
with ``max``, not ``sum``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.read.imports import import_runs

log = logging.getLogger(__name__)

FILES = Gauge(
    "lapse_import_files",
    "Files of `lapse import` recorded in import_runs, by tenant and status (running, done).",
    ["tenant", "status"],
)
ROWS = Gauge(
    "lapse_import_rows",
    "Rows of `lapse import` so far, by tenant and outcome (accepted, rejected).",
    ["tenant", "outcome"],
)
REJECTED = Gauge(
    "lapse_import_rejected_rows",
    "Rows `lapse import` rejected, by tenant and reason (docs/history-csv.md).",
    ["tenant", "reason"],
)


async def refresh(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Set the gauges from ``import_runs`` (one row per imported file: a small table)."""
    files: Counter[tuple[str, str]] = Counter()
    rows: Counter[tuple[str, str]] = Counter()
    rejected: Counter[tuple[str, str]] = Counter()
    async with sessions() as session:
        runs = await import_runs(session)
    for tenant, status, accepted, refused, by_reason in runs:
        files[tenant, status] += 1
        rows[tenant, "accepted"] += accepted
        rows[tenant, "rejected"] += refused
        for reason, n in (by_reason or {}).items():
            if isinstance(n, int):
                rejected[tenant, str(reason)] += n
    for gauge, values in ((FILES, files), (ROWS, rows), (REJECTED, rejected)):
        gauge.clear()  # a tenant erased or a run deleted leaves no stale series
        for labels, value in values.items():
            gauge.labels(*labels).set(value)


def import_metrics(app: FastAPI) -> Callable[[], Awaitable[None]]:
    """The api's ``before_scrape`` hook: refresh from the app's database, never raise."""

    async def before_scrape() -> None:
        sessions = getattr(app.state, "sessions", None)
        if sessions is None:
            return
        try:
            await refresh(sessions)
        except Exception as exc:  # the scrape answers with the last figures
            log.warning("import metrics not refreshed: %s", type(exc).__name__)

    return before_scrape
