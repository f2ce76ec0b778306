"""Kafka client helpers: producers, consumers and the admin client built the same way by
every service, with the same security settings (TLS, SASL) and timeouts.

Two kinds of producer (issue 21, "under load"): a request producer, whose caller (ingest,
the MQTT bridge) stops waiting after its own short deadline and answers 503, and a bulk
producer (``lapse import``, the benches) with a longer request timeout, so a broker busy
with a large import is waited for rather than given up on. Either way the client retries a
timed-out request (every ``kafka_retry_backoff_ms``) until its request timeout has passed:
a busy broker is held, not abandoned.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Iterator
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, UnknownError
from aiokafka.helpers import create_ssl_context

from plumbing.settings import Settings

log = logging.getLogger(__name__)

# Bootstrap addresses found to refuse the idempotent producer in this process (auto mode),
# so the fallback is logged once, not at every producer start.
_NO_IDEMPOTENCE: set[str] = set()


class IdempotenceRefused(KafkaError):  # type: ignore[misc]  # aiokafka is untyped
    """The broker refused the idempotent producer and ``LAPSE_KAFKA_IDEMPOTENCE=on``."""

    retriable = False


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for ``SSL`` and ``SASL_SSL`` (None for the plaintext protocols).

    Without ``LAPSE_KAFKA_SSL_CAFILE`` the system's CA store verifies the brokers (managed
    clusters: Confluent Cloud, MSK, Aiven's public CA); a client certificate and key are for
    clusters that authenticate clients by mutual TLS.
    """
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    password = settings.kafka_ssl_key_password.get_secret_value() or None
    context: ssl.SSLContext = create_ssl_context(
        cafile=settings.kafka_ssl_cafile or None,
        certfile=settings.kafka_ssl_certfile or None,
        keyfile=settings.kafka_ssl_keyfile or None,
        password=password,
    )
    if not settings.kafka_ssl_check_hostname:
        context.check_hostname = False
    return context


def client_options(settings: Settings) -> dict[str, Any]:
    """Connection options shared by every producer, consumer and admin client.

    Raises ValueError for a SASL protocol without credentials: better at start than as an
    authentication loop against the cluster.
    """
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": protocol,
        "retry_backoff_ms": settings.kafka_retry_backoff_ms,
    }
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password.get_secret_value()
        if not settings.kafka_sasl_username or not password:
            raise ValueError(
                f"LAPSE_KAFKA_SECURITY_PROTOCOL={protocol} needs LAPSE_KAFKA_SASL_USERNAME and "
                "LAPSE_KAFKA_SASL_PASSWORD"
            )
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = password
    return options


def make_producer(
    settings: Settings, *, bulk: bool = False, idempotent: bool | None = None
) -> AIOKafkaProducer:
    """acks=all; idempotent unless turned off (or found refused, in auto mode).

    ``bulk`` producers (import, benches) take ``kafka_bulk_request_timeout_ms``: how long a
    record may wait for the broker, retried, before it fails.
    """
    if idempotent is None:
        idempotent = settings.kafka_idempotence == "on" or (
            settings.kafka_idempotence == "auto" and settings.kafka_bootstrap not in _NO_IDEMPOTENCE
        )
    timeout = settings.kafka_bulk_request_timeout_ms if bulk else settings.kafka_request_timeout_ms
    return AIOKafkaProducer(
        **client_options(settings),
        acks="all",
        enable_idempotence=idempotent,
        request_timeout_ms=timeout,
        linger_ms=2,
        compression_type=None,
    )


async def start_producer(settings: Settings, *, bulk: bool = False) -> AIOKafkaProducer:
    """A started producer (one attempt; callers that wait for the broker retry this).

    ``LAPSE_KAFKA_IDEMPOTENCE=auto`` (the default) asks for the idempotent producer and,
    should the broker refuse it (the embedded local broker answers ``InitProducerId`` with
    UnknownError), starts a plain one instead with a warning: retries may then write a record
    twice, which ingest and the detector absorb by ``event_id``. ``on`` fails instead, with
    an error that says what to set.
    """
    producer = make_producer(settings, bulk=bulk)
    probing = settings.kafka_idempotence == "auto" and producer._txn_manager is not None
    try:
        with _quiet_refusal() if probing else contextlib.nullcontext():
            await producer.start()
        return producer
    except UnknownError:
        await _discard(producer)
        if settings.kafka_idempotence == "on":
            raise IdempotenceRefused(
                f"the broker at {settings.kafka_bootstrap} refused the idempotent producer "
                "(InitProducerId: UnknownError; the embedded local broker does): set "
                "LAPSE_KAFKA_IDEMPOTENCE=auto or off"
            ) from None
        if settings.kafka_idempotence == "off":
            raise
        if settings.kafka_bootstrap not in _NO_IDEMPOTENCE:
            _NO_IDEMPOTENCE.add(settings.kafka_bootstrap)
            log.warning(
                "the broker at %s refused the idempotent producer (InitProducerId: "
                "UnknownError); producing without idempotence (retried records may be "
                "written twice; consumers deduplicate by event_id). Set "
                "LAPSE_KAFKA_IDEMPOTENCE=off to say so, or use a broker that supports it",
                settings.kafka_bootstrap,
            )
    except BaseException:
        await _discard(producer)
        raise
    producer = make_producer(settings, bulk=bulk, idempotent=False)
    try:
        await producer.start()
    except BaseException:
        await _discard(producer)
        raise
    return producer


class _DropRefusal(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "InitProducerIdRequest" not in record.getMessage()


@contextlib.contextmanager
def _quiet_refusal() -> Iterator[None]:
    """Hide aiokafka's ERROR about the refused InitProducerId while auto mode asks for it:
    the refusal is expected there, and our own warning says what it means."""
    sender = logging.getLogger("aiokafka.producer.sender")
    drop = _DropRefusal()
    sender.addFilter(drop)
    try:
        yield
    finally:
        sender.removeFilter(drop)


async def _discard(producer: AIOKafkaProducer) -> None:
    """Stop a producer that failed to start (it may be half built; it is dropped anyway)."""
    try:
        await producer.stop()
    except Exception:
        log.debug("stopping a producer that failed to start", exc_info=True)


def make_consumer(settings: Settings, **kwargs: Any) -> AIOKafkaConsumer:
    # Never "latest": the local broker reports wrong end offsets; positions come from the
    # database anyway.
    return AIOKafkaConsumer(
        **client_options(settings),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **kwargs,
    )


def make_admin(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_options(settings))


async def ensure_topics(settings: Settings) -> None:
    """Create the topics explicitly: auto-created ones get the broker's default partitions."""
    admin = make_admin(settings)
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
