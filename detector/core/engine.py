"""The detector's core: offer member events, advance the clock, collect alerts.

Events are held back until the clock passes their time, then applied in time order with
the timers that fall between them. So any order of the same events, as long as each
arrives before the clock passes it, gives the same alerts; an event that comes later
than that (past the allowed lateness) is applied at once, updating history.

An episode opens when a member's absence passes their policy's deadline (``at_risk``,
medium) or earlier on an early warning (``at_risk``, low: a falling visit rate, shorter
visits, a denied entry, a failed payment); it escalates while the absence goes on and
closes as ``recovered`` when the member is back to their rhythm, or ``churned`` on
cancellation. Alert and episode ids are derived from the member and the episode's start,
so the same events give the same ids live, in replay and after a crash.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import NamedTuple, TypeVar

from detector.core.clock import Watermark
from detector.core.policy import Policy, Warnings
from detector.core.state import Departure, MemberState
from detector.core.store import ACTIVE, CANCELLED, FROZEN, Episode, MemberStore, MembersView
from detector.core.timers import TimerWheel
from detector.core.visits import (
    ENDS,
    RECENT,
    VISIT_KINDS,
    VisitRules,
    note_return,
    observe_at,
    visits_since_at,
)
from detector.core.winback import PlanFor, no_plan, visits_per_month
from schemas import AccessEvent, Alert, Event, MembershipEvent, Reason
from schemas.alerts import AlertType, Severity
from schemas.ids import alert_id, departure_id, episode_id
from schemas.units import DAY

Key = tuple[str, str]
_T = TypeVar("_T")
# Where an event came from (the runner passes (partition, offset)); opaque to the core.
Source = tuple[int, int]


class Held(NamedTuple):
    """An event held back until the clock passes it. Compared as a tuple, the fields in
    this order are the order of application: by time, then the rank of its kind (``RANK``),
    the event id, and the arrival number (unique, so the event itself is never compared)."""

    time: float
    rank: int
    event_id: str
    arrival: int
    event: Event
    source: Source | None


PolicyFor = Callable[[str], Policy]
# Whether a member was erased (right to be forgotten): their events must not recreate them.
IsForgotten = Callable[[str, str], bool]
FOUR_WEEKS = 28 * DAY
NEXT = {"low": "medium", "medium": "high"}
# A site's gate data counts as caught up with the clock when it reaches this close to it: an
# hour covers a quiet evening hour at a busy site and the tick interval many times over.
CAUGHT_UP = 3600.0
# Events at the same instant are applied in this order, then by event id, so the order they
# arrived in never matters: a member joins before entering, enters before leaving.
RANK = {
    kind: i
    for i, kind in enumerate(
        (
            "joined",
            "unfrozen",
            "gate_entry",
            "locker_open",
            "locker_close",
            "gate_exit",
            "entry_denied",
            "payment_failed",
            "frozen",
            "cancelled",
        )
    )
}


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _constant(policy: Policy) -> PolicyFor:
    return lambda _tenant: policy


def _never(_tenant: str, _member: str) -> bool:
    return False


def start_in_force(given: _T | None, tenant_given: _T | None, seen: _T | None) -> _T | None:
    """The coverage start in force for a scope: a start given for it, else one given for its
    tenant (for a site), else the first access event seen there. The one rule: the core
    resolves it with floats, the api (``api/read/coverage.py``) with the stored datetimes."""
    if given is not None:
        return given
    return tenant_given if tenant_given is not None else seen


class Detector:
    """Member states and their timers for one partition (or one replayed history).

    ``policy`` is one policy for every tenant, or a function from tenant id to policy;
    ``winback`` the win-back plan of a tenant (none if not given: replay and calibration
    raise pre-churn alerts only), and
    ``is_forgotten`` says which members were erased, so no event of theirs creates a state.

    States live in a columnar ``MemberStore`` (one slot per member), and every event and
    timer works on the columns directly: no ``MemberState`` is built on the way.
    ``MemberState`` is only what comes in (``load``) and goes out (``get``, ``take_dirty``,
    ``members``, a read-only mapping of fresh states).
    """

    def __init__(
        self,
        policy: Policy | PolicyFor,
        time: float = -math.inf,
        *,
        visits: VisitRules | None = None,
        winback: PlanFor | None = None,
        is_forgotten: IsForgotten | None = None,
    ) -> None:
        self.policy_for: PolicyFor = policy if callable(policy) else _constant(policy)
        # One policy for all (replay, benchmarks): no call per event to find it.
        self._policy: Policy | None = None if callable(policy) else policy
        self.winback_for: PlanFor = winback or no_plan
        self.is_forgotten: IsForgotten = is_forgotten or _never
        self.visit_rules = visits or VisitRules()
        self._window = self.visit_rules.window_seconds
        self._max_minutes = self.visit_rules.max_minutes
        self.store = MemberStore()
        self.members: Mapping[Key, MemberState] = MembersView(self.store)
        self.timers: TimerWheel = self.store.timers
        self.time = time  # the clock reading up to which events and timers were applied
        # Held-back events in application order (time, rank, event id, arrival): those that
        # arrive in that order queue in ``_queue`` (a deque: no heap step for most events),
        # the others in the heap ``_pending``; ``advance`` merges the two.
        self._pending: list[Held] = []
        self._queue: deque[Held] = deque()
        self._seq = itertools.count()
        self._dirty: set[int] = set()
        # The latest coverage start in force anywhere: an anchor before it may need clipping
        # (one float compare on a visit instead of a look-up). Never lowered.
        self._cover_top = -math.inf
        self.coverage_changed = False  # since the last ``take_coverage`` (checkpoints)
        # Per (tenant, site), how far its gate data has reached (``data_reached``: the ticks carry
        # it live); empty in replay. Absence timers of a member of a site whose data has not
        # reached them wait in ``_parked`` (slot: due) instead of firing.
        self.data_until: dict[tuple[str, str], float] = {}
        self.data_until_version = 0  # counts the changes (a checkpoint writes it when changed)
        self._parked: dict[int, float] = {}

    # -- coverage: since when each tenant's and site's gate data is seen -------------------

    def cover(self, tenant: str, start: float, site: str | None = None) -> None:
        """Gate data of ``tenant`` (of one ``site``, or of all its sites without a start of
        their own) is complete from ``start`` on: a start given explicitly (an import, a
        replay's ``--coverage-start``), which wins over the first access event seen.

        Members of the scope are rescheduled at once, their anchors clipped to the new start
        (or, when the start moves earlier, unclipped back toward their own start): a one-off
        pass over the tenant's members per call, the only other one besides a scope's first
        coverage (``_seen``). Nothing else scans members.
        """
        m = self.store
        tno = m.tenant_code(tenant)
        code = 0 if site is None else m.site_code(site)
        m.cover_given[tno][code] = float(start)
        self._resolve(tno, pass_any=True)

    def coverage(self) -> list[tuple[str, str | None, float | None, float | None]]:
        """Every scope's coverage: ``(tenant, site or None, first seen, given start)``, by
        tenant and site."""
        m = self.store
        out: list[tuple[str, str | None, float | None, float | None]] = []
        for tno, tenant in enumerate(m.tenants):
            seen, given = m.cover_seen[tno], m.cover_given[tno]
            for code in set(seen) | set(given):
                out.append((tenant, m.sites[code], seen.get(code), given.get(code)))
        out.sort(key=lambda row: (row[0], row[1] or ""))  # whatever order codes were made in
        return out

    def take_coverage(self) -> list[tuple[str, str | None, float | None, float | None]] | None:
        """``coverage()`` if it changed since the last call (what a checkpoint writes)."""
        if not self.coverage_changed:
            return None
        self.coverage_changed = False
        return self.coverage()

    def restore_coverage(
        self, rows: Iterable[tuple[str, str | None, float | None, float | None]]
    ) -> None:
        """Coverage as a checkpoint left it (``coverage()``'s rows), before ``load``: the
        loaded states' anchors were clipped already, so no member is rescheduled here."""
        m = self.store
        for tenant, site, seen, given in rows:
            tno = m.tenant_code(tenant)
            code = 0 if site is None else m.site_code(site)
            if seen is not None:
                m.cover_seen[tno][code] = seen
            if given is not None:
                m.cover_given[tno][code] = given
        for tno in range(len(m.tenants)):
            self._resolve(tno, pass_any=None)
        self.coverage_changed = False  # as stored: nothing to write again

    def coverage_start(self, tenant: str, site: str | None = None) -> float | None:
        """The coverage start in force for a site (its tenant's with no site), if any: what
        the API and the page show ("no gate data before ...")."""
        m = self.store
        tno = m.tenant_no.get(tenant)
        if tno is None:
            return None
        code = m.site_no.get(site)
        start = None if code is None else m.cover[tno].get(code)
        # A site with no gate data of its own yet: the tenant's start, if one was given.
        return start if start is not None else m.cover_given[tno].get(0)

    def _seen(self, tno: int, code: int, t: float) -> None:
        """An access event of this tenant at this site: the first seen moves back to it."""
        m = self.store
        seen = m.cover_seen[tno]
        for c in (code, 0) if code else (0,):
            first = seen.get(c)
            if first is None or t < first:
                seen[c] = t
        self._resolve(tno, pass_any=False)

    def _resolve(self, tno: int, *, pass_any: bool | None) -> None:
        """Recompute the starts in force of a tenant's scopes; reschedule the members of a
        scope that changed: every change (``pass_any``, an explicit start), only a scope's
        first coverage (False: a first-seen event; a later, earlier event lowers the start
        for anchors set from now on, not for those already clipped), or none (None)."""
        m = self.store
        seen, given, cover = m.cover_seen[tno], m.cover_given[tno], m.cover[tno]
        changed: dict[int, float] = {}
        for code in set(seen) | set(given) | {0}:
            tenant_given = given.get(0) if code else None
            start = start_in_force(given.get(code), tenant_given, seen.get(code))
            if start is None:
                continue
            old = cover.get(code, math.nan)
            if old == start:
                continue
            cover[code] = start
            self.coverage_changed = True
            if start > self._cover_top:
                self._cover_top = start
            if pass_any or (pass_any is False and old != old):
                changed[code] = old
        if changed:
            self._cover_pass(tno, changed)

    def _cover_pass(self, tno: int, changed: dict[int, float]) -> None:
        """The one-off pass of a scope whose coverage start changed: each of the tenant's
        members of that scope gets their anchor clipped to it and is rescheduled."""
        m = self.store
        cover = m.cover[tno]
        for slot in list(m.index[m.tenants[tno]].values()):
            code = m.site[slot]
            if code not in changed:
                continue
            old, new = changed[code], cover[code]
            a = m.anchor[slot]
            if a == a:
                if a == old and new < old and not m.last_visit[slot] >= old:
                    # Clipped by the old start: back to the member's own start.
                    own = [x for x in (m.last_visit[slot], m.joined_at[slot]) if x == x]
                    if m.status[slot] == ACTIVE and m.status_at[slot] == m.status_at[slot]:
                        own.append(m.status_at[slot])
                    a = max(own) if own else new
                if a < new:
                    a = new
                m.anchor[slot] = a
            self._dirty.add(slot)
            self._reschedule(slot)

    def _clip(self, slot: int, t: float) -> float:
        """An absence clock starting at ``t``, moved to the member's coverage start if
        that is later: absence is never counted over time with no gate data."""
        start = self.store.coverage_of(slot)
        return start if start > t else t

    # -- state ownership (rebalances, restarts) --------------------------------------------

    def load(self, states: Iterable[MemberState], *, changed: bool = False) -> None:
        """Take these states (a restart or rebalance), their timers rescheduled: restore the
        partition's coverage first (``restore_coverage``), as a member's timer depends on it.
        ``changed`` marks them for the next checkpoint (states handed over from another
        detector rather than read from the database: ``detector.onboarding``)."""
        store = self.store
        for state in states:
            slot = store.put(state)
            self._reschedule(slot)
            if changed:
                self._dirty.add(slot)

    def held(self) -> list[Event]:
        """The events held back, in the order they will be applied (a checkpoint that keeps
        them, where re-reading their records is no option: ``detector.onboarding``)."""
        return [h.event for h in sorted(itertools.chain(self._pending, self._queue))]

    def drop(self, keys: Iterable[Key], sources: Iterable[int] = ()) -> None:
        """Forget members (and held-back events of these sources) this instance lost."""
        lost = set(sources)
        store = self.store
        for tenant, member in keys:
            slot = store.slot(tenant, member)
            if slot is not None:
                store.remove(slot)
                self._dirty.discard(slot)
                self._parked.pop(slot, None)
        if lost:
            kept = [p for p in self._pending if p.source is None or p.source[0] not in lost]
            self._pending = kept
            heapq.heapify(self._pending)
            self._queue = deque(
                p for p in self._queue if p.source is None or p.source[0] not in lost
            )

    def pending_sources(self) -> dict[int, int]:
        """Per source partition, the lowest offset still held back (where to resume from)."""
        low: dict[int, int] = {}
        for held in itertools.chain(self._pending, self._queue):
            src = held.source
            if src is not None and (src[0] not in low or src[1] < low[src[0]]):
                low[src[0]] = src[1]
        return low

    def __len__(self) -> int:
        return len(self.store)

    def take_dirty(self) -> list[MemberState]:
        """The states changed since the last call (what a checkpoint must write)."""
        state = self.store.state
        dirty = [state(slot) for slot in self._dirty]
        self._dirty.clear()
        return dirty

    def take_dirty_slots(self) -> list[int]:
        """As ``take_dirty``, the slots of ``store`` rather than states: a checkpoint reads
        its rows straight from the columns (``detector.core.rows``), building no state."""
        dirty = list(self._dirty)
        self._dirty.clear()
        return dirty

    @property
    def has_changes(self) -> bool:
        return bool(self._dirty)

    @property
    def pending_timers(self) -> int:
        """Timers set and not yet fired (deadlines, escalations, win-backs, those waiting
        for their site's data): a gauge."""
        return len(self.timers) + len(self._parked)

    def get(self, tenant_id: str, member_id: str) -> MemberState | None:
        slot = self.store.slot(tenant_id, member_id)
        return None if slot is None else self.store.state(slot)

    # -- events ----------------------------------------------------------------------------

    def offer(self, event: Event, source: Source | None = None) -> list[Alert]:
        """Take an event: held back until the clock passes it, or applied now if late.

        The plain per-event form, and the reference of ``offer_many`` (see there)."""
        t = event.occurred_at.timestamp()
        if t <= self.time:
            return self._apply(event, t)
        entry = Held(t, RANK[event.kind], event.event_id, next(self._seq), event, source)
        queue = self._queue
        if not queue or entry > queue[-1]:
            queue.append(entry)
        else:
            heapq.heappush(self._pending, entry)
        return []

    def offer_many(
        self,
        events: Iterable[Event],
        watermark: Watermark | None = None,
        *,
        sources: Iterable[Source | None] | None = None,
    ) -> list[Alert]:
        """Offer events in order, and return their alerts in order: one call per batch.

        With ``watermark``, each event's time is observed on it and the clock then advances to
        the watermark after each event: replay's loop (``observe``, ``offer``,
        ``advance(watermark.now())`` per event), and so the same alerts and states whatever
        the batches (the runner's too: ``detector.core.partition.apply_records``). ``sources``
        go with the events one for one (see ``offer``).

        The same work as those calls, less their per-event overhead: each event's time is
        read once (``occurred_at.timestamp()`` is not cheap), no empty list is made per call,
        and ``advance`` is entered only when something is due. The held-back queue logic is
        ``offer``'s, repeated here to stay inline.

        Fast path; reference: ``offer`` then ``advance(watermark.now())`` per event; pinned by
        tests/detector/core/test_engine.py::test_offer_many_is_offer_then_advance_to_the_watermark_per_event
        and ::test_offer_many_keeps_each_events_source_as_offer_does.
        """
        alerts: list[Alert] = []
        queue, pending, timers = self._queue, self._pending, self.timers
        seq, rank = self._seq, RANK
        pairs: Iterable[tuple[Event, Source | None]] = (
            zip(events, itertools.repeat(None))
            if sources is None
            else zip(events, sources, strict=True)
        )
        lateness = watermark.lateness if watermark is not None else 0.0
        for event, source in pairs:
            t = event.occurred_at.timestamp()
            if watermark is not None and t > watermark.max_seen:
                watermark.max_seen = t
            if t <= self.time:
                got = self._apply(event, t)
                if got:
                    alerts.extend(got)
            else:
                entry = Held(t, rank[event.kind], event.event_id, next(seq), event, source)
                if not queue or entry > queue[-1]:
                    queue.append(entry)
                else:
                    heapq.heappush(pending, entry)
            if watermark is None:
                continue
            now = watermark.max_seen - lateness
            if (
                (queue and queue[0].time <= now)
                or (pending and pending[0].time <= now)
                or timers.next_at <= now
            ):
                got = self.advance(now)
                if got:
                    alerts.extend(got)
            elif now > self.time:
                self.time = now  # what ``advance`` does when nothing is due
        return alerts

    def _apply(self, event: Event, t: float) -> list[Alert]:
        """Apply one event at its time ``t``: its alerts.

        A repeat scan of the visit in course (the commonest event of all) is folded here, a
        copy of ``observe_at``'s first case inlined. Fast path; reference: ``observe`` in
        tests/detector/core/reference.py; pinned by
        tests/detector/core/test_store_and_timers.py::test_visits_through_the_detector_are_visits_on_a_state.
        """
        store = self.store
        tenant = event.tenant_id
        members = store.index.get(tenant)
        slot = None if members is None else members.get(event.member_id)
        if slot is None:
            if self.is_forgotten(tenant, event.member_id):
                return []
            slot = store.add(tenant, event.member_id)
        policy = self._policy or self.policy_for(tenant)
        self._dirty.add(slot)
        # type() first: isinstance on a pydantic model class is several times slower.
        cls = type(event)
        if cls is not AccessEvent and not isinstance(event, AccessEvent):
            alerts = self._membership(slot, policy, event, t)
            self._reschedule(slot, policy)
            return alerts
        kind = event.kind
        if kind not in VISIT_KINDS:
            self._see(slot, event, t)
            return self._denied(slot, policy, event, t) if kind == "entry_denied" else []
        last_seen = store.last_seen[slot]
        if last_seen == last_seen and t <= last_seen + self._window:
            # Another scan of the same visit (``observe_at``'s first case, inlined: the
            # commonest event of all): the deadline stays.
            if t > last_seen:
                store.last_seen[slot] = t
            elif t < last_seen:  # an earlier scan (late): it may be the first one seen
                self._see(slot, event, t)
            if kind in ENDS:  # the duration runs to the latest exit (``observe_at``)
                last = store.last_visit[slot]
                if last == last and t > last:
                    minutes = (t - last) / 60.0
                    current = store.visit_minutes[slot]
                    if minutes <= self._max_minutes and not minutes <= current:
                        store.visit_minutes[slot] = minutes
            return []
        site = event.site_id  # type: ignore[union-attr]  # an AccessEvent (type() above)
        code = store.site[slot]
        if store.sites[code] != site:
            code = store.site_code(site)
        first = store.cover_seen[store.tenant[slot]].get(code)
        if first is None or t < first:
            self._seen(store.tenant[slot], code, t)
        prev_last, prev_n, prev_mu = store.last_visit[slot], store.gap_n[slot], store.gap_mu[slot]
        if not observe_at(store, slot, kind, t, self.visit_rules):
            return []  # an old visit arriving very late: history only
        store.site[slot] = code
        alerts = []
        if store.status[slot] == ACTIVE:
            note_return(store, slot, t, prev_last, prev_n, prev_mu)
            alerts = self._visit(slot, policy, t)
        self._reschedule(slot, policy)
        return alerts

    def _denied(self, slot: int, policy: Policy, event: Event, t: float) -> list[Alert]:
        """An entry denied at the gate of an active member: a sign noted for the policies
        (``_trouble``), and an early warning if the policy warns of denied entries and the
        site's gate data is not still being uploaded."""
        if self.store.status[slot] != ACTIVE:
            return []
        self._trouble(slot, t)
        warn = policy.warnings
        alerts: list[Alert] = []
        if (
            warn is not None
            and warn.denied_entries
            and not (self.data_until and self._uploading(event.tenant_id, event.site_id, t))  # type: ignore[union-attr]
        ):
            alerts = self._warn(slot, policy, ("entry_denied", {}), t)
        self._reschedule(slot, policy)  # the sign may bring the deadline forward
        return alerts

    def _trouble(self, slot: int, t: float) -> None:
        """Note a failed payment or a denied entry of an active member: the risk and hybrid
        policies weigh it during an absence, whether or not a warning was raised. The latest
        is kept, so the column is the same whatever order the events arrive in; a second
        failure cannot postpone an alert the first one set, as timers fire in time order
        between events."""
        trouble = self.store.trouble_at
        if not trouble[slot] >= t:  # (True for NaN: none yet)
            trouble[slot] = t

    def _see(self, slot: int, event: Event, t: float) -> None:
        """An access event off the visit path: record it as seen gate data if it is the
        first of its site (its tenant's coverage follows)."""
        store = self.store
        code = store.site_code(event.site_id)  # type: ignore[union-attr]  # an AccessEvent
        first = store.cover_seen[store.tenant[slot]].get(code)
        if first is None or t < first:
            self._seen(store.tenant[slot], code, t)

    def _visit(self, slot: int, policy: Policy, t: float) -> list[Alert]:
        """A new visit of an active member: it ends an open episode (``recovered``), unless
        the episode was opened by a falling rate that is still falling; with no episode
        open, it may raise an early warning. The anchor moves to it either way."""
        m = self.store
        episode = m.episodes.get(slot)
        start = None if episode is None else episode.start
        alerts: list[Alert] = []
        if (
            episode is not None
            and start is not None  # an episode open
            and t > start
            and (
                episode.cause != "visit_frequency_decline"
                or not self._still_declining(slot, policy, t)
            )
        ):
            # Closed before the anchor moves, so the alert says how long they were away.
            alerts.append(self._close(slot, policy, "recovered", t))
        anchor = m.anchor[slot]
        if anchor != anchor or t > anchor:
            m.anchor[slot] = t if t >= self._cover_top else self._clip(slot, t)
        if alerts or start is not None:
            return alerts  # no early warning while an episode stays open
        if self.data_until and self._uploading(m.tenants[m.tenant[slot]], m.sites[m.site[slot]], t):
            return alerts
        warning = self._early_warning(slot, policy, t)
        return [] if warning is None else self._warn(slot, policy, warning, t)

    def _membership(
        self, slot: int, policy: Policy, event: MembershipEvent, t: float
    ) -> list[Alert]:
        m = self.store
        kind = event.kind
        status = m.status[slot]
        if kind == "payment_failed":
            if status != ACTIVE:
                return []
            self._trouble(slot, t)
            warn = policy.warnings
            if warn is not None and warn.failed_payments:
                return self._warn(slot, policy, ("payment_failed", {}), t)
            return []
        status_at = m.status_at[slot]
        if t < status_at:  # (False for NaN: no status time held)
            return []  # older than the status we hold: history only
        alerts: list[Alert] = []
        anchor = m.anchor[slot]
        if kind == "joined" and (status == CANCELLED or anchor != anchor):
            left = m.departures.get(slot)
            if status == CANCELLED and left is not None:
                m.departures[slot] = replace(left, winback="won", won_at=t, winback_due=None)
            m.status[slot] = ACTIVE
            m.joined_at[slot] = t
            m.anchor[slot] = self._clip(slot, t)
        elif kind == "frozen" and status == ACTIVE:
            m.status[slot] = FROZEN
        elif kind == "unfrozen" and status == FROZEN:
            m.status[slot] = ACTIVE
            m.anchor[slot] = self._clip(slot, t if anchor != anchor else max(anchor, t))
        elif kind == "cancelled" and status != CANCELLED:
            m.status[slot] = CANCELLED
            if self._episode_open(slot):
                alerts.append(self._close(slot, policy, "churned", t))
            self._depart(slot, event, t)
        else:
            return []
        m.status_at[slot] = t
        return alerts

    def _depart(self, slot: int, event: MembershipEvent, t: float) -> None:
        """Keep the cancellation's facts and plan the win-back (a timer, see _reschedule)."""
        m = self.store
        start = m.joined_at[slot]
        if start != start:
            start = m.first_visit[slot]
        previous = m.departures.get(slot)
        tenures = previous.tenures if previous is not None else []
        due = self.winback_for(m.tenant_of(slot)).due(event.reason, t)
        m.departures[slot] = Departure(
            cancelled_at=t,
            reason=event.reason,
            note=event.note,
            visits_month=visits_per_month(m.recent_list(slot), t),
            tenures=[*tenures, [start if start == start else t, t]],
            winback="planned" if due is not None else "none",
            winback_due=due,
        )

    def _episode_open(self, slot: int) -> bool:
        episode = self.store.episodes.get(slot)
        return episode is not None and episode.start is not None

    def _still_declining(self, slot: int, policy: Policy, t: float) -> bool:
        warn = policy.warnings
        return warn is not None and self._decline(slot, policy, warn, t) is not None

    # -- early warnings --------------------------------------------------------------------

    def _decline(self, slot: int, policy: Policy, warn: Warnings, now: float) -> float | None:
        """The member's usual visits in four weeks if those of the last four weeks fell to
        the warning's share of it, else None."""
        m = self.store
        if m.gap_n[slot] < warn.min_history_gaps:
            return None
        usual = 28.0 / policy.usual_gap_days(m, slot)
        if usual < warn.min_usual_visits:
            return None
        # The member's usual gap has absorbed the last few long gaps only partly, so the
        # count of the last four weeks against it shows a slide before an absence does.
        bound = warn.decline_ratio * usual
        # Only whether the count is within the bound matters: count one past it at most.
        limit = int(bound) + 1 if bound < RECENT else RECENT
        return usual if visits_since_at(m, slot, now - FOUR_WEEKS, limit) <= bound else None

    def _early_warning(
        self, slot: int, policy: Policy, t: float
    ) -> tuple[str, dict[str, float]] | None:
        """The early warning a new visit at ``t`` raises (code and figures), or None: a
        falling visit rate first, then shorter visits."""
        warn = policy.warnings
        if warn is None:
            return None
        usual = self._decline(slot, policy, warn, t)
        if usual is not None:
            return "visit_frequency_decline", {"usual_visits_4_weeks": round(usual, 1)}
        m = self.store
        usual_minutes, recent_minutes = m.usual_minutes[slot], m.recent_minutes[slot]
        if (
            usual_minutes == usual_minutes
            and recent_minutes == recent_minutes
            and m.visits[slot] >= 8
            and recent_minutes < warn.duration_ratio * usual_minutes
        ):
            return "visit_duration_decline", {
                "usual_minutes": round(usual_minutes),
                "recent_minutes": round(recent_minutes),
            }
        return None

    def _warn(
        self, slot: int, policy: Policy, reason: tuple[str, dict[str, float]], t: float
    ) -> list[Alert]:
        """Open a low episode with this reason, unless one is open already or the member's
        site (or tenant) has no gate data at ``t``: before coverage nothing is monitored,
        so a failed payment from years before the gate log raises nothing either."""
        if self._episode_open(slot) or not self.store.coverage_of(slot) <= t:
            return []
        tenant, member = self.store.key(slot)
        eid = episode_id(tenant, member, t)
        self.store.episodes[slot] = Episode(eid, t, reason[0], "low")
        return [self._alert(slot, policy, eid, "at_risk", "low", t, [reason])]

    # -- time ------------------------------------------------------------------------------

    def advance(self, now: float) -> list[Alert]:
        """Move the clock to ``now``: apply held-back events and fire timers, in time order."""
        alerts: list[Alert] = []
        pending, queue, timers = self._pending, self._queue, self.timers
        if (queue and queue[0].time <= now) or (pending and pending[0].time <= now):
            # self._apply, not a local bound method: compiled (mypyc), that is a direct call.
            while True:
                # The next held-back event in order: the queue's head or the heap's top.
                if queue and queue[0].time <= now:
                    if pending and pending[0] < queue[0]:
                        held = heapq.heappop(pending)
                    else:
                        held = queue.popleft()
                elif pending and pending[0].time <= now:
                    held = heapq.heappop(pending)
                else:
                    break
                t, event = held.time, held.event
                # Timers strictly before the event fire first: a visit exactly at a
                # deadline arrives in time.
                if timers.next_at < t:
                    alerts.extend(self._fire_until(math.nextafter(t, -math.inf), now))
                got = self._apply(event, t)
                if got:
                    alerts.extend(got)
        if timers.next_at <= now:
            alerts.extend(self._fire_until(now, now))
        if now > self.time:
            self.time = now
        return alerts

    def _fire_until(self, until: float, now: float) -> list[Alert]:
        """Fire the timers due up to ``until`` in order, the clock reading ``now``; those of
        members whose site's data has not reached them wait (``_waits``)."""
        alerts: list[Alert] = []
        gated = bool(self.data_until)
        # Firing may schedule a later timer that is also due (at risk, then escalated).
        while due_timers := self.timers.pop_due(until):
            for slot, due in due_timers:
                if gated and self._waits(slot, due, now):
                    self._parked[slot] = due
                else:
                    alerts.extend(self._fire(slot, due))
        return alerts

    # -- how far each site's data has reached: late uploads ---------------------------------

    def data_reached(self, sites: Iterable[tuple[str, str, float]], now: float) -> None:
        """How far each (tenant, site)'s gate data has reached (the latest event time ingest
        acknowledged from it, carried by a tick), taken as the latest of what was seen;
        then the waiting timers this releases are due again (the next ``advance`` fires them
        in order). A site never reported is not gated (events that came another way)."""
        data_until = self.data_until
        moved = False
        for tenant, site, until in sites:
            key = (tenant, site)
            if until > data_until.get(key, -math.inf):
                data_until[key] = until
                moved = True
        if moved:
            self.data_until_version += 1
        if not moved or not self._parked:
            return
        for slot, due in sorted(self._parked.items(), key=lambda item: item[1]):
            if not self._waits(slot, due, now):
                del self._parked[slot]
                self.timers.schedule(slot, due)

    def _uploading(self, tenant: str, site: str | None, t: float) -> bool:
        """Whether an event at ``t`` comes while its site's data is still catching up (a
        controller uploading what it buffered): it updates history, but an early warning
        from it would be out of date before it is sent (the rest of the upload may show the
        member back). The event's own time counts as the site's data too."""
        until = self.data_until.get((tenant, site or ""))
        return until is not None and max(until, t) < self.time - CAUGHT_UP

    def _waits(self, slot: int, due: float, now: float) -> bool:
        """Whether an absence timer of an active member must wait for the data of their site
        (the site of their latest visit): until that data reaches the deadline and has
        caught up with the clock. So a controller that was offline holds back the timers of
        its members until what it buffered is in (a late visit then moves the deadline: no
        alert it contradicts), and a late upload in several parts raises nothing before
        its last part is in (no alert already out of date when sent)."""
        store = self.store
        if store.status[slot] != ACTIVE:
            return False  # win-back timers count no absence
        key = (store.tenants[store.tenant[slot]], store.sites[store.site[slot]] or "")
        until = self.data_until.get(key)
        return until is not None and (until < due or until < now - CAUGHT_UP)

    def _fire(self, slot: int, due: float) -> list[Alert]:
        store = self.store
        status = store.status[slot]
        if status == CANCELLED:
            alerts = self._win_back(slot, due)
            if alerts:
                self._dirty.add(slot)
            return alerts
        anchor = store.anchor[slot]
        if status != ACTIVE or anchor != anchor:
            return []
        policy = self._policy or self.policy_for(store.tenants[store.tenant[slot]])
        reasons = [policy.reason(store, slot, due)]
        episode = store.episodes.get(slot)
        alert_type: AlertType
        if episode is None or episode.start is None:
            tenant, member = store.key(slot)
            eid = episode_id(tenant, member, anchor)
            episode = store.episodes[slot] = Episode(eid, anchor, "absence", "medium")
            alert_type = "at_risk"
        elif episode.severity in NEXT:
            episode = store.episodes[slot] = episode._replace(severity=NEXT[str(episode.severity)])
            alert_type = "escalated"
        else:
            return []
        severity: Severity = episode.severity  # type: ignore[assignment]  # medium or high
        alert = self._alert(slot, policy, str(episode.id), alert_type, severity, due, reasons)
        self._dirty.add(slot)
        self._reschedule(slot, policy)
        return [alert]

    def _reschedule(self, slot: int, policy: Policy | None = None) -> None:
        if self._parked:
            self._parked.pop(slot, None)  # its timer is set again from its state
        m = self.store
        if policy is None:
            policy = self._policy or self.policy_for(m.tenants[m.tenant[slot]])
        deadline = policy.deadline(m, slot)
        # Never seen at a gate: no absence is counted until the member's site (or tenant)
        # has gate data. (A member seen at a gate has a site that has.)
        if (
            deadline is not None
            and m.last_visit[slot] != m.last_visit[slot]
            and m.coverage_of(slot) != m.coverage_of(slot)
        ):
            deadline = None
        m.deadline[slot] = math.nan if deadline is None else deadline
        timers = self.timers
        status = m.status[slot]
        if status != ACTIVE:
            left = m.departures.get(slot)
            if status == CANCELLED and left and left.winback == "planned":
                timers.schedule(slot, left.winback_due or 0.0)
            else:
                timers.cancel(slot)
            return
        episode = m.episodes.get(slot)
        due: float | None
        if episode is None or episode.start is None or episode.severity == "low":
            due = deadline
        elif episode.severity == "medium":
            due = policy.escalation(m, slot)
        else:
            due = None
        if due is None:
            timers.cancel(slot)
        else:
            timers.schedule(slot, due)

    def _win_back(self, slot: int, due: float) -> list[Alert]:
        """A former member's time to be asked back has come: one alert per cancellation."""
        m = self.store
        left = m.departures.get(slot)
        if left is None or left.winback != "planned":
            return []
        m.departures[slot] = replace(left, winback="raised")
        tenant, member = m.key(slot)
        plan = self.winback_for(tenant)
        start = left.tenures[-1][0]
        departure = departure_id(tenant, member, left.cancelled_at)
        figures: dict[str, float | int | str | None] = {
            "cancel_reason": left.reason,
            "days_since_cancelled": round((due - left.cancelled_at) / DAY, 1),
            "tenure_days": round((left.cancelled_at - start) / DAY),
            "visits_per_month_before_leaving": left.visits_month,
            "needs_consent": int(plan.rule(left.reason).needs_consent),
        }
        return [
            Alert(
                alert_id=alert_id(departure, "win_back_due"),
                episode_id=departure,
                type="win_back_due",
                tenant_id=tenant,
                member_id=member,
                site_id=m.sites[m.site[slot]],
                severity="low",
                policy="winback",
                reasons=[Reason(code="win_back_due", figures=figures)],
                deadline=_dt(left.winback_due or due),
                raised_at=_dt(due),
            )
        ]

    # -- alerts ----------------------------------------------------------------------------

    def _close(self, slot: int, policy: Policy, outcome: AlertType, t: float) -> Alert:
        """The alert that closes the open episode (``recovered`` or ``churned``)."""
        m = self.store
        eid = m.episodes.pop(slot).id
        assert eid is not None
        severity: Severity = "low" if outcome == "recovered" else "high"
        return self._alert(slot, policy, eid, outcome, severity, t, [(f"member_{outcome}", {})])

    def _alert(
        self,
        slot: int,
        policy: Policy,
        episode: str,
        alert_type: AlertType,
        severity: Severity,
        at: float,
        reasons: list[tuple[str, dict[str, float]]],
    ) -> Alert:
        """An alert of this episode: the member and the figures every reason carries (what
        staff read to judge the alert), from the columns."""
        m = self.store
        figures: dict[str, float] = {
            "visits_last_4_weeks": visits_since_at(m, slot, at - FOUR_WEEKS),
        }
        anchor = m.anchor[slot]
        if anchor == anchor:
            figures["days_absent"] = round((at - anchor) / DAY, 1)
            if anchor == m.coverage_of(slot) and not m.last_visit[slot] >= anchor:
                # The absence was clipped: counted from the start of gate data, not from
                # the member's last visit or joining (which may be long before).
                figures["days_since_gate_data_start"] = figures["days_absent"]
        if m.gap_n[slot]:
            gap = policy.usual_gap_days(m, slot)
            figures["usual_gap_days"] = round(gap, 1)
            figures["usual_visits_4_weeks"] = round(28.0 / gap, 1)
        start = m.joined_at[slot]
        if start != start:
            start = m.first_visit[slot]
        if start == start:
            figures["tenure_days"] = round((at - start) / DAY)
        tenant, member = m.key(slot)
        deadline = m.deadline[slot]
        return Alert(
            alert_id=alert_id(episode, alert_type, severity),
            episode_id=episode,
            type=alert_type,
            tenant_id=tenant,
            member_id=member,
            site_id=m.sites[m.site[slot]],
            severity=severity,
            policy=policy.name,
            # Each reason carries the member's figures and its own.
            reasons=[Reason(code=c, figures={**figures, **f}) for c, f in reasons],
            deadline=_dt(deadline) if deadline == deadline else None,
            raised_at=_dt(at),
        )
