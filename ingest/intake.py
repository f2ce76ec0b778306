"""The one path every edge admits events through: validate, authorise, check the time, drop
retries, produce, remember.

HTTP, the MQTT bridge, vendor adapters and history import all call
:meth:`Intake.admit` with the raw decoded items (``dict``s as parsed from JSON) and the
:class:`~records.api_keys.Principal` of the caller; it returns an :class:`Admission` (accepted,
duplicates, rejected with reasons) once the broker acknowledged every accepted event, or
raises :class:`~ingest.producer.BrokerUnavailable` having acknowledged nothing.

Idempotency on ``event_id`` (per tenant): ids the broker already acknowledged are kept in
``ingested_events`` for ``LAPSE_DEDUP_RETENTION_DAYS``. A batch's ids are looked up in one
query before producing; ids already there, and repeats within the batch, are answered as
accepted and counted as ``duplicates`` without being produced again. New ids are written
only *after* the broker acknowledged them, so a failed produce stays retryable.

The residual window, on purpose: if the broker acknowledged but the insert fails (database
down) or the process dies between the two, the client's retry is produced again; two
concurrent requests carrying the same new id can also both produce it. The topic can
therefore hold an event twice in rare cases, and the detector deduplicates by ``event_id``
(its alert ids are deterministic), so this costs nothing but a record. For the same reason a
failing lookup does not refuse events: they are produced unchecked and the failure is logged.

Single events of concurrent requests are admitted together when the intake has a
:class:`~ingest.coalesce.Coalescer` (the HTTP service has one): one lookup, one produce and
one insert per flush instead of per request, each request still answered only once its own
event is acknowledged (see that module).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ingest import dedup
from ingest.body import Loc, Rejection, authorize, error, validate_event
from ingest.dedup import Key
from ingest.producer import BrokerUnavailable, produce
from schemas import Event

if TYPE_CHECKING:
    from ingest.coalesce import Coalescer
    from ingest.data_until import SiteProgress
from plumbing.settings import Settings
from records.api_keys import Principal
from schemas.events import AccessEvent, MembershipEvent

log = logging.getLogger(__name__)

EVENTS = Counter(
    "lapse_ingest_events_total",
    "Events received by ingest, by kind and outcome (accepted, duplicate, rejected, failed).",
    ["kind", "outcome"],
)

SITE_LAST_EVENT = Gauge(
    "lapse_ingest_site_last_event_timestamp_seconds",
    "Unix time ingest last accepted an access event from a site (wall clock at acceptance).",
    ["tenant", "site"],
)
# Sites need no registration, so a client could send endless site ids: past this many
# (tenant, site) series per process, new ones are not tracked (a warning says so once).
MAX_SITE_SERIES = 10_000
# Event ids named in the one log line that sums up a request's rejections.
LOGGED_REJECTIONS = 10

# Failures of the dedup table are not the client's problem (see the module docstring).
_DB_ERRORS = dedup.DB_ERRORS


def utcnow() -> datetime:
    return datetime.now(UTC)


def produce_deadline(settings: Settings) -> float:
    """Seconds to wait for the broker's acknowledgement before answering 503.

    ``LAPSE_INGEST_ACK_TIMEOUT_SECONDS``, not the Kafka client's request timeout: the client
    goes on retrying a busy broker for longer (a record that lands late is deduplicated).
    """
    return settings.ingest_ack_timeout_seconds


@dataclass(slots=True)
class Admission:
    """What became of the items, in request order within each list."""

    accepted: list[Event] = field(default_factory=list)
    """Admitted items: produced now and acknowledged, or duplicates of acknowledged ones."""
    duplicates: int = 0
    """How many of ``accepted`` were not produced again (retries, repeats in the batch)."""
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def event_ids(self) -> list[str]:
        return [e.event_id for e in self.accepted]


def too_far_ahead(event: Event, now: datetime, skew: float, at: Loc) -> Rejection | None:
    """Refuse an event stamped more than ``skew`` seconds in the future (a device clock off).

    Old events are fine however late: a controller that was offline uploads days of scans,
    and the detector treats them as late events.
    """
    ahead = (event.occurred_at - now).total_seconds()
    if ahead <= skew:
        return None
    return _future(event, now, ahead, skew, at)


def _future(event: Event, now: datetime, ahead: float, skew: float, at: Loc) -> Rejection:
    message = (
        f"is {ahead:.0f} s ahead of the server clock ({now.isoformat()}); at most "
        f"{skew:.0f} s are allowed: check the device's clock and time zone offset"
    )
    return Rejection(
        "future", [error((*at, "occurred_at"), message)], event_id=event.event_id, kind=event.kind
    )


def _at(prefix: Loc | None, index: int) -> Loc:
    """Where an item's errors are located: under ``prefix`` and its index, or the root."""
    return () if prefix is None else (*prefix, index)


@dataclass(slots=True)
class Intake:
    """Admits events for one producer; cheap to build, holds no state of its own."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    producer: AIOKafkaProducer
    now: Callable[[], datetime] = utcnow
    store: dedup.Store | None = None
    """Where acknowledged ids are kept; ``None``: through ``sessions`` (one engine for all)."""
    singles: Coalescer | None = None
    """Admits requests of one valid event together with concurrent ones, when given."""
    progress: SiteProgress | None = None
    """Writes how far each site's data has reached, coalesced (:mod:`ingest.data_until`)."""

    def check(
        self, items: Sequence[object], principal: Principal, prefix: Loc | None = ("events",)
    ) -> tuple[list[Event], list[Rejection]]:
        """Validate, authorise and time-check each item (no I/O).

        Errors are located at ``prefix + (index, field)``; ``prefix=None`` locates them at
        the root (a single event, not a list). An item that already is an event (validated
        with its batch, :func:`ingest.body.valid_batch`) is taken as it is, as pydantic
        itself takes a model instance (``revalidate_instances="never"``).
        """
        now = self.now()
        skew = self.settings.max_future_skew_seconds
        latest = now + timedelta(seconds=skew)
        tenant, site = principal.tenant_id, principal.site_id
        valid: list[Event] = []
        rejected: list[Rejection] = []
        for index, item in enumerate(items):
            # The error location is built only for an item that needs one: per item of a
            # batch of valid events, the loop costs about as much as the checks.
            if type(item) is AccessEvent or type(item) is MembershipEvent:
                event: Event = item
            else:
                result = validate_event(item, _at(prefix, index))
                if isinstance(result, Rejection):
                    result.index = None if prefix is None else index
                    rejected.append(result)
                    continue
                event = result
            # ``authorize``'s conditions, tested inline; it names the fields when one fails.
            refused: Rejection | None = None
            if event.tenant_id != tenant or (
                site is not None and type(event) is AccessEvent and event.site_id != site
            ):
                refused = authorize(event, principal, _at(prefix, index))
            # Compared first as datetimes: the common case costs no subtraction.
            elif event.occurred_at > latest:
                refused = too_far_ahead(event, now, skew, _at(prefix, index))
            if refused is None:
                valid.append(event)
            else:
                refused.index = None if prefix is None else index
                rejected.append(refused)
        return valid, rejected

    async def admit(
        self, items: Sequence[object], principal: Principal, prefix: Loc | None = ("events",)
    ) -> Admission:
        """Admit ``items`` for ``principal``: see the module docstring.

        Raises :class:`BrokerUnavailable` when the broker did not acknowledge every new event
        in time; then nothing is remembered and the whole request may be resent.
        """
        valid, rejected = self.check(items, principal, prefix)
        _count(rejected, "rejected")
        _log_rejections(rejected, principal, len(items))
        admission = Admission(accepted=valid, rejected=rejected)
        if not valid:
            return admission
        tenant = principal.tenant_id
        if self.singles is not None and len(valid) == 1:
            duplicate = await self.singles.admit((tenant, valid[0].event_id), valid[0])
            admission.duplicates = int(duplicate)
        else:
            flags = await self.writer().write([((tenant, e.event_id), e) for e in valid])
            admission.duplicates = sum(flags)
        _SITES.mark(principal.tenant_id, valid, self.now())
        return admission

    def writer(self) -> Writer:
        store = self.store if self.store is not None else dedup.SessionStore(self.sessions)
        return Writer(self.settings, store, self.producer, self.now, self.progress)


@dataclass(slots=True)
class Writer:
    """Look up, produce, remember: the I/O of admitting events already checked."""

    settings: Settings
    store: dedup.Store
    producer: AIOKafkaProducer
    now: Callable[[], datetime] = utcnow
    progress: SiteProgress | None = None
    """Where acknowledged sites' times go to be written coalesced; ``None``: written with
    each batch, before it is answered (the MQTT bridge's intake, tests)."""

    async def write(self, events: Sequence[tuple[Key, Event]]) -> list[bool]:
        """Produce the events not acknowledged before; per event, whether it was a duplicate.

        Keys already in the store, and repeats of a key earlier in ``events``, are not
        produced again. New keys are remembered only after the broker acknowledged all of
        them. Raises :class:`BrokerUnavailable` (nothing remembered) when it did not.
        """
        unique = list(dict.fromkeys(k for k, _ in events))
        try:
            known = await self.store.seen(unique)
        except _DB_ERRORS as exc:
            log.warning("dedup lookup failed (%s); producing unchecked", type(exc).__name__)
            known = set()
        fresh: list[Event] = []
        fresh_keys: list[Key] = []
        dupes: list[Event] = []
        flags: list[bool] = []
        taken: set[Key] = known
        for key, event in events:
            if key in taken:
                dupes.append(event)
                flags.append(True)
            else:
                taken.add(key)
                fresh.append(event)
                fresh_keys.append(key)
                flags.append(False)
        if fresh:
            try:
                deadline = produce_deadline(self.settings)
                await produce(self.producer, self.settings.events_topic, fresh, deadline)
            except BrokerUnavailable:
                _count(fresh, "failed")
                raise
            _count(fresh, "accepted")
            try:
                await self.store.remember(fresh_keys, self.now())
            except _DB_ERRORS as exc:
                log.warning(
                    "acknowledged %d event(s) but could not remember their ids (%s): a retry "
                    "will produce them again",
                    len(fresh),
                    type(exc).__name__,
                )
            # Acknowledged: how far the sites' data has reached may say so now, not before.
            latest = data_until_of(fresh)
            if self.progress is not None:
                self.progress.reached(latest)  # written coalesced, off this request's path
            else:
                try:
                    await self.store.data_reached(latest, self.now())
                except _DB_ERRORS as exc:
                    log.warning(
                        "could not record how far the sites' data has reached (%s): their "
                        "members' absence waits until a later batch records it",
                        type(exc).__name__,
                    )
        _count(dupes, "duplicate")
        return flags


def data_until_of(events: Sequence[Event]) -> dict[tuple[str, str], datetime]:
    """Per (tenant, site), the latest time among these access events: how far that site's
    gate data has reached once the broker acknowledged them (the detector's ticks carry it:
    absence at a site is not counted past its data, so a controller's late upload is history
    rather than alerts)."""
    latest: dict[tuple[str, str], datetime] = {}
    for e in events:
        if isinstance(e, AccessEvent):
            key = (e.tenant_id, e.site_id)
            if key not in latest or e.occurred_at > latest[key]:
                latest[key] = e.occurred_at
    return latest


def _count(items: Sequence[Event | Rejection], outcome: str) -> None:
    # One increment per kind, not per event: labels() costs a few µs each.
    for kind, n in collections.Counter(i.kind for i in items).items():
        EVENTS.labels(kind, outcome).inc(n)


def _field_name(field: object) -> str:
    """``events.3.site_id`` -> ``site_id``: the field, without the item it was in."""
    parts = str(field or "body").split(".")
    for i, part in enumerate(parts):
        if part.isdigit():
            return ".".join(parts[i + 1 :]) or "body"
    return ".".join(parts)


def _log_rejections(rejected: Sequence[Rejection], principal: Principal, total: int) -> None:
    """One line per request that refused events, however many: counts by reason with the
    fields at fault (names, never values) and the first event ids, so a batch of 1,000 bad
    events is one line, not 1,000. A single rejection carries its ``event_id`` as the
    correlation id of the JSON line."""
    if not rejected:
        return
    reasons: collections.Counter[str] = collections.Counter()
    fields: dict[str, collections.Counter[str]] = {}
    for refused in rejected:
        reasons[refused.reason] += 1
        named = fields.setdefault(refused.reason, collections.Counter())
        named.update(sorted({_field_name(e.get("field")) for e in refused.errors}))
    parts = []
    for reason, n in reasons.most_common():
        top = ", ".join(f"{f} {c}" if c > 1 else f for f, c in fields[reason].most_common(5))
        parts.append(f"{reason} {n} ({top})")
    ids = [r.event_id for r in rejected if r.event_id][:LOGGED_REJECTIONS]
    more = len(rejected) - len(ids)
    log.info(
        "rejected %d of %d event(s) for key %s: %s; event ids %s%s",
        len(rejected),
        total,
        principal.key_id,
        "; ".join(parts),
        ", ".join(ids) or "none",
        f" and {more} more" if more > 0 and ids else "",
        extra={"event_id": rejected[0].event_id if len(rejected) == 1 else None},
    )


@dataclass(slots=True)
class _SiteSeries:
    """The (tenant, site) series this process exports, capped at ``MAX_SITE_SERIES``."""

    tracked: set[tuple[str, str]] = field(default_factory=set)
    overflowed: bool = False

    def mark(self, tenant: str, events: Sequence[Event], now: datetime) -> None:
        """Stamp the sites that just sent an accepted access event (the silent-site alert)."""
        for site in {e.site_id for e in events if isinstance(e, AccessEvent)}:
            key = (tenant, site)
            if key not in self.tracked:
                if len(self.tracked) >= MAX_SITE_SERIES:
                    if not self.overflowed:
                        self.overflowed = True
                        log.warning(
                            "more than %d sites send events; new ones get no last-event gauge",
                            MAX_SITE_SERIES,
                        )
                    continue
                self.tracked.add(key)
            SITE_LAST_EVENT.labels(tenant, site).set(now.timestamp())


_SITES = _SiteSeries()


async def purge_dedup(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, now: datetime
) -> int:
    """Forget ids older than the retention; a retry after that is produced again."""
    before = now - timedelta(days=settings.dedup_retention_days)
    return await dedup.purge(sessions, before)
