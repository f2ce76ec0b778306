"""Start-up pieces every service command shares: the broker to use and an HTTP server task."""

from __future__ import annotations

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
