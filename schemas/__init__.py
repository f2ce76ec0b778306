"""The contracts: events in, alerts out. Imports nothing of ours."""

from schemas.alerts import ALERT_TYPES, Alert, AlertCloudEvent, AlertType, Reason
from schemas.events import (
    ACCESS_KINDS,
    MEMBERSHIP_KINDS,
    AccessEvent,
    Event,
    EventBatch,
    MemberEvent,
    MembershipEvent,
    parse_member_event,
)
from schemas.ticks import TICK_KEY, SiteDataUntil, Tick, parse_tick, tick_record

__all__ = [
    "ACCESS_KINDS",
    "ALERT_TYPES",
    "MEMBERSHIP_KINDS",
    "TICK_KEY",
    "AccessEvent",
    "Alert",
    "AlertCloudEvent",
    "AlertType",
    "Event",
    "EventBatch",
    "MemberEvent",
    "MembershipEvent",
    "Reason",
    "SiteDataUntil",
    "Tick",
    "parse_member_event",
    "parse_tick",
    "tick_record",
]
