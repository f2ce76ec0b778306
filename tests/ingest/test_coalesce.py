"""Single events of concurrent requests are admitted together, each answered on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from ingest.coalesce import Coalescer
from ingest.dedup import Key
from ingest.producer import BrokerUnavailable
from schemas import Event
from schemas.events import AccessEvent, parse_member_event
from tests.ingest.conftest import access_event, read_topic


class FakeWriter:
    """Records each flush; acknowledges, or fails while ``failing`` is set."""

    def __init__(self) -> None:
        self.flushes: list[list[Key]] = []
        self.written: set[Key] = set()
        self.failing = False
        self.gate = asyncio.Event()
        self.gate.set()

    async def write(self, events: Sequence[tuple[Key, Event]]) -> list[bool]:
        keys = [k for k, _ in events]
        self.flushes.append(keys)
        await self.gate.wait()
        if self.failing:
            raise BrokerUnavailable("broker paused")
        flags = [k in self.written for k in keys]
        self.written.update(keys)
        return flags


def event(event_id: str) -> AccessEvent:
    return AccessEvent(
        event_id=event_id,
        tenant_id="club",
        site_id="north",
        member_id="m-1",
        kind="gate_entry",
        occurred_at=datetime(2026, 3, 1, 18, tzinfo=UTC),
    )


async def test_concurrent_singles_share_flushes_and_each_gets_its_own_answer():
    writer = FakeWriter()
    singles = Coalescer(writer)  # type: ignore[arg-type]
    writer.gate.clear()  # hold the first flush so the others gather behind it
    first = asyncio.create_task(singles.admit(("club", "e0"), event("e0")))
    await asyncio.sleep(0)
    rest = [
        asyncio.create_task(singles.admit(("club", f"e{i}"), event(f"e{i}"))) for i in range(1, 50)
    ]
    await asyncio.sleep(0.01)
    writer.gate.set()
    answers = await asyncio.gather(first, *rest)
    assert answers == [False] * 50
    assert writer.flushes[0] == [("club", "e0")]
    assert writer.flushes[1] == [("club", f"e{i}") for i in range(1, 50)]
    assert len(writer.flushes) == 2


async def test_a_duplicate_within_a_flush_and_across_flushes_is_absorbed():
    writer = FakeWriter()
    singles = Coalescer(writer)  # type: ignore[arg-type]
    writer.gate.clear()
    a1 = asyncio.create_task(singles.admit(("club", "a"), event("a")))
    await asyncio.sleep(0)
    # While "a" is in flight: its repeat waits for it; "b" and its repeat share a flush.
    a2 = asyncio.create_task(singles.admit(("club", "a"), event("a")))
    b1 = asyncio.create_task(singles.admit(("club", "b"), event("b")))
    b2 = asyncio.create_task(singles.admit(("club", "b"), event("b")))
    # The same id of another tenant is another event.
    other = asyncio.create_task(singles.admit(("other-club", "b"), event("b")))
    await asyncio.sleep(0.01)
    writer.gate.set()
    assert list(await asyncio.gather(a1, a2, b1, b2, other)) == [False, True, False, True, False]
    assert writer.flushes == [[("club", "a")], [("club", "b"), ("other-club", "b")]]
    # Across flushes: the store (here the fake) knows "a" now.
    assert await singles.admit(("club", "a"), event("a")) is True


async def test_a_failed_flush_fails_each_request_and_a_waiting_retry_goes_through():
    writer = FakeWriter()
    singles = Coalescer(writer)  # type: ignore[arg-type]
    writer.gate.clear()
    writer.failing = True
    first = asyncio.create_task(singles.admit(("club", "x"), event("x")))
    await asyncio.sleep(0)
    same = asyncio.create_task(singles.admit(("club", "x"), event("x")))  # waits for "first"
    others = [
        asyncio.create_task(singles.admit(("club", f"y{i}"), event(f"y{i}"))) for i in range(3)
    ]
    await asyncio.sleep(0.01)
    writer.gate.set()
    for task in (first, *others):
        with pytest.raises(BrokerUnavailable):
            await task
    # "same" saw "first" fail, so it was queued itself; the broker is still down.
    with pytest.raises(BrokerUnavailable):
        await same
    assert writer.written == set()
    writer.failing = False
    assert await singles.admit(("club", "x"), event("x")) is False  # the retry is written
    assert writer.written == {("club", "x")}


async def test_concurrent_single_requests_with_repeats_reach_the_topic_once_each(ingest):
    post, auth, tenant = ingest.client.post, ingest.auth(), ingest.tenant
    events = [access_event(tenant, member_id=f"m-{i}") for i in range(40)]
    sent = events + events[:10]  # ten ids sent twice, concurrently
    answers = await asyncio.gather(*(post("/v1/events", json=e, headers=auth) for e in sent))
    assert [r.status_code for r in answers] == [202] * len(sent)
    assert [r.json()["event_ids"] for r in answers] == [[e["event_id"]] for e in sent]
    assert sum(r.json()["duplicates"] for r in answers) == 10

    records = await read_topic(ingest.settings, expected=40)
    ids = [parse_member_event(rec.value).event_id for rec in records]
    assert sorted(ids) == sorted(e["event_id"] for e in events)


async def test_single_requests_while_the_broker_stops_every_acknowledged_one_arrives(
    ingest, broker
):
    acked: set[str] = set()
    statuses: list[int] = []
    stop = asyncio.Event()

    async def client(n: int) -> None:
        seq = 0
        while not stop.is_set():
            e = access_event(ingest.tenant, member_id=f"m-{n}-{seq}")
            seq += 1
            r = await ingest.client.post("/v1/events", json=e, headers=ingest.auth())
            statuses.append(r.status_code)
            if r.is_success:
                acked.update(r.json()["event_ids"])
            else:
                assert r.status_code == 503, r.text
                assert int(r.headers["retry-after"]) > 0
                await asyncio.sleep(0.05)

    clients = [asyncio.create_task(client(n)) for n in range(8)]
    try:
        await asyncio.sleep(0.5)
        broker.pause()
        await asyncio.sleep(3.0)  # past request_timeout_ms=2000: flushes fail
        broker.resume()
        resumed = len(statuses)
        await asyncio.sleep(1.5)
    finally:
        stop.set()
        await asyncio.gather(*clients)
    assert 503 in statuses
    assert 202 in statuses[resumed:]  # and requests go through again
    records = await read_topic(ingest.settings, expected=len(acked), deadline=20)
    arrived = {parse_member_event(rec.value).event_id for rec in records}
    assert acked <= arrived, f"{len(acked - arrived)} acknowledged events missing"
