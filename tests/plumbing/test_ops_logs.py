"""Logs that tell ops what happened: where a service listens, a checkpoint failing and
recovering (tests/plumbing/test_logs.py covers formats, redaction and the data paths)."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest
from fastapi import FastAPI

from detector.checkpoint import Checkpoint
from detector.runner import DetectorRunner, _Write
from plumbing.runtime import http_server


async def test_a_service_logs_where_it_listens_and_when_it_stops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="plumbing.runtime")
    server = http_server(FastAPI(title="Lapse test"), "127.0.0.1", 0)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started
    port = server.servers[0].sockets[0].getsockname()[1]
    server.should_exit = True
    await task
    messages = [r.getMessage() for r in caplog.records if r.name == "plumbing.runtime"]
    assert f"Lapse test listening on http://127.0.0.1:{port}" in messages
    assert messages[-1] == "Lapse test stopped"


async def test_a_failing_checkpoint_logs_once_with_its_traceback_then_its_recovery(
    settings, sessions, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = DetectorRunner(settings, sessions)
    calls = 0
    save = runner.store.save

    async def flaky(cp: Checkpoint) -> None:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise OSError("connection refused")
        await save(cp)

    monkeypatch.setattr(runner.store, "save", flaky)
    caplog.set_level(logging.INFO, logger="detector.runner")
    await runner._write(_Write(Checkpoint(), events=0, stamps=[]))
    assert calls == 4
    records = [r for r in caplog.records if r.name == "detector.runner"]
    with_traceback = [r for r in records if r.exc_info]
    assert len(with_traceback) == 1 and "checkpoint failed" in with_traceback[0].getMessage()
    again = [r.getMessage() for r in records if "failed again" in r.getMessage()]
    assert len(again) == 2 and "OSError" in again[0]
    (recovered,) = [r.getMessage() for r in records if "recovered" in r.getMessage()]
    assert re.fullmatch(
        r"checkpoint recovered after 3 failed attempt\(s\) over \d+\.\ds", recovered
    )
    assert not runner._write_failing
