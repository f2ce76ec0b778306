"""Member events, the values of topic ``lapse.member-events.v1`` (key ``tenant_id:member_id``).

Both kinds share one topic so a member's gate scans and membership changes stay in order
on one partition; ``kind`` tells them apart (the two sets of kinds do not overlap).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

AccessKind = Literal["gate_entry", "gate_exit", "locker_open", "locker_close", "entry_denied"]
MembershipKind = Literal["joined", "frozen", "unfrozen", "cancelled", "payment_failed"]
CancelReason = Literal[
    "price", "service", "price_and_service", "moved", "health", "schedule", "competitor", "other"
]
ACCESS_KINDS: tuple[str, ...] = get_args(AccessKind)
MEMBERSHIP_KINDS: tuple[str, ...] = get_args(MembershipKind)

# Ids are opaque strings from the club's systems; bounded so a key stays a sane size. No
# control characters anywhere: PostgreSQL's text and jsonb cannot hold NUL, so one accepted
# NUL would fail every later write of that member (or, in an event id, its deduplication).
Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s:\x00-\x1f\x7f]+$")]
Label = Annotated[str, Field(max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")]

# The instants an event may carry. A garbage device clock (year 1, year 9999) would otherwise
# pass as valid and break later: its time converted to UTC, or its deadlines, leave
# ``datetime``'s range. Whether a time is plausible (not in the future) is ingest's check.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)  # excluded


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    event_id: Annotated[
        str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")
    ] = Field(description="Unique per event; the idempotency key.")
    tenant_id: Id
    member_id: Id = Field(description="The club's own member id, opaque to Lapse.")
    occurred_at: AwareDatetime = Field(
        ge=EARLIEST,
        lt=LATEST,
        description="ISO 8601 with a UTC offset; from 1900-01-01T00:00:00Z, before 9000.",
    )

    @property
    def key(self) -> str:
        """The Kafka key: one member's events stay ordered on one partition."""
        return f"{self.tenant_id}:{self.member_id}"


class AccessEvent(_Event):
    """A gate or locker scan."""

    kind: AccessKind
    site_id: Id
    device_id: Label | None = None
    source: Annotated[Label, Field(max_length=64)] | None = None


class MembershipEvent(_Event):
    """A change of membership reported by the club's system."""

    kind: MembershipKind
    reason: CancelReason | None = None
    # Free text: line breaks and tabs are fine, NUL is not (see ``Id``).
    note: Annotated[str, Field(max_length=2000, pattern=r"^[^\x00]*$")] | None = None


MemberEvent = Annotated[AccessEvent | MembershipEvent, Field(discriminator="kind")]
_member_event: TypeAdapter[AccessEvent | MembershipEvent] = TypeAdapter(MemberEvent)


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[MemberEvent] = Field(min_length=1)


def parse_member_event(raw: bytes | str) -> AccessEvent | MembershipEvent:
    """Parse one topic value (raises ``pydantic.ValidationError`` on bad input)."""
    return _member_event.validate_json(raw)
