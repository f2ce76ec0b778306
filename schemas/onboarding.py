"""The control records ``lapse import`` brackets a club's history with on the events topic.

A control record is told apart from a member event by its header ``lapse-control`` (its value
is the record's kind); the value is a small JSON object. The importer sends one of each kind to
every partition of the events topic: "onboarding started" before the history's first row,
"onboarding finished" after its last was acknowledged, with ``end``, the time the history is
caught up to. The detectors catch the history up on its own time between the two
(``detector.onboarding``; ``docs/ingest.md``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

CONTROL_HEADER: Final = "lapse-control"
# On each history record: the latest event time of the whole import so far, this record's
# included (``repr`` of the POSIX seconds). A detector sees one partition's share of the
# history; with this it runs on the clock a replay of all the files runs on, so the same rows
# count as late (``detector.onboarding``).
WATERMARK_HEADER: Final = "lapse-history-watermark"
STARTED: Final = "onboarding-started"
FINISHED: Final = "onboarding-finished"
# The disorder a history file is allowed (``lapse replay --lateness`` by default): a day. A
# club's export is often sorted by day and gate rather than to the second, and nobody waits
# on a history, so holding its events back a day of event time costs nothing. The detectors
# catch an imported history up with the same lateness (not the live one), so an import gives
# what ``lapse replay`` gives with its defaults.
HISTORY_LATENESS: Final = 86_400.0
Kind = Literal["onboarding-started", "onboarding-finished"]


@dataclass(frozen=True, slots=True)
class Control:
    """One control record. ``run_id``: the import run (a resumed run says "started" again
    with the same id). ``end`` (finished): the time the history is caught up to, POSIX
    seconds. ``coverage_start`` (started, optional): from when the club's gate data covers its
    members, for the detector's coverage rule (carried; the rule is the core's)."""

    kind: Kind
    tenant_id: str
    run_id: str
    end: float | None = None
    coverage_start: float | None = None
    # Started: per site, the first access event of the whole history (POSIX seconds). A
    # detector sees one partition's share of the history; with this its gate-data coverage
    # is the one a replay of all the files finds (the first access event of each site).
    gate_data: dict[str, float] | None = None

    def record(self) -> tuple[bytes, list[tuple[str, bytes]]]:
        """The record's value and headers."""
        value: dict[str, object] = {
            "control": self.kind,
            "tenant_id": self.tenant_id,
            "run_id": self.run_id,
        }
        if self.end is not None:
            value["end"] = _iso(self.end)
        if self.coverage_start is not None:
            value["coverage_start"] = _iso(self.coverage_start)
        if self.gate_data is not None:
            value["gate_data"] = {site: _iso(t) for site, t in self.gate_data.items()}
        return json.dumps(value).encode(), [(CONTROL_HEADER, self.kind.encode())]

    @classmethod
    def parse(cls, kind: bytes, value: bytes | None) -> Control:
        """The control record of this header value and record value; ``ValueError``,
        ``KeyError`` or ``TypeError`` if it is not one."""
        body = json.loads(value or b"")
        gate_data = body.get("gate_data")
        return cls(
            STARTED if kind == STARTED.encode() else FINISHED,
            str(body["tenant_id"]),
            str(body["run_id"]),
            _time(body.get("end")),
            _time(body.get("coverage_start")),
            None
            if gate_data is None
            else {str(site): float(_time(t) or 0.0) for site, t in dict(gate_data).items()},
        )


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def _time(value: object) -> float | None:
    return None if value is None else datetime.fromisoformat(str(value)).timestamp()
