"""The contracts: events in, alerts out. Imports nothing of ours."""

from schemas.alerts import ALERT_TYPES, Alert, AlertCloudEvent, AlertType, Reason
from schemas.events import (
    ACCESS_KINDS,
    MEMBERSHIP_KINDS,
    AccessEvent,
    EventBatch,
    MemberEvent,
    MembershipEvent,
    parse_member_event,
)

__all__ = [
    "ACCESS_KINDS",
    "ALERT_TYPES",
    "MEMBERSHIP_KINDS",
    "AccessEvent",
    "Alert",
    "AlertCloudEvent",
    "AlertType",
    "EventBatch",
    "MemberEvent",
    "MembershipEvent",
    "Reason",
    "parse_member_event",
]
