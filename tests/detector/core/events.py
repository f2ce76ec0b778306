"""Small builders for member events in core tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas import AccessEvent, MembershipEvent

T0 = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)


def visit(
    member: str,
    day: float,
    *,
    tenant: str = "club",
    kind: str = "gate_entry",
    site: str = "s1",
    n: int = 0,
) -> AccessEvent:
    return AccessEvent(
        event_id=f"{member}-{day}-{kind}-{n}",
        tenant_id=tenant,
        member_id=member,
        site_id=site,
        kind=kind,
        occurred_at=T0 + timedelta(days=day),
    )


def membership(member: str, day: float, kind: str, *, tenant: str = "club") -> MembershipEvent:
    return MembershipEvent(
        event_id=f"{member}-{day}-{kind}",
        tenant_id=tenant,
        member_id=member,
        kind=kind,
        occurred_at=T0 + timedelta(days=day),
    )


def at(day: float) -> float:
    return (T0 + timedelta(days=day)).timestamp()
