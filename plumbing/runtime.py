"""Start-up pieces every service command shares: the broker to use and an HTTP server task."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from plumbing.broker import LocalBroker
from plumbing.kafka import ensure_topics
from plumbing.settings import Settings

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
    """Leaves signals to the command: several servers share one process in the demo.

    Logs where it listens once bound (uvicorn's own line is below our log level), and when
    it stops, so ops can see from the log alone which service answers where.
    """

    name = "http"

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.started:
            return  # uvicorn logged why (the address in use) and stops
        bound = [
            _address(sock.getsockname())
            for server in getattr(self, "servers", [])
            for sock in server.sockets or ()
        ]
        log.info("%s listening on %s", self.name, ", ".join(bound) or "?")

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        log.info("%s stopped", self.name)


def _address(sockname: Any) -> str:
    host, port = sockname[0], sockname[1]
    return f"http://[{host}]:{port}" if ":" in str(host) else f"http://{host}:{port}"


def http_server(app: FastAPI, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server to run as a task (``await server.serve()``) beside others."""
    # log_config=None: uvicorn logs through our handlers (JSON format, redaction).
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="on", log_config=None
    )
    server = _Server(config)
    server.name = getattr(app, "title", "http")  # "Lapse ingest", "Lapse API", ...
    return server


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


@asynccontextmanager
async def serve_on_free_port(app: Any) -> AsyncIterator[str]:
    """Run ``app`` on a real uvicorn server on a free loopback port; yield its base URL (the
    tests' and the benchmarks' servers: a receiver, an api under load)."""
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets whose proto says
    # TCP, and accepted sockets inherit it; without it Nagle plus delayed ACKs stall each
    # back-to-back response on a kept-alive connection by ~40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = http_server(app, "127.0.0.1", port)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server stopped during start-up")
        if time.monotonic() > deadline:
            raise TimeoutError("server did not start")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()
