"""``lapse import``: a club's exported history into the events topic, resumable, row by row.

Why straight to Kafka and not through the HTTP API: an export holds millions of rows, and the
HTTP path would add a request, a JSON round trip and a rate-limit bucket per 1,000 events for
nothing; the operator runs this command inside the trust boundary (it reads the database and
the brokers' address from the same settings as the services). It still applies the edge's
checks to every event: the schema (the same models, through :mod:`schemas.history`), the
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
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import sys
import time
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

from ingest.body import Rejection, authorize
from ingest.intake import too_far_ahead
from ingest.producer import BrokerUnavailable, produce
from lapse.auth import Principal
from lapse.db.models import ApiKey, ImportRun
from lapse.settings import Settings
from schemas.history import Event, Format, HistoryReader, RowError

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


@dataclass(slots=True)
class _Batch:
    events: list[Event] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    last_line: int = 0
    rows: int = 0


# --- progress on stderr ----------------------------------------------------------------------


class Progress:
    """Plain-text progress: a rewritten line on a terminal, a line every few seconds otherwise."""

    def __init__(self, out: IO[str] | None = None, every: float | None = None) -> None:
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self.every = every if every is not None else (0.25 if self.tty else 5.0)
        self.started = time.monotonic()
        self.last = 0.0
        self._from: dict[str, tuple[float, int]] = {}  # per file: when and where it started

    def update(self, name: str, rows: int, done: int, total: int, s: ImportSummary) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        self.out.write(self._line(name, rows, done, total, s, now) + ("\r" if self.tty else "\n"))
        self.out.flush()

    def finish(self, name: str, rows: int, total: int, s: ImportSummary) -> None:
        self.out.write(self._line(name, rows, total, total, s, time.monotonic()) + "\n")
        self.out.flush()

    def _line(
        self, name: str, rows: int, done: int, total: int, s: ImportSummary, now: float
    ) -> str:
        rate = rows / max(now - self.started, 1e-6)
        pct = 100.0 * done / total if total else 100.0
        return (
            f"{name}: {pct:5.1f}% of {total:,} bytes, {rows:,} rows read ({rate:,.0f}/s), "
            f"{s.accepted:,} accepted, {s.rejected:,} rejected{self._eta(name, done, total, now)}"
        )

    def _eta(self, name: str, done: int, total: int, now: float) -> str:
        """``, ETA 3m05s`` from this file's byte rate since this run reached it (a resumed
        run starts mid-file); empty until there is a rate to go by."""
        at, start = self._from.setdefault(name, (now, done))
        if done >= total:
            return ""
        if now - at < 1.0 or done <= start:
            return ", ETA …"
        left = (total - done) * (now - at) / (done - start)
        minutes, seconds = divmod(int(left + 0.5), 60)
        hours, minutes = divmod(minutes, 60)
        clock = f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"
        return f", ETA {clock}"


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
        progress: Progress | None = None,
        now: Callable[[], datetime] = utcnow,
        hook: Callable[[str, int], None] | None = None,
        retry_delay: float = 1.0,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.producer = producer
        self.tenant_id = tenant_id
        self.default_site = default_site
        self.fmt = fmt
        self.batch_size = batch_size
        self.keep_rejected = keep_rejected
        self.rejects = rejects
        self.progress = progress
        self.now = now
        self.hook = hook
        self.retry_delay = retry_delay
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
        identity = FileIdentity.of(path)
        run_id = identity.run_id(self.tenant_id)
        summary = ImportSummary(str(path))
        # Blocking reads of a local file in a CLI: buffered, cheap beside the broker round trips.
        with open(identity.path, "rb") as raw:  # noqa: ASYNC230
            reader = HistoryReader(
                raw, self.tenant_id, fmt=self.fmt, default_site=self.default_site
            )
            summary.format = reader.format
            run = await self._start(run_id, identity, reader.format, restart)
            summary.accepted, summary.rejected = run.accepted, run.rejected
            summary.by_reason.update(run.rejected_by_reason)
            summary.resumed_after = summary.last_line = run.last_line
            if run.status == "done":
                summary.already_done = True
                return summary
            rows = 0
            # The next batch is parsed while the broker acknowledges this one (same thread:
            # parsing yields to the event loop every few rows so the producer's I/O goes on).
            checked = self._checked(reader, run.last_line)
            batch = await self._next_batch(checked)
            n = 0
            while batch is not None:
                n += 1
                rows += batch.rows
                sending = asyncio.create_task(self._send(batch.events, batch.last_line, summary))
                try:
                    following = await self._next_batch(checked)
                except BaseException:
                    sending.cancel()
                    raise
                await sending
                self._call_hook("acked", n)
                self._write_rejects(path, batch.rejected)
                summary.accepted += len(batch.events)
                summary.rejected += len(batch.rejected)
                for r in batch.rejected:
                    summary.by_reason[r.reason] += 1
                    if len(summary.first_rejected) < self.keep_rejected:
                        summary.first_rejected.append(r)
                summary.last_line = batch.last_line
                await self._record(run_id, summary, done=False)
                self._call_hook("recorded", n)
                if self.progress is not None:
                    self.progress.update(path.name, rows, raw.tell(), identity.size, summary)
                batch = following
            await self._record(run_id, summary, done=True)
            if self.progress is not None:
                self.progress.finish(path.name, rows, identity.size, summary)
        return summary

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

    async def _next_batch(self, rows: Iterator[tuple[int, Event | Rejected]]) -> _Batch | None:
        batch = _Batch()
        for line, result in rows:
            batch.rows += 1
            batch.last_line = line
            if isinstance(result, Rejected):
                batch.rejected.append(result)
            else:
                batch.events.append(result)
            if len(batch.events) >= self.batch_size or batch.rows >= 4 * self.batch_size:
                return batch
            if batch.rows % 256 == 0:
                await asyncio.sleep(0)
        return batch if batch.rows else None

    async def _send(self, events: Sequence[Event], last_line: int, s: ImportSummary) -> None:
        if not events:
            return
        within = self.settings.kafka_bulk_request_timeout_ms / 1000 + 0.5 + len(events) / 20_000
        delay = self.retry_delay
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                await produce(self.producer, self.settings.events_topic, events, within)
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
        async with self.sessions() as session:
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


# --- command line ----------------------------------------------------------------------------


REJECTS_HEADER = ["file", "line", "reason", "message"]


def print_summary(s: ImportSummary, out: IO[str]) -> None:
    if s.already_done:
        out.write(
            f"{s.path}: already imported ({s.accepted:,} accepted, {s.rejected:,} rejected); "
            "--restart imports it again\n"
        )
        return
    resumed = f" (resumed after line {s.resumed_after:,})" if s.resumed_after else ""
    out.write(f"{s.path} [{s.format}]{resumed}: {s.accepted:,} accepted, {s.rejected:,} rejected\n")
    for reason, count in sorted(s.by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
        out.write(f"  {reason}: {count:,}\n")
    for r in s.first_rejected:
        out.write(f"  line {r.line}: {r.reason}: {r.message}\n")
    shown = len(s.first_rejected)
    if s.rejected > shown:
        out.write(f"  ... and {s.rejected - shown:,} more (--rejects FILE lists them all)\n")


async def run_import(settings: Settings, args: Any) -> int:
    """``lapse import``; returns the exit status (0 all accepted, 1 some rejected, 2 failed)."""
    from lapse.db.engine import create_engine, session_factory
    from lapse.db.migrate import upgrade
    from lapse.kafka import ensure_topics, start_producer

    if not settings.kafka_bootstrap:
        sys.stderr.write(
            "lapse import: set LAPSE_KAFKA_BOOTSTRAP; the embedded broker is memory only, "
            "an import into it would be lost\n"
        )
        return 2
    engine = create_engine(settings.database_url)
    producer: AIOKafkaProducer | None = None
    rejects_file: IO[str] | None = None
    status = 0
    try:
        await upgrade(engine)
        await ensure_topics(settings)
        producer = await start_producer(settings, bulk=True)  # patient: a bulk load
        writer = None
        if args.rejects:
            rejects_file = open(args.rejects, "a", newline="", encoding="utf-8")  # noqa: SIM115,ASYNC230
            writer = csv.writer(rejects_file)
            if rejects_file.tell() == 0:
                writer.writerow(REJECTS_HEADER)
        importer = Importer(
            settings,
            session_factory(engine),
            producer,
            args.tenant,
            default_site=args.site,
            fmt=args.format,
            batch_size=args.batch,
            keep_rejected=args.show_rejects,
            rejects=writer,
            progress=None if args.quiet else Progress(),
        )
        await importer.check_tenant()
        for name in args.files:
            summary = await importer.import_file(Path(name), restart=args.restart)
            print_summary(summary, sys.stdout)
            if summary.rejected:
                status = 1
    except (ImportFailed, KafkaError, OSError, ValueError) as exc:
        sys.stderr.write(f"lapse import: {exc}\n")
        status = 2
    finally:
        if rejects_file is not None:
            rejects_file.close()
        if producer is not None:
            await producer.stop()
        await engine.dispose()
    return status
