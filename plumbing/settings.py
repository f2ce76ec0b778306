"""One settings object for every service, read from ``LAPSE_*`` environment variables.

Nothing reads the environment anywhere else: services take a ``Settings`` at start-up,
so tests can build one explicitly.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# The policies a tenant may run (detector/config.py builds each): `LAPSE_POLICY` and
# `lapse replay --policy` accept these names.
PolicyName = Literal["fixed", "cadence", "bgnbd", "risk", "hybrid"]
POLICY_NAMES: tuple[str, ...] = get_args(PolicyName)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LAPSE_", extra="ignore")

    # Storage: SQLite is the embedded default for the demo; tests and production use PostgreSQL.
    database_url: str = "sqlite+aiosqlite:///./lapse-data/lapse.db"

    # Kafka. Empty bootstrap means "start the embedded local broker" (demo only).
    kafka_bootstrap: str = ""
    # --- Kafka clients: idempotence, timeouts, TLS and SASL (plumbing/kafka.py, issue 21) ---
    # Idempotent producer. "auto" asks for it and falls back to a plain producer, with a
    # warning, when the broker refuses it (the embedded local broker does); "on" requires it.
    kafka_idempotence: Literal["auto", "on", "off"] = "auto"
    # The client's request timeout: how long a produce request (and a record awaiting
    # delivery) is retried, every kafka_retry_backoff_ms, before it fails. Apache Kafka's
    # request.timeout.ms default (30 s): a busy broker is held, not given up on.
    kafka_request_timeout_ms: int = 30_000
    kafka_retry_backoff_ms: int = 250
    # Bulk producers (`lapse import`, the benches) wait longer: Apache Kafka's
    # delivery.timeout.ms default (2 min), since nobody waits on a single record there.
    kafka_bulk_request_timeout_ms: int = 120_000
    # How long ingest (HTTP, Kisi, the MQTT bridge) waits for the broker's acknowledgement
    # before answering 503 with Retry-After. Separate from the client's timeout: a device or
    # a webhook sender should hear back in seconds; the record may still land (dedup by
    # event_id absorbs the client's retry).
    ingest_ack_timeout_seconds: float = 5.0
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    kafka_ssl_key_password: SecretStr = SecretStr("")
    kafka_ssl_check_hostname: bool = True
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    # --- end of the Kafka clients block ---
    events_topic: str = "lapse.member-events.v1"
    alerts_topic: str = "lapse.alerts.v1"
    dlq_topic: str = "lapse.dlq.v1"
    topic_partitions: int = 12
    detector_group: str = "lapse-detector"

    # Services.
    host: str = "127.0.0.1"
    ingest_port: int = 8081
    api_port: int = 8080
    detector_port: int = 8082
    max_body_bytes: int = 1_048_576
    max_batch_events: int = 1000
    # Ingest: events whose occurred_at is further ahead than this are refused (a device clock
    # gone wrong); old events (a controller offline for days) are accepted as they are.
    max_future_skew_seconds: float = 300.0
    # Ingest: event_ids remembered for deduplication of client retries, in days.
    dedup_retention_days: float = 7.0
    # Ingest: token-bucket rate limit per API key, counted in events, per ingest instance.
    rate_events_per_second: float = 2000.0
    rate_burst: int = 10_000

    # MQTT bridge (`lapse mqtt-bridge`): the broker (mqtt:// or mqtts://, user:password@
    # allowed), the topic filter (its first `+` is the tenant, the second the site:
    # lapse/{tenant_id}/{site_id}/events), the tenants it bridges (JSON list; it refuses to
    # start with none: a tenant is enabled on purpose, its devices fenced by the MQTT broker's
    # ACLs), and the client id of its persistent session (unacked messages are redelivered).
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_topic: str = "lapse/+/+/events"
    mqtt_tenants: list[str] = Field(default_factory=list)
    mqtt_client_id: str = "lapse-mqtt-bridge"

    # Detector. The default policy for tenants the configuration file does not name:
    # "hybrid" (the 45-day rule made personal: later for members whose rhythm or past breaks
    # say so, earlier on a failed payment during the absence; it does not flood an
    # uncalibrated club, and `lapse calibrate` searches the club's own), "risk" (the modelled
    # risk that the member will not come back), "cadence" (the member's own rhythm), "fixed"
    # (no visit in N days) or "bgnbd".
    policy: PolicyName = "hybrid"
    # A JSON file of per-tenant policies and parameters (`lapse calibrate` writes one).
    detector_config: str = ""
    # The fixed rule: a member with no visit for this many days is at risk. The founding case
    # study alerted at 1.5–2 months of absence; 45 days is its lower end.
    fixed_absence_days: float = 45.0
    # Scans of a member less than this far apart are one visit (entry, locker, exit).
    visit_window_seconds: float = 10800.0
    # "wall": the real clock (live). "event": each partition's watermark, the latest event
    # time seen (replay, demo, tests). Either way events are held back by the allowed
    # lateness, so out-of-order arrivals within it change no alert; later ones are applied
    # at once as late events.
    clock: Literal["wall", "event"] = "wall"
    allowed_lateness_seconds: float = 300.0
    # With the wall clock, how often the detector writes the wall time to each partition it
    # owns (a tick record): a partition's clock moves only with the records read from it, so
    # a restart re-reading them decides the same. Alerts come due at most this much late;
    # 15 s is far below anything a member's absence (days) is measured in, and 12
    # partitions cost under one record a second. 0 writes none (something else ticks).
    tick_seconds: float = 15.0
    checkpoint_max_events: int = 5000
    checkpoint_interval_seconds: float = 1.0
    # After they leave (docs/after-they-leave.md): how often the detector re-reads win-back
    # plans and the tombstones of forgotten members, and a secret mixed into those tombstones
    # (SHA-256 of pepper:tenant:member) so short member ids cannot be guessed back from them.
    # Changing the pepper orphans existing tombstones: set it once.
    leavers_refresh_seconds: float = 10.0
    forget_pepper: SecretStr = SecretStr("")

    # Webhooks.
    webhook_allow_private: bool = False
    webhook_connect_timeout_seconds: float = 5.0
    webhook_read_timeout_seconds: float = 15.0
    # Seconds after the first failed attempt, per Standard Webhooks' suggested schedule
    # (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h); jitter is added on top.
    webhook_retry_schedule: list[float] = Field(
        default=[5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
    )
    delivery_poll_seconds: float = 0.2
    # Secret rotation: the previous secret keeps signing (a second signature) this long.
    webhook_secret_overlap_seconds: float = 86_400.0
    # Automatic disabling after sustained failure (Svix: every attempt failing for 5 days),
    # or after this many deliveries in a row ended failed; 0 turns either rule off.
    webhook_disable_after_failing_seconds: float = 5 * 86_400.0
    webhook_disable_after_failed_deliveries: int = 0
    # The alerts outbox relay onto ``alerts_topic`` (CloudEvents Kafka binding), run by the api.
    alerts_relay: bool = True
    alerts_relay_batch: int = 500

    # The staff page (api/page/): the key signing its session cookies (HMAC-SHA256). Empty
    # means a random one per process: sessions then end when the api restarts and do not
    # carry across instances behind a load balancer, so set it there.
    session_secret: SecretStr = SecretStr("")
    # How long a staff page session lasts before logging in again.
    session_hours: float = 12.0

    # Secrets at rest (docs/webhooks.md): webhook signing secrets are stored encrypted with
    # this key (Fernet; `lapse secrets new-key` prints one). Empty stores them in clear, with a
    # warning at start. To rotate, the old keys go in secret_keys_old (a JSON list): they still
    # open what they sealed until `lapse secrets reseal` re-encrypts it with the new key.
    secret_key: SecretStr = SecretStr("")
    secret_keys_old: list[SecretStr] = Field(default_factory=list)

    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
