"""Checkpoint rows read straight from the member store, without a ``MemberState`` per member.

A checkpoint writes the ``member_states`` row of every member changed since the last one, its
``state`` column the JSON text ``json.dumps(MemberState.to_dict())`` gives (what
``MemberState.from_dict`` reads back and the api reads). Building a ``MemberState`` from the
slot, copying it to a dict and encoding that dict cost ~20 µs a member, half of it the
generic encoder; here the same text is formatted from the columns directly, byte for byte
(tests/detector/test_checkpoint_rows.py compares the two on random states), in under half
the time (what is left is mostly ``float.__repr__``, which the text needs), and with a
fraction of the objects the collector had to walk. The rare parts (an open episode, a
departure) go through ``json.dumps`` as before.

The two time columns (``last_visit``, ``deadline``) are kept as microseconds since the epoch
(``micros``): what ``datetime.fromtimestamp(t, UTC)`` would hold, to the microsecond, without
building a ``datetime`` per row. PostgreSQL gets them as one JSON array of integers each
(cheaper to encode than asyncpg's ``timestamptz[]``), other databases as datetimes.

Pure: columns in, text and integers out, no I/O; ``detector.checkpoint`` writes them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from json.encoder import encode_basestring_ascii
from typing import Any, cast

from detector.core.state import Departure
from detector.core.store import STATUSES, MemberStore
from detector.core.visits import RECENT

# The keys of ``MemberState.to_dict()`` in its order (the text must keep it).
_KEYS = (
    "tenant_id",
    "member_id",
    "site_id",
    "status",
    "status_at",
    "joined_at",
    "first_visit",
    "last_visit",
    "last_seen",
    "visits",
    "recent",
    "gap_n",
    "gap_mu",
    "gap_s",
    "visit_minutes",
    "usual_minutes",
    "recent_minutes",
    "anchor",
    "deadline",
    "episode_id",
    "episode_start",
    "episode_cause",
    "severity",
    "departure",
)
# One ``%s`` per key; ``recent``'s brackets are in the template, its items come formatted.
_TEMPLATE = "{" + ", ".join(f'"{k}": ' + ("[%s]" if k == "recent" else "%s") for k in _KEYS) + "}"
_DEPARTURE_KEYS = tuple(f.name for f in fields(Departure))
_NO_EPISODE = ("null", "null", "null", "null")

# ``float.__repr__`` is what ``json.dumps`` writes for a float, except for these; the store's
# NaN in a column of optional times means None.
_SPECIAL = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
_OPTIONAL = {"nan": "null", "inf": "Infinity", "-inf": "-Infinity"}
_STATUS_JSON = tuple(json.dumps(s.value) for s in STATUSES)
_STATUS = tuple(str(s) for s in STATUSES)
_dumps = json.dumps
_text = encode_basestring_ascii  # json.dumps' own (C) encoder of a str, ensure_ascii as there


def _value(v: Any) -> str:
    """One JSON value as ``json.dumps`` writes it (the common types without its overhead)."""
    t = type(v)
    if t is str:
        return _text(v)
    if v is None:
        return "null"
    if t is float:
        r = float.__repr__(v)
        return _SPECIAL.get(r, r)
    return _dumps(v)


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
    return _dumps({k: getattr(d, k) for k in _DEPARTURE_KEYS})


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
        rec, rn, rp = store.recent, store.rn, store.rp
        rep = float.__repr__
        opt, special = _OPTIONAL.get, _SPECIAL.get
        text = _text
        out_tenant, out_member, out_site = self.tenant_id, self.member_id, self.site_id
        out_status, out_last, out_deadline = self.status, self.last_visit, self.deadline
        out_episode, out_state = self.episode_id, self.state
        for slot in slots:
            member = ids[slot]
            assert member is not None, "a free slot is never dirty"
            tenant_id = tenants[tenant[slot]]
            site_id = sites[site[slot]]
            code = status[slot]
            # The latest visit starts, oldest first: whole seconds in the ring (an int's
            # digits and ".0" are the float's repr below 1e16), any float in ``exact``.
            times = exact.get(slot)
            if times is not None:
                recent = ", ".join([_value(t) for t in times])
            else:
                n = rn[slot]
                if n:
                    base, start = slot * RECENT, (rp[slot] - n) % RECENT
                    if start + n <= RECENT:
                        ring = rec[base + start : base + start + n]
                    else:
                        ring = (
                            rec[base + start : base + RECENT]
                            + rec[base : base + start + n - RECENT]
                        )
                    recent = ".0, ".join(map(str, ring)) + ".0"
                else:
                    recent = ""
            episode = episodes.get(slot)
            if episode is None:
                eid, start_text, cause, severity = _NO_EPISODE
                episode_id: str | None = None
            else:
                eid, start_text, cause, severity = (_value(v) for v in episode)
                episode_id = cast(str | None, episode[0])  # a str, as in MemberState
            departure = departures.get(slot)
            r1, r2, r3 = rep(status_at[slot]), rep(joined_at[slot]), rep(first_visit[slot])
            r4, r5, r6 = rep(last_visit[slot]), rep(last_seen[slot]), rep(gap_mu[slot])
            r7, r8, r9 = rep(gap_s[slot]), rep(visit_minutes[slot]), rep(usual_minutes[slot])
            r10, r11 = rep(recent_minutes[slot]), rep(anchor[slot])
            r12 = rep(deadline[slot])
            out_state.append(
                _TEMPLATE
                % (
                    text(tenant_id),
                    text(member),
                    "null" if site_id is None else text(site_id),
                    _STATUS_JSON[code],
                    opt(r1, r1),
                    opt(r2, r2),
                    opt(r3, r3),
                    opt(r4, r4),
                    opt(r5, r5),
                    visits[slot],
                    recent,
                    gap_n[slot],
                    special(r6, r6),
                    special(r7, r7),
                    opt(r8, r8),
                    opt(r9, r9),
                    opt(r10, r10),
                    opt(r11, r11),
                    opt(r12, r12),
                    eid,
                    start_text,
                    cause,
                    severity,
                    "null" if departure is None else _departure(departure),
                )
            )
            out_tenant.append(tenant_id)
            out_member.append(member)
            out_site.append(site_id)
            out_status.append(_STATUS[code])
            out_episode.append(episode_id)
            out_last.append(micros(last_visit[slot]))
            out_deadline.append(micros(deadline[slot]))
        self.partition += [partition] * (len(out_state) - len(self.partition))
