"""Kafka client helpers: producers and consumers built the same way by every service."""

from __future__ import annotations

import contextlib
import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from lapse.settings import Settings

log = logging.getLogger(__name__)


def make_producer(settings: Settings) -> AIOKafkaProducer:
    """acks=all; idempotent unless turned off (the embedded broker turns it off)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=settings.kafka_idempotence != "off",
        request_timeout_ms=settings.kafka_request_timeout_ms,
        linger_ms=2,
        compression_type=None,
    )


def make_consumer(settings: Settings, **kwargs: object) -> AIOKafkaConsumer:
    # Never "latest": the local broker reports wrong end offsets; positions come from the
    # database anyway.
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **kwargs,
    )


async def ensure_topics(settings: Settings) -> None:
    """Create the topics explicitly: auto-created ones get the broker's default partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(settings.events_topic, settings.topic_partitions, 1),
            NewTopic(settings.alerts_topic, settings.topic_partitions, 1),
            NewTopic(settings.dlq_topic, 1, 1),
        ]
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            log.info("created topics %s", [t.name for t in missing])
    finally:
        await admin.close()
