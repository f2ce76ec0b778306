"""``lapse import``: a club's exported history into the events topic, resumable, row by row.

Why straight to Kafka and not through the HTTP API: an export holds millions of rows, and the
HTTP path would add a request, a JSON round trip and a rate-limit bucket per 1,000 events for
nothing; the operator runs this command inside the trust boundary (it reads the database and
the brokers' address from the same settings as the services). It still applies the edge's
checks to every event: the schema (the same models, through :mod:`history`), the
tenant (:func:`ingest.body.authorize` with the tenant given on the command line, which must
hold an active API key so a typo cannot create a phantom tenant) and the clock
(:func:`ingest.intake.too_far_ahead`). It does not write the ingest dedup table: history
rows carry deterministic ids (see ``docs/history-csv.md``), so a re-import produces the same
ids and the detector's deduplication by ``event_id`` absorbs them.

Events go out in batches with acks=all. Progress is a row of ``import_runs`` per tenant and
file identity (absolute path, size, SHA-256 of the first MiB): after each batch the broker
acknowledged in full, the last line of that batch is recorded, never a line further. A run
that crashed or was interrupted resumes after the recorded line when the same command is run
again; at most the batch in flight at the crash is produced twice, which dedup absorbs.
``--restart`` starts the file over. A file that changed (other size or first MiB) is a new
file.

Why the files are read twice (checked on purpose; see :meth:`Importer._gate_data`): the
"onboarding started" record, sent to every partition before the first event, carries per
site the time of the first access event the whole run sends (``Control.gate_data``). Each
detector builds its onboarding detector's gate-data coverage from it before it consumes a
single event of the run (``detector.onboarding``), and a detector holds only its partition's
share of the members, so it cannot learn a site's start from the events it sees. A site's
first event can be on the last line of the files (a club that joined the chain late), so
that record can only be written after every line was read and checked: one pass before
sending, one to send. The first pass keeps nothing but a time per site (the files are
streamed, never held), checks rows as the second does (a rejected row never sets a site's
start) and, on resume, still reads from line 1 (the record covers the whole run, sent lines
included). Moving the coverage to a later record would change what the detectors see and
when, so the second read stays. It costs what reading and checking the rows costs, about a
fifth of an import's time (figure and command: ``docs/benchmarks.md``, "Writing
site_data_until, and the import's two reads").
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import heapq
import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from history import HistoryReader
from history.order import HistoryOrderError, OutOfOrder, TimeOrder
from ingest.body import Rejection, authorize
from ingest.intake import too_far_ahead
from ingest.producer import BrokerUnavailable, produce
from plumbing.settings import Settings
from records.api_keys import Principal
from records.tables import ApiKey, ImportRun
from schemas import Event
from schemas.events import AccessEvent
from schemas.history import Format, RowError, Zones
from schemas.onboarding import FINISHED, HISTORY_LATENESS, STARTED, WATERMARK_HEADER, Control

HEAD_BYTES = 1 << 20
DEFAULT_BATCH = 5000
SEND_ATTEMPTS = 5


class RowWriter(Protocol):
    """Where every rejected row goes (a ``csv.writer`` of the ``--rejects`` file)."""

    def writerow(self, row: Sequence[object], /) -> Any: ...


class ImportFailed(Exception):
    """The import stopped; the recorded progress is still right, so re-running resumes."""


class ImportInterrupted(Exception):
    """Raised by a test hook to simulate a crash at a chosen point."""


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- file identity ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileIdentity:
    path: str
    size: int
    head_sha256: str

    @classmethod
    def of(cls, path: Path) -> FileIdentity:
        resolved = path.resolve()
        with resolved.open("rb") as f:
            head = hashlib.sha256(f.read(HEAD_BYTES)).hexdigest()
        return cls(str(resolved), resolved.stat().st_size, head)

    def run_id(self, tenant_id: str) -> str:
        key = "\0".join((tenant_id, self.path, str(self.size), self.head_sha256))
        return hashlib.sha256(key.encode()).hexdigest()


# --- outcome ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Rejected:
    line: int
    reason: str
    message: str


@dataclass(slots=True)
class ImportSummary:
    """Totals over every run of this file (a resumed run adds to the earlier ones)."""

    path: str
    format: str = ""
    accepted: int = 0
    rejected: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    first_rejected: list[Rejected] = field(default_factory=list)
    resumed_after: int = 0
    already_done: bool = False
    last_line: int = 0


# A checked row as the merge sees it: (time it merges at, file index, line, event or why not).
_Row = tuple[float, int, int, "Event | Rejected"]


def _by_time(row: _Row) -> float:
    return row[0]


@dataclass(slots=True)
class _Batch:
    """Rows of one batch: events in merged order; per file (by index) the rejected rows,
    how many events, and the last line read (only files with a row in the batch)."""

    events: list[Event] = field(default_factory=list)
    rejected: list[list[Rejected]] = field(default_factory=list)
    accepted: list[int] = field(default_factory=list)
    last_lines: dict[int, int] = field(default_factory=dict)
    rows: int = 0
    latest: float = -math.inf
    # Per event, the whole run's watermark so far (schemas.onboarding.WATERMARK_HEADER).
    headers: list[list[tuple[str, bytes]]] = field(default_factory=list)


@dataclass(slots=True)
class _Source:
    """One file of a run: where it is read from and its progress."""

    path: Path
    identity: FileIdentity
    row_id: str
    raw: IO[bytes]
    reader: HistoryReader
    summary: ImportSummary
    run: ImportRun


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _names(sources: Sequence[_Source]) -> str:
    return " + ".join(src.path.name for src in sources)


def _size(sources: Sequence[_Source]) -> int:
    return sum(src.identity.size for src in sources)


def _totals(summaries: Sequence[ImportSummary]) -> ImportSummary:
    """The files' counts added up (what the progress line shows for a run)."""
    total = ImportSummary(" + ".join(s.path for s in summaries))
    for s in summaries:
        total.accepted += s.accepted
        total.rejected += s.rejected
    return total


# --- progress --------------------------------------------------------------------------------


class ProgressSink(Protocol):
    """Where a run reports how far it got (``lapse import`` draws a line on stderr:
    ``lapse.progress.ImportProgress``): often while it reads, and once at each file's end."""

    def update(self, name: str, rows: int, done: int, total: int, s: ImportSummary) -> None: ...

    def finish(self, name: str, rows: int, total: int, s: ImportSummary) -> None: ...


# --- the import ------------------------------------------------------------------------------


class Importer:
    """Imports files for one tenant over one started producer and a migrated database."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        producer: AIOKafkaProducer,
        tenant_id: str,
        *,
        default_site: str | None = None,
        fmt: Format | None = None,
        batch_size: int = DEFAULT_BATCH,
        keep_rejected: int = 20,
        rejects: RowWriter | None = None,
        progress: ProgressSink | None = None,
        now: Callable[[], datetime] = utcnow,
        hook: Callable[[str, int], None] | None = None,
        retry_delay: float = 1.0,
        coverage_start: float | None = None,
        zones: Zones | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.producer = producer
        self.tenant_id = tenant_id
        self.default_site = default_site
        self.zones = zones  # the zones naive times are read in (``--time-zone``)
        self.fmt = fmt
        self.batch_size = batch_size
        self.keep_rejected = keep_rejected
        self.rejects = rejects
        self.progress = progress
        self.now = now
        self.hook = hook
        self.retry_delay = retry_delay
        # From when the club's gate data covers its members, if the operator says so: carried
        # to the detectors on the "onboarding started" record (the core's coverage rule).
        self.coverage_start = coverage_start
        # The time the last run caught up to (``lapse replay --until`` it gives the same).
        self.caught_up_to: datetime | None = None
        self._rows = 0
        self._seen = -math.inf
        self.principal = Principal("import", tenant_id, None, frozenset({"events:write"}))

    async def check_tenant(self) -> None:
        """The tenant must hold an active API key: a mistyped tenant fails here, not later."""
        async with self.sessions() as session:
            found = await session.scalar(
                select(ApiKey.id)
                .where(ApiKey.tenant_id == self.tenant_id, ApiKey.revoked_at.is_(None))
                .limit(1)
            )
        if found is None:
            raise ImportFailed(
                f"tenant {self.tenant_id!r} has no active API key; check the tenant id "
                f"(create one with: lapse keys create --tenant {self.tenant_id})"
            )

    async def import_file(self, path: Path, *, restart: bool = False) -> ImportSummary:
        """One file as one run (see ``import_files``)."""
        return (await self.import_files([path], restart=restart))[0]

    async def import_files(
        self, paths: Sequence[Path], *, restart: bool = False
    ) -> list[ImportSummary]:
        """Import these files as one run: their rows merged by time, whatever order the files
        are given in (as ``lapse replay`` merges them), each file read as a stream.

        The run is bracketed by control records on every partition of the events topic
        ("onboarding started", "onboarding finished" with the time it caught up to): the
        detectors catch the club's history up on its own time between the two
        (``detector.onboarding``). Progress is recorded per file: after each acknowledged
        batch, the last line of each file whose rows went out in it (the rows are merged in
        order, so every earlier line of that file went out too); a resumed run skips each
        file's recorded lines, and the merge of what is left goes on where it stopped.
        """
        identities = [FileIdentity.of(path) for path in paths]
        file_ids = [identity.run_id(self.tenant_id) for identity in identities]
        set_id = file_ids[0] if len(file_ids) == 1 else _digest(self.tenant_id, *sorted(file_ids))
        row_ids = file_ids if len(file_ids) == 1 else [_digest(set_id, f) for f in file_ids]
        with contextlib.ExitStack() as files:
            sources: list[_Source] = []
            for path, identity, row_id in zip(paths, identities, row_ids, strict=True):
                # Blocking reads of local files in a CLI: buffered, cheap beside the broker.
                raw = files.enter_context(open(identity.path, "rb"))  # noqa: ASYNC230
                reader = HistoryReader(
                    raw,
                    self.tenant_id,
                    fmt=self.fmt,
                    default_site=self.default_site,
                    zones=self.zones,
                )
                summary = ImportSummary(str(path), format=reader.format)
                run = await self._start(row_id, identity, reader.format, restart)
                summary.accepted, summary.rejected = run.accepted, run.rejected
                summary.by_reason.update(run.rejected_by_reason)
                summary.resumed_after = summary.last_line = run.last_line
                summary.already_done = run.status == "done"
                sources.append(_Source(path, identity, row_id, raw, reader, summary, run))
            summaries = [source.summary for source in sources]
            if all(s.already_done for s in summaries):
                return summaries
            for s in summaries:
                s.already_done = False
            # The run's id for the detectors: the files, and when this run was (re)started (a
            # resumed run says "started" again with the same id; ``--restart`` is a new run).
            first = min(source.run.started_at for source in sources)
            run_id = f"{set_id[:40]}-{int(first.timestamp() * 1_000_000)}"
            gate_data = self._gate_data(sources)
            await self._control(
                Control(STARTED, self.tenant_id, run_id, None, self.coverage_start, gate_data)
            )
            end = await self._send_merged(sources)
            end = max(end, self.now().timestamp())
            await self._control(Control(FINISHED, self.tenant_id, run_id, end))
            self.caught_up_to = datetime.fromtimestamp(end, UTC)
            for source in sources:
                await self._record(source.row_id, source.summary, done=True)
            if self.progress is not None:
                self.progress.finish(
                    _names(sources), self._rows, _size(sources), _totals(summaries)
                )
        return summaries

    def _gate_data(self, sources: Sequence[_Source]) -> dict[str, float]:
        """Per site, the first access event the run sends (all its files read once more,
        before anything is sent): the gate-data coverage a replay of the files finds, which a
        detector holding one partition's share of the history could not know. The same read
        refuses files not in time order (``history.order``: nothing is sent then)."""
        first: dict[str, float] = {}
        disorder: list[OutOfOrder] = []
        for src in sources:
            order = TimeOrder(HISTORY_LATENESS)
            with HistoryReader(
                src.identity.path,
                self.tenant_id,
                fmt=self.fmt,
                default_site=self.default_site,
                zones=self.zones,
            ) as reader:
                for line, result in self._checked(reader, 0):
                    if isinstance(result, Rejected):
                        continue
                    t = result.occurred_at.timestamp()
                    order.see(line, t)
                    if isinstance(result, AccessEvent) and t < first.get(result.site_id, math.inf):
                        first[result.site_id] = t
            if (verdict := order.verdict(str(src.path))) is not None:
                disorder.append(verdict)
        if disorder:
            raise HistoryOrderError(disorder)
        return first

    async def _send_merged(self, sources: list[_Source]) -> float:
        """Send the files' rows merged by time, batch by batch; the latest event time sent."""
        self._rows = 0
        # The latest event time sent in this run, a resumed run's earlier rows included.
        self._seen = -math.inf
        streams = [self._timed(i, src) for i, src in enumerate(sources)]
        merged = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=_by_time)
        latest = -math.inf
        batch = await self._next_batch(merged, len(sources))
        n = 0
        while batch is not None:
            n += 1
            self._rows += batch.rows
            latest = max(latest, batch.latest)
            last_line = max(batch.last_lines.values(), default=0)
            summary = (
                sources[0].summary
                if len(sources) == 1
                else _totals([src.summary for src in sources])
            )
            sending = asyncio.create_task(
                self._send(batch.events, last_line, summary, batch.headers)
            )
            try:
                following = await self._next_batch(merged, len(sources))
            except BaseException:
                sending.cancel()
                raise
            await sending
            self._call_hook("acked", n)
            for i, line in batch.last_lines.items():
                src = sources[i]
                s = src.summary
                rejected = batch.rejected[i]
                self._write_rejects(src.path, rejected)
                s.accepted += batch.accepted[i]
                s.rejected += len(rejected)
                for r in rejected:
                    s.by_reason[r.reason] += 1
                    if len(s.first_rejected) < self.keep_rejected:
                        s.first_rejected.append(r)
                s.last_line = line
            await self._record_all(
                [(sources[i].row_id, sources[i].summary) for i in batch.last_lines]
            )
            self._call_hook("recorded", n)
            if self.progress is not None:
                done = sum(src.raw.tell() for src in sources)
                totals = _totals([src.summary for src in sources])
                self.progress.update(_names(sources), self._rows, done, _size(sources), totals)
            batch = following
        return latest

    async def _control(self, control: Control) -> None:
        """Send a control record to every partition of the events topic; wait for all."""
        value, headers = control.record()
        topic = self.settings.events_topic
        within = self.settings.kafka_request_timeout_ms / 1000 + 0.5
        delay = self.retry_delay
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                async with asyncio.timeout(within):
                    partitions = sorted(await self.producer.partitions_for(topic))
                    sent = [
                        await self.producer.send(topic, value, partition=p, headers=headers)
                        for p in partitions
                    ]
                    await asyncio.gather(*sent)
                return
            except (KafkaError, TimeoutError) as exc:
                if attempt == SEND_ATTEMPTS:
                    raise ImportFailed(
                        f"the broker did not acknowledge the {control.kind} record after "
                        f"{attempt} attempts ({exc}); run the same command again to resume"
                    ) from exc
                await asyncio.sleep(delay)
                delay *= 2

    def _call_hook(self, stage: str, batch: int) -> None:
        if self.hook is not None:
            self.hook(stage, batch)

    def _checked(self, reader: HistoryReader, after: int) -> Iterator[tuple[int, Event | Rejected]]:
        """Each row after line ``after``: an event that passed the edge's checks, or why not."""
        now = self.now()
        skew = self.settings.max_future_skew_seconds
        for line, result in reader:
            if line <= after:
                continue
            if isinstance(result, RowError):
                yield line, Rejected(line, result.reason, result.message)
                continue
            refused = authorize(result, self.principal) or too_far_ahead(result, now, skew, ())
            yield line, (result if refused is None else Rejected(line, *_reason(refused)))

    def _timed(self, i: int, src: _Source) -> Iterator[_Row]:
        """A file's checked rows with the time they merge at: an event's own; a rejected
        row's, the time of the event before it (it goes out with its neighbours)."""
        t = -math.inf
        sent = src.run.last_line
        for line, result in self._checked(src.reader, 0):
            if not isinstance(result, Rejected):
                t = result.occurred_at.timestamp()
            if line <= sent:
                # Sent before a resume: the import's watermark had passed it. (The merge
                # takes every file's first row before it yields one, so every file's sent
                # rows count before the first header of the resumed run is written.)
                if t > self._seen:
                    self._seen = t
                continue
            yield t, i, line, result

    async def _next_batch(self, rows: Iterator[_Row], files: int) -> _Batch | None:
        batch = _Batch(rejected=[[] for _ in range(files)], accepted=[0] * files)
        for t, i, line, result in rows:
            batch.rows += 1
            batch.last_lines[i] = line
            if isinstance(result, Rejected):
                batch.rejected[i].append(result)
            else:
                batch.events.append(result)
                batch.accepted[i] += 1
                if t > batch.latest:
                    batch.latest = t
                if t > self._seen:
                    self._seen = t
                batch.headers.append([(WATERMARK_HEADER, repr(self._seen).encode())])
            if len(batch.events) >= self.batch_size or batch.rows >= 4 * self.batch_size:
                return batch
            if batch.rows % 256 == 0:
                await asyncio.sleep(0)
        return batch if batch.rows else None

    async def _send(
        self,
        events: Sequence[Event],
        last_line: int,
        s: ImportSummary,
        headers: Sequence[list[tuple[str, bytes]]] | None = None,
    ) -> None:
        if not events:
            return
        within = self.settings.kafka_bulk_request_timeout_ms / 1000 + 0.5 + len(events) / 20_000
        delay = self.retry_delay
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                await produce(self.producer, self.settings.events_topic, events, within, headers)
                return
            except BrokerUnavailable as exc:
                if attempt == SEND_ATTEMPTS:
                    raise ImportFailed(
                        f"the broker did not acknowledge the batch ending at line {last_line} "
                        f"after {attempt} attempts ({exc}); lines up to {s.last_line} are "
                        "recorded: run the same command again to resume"
                    ) from exc
                await asyncio.sleep(delay)
                delay *= 2

    def _write_rejects(self, path: Path, rejected: list[Rejected]) -> None:
        # Written before the progress is recorded: a crash in between repeats lines in the
        # rejects file on resume rather than losing them.
        if self.rejects is not None:
            for r in rejected:
                self.rejects.writerow([str(path), r.line, r.reason, r.message])

    async def _start(
        self, run_id: str, identity: FileIdentity, fmt: str, restart: bool
    ) -> ImportRun:
        now = self.now()
        async with self.sessions() as session:
            run = await session.get(ImportRun, run_id)
            if run is None:
                run = ImportRun(id=run_id, tenant_id=self.tenant_id, started_at=now)
                session.add(run)
            elif not restart:
                return run
            run.path, run.size, run.head_sha256 = identity.path, identity.size, identity.head_sha256
            run.format, run.status = fmt, "running"
            run.last_line = run.accepted = run.rejected = 0
            run.rejected_by_reason = {}
            run.started_at = run.updated_at = now
            run.finished_at = None
            await session.commit()
            return run

    async def _record(self, run_id: str, s: ImportSummary, *, done: bool) -> None:
        await self._record_all([(run_id, s)], done=done)

    async def _record_all(
        self, runs: Sequence[tuple[str, ImportSummary]], *, done: bool = False
    ) -> None:
        """Record the progress of these files in one transaction."""
        async with self.sessions() as session:
            for run_id, s in runs:
                run = await session.get(ImportRun, run_id)
                assert run is not None
                run.last_line, run.accepted, run.rejected = s.last_line, s.accepted, s.rejected
                run.rejected_by_reason = dict(s.by_reason)
                run.updated_at = self.now()
                if done:
                    run.status, run.finished_at = "done", run.updated_at
            await session.commit()


def _reason(refused: Rejection) -> tuple[str, str]:
    message = "; ".join(f"{e['field']}: {e['message']}" for e in refused.errors)
    return refused.reason, message


# --- one run, from the settings --------------------------------------------------------------


REJECTS_HEADER = ["file", "line", "reason", "message"]


@dataclass(slots=True)
class ImportOutcome:
    """What ``lapse import`` prints: each file's totals, and the time the run caught up to
    (the end of the files' gate data), when it got that far."""

    summaries: list[ImportSummary]
    caught_up_to: datetime | None


async def import_history(
    settings: Settings,
    tenant_id: str,
    paths: Sequence[Path],
    *,
    default_site: str | None = None,
    fmt: Format | None = None,
    batch_size: int = DEFAULT_BATCH,
    keep_rejected: int = 20,
    rejects_path: str | None = None,
    progress: ProgressSink | None = None,
    coverage_start: float | None = None,
    restart: bool = False,
    zones: Zones | None = None,
) -> ImportOutcome:
    """One run over ``paths`` for ``tenant_id``, their rows merged by time
    (``detector.onboarding``), on the database and brokers of ``settings``: migrate, make the
    topics, import resumably, append every rejected row to ``rejects_path`` (a CSV).

    Raises :class:`ImportFailed` (also when ``LAPSE_KAFKA_BOOTSTRAP`` is unset: the embedded
    broker is memory only, an import into it would be lost), ``KafkaError``, ``OSError`` or
    ``ValueError``; the recorded progress is right in every case, so re-running resumes."""
    from plumbing.database import create_engine, session_factory
    from plumbing.kafka import ensure_topics, start_producer
    from records.migrate import upgrade

    if not settings.kafka_bootstrap:
        raise ImportFailed(
            "set LAPSE_KAFKA_BOOTSTRAP; the embedded broker is memory only, "
            "an import into it would be lost"
        )
    engine = create_engine(settings.database_url)
    producer: AIOKafkaProducer | None = None
    rejects_file: IO[str] | None = None
    try:
        await upgrade(engine)
        await ensure_topics(settings)
        producer = await start_producer(settings, bulk=True)  # patient: a bulk load
        writer = None
        if rejects_path:
            rejects_file = open(rejects_path, "a", newline="", encoding="utf-8")  # noqa: SIM115,ASYNC230
            writer = csv.writer(rejects_file)
            if rejects_file.tell() == 0:
                writer.writerow(REJECTS_HEADER)
        importer = Importer(
            settings,
            session_factory(engine),
            producer,
            tenant_id,
            default_site=default_site,
            fmt=fmt,
            batch_size=batch_size,
            keep_rejected=keep_rejected,
            rejects=writer,
            progress=progress,
            coverage_start=coverage_start,
            zones=zones,
        )
        await importer.check_tenant()
        summaries = await importer.import_files(list(paths), restart=restart)
        return ImportOutcome(summaries, importer.caught_up_to)
    finally:
        if rejects_file is not None:
            rejects_file.close()
        if producer is not None:
            await producer.stop()
        await engine.dispose()
