"""Start-up pieces every service command shares: the broker to use and an HTTP server task."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import uvicorn
from fastapi import FastAPI

from lapse.broker import LocalBroker
from lapse.kafka import ensure_topics
from lapse.settings import Settings

log = logging.getLogger(__name__)


@asynccontextmanager
async def kafka_ready(settings: Settings) -> AsyncIterator[Settings]:
    """Yield settings whose bootstrap reaches a broker with Lapse's topics created.

    With no ``LAPSE_KAFKA_BOOTSTRAP`` the embedded local broker is started for the duration
    (memory only, idempotent producer off: it rejects aiokafka's request).
    """
    if settings.kafka_bootstrap:
        await ensure_topics(settings)
        yield settings
        return
    with LocalBroker() as broker:
        log.info("started the embedded local broker on %s (memory only)", broker.bootstrap)
        local = settings.model_copy(
            update={"kafka_bootstrap": broker.bootstrap, "kafka_idempotence": "off"}
        )
        await ensure_topics(local)
        yield local


class _Server(uvicorn.Server):
    """Leaves signals to the command: several servers share one process in the demo."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def http_server(app: FastAPI, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server to run as a task (``await server.serve()``) beside others."""
    # log_config=None: uvicorn logs through our handlers (JSON format, redaction).
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="on", log_config=None
    )
    return _Server(config)


GC_THRESHOLD = (20_000, 20, 20)


def tune_gc() -> None:
    """Fewer, cheaper garbage collections for a service that allocates per event.

    A batch of events allocates tens of thousands of containers; with the default
    thresholds (700, 10, 10) that is dozens of collections per batch, and the full ones walk
    every object of the process. Everything built by start-up (modules, the app, the engine)
    lives as long as the process, so it is frozen out of the collector's reach, and the
    thresholds are raised (never lowered: the demo runs every service in one process).
    Measured: ingest (bench/ingest_bench.py) ~23k events per server CPU second before, 31k-45k
    after; the detector (bench/detector_bench.py e2e): see docs/benchmarks.md.
    """
    gc.freeze()
    gc.set_threshold(*(max(a, b) for a, b in zip(gc.get_threshold(), GC_THRESHOLD, strict=True)))
