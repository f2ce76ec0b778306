"""Does the uplift report find the effect of reaching out? A closed loop on a simulated club.

    .venv/bin/python bench/uplift_bench.py [--members 3000] [--days 365] [--seed 1]
        [--holdout 0.1] [--effect 0.3] [--settle-days 60] [--uniform] [--keep DIR]

1. Simulate the club with no effect of contact (``simulate_files``) and replay it with the
   default policy (``risk``): the episodes the detector opens.
2. Each episode's arm is the holdout draw under ``--holdout`` (``schemas.holdout``);
   staff call every contact-arm episode a day after it opens.
3. Simulate the club again with those calls and ``--effect`` (``SimParams.contact_effect``,
   times its reason and severity factors; ``--uniform`` sets every factor to 1): a member
   who had stopped coming is brought back with that chance. Each member's story is the
   same up to their first call after they stopped, so the episodes opened before it keep
   their ids, hence their arms.
4. Replay it, store the alerts in a database whose holdout period starts with the history
   (arms assigned as the api assigns them), record the calls as actions, and read the
   report through ``api/read/uplift.py``, as ``/v1/uplift`` and ``lapse uplift`` do.

The truth to compare with: with factors of 1, contact adds ``effect`` times the share of
episodes whose member had stopped coming (and not cancelled) by the call: those come back
only if reached. ``expected_difference`` reads that share off the first run's episodes
and ``truth.csv``. Episodes the second run opens anew (members brought back who stop
again) are not called and dilute the difference a little.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
import tempfile
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy.ext.asyncio import AsyncSession

from api.read.uplift import UpliftRead, read_uplift, text_report
from detector.config import build_policy
from offline.replay import DEFAULT_LATENESS, replay_files
from records.outbox import add_alerts
from records.tables import ActionRow, HoldoutPeriodRow
from schemas import Alert
from schemas.holdout import HoldoutPeriod, arm_for, share_at
from simulator import SimParams, simulate_files

START = datetime(2025, 1, 1, tzinfo=UTC)
CALL_AFTER = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Loop:
    """Both runs of the closed loop."""

    start: datetime
    end: datetime
    before: list[Alert]  # the first run's alerts (no effect)
    after: list[Alert]  # the second run's (with the calls and the effect)
    called: dict[str, datetime]  # episode id -> when staff called (contact arm)
    truth_before: str  # the first run's truth.csv
    periods: list[HoldoutPeriod]  # the holdout's periods (shares) the arms were drawn under


def _replay(directory: str, tenant: str, end: datetime) -> list[Alert]:
    files = [os.path.join(directory, f) for f in ("access.csv", "membership.csv")]
    policy = build_policy({"policy": "risk"})
    return list(replay_files(files, tenant, policy, lateness=DEFAULT_LATENESS, until=end))


def closed_loop(
    out_dir: str,
    *,
    members: int,
    days: int,
    seed: int,
    share: float | list[HoldoutPeriod],
    effect: float,
    tenant: str = "club",
    params: SimParams | None = None,
    start: datetime = START,
) -> Loop:
    """``share``: one share from ``start`` on, or the holdout's periods (a manager who
    changed the share: each episode drawn under the share in force when it opened)."""
    p = params or SimParams()
    end = start + timedelta(days=days)
    periods = [HoldoutPeriod(start, None, share)] if isinstance(share, (int, float)) else share
    first = os.path.join(out_dir, "before")
    simulate_files(
        first,
        members=members,
        days=days,
        seed=seed,
        start=start,
        params=replace(p, contact_effect=0.0, holdout=0.0),
        tenant_id=tenant,
    )
    before = _replay(first, tenant, end)
    called: dict[str, datetime] = {}
    contacts: dict[str, list[tuple[datetime, str]]] = {}
    for a in before:
        if (
            a.type == "at_risk"
            and arm_for(a.episode_id, share_at(periods, a.raised_at)) == "contact"
        ):
            at = a.raised_at + CALL_AFTER
            called[a.episode_id] = at
            contacts.setdefault(a.member_id, []).append((at, a.severity))
    second = os.path.join(out_dir, "after")
    simulate_files(
        second,
        members=members,
        days=days,
        seed=seed,
        start=start,
        params=replace(p, contact_effect=effect, holdout=0.0),
        tenant_id=tenant,
        contacts=contacts,
    )
    after = _replay(second, tenant, end)
    return Loop(start, end, before, after, called, os.path.join(first, "truth.csv"), periods)


def _stamp(text: str) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None


def expected_difference(loop: Loop, effect: float, settle_days: float) -> float:
    """``effect`` x the share of the first run's settled episodes whose member had stopped
    coming and not cancelled by the call (the difference contact makes, factors of 1)."""
    with open(loop.truth_before, encoding="utf-8", newline="") as f:
        truth = {r["member_id"]: r for r in csv.DictReader(f)}
    horizon = loop.end - timedelta(days=settle_days)
    opened = [a for a in loop.before if a.type == "at_risk" and a.raised_at <= horizon]
    stopped = 0
    for a in opened:
        call = (a.raised_at + CALL_AFTER).timestamp()
        row = truth[a.member_id]
        last, cancelled = _stamp(row["last_visit_at"]), _stamp(row["cancelled_at"])
        if last is not None and last < call and (cancelled is None or call < cancelled):
            stopped += 1
    return effect * stopped / len(opened) if opened else 0.0


async def load(session: AsyncSession, loop: Loop, tenant: str) -> None:
    """The second run's alerts under the loop's holdout periods, and the calls."""
    for period in loop.periods:
        session.add(
            HoldoutPeriodRow(
                tenant_id=tenant,
                start=period.start,
                end=period.end,
                share=period.share,
                set_by="bench",
            )
        )
    await session.flush()
    # Alert ids are keys across tenants: one of the tenant's own, the episode id kept (the
    # arm is drawn from it).
    own = uuid.NAMESPACE_URL
    alerts = [
        a.model_copy(
            update={"tenant_id": tenant, "alert_id": str(uuid.uuid5(own, f"{tenant}:{a.alert_id}"))}
        )
        for a in loop.after
    ]
    await add_alerts(session, alerts)
    for a in alerts:
        at = loop.called.get(a.episode_id)
        if a.type == "at_risk" and at is not None:
            session.add(
                ActionRow(
                    id=str(uuid.uuid4()),
                    tenant_id=tenant,
                    episode_id=a.episode_id,
                    alert_id=a.alert_id,
                    member_id=a.member_id,
                    action="call",
                    note=None,
                    taken_at=at,
                    taken_by="bench",
                )
            )


UNIFORM = {"contact_effect_by_reason": (), "contact_effect_by_severity": ()}


async def measure(args: argparse.Namespace, out_dir: str) -> tuple[UpliftRead, Loop]:
    from plumbing.database import create_engine, session_factory
    from records.migrate import upgrade

    params = replace(SimParams(), **UNIFORM) if args.uniform else SimParams()  # type: ignore[arg-type]
    loop = await asyncio.to_thread(
        closed_loop,
        out_dir,
        members=args.members,
        days=args.days,
        seed=args.seed,
        share=args.holdout,
        effect=args.effect,
        params=params,
    )
    engine = create_engine(f"sqlite+aiosqlite:///{os.path.join(out_dir, 'uplift.db')}")
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            await load(session, loop, "club")
            await session.commit()
            read = await read_uplift(session, "club", as_of=loop.end, settle_days=args.settle_days)
    finally:
        await engine.dispose()
    return read, loop


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--members", type=int, default=3000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--holdout", type=float, default=0.1)
    ap.add_argument("--effect", type=float, default=0.3)
    ap.add_argument("--settle-days", type=float, default=60.0)
    ap.add_argument("--uniform", action="store_true", help="reason and severity factors of 1")
    ap.add_argument("--keep", help="keep the files here (default: a temporary directory)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = args.keep or tmp
        os.makedirs(out_dir, exist_ok=True)
        read, loop = asyncio.run(measure(args, out_dir))
        o = read.report.overall
        print(text_report(read))
        print()
        if o.interval is not None:
            print(f"interval width: {(o.interval.high - o.interval.low) * 100:.1f} points")
        if args.uniform:
            truth = expected_difference(loop, args.effect, args.settle_days)
            print(f"expected difference (effect x stopped share): {truth * 100:.1f} points")


if __name__ == "__main__":
    main()
