"""``lapse detector``: the runner plus its /healthz, /readyz and /metrics endpoints."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from detector.runner import DetectorRunner
from plumbing.database import create_engine, session_factory
from plumbing.health import service_router
from plumbing.runtime import http_server
from plumbing.settings import Settings


def create_app(runner: DetectorRunner) -> FastAPI:
    app = FastAPI(title="Lapse detector", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(service_router(runner.ready))
    return app


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set; the last checkpoint is written before returning."""
    engine = create_engine(settings.database_url)
    try:
        runner = DetectorRunner(settings, session_factory(engine))
        server = http_server(create_app(runner), settings.host, settings.detector_port)
        tasks = [asyncio.create_task(runner.run()), asyncio.create_task(server.serve())]
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        runner.stop()
        server.should_exit = True
        stopper.cancel()
        await asyncio.gather(*tasks)
    finally:
        await engine.dispose()
