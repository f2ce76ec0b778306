"""One settings object for every service, read from ``LAPSE_*`` environment variables.

Nothing reads the environment anywhere else: services take a ``Settings`` at start-up,
so tests can build one explicitly.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LAPSE_", extra="ignore")

    # Storage: SQLite is the embedded default for the demo; tests and production use PostgreSQL.
    database_url: str = "sqlite+aiosqlite:///./lapse-data/lapse.db"

    # Kafka. Empty bootstrap means "start the embedded local broker" (demo only).
    kafka_bootstrap: str = ""
    # Idempotent producer: keep it on for a real cluster. The local Tansu broker rejects it
    # with aiokafka, so the commands that start the embedded broker switch it off.
    kafka_idempotence: Literal["on", "off"] = "on"
    kafka_request_timeout_ms: int = 5000
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

    # Detector.
    policy: Literal["fixed"] = "fixed"
    # The fixed rule: a member with no visit for this many days is at risk. The founding case
    # study alerted at 1.5–2 months of absence; 45 days is its lower end.
    fixed_absence_days: float = 45.0
    # "wall": the real clock (live). "event": each partition's watermark, the latest event
    # time seen (replay, demo, tests). Either way events are held back by the allowed
    # lateness, so out-of-order arrivals within it change no alert; later ones are applied
    # at once as late events.
    clock: Literal["wall", "event"] = "wall"
    allowed_lateness_seconds: float = 300.0
    checkpoint_max_events: int = 5000
    checkpoint_interval_seconds: float = 1.0

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

    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
