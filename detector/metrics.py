"""The detector's Prometheus metrics (never a member id as a label).

Labels are bounded: alert ``type`` (4) × ``severity`` (3), ``outcome`` (2), ``partition``
(the events topic's partitions, a dozen).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter("lapse_detector_events_total", "Member events consumed, by outcome.", ["outcome"])
ALERTS = Counter(
    "lapse_detector_alerts_total", "Alerts raised, by type and severity.", ["type", "severity"]
)
CHECKPOINT_SECONDS = Histogram(
    "lapse_detector_checkpoint_duration_seconds",
    "Time to write one checkpoint (state, offsets and alerts in one transaction).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CHECKPOINT_FAILURES = Counter(
    "lapse_detector_checkpoint_failures_total", "Checkpoints that failed and were retried."
)
MEMBERS = Gauge("lapse_detector_members_tracked", "Members whose state this instance holds.")
TIMERS = Gauge("lapse_detector_timers_pending", "Member timers waiting to fire.")
PARTITIONS = Gauge("lapse_detector_partitions_assigned", "Partitions this instance owns.")
DLQ = Counter("lapse_detector_dlq_total", "Poison messages sent to the dead-letter topic.")
# Meaningless on the embedded broker, which reports wrong end offsets (BROKER.md): there the
# gauge exists and is clamped at zero, nothing more.
CONSUMER_LAG = Gauge(
    "lapse_detector_consumer_lag_messages",
    "Events in an owned partition not consumed yet (log end offset minus position), set "
    "after each poll.",
    ["partition"],
)
# Sampled, to stay off the per-event path: the oldest and the newest record of every fetched
# batch per partition, so its _count counts samples, not events.
END_TO_END_SECONDS = Histogram(
    "lapse_detector_end_to_end_latency_seconds",
    "From the Kafka record timestamp (ingest's produce time) to the checkpoint that made "
    "the event durable; sampled: oldest and newest record of each fetched batch per partition.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
