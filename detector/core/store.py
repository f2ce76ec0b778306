"""Member states as columns: one slot (a small int) per member, one array per field.

A million members as slotted objects cost a header, a dict entry and a tuple key each, and
the garbage collector walks them all (DESIGN.md: ~40% of the time at 1M members). Here a
member is a row across ``array`` columns: doubles for times (NaN for None), small ints for
codes, an index into a table of site ids, the latest visit starts as a fixed ring of
``RECENT`` doubles, and the rare parts (an open episode, a departure) in sparse dicts by
slot. ``MemberState`` stays the exchange type: ``state(slot)`` builds one, ``put`` stores one.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import NamedTuple

from detector.core.state import COUNT_MAX, LONG_RETURNS_MAX, Departure, MemberState, Status
from detector.core.timers import TimerWheel
from detector.core.visits import RECENT

NAN = math.nan
STATUSES = (Status.ACTIVE, Status.FROZEN, Status.CANCELLED)
STATUS_CODE = {s: i for i, s in enumerate(STATUSES)}
ACTIVE, FROZEN, CANCELLED = 0, 1, 2
Key = tuple[str, str]


class Episode(NamedTuple):
    """A member's episode, held by slot while one is open (``MemberStore.episodes``): the
    ``episode_*`` fields and ``severity`` of ``MemberState``. Open means ``start`` is set (a
    state from elsewhere may carry the other fields alone). Replaced, never changed in place.
    """

    id: str | None
    start: float | None
    cause: str | None  # "absence" or the early warning that opened it
    severity: str | None  # "low", "medium" or "high"


NO_EPISODE = Episode(None, None, None, None)
DOUBLES = (
    "status_at",
    "joined_at",
    "first_visit",
    "last_visit",
    "last_seen",
    "visit_minutes",
    "usual_minutes",
    "recent_minutes",
    "anchor",
    "deadline",
    "trouble_at",
)


def _f(x: float) -> float | None:
    return None if x != x else x


def _copy(d: Departure | None) -> Departure | None:
    """A departure of its own for each state built: the caller may keep or change it."""
    return None if d is None else replace(d, tenures=[list(t) for t in d.tenures])


def _d(x: float | None) -> float:
    return NAN if x is None else float(x)


def _count(n: int) -> int:
    """A count as its 16-bit column holds it (a state from elsewhere may carry any int)."""
    return 0 if n < 0 else min(n, COUNT_MAX)


class MemberStore:
    """The columns of every member of one detector, and the index from id to slot."""

    __slots__ = (
        "anchor",
        "count",
        "cover",
        "cover_given",
        "cover_seen",
        "deadline",
        "departures",
        "episodes",
        "exact",
        "first_visit",
        "free",
        "gap_mu",
        "gap_n",
        "gap_s",
        "ids",
        "index",
        "joined_at",
        "last_seen",
        "last_visit",
        "long_returns",
        "longest_return_days",
        "recent",
        "recent_minutes",
        "rn",
        "rp",
        "site",
        "site_no",
        "sites",
        "status",
        "status_at",
        "tenant",
        "tenant_no",
        "tenants",
        "timers",
        "trouble_at",
        "usual_minutes",
        "visit_minutes",
        "visits",
    )

    def __init__(self) -> None:
        self.index: dict[str, dict[str, int]] = {}  # tenant -> member -> slot
        self.tenants: list[str] = []
        self.tenant_no: dict[str, int] = {}
        self.sites: list[str | None] = [None]
        self.site_no: dict[str | None, int] = {None: 0}
        self.ids: list[str | None] = []  # slot -> member id (None: a free slot)
        self.free: list[int] = []
        self.tenant = array("H")
        self.site = array("H")
        self.status = array("b")
        self.visits = array("H")  # counts saturate at COUNT_MAX (see state.py)
        self.gap_n = array("H")
        self.gap_mu = array("d")
        self.gap_s = array("d")
        self.status_at = array("d")
        self.joined_at = array("d")
        self.first_visit = array("d")
        self.last_visit = array("d")
        self.last_seen = array("d")
        self.visit_minutes = array("d")
        self.usual_minutes = array("d")
        self.recent_minutes = array("d")
        self.anchor = array("d")
        self.deadline = array("d")
        # The latest failed payment or denied entry of the member while active (NaN: none):
        # a sign the policies read during an absence (``MemberState.trouble_at``).
        self.trouble_at = array("d")
        # How past absences ended (``MemberState.longest_return_days``, ``long_returns``): a
        # float32 of days (4 bytes: a day's fraction to a few seconds is more than enough)
        # and a one-byte count, 0 while the member has come back from none.
        self.longest_return_days = array("f")
        self.long_returns = array("B")
        # RECENT per slot, a ring of whole POSIX seconds (4 bytes each, not 8: access
        # systems stamp scans to the second). A member with a visit start that is not a whole
        # second in 0..2**32 keeps its exact times in ``exact`` instead, oldest first.
        self.recent = array("I")
        self.exact: dict[int, array[float]] = {}
        self.rn = array("B")  # visits held in the ring
        self.rp = array("B")  # where the next one goes
        self.episodes: dict[int, Episode] = {}
        self.departures: dict[int, Departure] = {}
        self.timers = TimerWheel(self.key)
        self.count = 0
        # Gate-data coverage, per tenant (by tenant code) and site code (0: the tenant as a
        # whole): the first access event seen (the minimum), a start given explicitly, and
        # the start in force (``cover``: the given one if any, else the first seen). A few
        # entries per tenant and site, none per member: a member reads its site's (or, with
        # no site yet, its tenant's) through its ``tenant`` and ``site`` columns.
        self.cover_seen: list[dict[int, float]] = []
        self.cover_given: list[dict[int, float]] = []
        self.cover: list[dict[int, float]] = []

    def __len__(self) -> int:
        return self.count

    def key(self, slot: int) -> Key:
        member = self.ids[slot]
        assert member is not None
        return (self.tenants[self.tenant[slot]], member)

    def tenant_of(self, slot: int) -> str:
        return self.tenants[self.tenant[slot]]

    def site_of(self, slot: int) -> str | None:
        return self.sites[self.site[slot]]

    def site_code(self, site: str | None) -> int:
        code = self.site_no.get(site)
        if code is None:
            assert site is not None
            code = self.site_no[sys.intern(site)] = len(self.sites)
            self.sites.append(sys.intern(site))
        return code

    def slot(self, tenant: str, member: str) -> int | None:
        members = self.index.get(tenant)
        return None if members is None else members.get(member)

    def tenant_code(self, tenant: str) -> int:
        """The tenant's code, registering a tenant not seen before."""
        no = self.tenant_no.get(tenant)
        if no is None:
            tenant = sys.intern(tenant)
            no = self.tenant_no[tenant] = len(self.tenants)
            self.tenants.append(tenant)
            self.index[tenant] = {}
            self.cover_seen.append({})
            self.cover_given.append({})
            self.cover.append({})
        return no

    def coverage_of(self, slot: int) -> float:
        """Since when the member's gate data is seen: their site's coverage start, or their
        tenant's while they have no site; NaN while there is none."""
        return self.cover[self.tenant[slot]].get(self.site[slot], NAN)

    def add(self, tenant: str, member: str) -> int:
        """A new member with an empty state (as ``MemberState(tenant, member)``)."""
        no = self.tenant_code(tenant)
        tenant = self.tenants[no]
        if self.free:
            slot = self.free.pop()
            self.ids[slot] = member
            self._clear(slot, no)
        else:
            slot = len(self.ids)
            self.ids.append(member)
            self.tenant.append(no)
            self.site.append(0)
            self.status.append(ACTIVE)
            self.visits.append(0)
            self.gap_n.append(0)
            self.gap_mu.append(0.0)
            self.gap_s.append(0.0)
            for name in DOUBLES:
                getattr(self, name).append(NAN)
            self.longest_return_days.append(0.0)
            self.long_returns.append(0)
            self.recent.extend(_EMPTY_RING)
            self.rn.append(0)
            self.rp.append(0)
            self.timers.grow(slot + 1)
        self.index[tenant][member] = slot
        self.count += 1
        return slot

    def _clear(self, slot: int, tenant_no: int) -> None:
        self.tenant[slot] = tenant_no
        self.site[slot] = 0
        self.status[slot] = ACTIVE
        self.visits[slot] = self.gap_n[slot] = 0
        self.gap_mu[slot] = self.gap_s[slot] = 0.0
        for name in DOUBLES:
            getattr(self, name)[slot] = NAN
        self.longest_return_days[slot] = 0.0
        self.long_returns[slot] = 0
        self.rn[slot] = self.rp[slot] = 0
        self.exact.pop(slot, None)
        self.episodes.pop(slot, None)
        self.departures.pop(slot, None)

    def remove(self, slot: int) -> None:
        tenant, member = self.key(slot)
        del self.index[tenant][member]
        self.timers.cancel(slot)
        self.ids[slot] = None
        self.exact.pop(slot, None)
        self.episodes.pop(slot, None)
        self.departures.pop(slot, None)
        self.free.append(slot)
        self.count -= 1

    def slots(self) -> Iterator[int]:
        """Every member's slot, in slot order: the order members came, as long as none left
        (a slot freed by ``remove`` is reused by the next new member)."""
        for slot, member in enumerate(self.ids):
            if member is not None:
                yield slot

    # -- the ring of recent visit starts ----------------------------------------------------

    def recent_list(self, slot: int) -> list[float]:
        """The latest visit starts, oldest first."""
        exact = self.exact.get(slot)
        if exact is not None:
            return list(exact)
        n, p, base, rec = self.rn[slot], self.rp[slot], slot * RECENT, self.recent
        return [float(rec[base + (p - n + k) % RECENT]) for k in range(n)]

    def set_recent(self, slot: int, times: list[float]) -> None:
        times = [float(t) for t in times[-RECENT:]]
        if all(0.0 <= t < RING_END and t.is_integer() for t in times):
            self.exact.pop(slot, None)
            base = slot * RECENT
            self.recent[base : base + len(times)] = array("I", map(int, times))
            self.rn[slot] = len(times)
            self.rp[slot] = len(times) % RECENT
        else:
            self.exact[slot] = array("d", times)
            self.rn[slot] = self.rp[slot] = 0

    def add_recent(self, slot: int, t: float) -> None:
        """Append a visit start (the oldest goes beyond ``RECENT``)."""
        exact = self.exact.get(slot)
        if exact is None:
            if 0.0 <= t < RING_END and t.is_integer():
                p = self.rp[slot]
                self.recent[slot * RECENT + p] = int(t)
                self.rp[slot] = (p + 1) % RECENT
                if self.rn[slot] < RECENT:
                    self.rn[slot] += 1
                return
            exact = self.exact[slot] = array("d", self.recent_list(slot))
            self.rn[slot] = self.rp[slot] = 0
        exact.append(t)
        if len(exact) > RECENT:
            del exact[0]

    # -- exchange with MemberState ---------------------------------------------------------

    def state(self, slot: int) -> MemberState:
        tenant, member = self.key(slot)
        episode = self.episodes.get(slot)
        if episode is None:
            episode = NO_EPISODE
        return MemberState(
            tenant_id=tenant,
            member_id=member,
            site_id=self.sites[self.site[slot]],
            status=STATUSES[self.status[slot]],
            status_at=_f(self.status_at[slot]),
            joined_at=_f(self.joined_at[slot]),
            first_visit=_f(self.first_visit[slot]),
            last_visit=_f(self.last_visit[slot]),
            last_seen=_f(self.last_seen[slot]),
            visits=self.visits[slot],
            recent=array("d", self.recent_list(slot)),
            gap_n=self.gap_n[slot],
            gap_mu=self.gap_mu[slot],
            gap_s=self.gap_s[slot],
            visit_minutes=_f(self.visit_minutes[slot]),
            usual_minutes=_f(self.usual_minutes[slot]),
            recent_minutes=_f(self.recent_minutes[slot]),
            anchor=_f(self.anchor[slot]),
            deadline=_f(self.deadline[slot]),
            episode_id=episode.id,
            episode_start=episode.start,
            episode_cause=episode.cause,
            severity=episode.severity,
            departure=_copy(self.departures.get(slot)),
            longest_return_days=self.longest_return_days[slot],
            long_returns=self.long_returns[slot],
            trouble_at=_f(self.trouble_at[slot]),
        )

    def put(self, state: MemberState) -> int:
        """Store a state (a new member, or over the one held): its slot."""
        slot = self.slot(state.tenant_id, state.member_id)
        if slot is None:
            slot = self.add(state.tenant_id, state.member_id)
        self.write(slot, state)
        return slot

    def write(self, slot: int, s: MemberState) -> None:
        """Write a state's fields into its slot (a state loaded at a rebalance or restart)."""
        self.status[slot] = STATUS_CODE[s.status]
        self.status_at[slot] = _d(s.status_at)
        self.joined_at[slot] = _d(s.joined_at)
        self.anchor[slot] = _d(s.anchor)
        episode = Episode(s.episode_id, s.episode_start, s.episode_cause, s.severity)
        if episode == NO_EPISODE:
            self.episodes.pop(slot, None)
        else:
            self.episodes[slot] = episode
        if s.departure is None:
            self.departures.pop(slot, None)
        else:
            self.departures[slot] = s.departure
        self.site[slot] = self.site_code(s.site_id)
        self.first_visit[slot] = _d(s.first_visit)
        self.last_visit[slot] = _d(s.last_visit)
        self.last_seen[slot] = _d(s.last_seen)
        self.visits[slot] = _count(s.visits)
        self.set_recent(slot, list(s.recent))
        self.gap_n[slot] = _count(s.gap_n)
        self.gap_mu[slot] = s.gap_mu
        self.gap_s[slot] = s.gap_s
        self.visit_minutes[slot] = _d(s.visit_minutes)
        self.usual_minutes[slot] = _d(s.usual_minutes)
        self.recent_minutes[slot] = _d(s.recent_minutes)
        self.deadline[slot] = _d(s.deadline)
        self.trouble_at[slot] = _d(s.trouble_at)
        days = s.longest_return_days
        # (NaN, negatives and infinities from elsewhere: none, as a fresh member has)
        self.longest_return_days[slot] = days if 0.0 < days < 1e30 else 0.0
        self.long_returns[slot] = min(max(s.long_returns, 0), LONG_RETURNS_MAX)


_EMPTY_RING = array("I", [0] * RECENT)
RING_END = float(2**32)  # times the ring holds: whole seconds in [0, 2**32)


class MembersView(Mapping[Key, MemberState]):
    """The members as a read-only mapping of ``(tenant, member)`` to a fresh ``MemberState``."""

    def __init__(self, store: MemberStore) -> None:
        self._store = store

    def __getitem__(self, key: Key) -> MemberState:
        slot = self._store.slot(*key)
        if slot is None:
            raise KeyError(key)
        return self._store.state(slot)

    def __iter__(self) -> Iterator[Key]:
        store = self._store
        return (store.key(slot) for slot in store.slots())

    def __len__(self) -> int:
        return len(self._store)

    def values(self) -> Iterator[MemberState]:  # type: ignore[override]
        store = self._store
        return (store.state(slot) for slot in store.slots())

    def items(self) -> Iterator[tuple[Key, MemberState]]:  # type: ignore[override]
        store = self._store
        for slot in store.slots():
            s = store.state(slot)
            yield (s.tenant_id, s.member_id), s
