"""A small simulated club: members with their own rhythm, some who drift away, some who return.

Good enough for the demo and the tests' streams; the calibration work grows it into the
documented simulator (``lapse simulate``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas import AccessEvent, MembershipEvent

Event = AccessEvent | MembershipEvent


@dataclass(frozen=True, slots=True)
class Fate:
    """What the simulation decided for one member (the ground truth)."""

    member_id: str
    usual_gap_days: float
    stops_on_day: float | None
    returns_on_day: float | None
    cancels_on_day: float | None


def simulate_club(
    tenant_id: str,
    start: datetime,
    *,
    members: int,
    days: int,
    seed: int = 7,
    sites: tuple[str, ...] = ("north",),
    duplicates: float = 0.02,
) -> tuple[list[Event], list[Fate]]:
    """Events sorted by time (duplicates re-sent later), and each member's fate."""
    rnd = random.Random(seed)
    events: list[Event] = []
    fates: list[Fate] = []
    for i in range(members):
        member = f"m{i:04d}"
        site = sites[i % len(sites)]
        gap = rnd.choice([2.0, 3.0, 4.0, 7.0])
        stop = rnd.choice([None, None, days * 0.3, days * 0.5])
        back = stop + rnd.choice([25, 40]) if stop is not None and rnd.random() < 0.5 else None
        cancel = stop + 45 if stop is not None and back is None and rnd.random() < 0.5 else None
        fates.append(Fate(member, gap, stop, back, cancel))
        joined = rnd.uniform(0, 3)
        events.append(
            MembershipEvent(
                event_id=f"{tenant_id}-{member}-joined",
                tenant_id=tenant_id,
                member_id=member,
                kind="joined",
                occurred_at=start + timedelta(days=joined),
            )
        )
        if cancel is not None and cancel < days:
            events.append(
                MembershipEvent(
                    event_id=f"{tenant_id}-{member}-cancelled",
                    tenant_id=tenant_id,
                    member_id=member,
                    kind="cancelled",
                    reason=rnd.choice(["price", "service", "moved", "schedule"]),
                    occurred_at=start + timedelta(days=cancel),
                )
            )
        day, n = joined + rnd.uniform(0, gap), 0
        while day < days:
            away = stop is not None and day >= stop and (back is None or day < back)
            if not away:
                at = start + timedelta(days=int(day), hours=rnd.uniform(6, 21))
                for kind, minutes in (("gate_entry", 0), ("gate_exit", rnd.randint(40, 100))):
                    events.append(
                        AccessEvent(
                            event_id=f"{tenant_id}-{member}-{n}-{kind}",
                            tenant_id=tenant_id,
                            member_id=member,
                            site_id=site,
                            kind=kind,
                            occurred_at=at + timedelta(minutes=minutes),
                        )
                    )
                n += 1
            day += max(0.5, rnd.gauss(gap, gap / 3))
    events.sort(key=lambda e: e.occurred_at)
    resent = rnd.sample(events, k=int(len(events) * duplicates))
    return events + resent, fates
