"""Kafka clients: idempotence against the local broker, TLS and SASL options, ``lapse broker``.

TLS and SASL are checked on the clients' construction only: the embedded broker (Tansu 0.6)
did not complete a TLS handshake when started with a certificate, and its SASL needs users
provisioned in its storage, so no TLS or SASL connection is made here.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from plumbing import kafka
from plumbing.broker import LocalBroker, free_port
from plumbing.kafka import (
    IdempotenceRefused,
    client_options,
    make_admin,
    make_consumer,
    make_producer,
    start_producer,
)
from plumbing.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _settings(bootstrap: str, **more: object) -> Settings:
    return Settings(kafka_bootstrap=bootstrap, **more)  # type: ignore[arg-type]


# --- idempotence ------------------------------------------------------------------------------


async def test_auto_idempotence_falls_back_once_with_a_warning(
    broker: LocalBroker, caplog: pytest.LogCaptureFixture
) -> None:
    kafka._NO_IDEMPOTENCE.discard(broker.bootstrap)
    s = _settings(broker.bootstrap)  # the default: auto
    assert s.kafka_idempotence == "auto"
    caplog.set_level(logging.WARNING)
    first = await start_producer(s)
    try:
        assert first._txn_manager is None  # started without idempotence
        meta = await first.send_and_wait("lapse.test.idempotence", b"x")
        assert meta.offset >= 0
    finally:
        await first.stop()
    second = await start_producer(s)
    await second.stop()
    warnings = [r for r in caplog.records if "refused the idempotent producer" in r.message]
    assert len(warnings) == 1, [r.message for r in caplog.records]
    # aiokafka's own ERROR about the expected refusal is not passed on.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "LAPSE_KAFKA_IDEMPOTENCE=off" in warnings[0].getMessage()


async def test_idempotence_on_fails_with_what_to_set(broker: LocalBroker) -> None:
    with pytest.raises(IdempotenceRefused, match="LAPSE_KAFKA_IDEMPOTENCE=auto or off"):
        await start_producer(_settings(broker.bootstrap, kafka_idempotence="on"))


async def test_idempotence_off_never_asks(broker: LocalBroker) -> None:
    producer = await start_producer(_settings(broker.bootstrap, kafka_idempotence="off"))
    try:
        assert producer._txn_manager is None
    finally:
        await producer.stop()


async def test_auto_asks_for_idempotence_first() -> None:
    s = _settings("kafka.example:9092")
    kafka._NO_IDEMPOTENCE.discard(s.kafka_bootstrap)
    asks, plain = make_producer(s), make_producer(s.model_copy(update={"kafka_idempotence": "off"}))
    assert asks._txn_manager is not None and plain._txn_manager is None
    await asks.stop()
    await plain.stop()


async def test_auto_leaves_other_start_errors_to_the_callers_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """auto falls back on UnknownError only; other start errors reach the caller's retry."""
    from aiokafka.errors import KafkaConnectionError

    async def refuse(self: object) -> None:
        raise KafkaConnectionError("no broker")

    monkeypatch.setattr("aiokafka.AIOKafkaProducer.start", refuse)
    with pytest.raises(KafkaConnectionError):
        await start_producer(_settings("127.0.0.1:1"))


# --- timeouts ---------------------------------------------------------------------------------


async def test_request_and_bulk_producers_wait_differently() -> None:
    s = _settings(
        "kafka.example:9092",
        kafka_request_timeout_ms=30_000,
        kafka_bulk_request_timeout_ms=120_000,
        kafka_retry_backoff_ms=250,
    )
    request, bulk = make_producer(s), make_producer(s, bulk=True)
    assert request._request_timeout_ms == 30_000
    assert bulk._request_timeout_ms == 120_000
    assert request._sender._retry_backoff == 0.25
    await request.stop()
    await bulk.stop()


def test_ingest_answers_within_its_own_deadline_not_the_clients() -> None:
    from ingest.intake import produce_deadline

    s = _settings("kafka.example:9092", kafka_request_timeout_ms=60_000)
    assert produce_deadline(s) == s.ingest_ack_timeout_seconds == 5.0


# --- TLS and SASL -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A self-signed CA certificate and a client certificate and key, made by openssl."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=kafka.example", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, cert, key


def test_plaintext_by_default() -> None:
    options = client_options(_settings("kafka.example:9092"))
    assert options["security_protocol"] == "PLAINTEXT"
    assert "ssl_context" not in options and "sasl_mechanism" not in options


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_sasl_ssl_reaches_every_client(
    mechanism: str, tls_files: tuple[Path, Path, Path]
) -> None:
    ca, cert, key = tls_files
    s = _settings(
        "kafka.example:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="lapse",
        kafka_sasl_password=SecretStr("s3cret"),
        kafka_ssl_cafile=str(ca),
        kafka_ssl_certfile=str(cert),
        kafka_ssl_keyfile=str(key),
    )
    producer, consumer, admin = make_producer(s), make_consumer(s, group_id="g"), make_admin(s)
    clients = {"producer": producer.client, "consumer": consumer._client, "admin": admin._client}
    for name, client in clients.items():
        assert client._security_protocol == "SASL_SSL", name
        assert client._sasl_mechanism == mechanism, name
        assert client._sasl_plain_username == "lapse", name
        assert client._sasl_plain_password == "s3cret", name
        context = client._ssl_context
        assert isinstance(context, ssl.SSLContext), name
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname, name
        # The CA file was loaded: one certificate beyond none.
        assert context.cert_store_stats()["x509_ca"] >= 1, name
    await producer.stop()
    await consumer.stop()


def test_ssl_without_a_ca_file_verifies_with_the_system_store() -> None:
    s = _settings("kafka.example:9093", kafka_security_protocol="SSL")
    options = client_options(s)
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
    assert "sasl_mechanism" not in options


def test_hostname_check_can_be_turned_off_for_an_ip_listener() -> None:
    s = _settings("10.0.0.5:9093", kafka_security_protocol="SSL", kafka_ssl_check_hostname=False)
    context = client_options(s)["ssl_context"]
    assert context.check_hostname is False and context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_without_credentials_is_refused_at_start(protocol: str) -> None:
    s = _settings("kafka.example:9093", kafka_security_protocol=protocol)
    with pytest.raises(ValueError, match="LAPSE_KAFKA_SASL_USERNAME"):
        make_producer(s)


def test_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAPSE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("LAPSE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("LAPSE_KAFKA_SASL_USERNAME", "u")
    monkeypatch.setenv("LAPSE_KAFKA_SASL_PASSWORD", "p")
    s = Settings()
    assert s.kafka_security_protocol == "SASL_SSL" and s.kafka_sasl_mechanism == "SCRAM-SHA-512"
    assert "p" not in repr(s.kafka_sasl_password)


# --- lapse broker -----------------------------------------------------------------------------


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def _start_lapse_broker(port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lapse.cli", "broker", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert f"127.0.0.1:{port}" in line, (line, proc.stderr.read() if proc.stderr else "")
    assert _listening(port)
    return proc


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_lapse_broker_stops_its_broker_on_a_signal(how: signal.Signals) -> None:
    port = free_port()
    proc = _start_lapse_broker(port)
    children = _children(proc.pid)
    assert children, "the broker runs as a child process"
    proc.send_signal(how)
    assert proc.wait(timeout=10) == 0
    deadline = time.monotonic() + 5
    while (_listening(port) or not all(map(_gone, children))) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _listening(port), "a broker is still listening"
    assert all(map(_gone, children)), "the broker child outlived lapse broker"


def test_broker_dies_with_a_killed_parent() -> None:
    """SIGKILL runs no clean-up: the kernel's parent-death signal stops the broker."""
    port = free_port()
    proc = _start_lapse_broker(port)
    children = _children(proc.pid)
    assert children
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    while _listening(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _listening(port), "the broker outlived its killed parent"
