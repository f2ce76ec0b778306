"""A simulated club written as the files a club would export: ``access.csv``,
``membership.csv``, ``truth.csv`` (the ground truth), ``contacts.csv`` (when staff reach out)
and ``simulation.json`` (every parameter of the run); one of the named profiles; and the
demo's club as events in memory.

Rows go to an external sort keyed by the time each row is *delivered* (its ``occurred_at``
plus any delivery delay), in sorted runs spilled to temporary files and merged at the end:
memory stays bounded whatever the number of events, and the files come out in delivery
order, which is what a gate export looks like (mostly in time order, a few rows late).
"""

from __future__ import annotations

import csv
import functools
import heapq
import json
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import IO, Any
from zoneinfo import ZoneInfo

from schemas import AccessEvent, Event, MembershipEvent
from simulator.club import DAY, Club, make_club, to_s
from simulator.members import simulate_former, simulate_member
from simulator.params import PROFILES, SimParams
from simulator.truth import TRUTH_COLUMNS, ContactTruth, Fate, MemberHistory, Truth


@dataclass(slots=True)
class Summary:
    members: int = 0
    access_rows: int = 0
    membership_rows: int = 0
    dropouts: int = 0
    cancellations: int = 0
    gap_days_total: float = 0.0
    gap_n: int = 0
    returned: int = 0
    late_rows: int = 0
    very_late_rows: int = 0
    former: int = 0  # joined and left in the records before the window (membership rows only)
    seconds: float = 0.0

    def add_fate(self, t: Truth) -> None:
        """Count a member of the window: a dropout, a cancellation (and its gap from the last
        visit), a return."""
        if t.dropout != "none":
            self.dropouts += 1
        if t.cancelled is not None:
            self.cancellations += 1
            if t.last_visit is not None:
                self.gap_days_total += (t.cancelled - t.last_visit) / DAY
                self.gap_n += 1
        if t.returned is not None:
            self.returned += 1

    @property
    def events(self) -> int:
        return self.access_rows + self.membership_rows

    @property
    def mean_gap_days(self) -> float | None:
        return self.gap_days_total / self.gap_n if self.gap_n else None


class _Spool:
    """An external sort: lines keyed by a non-negative integer, spilled in sorted runs.

    Each line is stored as ``key (12 digits) + text``, so runs sort and merge as plain
    strings (ties by the text: the order is a function of the rows, never of the runs).
    """

    KEY = 12

    def __init__(self, directory: str, name: str, run_lines: int) -> None:
        self._dir, self._name, self._run_lines = directory, name, run_lines
        self._buffer: list[str] = []
        self._runs: list[str] = []

    def add(self, key: int, text: str) -> None:
        self._buffer.append(f"{key:012d}{text}\n")
        if len(self._buffer) >= self._run_lines:
            self._spill()

    def _spill(self) -> None:
        self._buffer.sort()
        path = os.path.join(self._dir, f"{self._name}.{len(self._runs)}.run")
        with open(path, "w", encoding="utf-8", newline="") as out:
            out.writelines(self._buffer)
        self._runs.append(path)
        self._buffer = []

    def write(self, out: IO[str]) -> None:
        k = self.KEY
        if not self._runs:
            self._buffer.sort()
            out.writelines(line[k:] for line in self._buffer)
            self._buffer = []
            return
        if self._buffer:
            self._spill()
        files = [open(path, encoding="utf-8", newline="") for path in self._runs]  # noqa: SIM115
        try:
            out.writelines(line[k:] for line in heapq.merge(*files))
        finally:
            for f in files:
                f.close()
            for path in self._runs:
                os.remove(path)


@functools.cache
def _clock() -> list[str]:
    return [
        f"{h:02d}:{m:02d}:{s:02d}+00:00" for h in range(24) for m in range(60) for s in range(60)
    ]


class _Times:
    """Seconds after the base midnight as ISO 8601 UTC text: dates cached, times of day
    from a table (formatting is most of the cost of writing ten million rows). Negative
    seconds are days before the base: members of long standing joined then.

    With a time zone the seconds are local wall-clock time: the text is that time with the
    zone's offset then (``+01:00`` in winter, ``+02:00`` in summer), and :meth:`utc` gives
    the UTC seconds (after the base's UTC midnight) that files are sorted by.
    """

    def __init__(self, base: date, zone: ZoneInfo | None = None) -> None:
        self._base = base
        self._zone = zone
        self._days: dict[int, str] = {}
        self._clock = _clock() if zone is None else [c[:8] for c in _clock()]
        # Per day: the offset at its start and at its end (they differ on a DST change day).
        self._offsets: dict[int, tuple[int, int]] = {}
        self._texts: dict[int, str] = {}

    def offset(self, seconds: int) -> int:
        """The zone's UTC offset (seconds east) at this local wall-clock time."""
        zone = self._zone
        if zone is None:
            return 0
        day, rem = divmod(seconds, DAY)
        pair = self._offsets.get(day)
        if pair is None:
            d = self._base + timedelta(days=day)
            a = datetime(d.year, d.month, d.day, tzinfo=zone).utcoffset()
            e = d + timedelta(days=1)
            b = datetime(e.year, e.month, e.day, tzinfo=zone).utcoffset()
            assert a is not None and b is not None
            pair = self._offsets[day] = (int(a.total_seconds()), int(b.total_seconds()))
        if pair[0] == pair[1]:
            return pair[0]
        d = self._base + timedelta(days=day)
        local = datetime(d.year, d.month, d.day, tzinfo=zone) + timedelta(seconds=rem)
        off = local.utcoffset()
        assert off is not None
        return int(off.total_seconds())

    def utc(self, seconds: int) -> int:
        return seconds - self.offset(seconds)

    def __call__(self, seconds: int) -> str:
        day, rem = divmod(seconds, DAY)
        text = self._days.get(day)
        if text is None:
            text = self._days[day] = (self._base + timedelta(days=day)).isoformat() + "T"
        if self._zone is None:
            return text + self._clock[rem]
        off = self.offset(seconds)
        suffix = self._texts.get(off)
        if suffix is None:
            sign, mag = ("+" if off >= 0 else "-"), abs(off)
            suffix = self._texts[off] = f"{sign}{mag // 3600:02d}:{mag % 3600 // 60:02d}"
        return text + self._clock[rem] + suffix


def simulate_files(
    out_dir: str,
    *,
    members: int,
    days: int,
    seed: int,
    start: datetime,
    sites: int = 1,
    params: SimParams | None = None,
    tenant_id: str = "club",
    run_lines: int = 1_000_000,
    profile: str | None = None,
    progress: Callable[[int], None] | None = None,
    contacts: dict[str, list[tuple[datetime, str]]] | None = None,
) -> Summary:
    """Write ``access.csv``, ``membership.csv``, ``truth.csv`` and ``simulation.json``.

    ``contacts`` (member id -> when staff reached them and the episode's severity,
    ``--contacts``) replaces the simulator's stand-in for staff; with it, or a contact
    effect or holdout in ``params``, ``contacts.csv`` says whom staff reached and what it did.

    Members are simulated one by one; truth rows are written as they come (member order),
    access and membership rows go through an external sort by delivery time (runs of
    ``run_lines`` lines), so memory is bounded by ``run_lines`` whatever the size.
    """
    started = time.perf_counter()
    p = params or SimParams()
    site_ids = tuple(f"site{i + 1}" for i in range(sites)) if sites > 1 else ("site1",)
    club = _files_club(p, seed, start, days, site_ids, members, tenant_id, contacts)
    reaching = contacts is not None or bool(p.contact_effect) or bool(p.holdout)
    contact_lines: list[str] = []
    os.makedirs(out_dir, exist_ok=True)
    fmt = _Times(club.base, club.zone)
    # Sort keys are non-negative: with records older than the window (or a zone east of
    # UTC), rows fall before the base midnight; the shift keeps their order.
    shift = 0 if club.zone is None and club.former == 0 else to_s(club.w0 - club.records_start + 2)
    zoned = club.zone is not None

    def key(t: int) -> int:
        return (fmt.utc(t) if zoned else t) + shift

    summary = Summary(members=members)
    with (
        tempfile.TemporaryDirectory(dir=out_dir, prefix=".simulate-") as tmp,
        open(os.path.join(out_dir, "truth.csv"), "w", encoding="utf-8", newline="") as truth,
    ):
        access = _Spool(tmp, "access", run_lines)
        membership = _Spool(tmp, "membership", run_lines)
        truth.write(",".join(TRUTH_COLUMNS) + "\n")
        for i in range(members + club.former):
            h = simulate_member(club, i) if i < members else simulate_former(club, i)
            if h is None:
                continue
            _add_rows(h, access, membership, fmt, key, p.late_max_seconds, summary)
            truth.write(_truth_line(h.truth, fmt))
            if h.contact is not None:
                contact_lines.append(_contact_line(h.truth.member_id, h.contact, fmt))
            if i >= members:
                summary.former += 1
                continue
            summary.add_fate(h.truth)
            if progress is not None and i % 1000 == 999:
                progress(i + 1)  # members simulated (lapse/progress.py draws the bar)
        with open(os.path.join(out_dir, "access.csv"), "w", encoding="utf-8", newline="") as out:
            out.write("member_id,site_id,occurred_at,kind\n")
            access.write(out)
        with open(
            os.path.join(out_dir, "membership.csv"), "w", encoding="utf-8", newline=""
        ) as out:
            out.write("member_id,occurred_at,event,reason\n")
            membership.write(out)
    if reaching:
        with open(os.path.join(out_dir, "contacts.csv"), "w", encoding="utf-8", newline="") as out:
            out.write("member_id,due_at,severity,arm,chance,back_at\n")
            out.writelines(contact_lines)
    meta = {
        "tenant_id": tenant_id,
        "members": members,
        "days": days,
        "seed": seed,
        "start": start.isoformat(),
        "sites": list(site_ids),
        "params": asdict(p),
    }
    if profile is not None:
        meta["profile"] = profile
    with open(os.path.join(out_dir, "simulation.json"), "w", encoding="utf-8") as out:
        json.dump(meta, out, indent=2)
        out.write("\n")
    summary.seconds = time.perf_counter() - started
    return summary


def _files_club(
    p: SimParams,
    seed: int,
    start: datetime,
    days: int,
    site_ids: tuple[str, ...],
    members: int,
    tenant_id: str,
    contacts: dict[str, list[tuple[datetime, str]]] | None,
) -> Club:
    """The club of a ``simulate_files`` run: member ids wide enough for the former members
    too, and the contacts given (``--contacts``) in the run's seconds."""
    club = make_club(p, seed, start, days, site_ids, members=members)
    club = _with_width(club, members + club.former)
    club = replace(club, tenant_id=tenant_id)
    if contacts is not None:
        club = replace(
            club,
            contacts={
                m: sorted((club.seconds(at), sev) for at, sev in cs) for m, cs in contacts.items()
            },
        )
    return club


def _add_rows(
    h: MemberHistory,
    access: _Spool,
    membership: _Spool,
    fmt: _Times,
    key: Callable[[int], int],
    late_max: int,
    summary: Summary,
) -> None:
    """One member's access and membership rows into the sorts (keyed by delivery time), and
    into the summary's counts."""
    mid = h.truth.member_id
    for occurred, delivered, site, kind in h.access:
        access.add(key(delivered), f"{mid},{site},{fmt(occurred)},{kind}")
        if delivered - occurred > late_max:
            summary.very_late_rows += 1
        elif delivered > occurred:
            summary.late_rows += 1
    for at, event, reason in h.membership:
        membership.add(key(at), f"{mid},{fmt(at)},{event},{reason}")
    summary.access_rows += len(h.access)
    summary.membership_rows += len(h.membership)


def _contact_line(member_id: str, c: ContactTruth, fmt: _Times) -> str:
    back = fmt(c.back) if c.back is not None else ""
    return f"{member_id},{fmt(c.due)},{c.severity},{c.arm},{c.chance:.4f},{back}\n"


def read_contacts(path: str) -> dict[str, list[tuple[datetime, str]]]:
    """``member_id,contacted_at[,severity]`` (ISO 8601 with offset; severity defaults to
    medium): each member's contacts, for ``simulate_files(contacts=...)``."""
    out: dict[str, list[tuple[datetime, str]]] = {}
    with open(path, encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.DictReader(f), start=2):
            try:
                at = datetime.fromisoformat(row["contacted_at"])
                member = row["member_id"]
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"{path}:{n}: member_id and contacted_at wanted ({e})") from e
            if at.tzinfo is None:
                raise ValueError(f"{path}:{n}: contacted_at needs a UTC offset")
            severity = (row.get("severity") or "medium").strip()
            out.setdefault(member, []).append((at, severity))
    return out


def simulate_profile(
    out_dir: str,
    profile: str,
    *,
    members: int,
    days: int,
    seed: int,
    start: datetime = datetime(2025, 1, 1, tzinfo=UTC),
    tenant_id: str = "club",
    **overrides: Any,
) -> Summary:
    """``lapse simulate --profile``: one of :data:`PROFILES` with its sites, any
    :class:`SimParams` field overridden by keyword (``membership_years_before=2``)."""
    prof = PROFILES[profile]
    params = replace(prof.params, **overrides) if overrides else prof.params
    return simulate_files(
        out_dir,
        members=members,
        days=days,
        seed=seed,
        start=start,
        sites=prof.sites,
        params=params,
        tenant_id=tenant_id,
        profile=profile,
    )


def _with_width(club: Club, members: int) -> Club:
    return replace(club, width=max(6, len(str(max(members - 1, 0)))))


def _truth_line(t: Truth, fmt: _Times) -> str:
    def at(seconds: int | None) -> str:
        return fmt(seconds) if seconds is not None else ""

    return (
        f"{t.member_id},{t.site_id},{fmt(t.joined)},{at(t.last_visit)},"
        f"{at(t.cancelled)},{t.dropout},{t.reason or ''},{'true' if t.returned else 'false'},"
        f"{at(t.returned)},{t.usual_gap_days},{'true' if t.routine else 'false'}\n"
    )


def simulate_club(
    tenant_id: str,
    start: datetime,
    *,
    members: int,
    days: int,
    seed: int = 7,
    sites: tuple[str, ...] = ("north",),
    duplicates: float = 0.02,
    params: SimParams | None = None,
) -> tuple[list[Event], list[Fate]]:
    """Events sorted by time (``duplicates`` of them re-sent later), and each member's fate.

    The same members as ``lapse simulate`` (``params``' assumptions, the defaults unless
    given), all joining in the first three days (so the demo shows new members settling
    in), delivered on time; the events carry ids.
    """
    p = replace(params or SimParams(), late_share=0.0, very_late_share=0.0)
    club = make_club(p, seed, start, days, sites, stock_share=0.0, join_span_days=3.0)
    club = _with_width(club, members)
    base = datetime(club.base.year, club.base.month, club.base.day, tzinfo=UTC)
    rnd = random.Random(seed)
    events: list[Event] = []
    fates: list[Fate] = []
    w0 = club.w0

    def when(seconds: int) -> datetime:
        return base + timedelta(seconds=seconds)

    def day(seconds: int | None) -> float | None:
        return None if seconds is None else seconds / DAY - w0

    for i in range(members):
        h = simulate_member(club, i)
        t = h.truth
        fates.append(
            Fate(
                t.member_id, t.usual_gap_days, day(t.last_visit), day(t.returned), day(t.cancelled)
            )
        )
        for n, (occurred, _, site, kind) in enumerate(h.access):
            events.append(
                AccessEvent(
                    event_id=f"{tenant_id}-{t.member_id}-{n}",
                    tenant_id=tenant_id,
                    member_id=t.member_id,
                    site_id=site,
                    kind=kind,
                    occurred_at=when(occurred),
                )
            )
        for n, (at, event, reason) in enumerate(h.membership):
            events.append(
                MembershipEvent(
                    event_id=f"{tenant_id}-{t.member_id}-m{n}",
                    tenant_id=tenant_id,
                    member_id=t.member_id,
                    kind=event,
                    reason=(reason or None) if event == "cancelled" else None,
                    occurred_at=when(at),
                )
            )
    events.sort(key=lambda e: (e.occurred_at, e.event_id))
    resent = rnd.sample(events, k=int(len(events) * duplicates))
    return events + resent, fates
