"""Producing events and waiting for the broker's acknowledgement, within one deadline."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from lapse.kafka import make_producer
from lapse.settings import Settings
from schemas.events import AccessEvent, MembershipEvent

log = logging.getLogger(__name__)


class BrokerUnavailable(Exception):
    """The broker did not acknowledge every record in time: some may still be written."""


def _consume(fut: asyncio.Future[Any]) -> None:
    # A future nobody awaits any more (the deadline passed) must not log "never retrieved".
    if not fut.cancelled():
        fut.exception()


async def produce(
    producer: AIOKafkaProducer,
    topic: str,
    events: Sequence[AccessEvent | MembershipEvent],
    within: float,
) -> None:
    """Send ``events`` (key ``tenant:member``, value the JSON) and wait until all are acked.

    Raises :class:`BrokerUnavailable` when sending fails or ``within`` seconds pass first. A
    failure does not mean "not written" (a timed-out record may still land), so the client's
    retry must be harmless: consumers deduplicate by ``event_id``.
    """
    futures: list[asyncio.Future[Any]] = []
    try:
        async with asyncio.timeout(within):
            for event in events:
                fut = await producer.send(
                    topic, value=event.model_dump_json().encode(), key=event.key.encode()
                )
                futures.append(fut)
            # asyncio.wait leaves the futures alone when the deadline cancels it.
            await asyncio.wait(futures)
        for fut in futures:
            fut.result()
    except (KafkaError, TimeoutError) as exc:
        for fut in futures:
            fut.add_done_callback(_consume)
        raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc


async def start_producer(settings: Settings) -> AIOKafkaProducer:
    """A started producer; retries with backoff until the broker answers (or cancelled)."""
    delay = 0.5
    while True:
        producer = make_producer(settings)
        try:
            await producer.start()
        except KafkaError as exc:
            log.warning("kafka producer did not start (%r); retrying in %.1fs", exc, delay)
            try:
                await producer.stop()
            except Exception:  # the failed client may be half built; it is discarded anyway
                log.debug("stopping a producer that failed to start", exc_info=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
            continue
        log.info("kafka producer started (%s)", settings.kafka_bootstrap)
        return producer
