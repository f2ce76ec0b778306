"""Checkpoint rows read straight from the member store, without a ``MemberState`` per member.

A checkpoint writes the ``member_states`` row of every member changed since the last one, its
``state`` column the JSON text ``json.dumps(MemberState.to_dict())`` gives (what
``MemberState.from_dict`` reads back and the api reads). Building a ``MemberState`` from the
slot, copying it to a dict and encoding that dict cost ~20 µs a member, half of it the
generic encoder; here the same text is formatted from the columns directly, byte for byte
(tests/detector/test_checkpoint_rows.py compares the two on random states and on the edges
of each shortcut), in a quarter of the time, and with a fraction of the objects the
collector had to walk. Whole seconds (most times) are formatted as an int's digits and
".0", other doubles by ``float.__repr__`` (the shortest digits that read back the same:
what is left is mostly that); a departure or an open episode value by value.

The two time columns (``last_visit``, ``deadline``) are kept as microseconds since the epoch
(``micros``): what ``datetime.fromtimestamp(t, UTC)`` would hold, to the microsecond, without
building a ``datetime`` per row. PostgreSQL gets them as one JSON array of integers each
(cheaper to encode than asyncpg's ``timestamptz[]``), other databases as datetimes.

Pure: columns in, text and integers out, no I/O; ``detector.checkpoint`` writes them.

Fast path; reference: ``json.dumps(MemberState.to_dict())`` of ``MemberStore.state(slot)``;
pinned by
tests/detector/test_checkpoint_rows.py::test_rows_of_any_stored_states_are_their_state_rows
(and the edge cases beside it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from json.encoder import encode_basestring_ascii
from typing import Any, Final

from detector.core.state import Departure
from detector.core.store import STATUSES, MemberStore
from detector.core.visits import RECENT

_dumps = json.dumps
_text = encode_basestring_ascii  # json.dumps' own (C) encoder of a str, ensure_ascii as there

# ``"name": `` of each field of a departure, in the order ``asdict`` (``to_dict``) keeps.
_DEPARTURE_KEYS = tuple((_text(f.name) + ": ", f.name) for f in fields(Departure))
_NO_EPISODE: Final = ("null", "null", "null", "null")

# Final: compiled, C statics (a module global is a dict look-up per row).
_STATUS_JSON: Final = tuple(json.dumps(s.value) for s in STATUSES)
_STATUS: Final = tuple(str(s) for s in STATUSES)


def _value(v: Any) -> str:
    """One JSON value as ``json.dumps`` writes it (the common types without its overhead)."""
    t = type(v)
    if t is str:
        return _text(v)
    if v is None:
        return "null"
    if t is float:
        return _float(v, "NaN")
    if t is list:  # a departure's tenures: ``json.dumps`` of a list costs ~1 µs
        return "[" + ", ".join([_value(x) for x in v]) + "]"
    return _dumps(v)


def _float(x: float, nan: str) -> str:
    """A double as ``json.dumps`` writes it, ``nan`` for NaN (``"null"`` in the columns of
    optional times, where the store's NaN means None).

    Most are whole seconds (access systems stamp to the second). The repr of a whole double
    below 10¹⁶ in size is in fixed notation with all its digits, ``str(int(x)) + ".0"``: a
    shorter string would be another multiple of 10 below 2⁵⁴, where every even integer is a
    double, so it would read back as itself, not ``x``. Compiled, that is a third of the
    time of ``float.__repr__`` (and the look-up of its NaN and infinities it needed). Not
    -0.0, whose repr keeps its sign (0.0 goes the general way too); from 10¹⁶ the repr has
    an exponent."""
    if -1e16 < x < 1e16:
        whole = int(x)
        if whole == x and whole != 0:
            return str(whole) + ".0"
        return repr(x)
    if x != x:
        return nan
    if x == math.inf:
        return "Infinity"
    if x == -math.inf:
        return "-Infinity"
    return repr(x)


def micros(t: float | None) -> int | None:
    """A time (seconds since the epoch; None or NaN for none) as the whole microseconds
    since the epoch of ``datetime.fromtimestamp(t, UTC)``, exactly: that takes the fraction
    (``math.modf``) times 10⁶, as a double, rounded half to even (CPython's
    ``_PyTime_DoubleToDenominator``). Any finite time, also years ``datetime`` cannot hold;
    an infinite one raises ``OverflowError`` (as ``datetime.fromtimestamp`` does)."""
    if t is None or t != t:
        return None
    whole = int(t)  # towards zero
    frac = t - whole  # exact: ``math.modf``'s fraction
    if frac == 0.0:  # whole seconds: the common case (access systems stamp to the second)
        return whole * 1_000_000
    # Half to even by hand: compiled, ``round`` is a call of the builtin (3× all the rest).
    x = frac * 1e6
    size = abs(x)
    n = math.floor(size)
    rest = size - n  # exact (0 <= n <= size < n + 1)
    if rest > 0.5 or (rest == 0.5 and n % 2 == 1):
        n += 1
    return whole * 1_000_000 + (n if x >= 0.0 else -n)


def _departure(d: Departure) -> str:
    """A departure's JSON field by field: ``json.dumps`` of its dict took ~3 µs (a fifth of
    the simulated rows have one), mostly the encoder's set-up per call, this a fraction."""
    return "{" + ", ".join([key + _value(getattr(d, name)) for key, name in _DEPARTURE_KEYS]) + "}"


@dataclass(slots=True)
class StateRows:
    """``member_states`` rows as columns, one list per column (as one statement takes
    them): the state as JSON text, the indexed columns beside it. ``updated_at`` is set
    when written. Snapshots: later changes to the store do not reach them."""

    tenant_id: list[str] = field(default_factory=list)
    member_id: list[str] = field(default_factory=list)
    partition: list[int] = field(default_factory=list)
    site_id: list[str | None] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    # Microseconds since the epoch (``micros``); None for none.
    last_visit: list[int | None] = field(default_factory=list)
    deadline: list[int | None] = field(default_factory=list)
    episode_id: list[str | None] = field(default_factory=list)
    state: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.state)

    def columns(self) -> tuple[list[Any], ...]:
        """The columns in the order of the fields (``StateRows(*columns)`` rebuilds it)."""
        return (
            self.tenant_id,
            self.member_id,
            self.partition,
            self.site_id,
            self.status,
            self.last_visit,
            self.deadline,
            self.episode_id,
            self.state,
        )

    def add(self, store: MemberStore, slots: Iterable[int], partition: int) -> None:
        """Append the rows of these slots of ``store`` (members of ``partition``)."""
        tenants, ids, sites = store.tenants, store.ids, store.sites
        tenant, site, status, visits = store.tenant, store.site, store.status, store.visits
        status_at, joined_at = store.status_at, store.joined_at
        first_visit, last_visit, last_seen = store.first_visit, store.last_visit, store.last_seen
        gap_n, gap_mu, gap_s = store.gap_n, store.gap_mu, store.gap_s
        visit_minutes, usual_minutes = store.visit_minutes, store.usual_minutes
        recent_minutes, anchor, deadline = store.recent_minutes, store.anchor, store.deadline
        episodes, departures, exact = store.episodes, store.departures, store.exact
        longest, long_returns = store.longest_return_days, store.long_returns
        trouble = store.trouble_at
        rec, rn, rp = store.recent, store.rn, store.rp
        size = RECENT  # a local: compiled, the imported name is looked up per use
        text = _text
        out_tenant, out_member, out_site = self.tenant_id, self.member_id, self.site_id
        out_status, out_last, out_deadline = self.status, self.last_visit, self.deadline
        out_episode, out_state = self.episode_id, self.state
        for slot in slots:
            # The slot boxed once: compiled, indexing an ``array`` (or a dict) by a native int
            # boxes it, a new int object per column above 256 (~0.2 µs a row).
            key: Any = slot
            member = ids[slot]
            assert member is not None, "a free slot is never dirty"
            tenant_id: str = tenants[tenant[key]]
            site_id: str | None = sites[site[key]]
            code: int = status[key]
            # The latest visit starts, oldest first: whole seconds in the ring (an int's
            # digits and ".0" are the float's repr below 1e16), any float in ``exact``.
            times = exact.get(key)
            if times is not None:
                recent = ", ".join([_float(t, "NaN") for t in times])
            else:
                n: int = rn[key]
                if n:
                    rpos: int = rp[key]
                    base, start = slot * size, (rpos - n) % size
                    if start + n <= size:
                        ring = rec[base + start : base + start + n]
                    else:
                        ring = rec[base + start : base + size] + rec[base : base + start + n - size]
                    # Compiled, ``str`` of an int item is mypyc's own: 3/5 of ``map(str, ring)``.
                    recent = ".0, ".join([str(t) for t in ring]) + ".0"
                else:
                    recent = ""
            episode = episodes.get(key)
            if episode is None:
                eid, start_text, cause, severity = _NO_EPISODE
                episode_id: str | None = None
            else:
                eid, start_text = _value(episode.id), _value(episode.start)
                cause, severity = _value(episode.cause), _value(episode.severity)
                episode_id = episode.id
            departure = departures.get(key)
            last: float = last_visit[key]
            due: float = deadline[key]
            count: int = visits[key]
            gaps: int = gap_n[key]
            # The keys in the order of ``MemberState.to_dict()``. An f-string: compiled, one
            # ``CPyStr_Build`` of its parts, a quarter of the time of ``%`` on a template.
            out_state.append(
                f'{{"tenant_id": {text(tenant_id)}, "member_id": {text(member)}, '
                f'"site_id": {"null" if site_id is None else text(site_id)}, '
                f'"status": {_STATUS_JSON[code]}, '
                f'"status_at": {_float(status_at[key], "null")}, '
                f'"joined_at": {_float(joined_at[key], "null")}, '
                f'"first_visit": {_float(first_visit[key], "null")}, '
                f'"last_visit": {_float(last, "null")}, '
                f'"last_seen": {_float(last_seen[key], "null")}, '
                f'"visits": {count}, "recent": [{recent}], "gap_n": {gaps}, '
                f'"gap_mu": {_float(gap_mu[key], "NaN")}, '
                f'"gap_s": {_float(gap_s[key], "NaN")}, '
                f'"visit_minutes": {_float(visit_minutes[key], "null")}, '
                f'"usual_minutes": {_float(usual_minutes[key], "null")}, '
                f'"recent_minutes": {_float(recent_minutes[key], "null")}, '
                f'"anchor": {_float(anchor[key], "null")}, '
                f'"deadline": {_float(due, "null")}, '
                f'"episode_id": {eid}, "episode_start": {start_text}, '
                f'"episode_cause": {cause}, "severity": {severity}, '
                f'"departure": {"null" if departure is None else _departure(departure)}, '
                f'"longest_return_days": {_float(longest[key], "NaN")}, '
                f'"long_returns": {long_returns[key]}, '
                f'"trouble_at": {_float(trouble[key], "null")}}}'
            )
            out_tenant.append(tenant_id)
            out_member.append(member)
            out_site.append(site_id)
            out_status.append(_STATUS[code])
            out_episode.append(episode_id)
            out_last.append(micros(last))
            out_deadline.append(micros(due))
        self.partition += [partition] * (len(out_state) - len(self.partition))
