"""Per-key rate limits (token bucket counted in events) and the partitioner of the producer."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner

from ingest.limits import RateLimiter, retry_after
from ingest.producer import partition_for
from schemas.events import parse_member_event
from tests.ingest.conftest import access_event, read_topic, running_ingest


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_token_bucket_counts_events_refills_and_keeps_keys_apart():
    clock = Clock()
    limiter = RateLimiter(rate=10, burst=20, clock=clock)
    assert limiter.take("a", 15) == 0
    assert limiter.take("a", 10) == pytest.approx(0.5)  # 5 left, 5 short at 10/s
    assert limiter.take("b", 20) == 0  # another key has its own bucket
    clock.t += 0.5
    assert limiter.take("a", 10) == 0
    assert limiter.take("a", 1) == pytest.approx(0.1)
    clock.t += 100
    assert limiter.take("a", 25) == 0  # capped at the burst: never refused forever
    assert limiter.take("a", 1) > 0  # ... and the bucket does not fill beyond the burst
    assert retry_after(0.01) == "1" and retry_after(2.2) == "3"


async def test_a_key_over_its_rate_gets_429_and_nothing_is_written(settings, sessions, tenant):
    clock = Clock()
    settings = settings.model_copy(update={"rate_events_per_second": 10, "rate_burst": 20})
    async with running_ingest(settings, sessions, tenant, monotonic=clock) as ingest:
        post = ingest.client.post
        first = [access_event(tenant, member_id=f"m-{i}") for i in range(15)]
        r = await post("/v1/events/batch", json={"events": first}, headers=ingest.auth())
        assert r.status_code == 202, r.text

        refused = [access_event(tenant, member_id=f"x-{i}") for i in range(10)]
        r = await post("/v1/events/batch", json={"events": refused}, headers=ingest.auth())
        assert r.status_code == 429, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["retry-after"] == "1"
        assert "10 events/s" in r.json()["detail"]

        other_key = ingest.auth(await ingest.make_key())
        r = await post("/v1/events", json=access_event(tenant), headers=other_key)
        assert r.status_code == 202

        clock.t += 1.0
        r = await post("/v1/events/batch", json={"events": refused}, headers=ingest.auth())
        assert r.status_code == 202, r.text

        metrics = (await ingest.client.get("/metrics")).text
        assert "lapse_ingest_rate_limited_events_total" in metrics

        records = await read_topic(ingest.settings, expected=26)
        assert len(records) == 26
        assert len({parse_member_event(rec.value).event_id for rec in records}) == 26


@pytest.mark.parametrize("count", [1, 4, 12])
def test_partition_is_kafkas_default(count):
    partitions = list(range(count))
    for i in range(300):
        key = f"club-{i % 7}:m{i:05d}".encode()
        assert partition_for(key, partitions) == DefaultPartitioner()(key, partitions, partitions)
