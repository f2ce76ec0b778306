"""The detector's Prometheus metrics (never a member id as a label)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter("lapse_detector_events_total", "Member events consumed, by outcome.", ["outcome"])
ALERTS = Counter("lapse_detector_alerts_total", "Alerts raised, by type.", ["type"])
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
