"""The tick: the wall clock recorded on a partition of ``lapse.member-events.v1``.

Live, time moves on for members who send nothing: an absence passes its deadline although no
event arrives. If the detector read the wall clock whenever a fetch returned, what it decides
would depend on when fetches returned (how many records each held, when a restart fell). So
the detector writes the wall time *into* each partition it owns, every
``LAPSE_TICK_SECONDS``, as a tick record; a partition's clock then moves only with the
records read from it (events and ticks), and a restart that re-reads from its stored
position re-reads the same ticks and decides the same.

A tick is keyed ``TICK_KEY``, which no member event can have (their keys are
``tenant_id:member_id`` and always hold one colon), so consumers tell ticks from member
events by the key alone, before parsing; its value is a ``Tick``. Every consumer of the
topic must skip or use ticks: they are never dead letters.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.events import EARLIEST, LATEST, Id

# The key of every tick record: no colon, so never a member event's key.
TICK_KEY = b"lapse-tick"


class SiteDataUntil(BaseModel):
    """How far one site's gate data has reached: the latest event time ingest acknowledged
    from it (written after the broker acknowledged those events, so they are on every
    partition before any tick that carries it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: Id
    site_id: Id
    until: AwareDatetime = Field(ge=EARLIEST, lt=LATEST)


class Tick(BaseModel):
    """The wall time, written on one partition of the member events topic by its owner."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    kind: Literal["tick"] = "tick"
    at: AwareDatetime = Field(
        ge=EARLIEST, lt=LATEST, description="The wall time when the tick was written."
    )
    data_until: list[SiteDataUntil] = Field(
        default_factory=list,
        description="Per site, how far its gate data has reached (absent: not reported).",
    )


def parse_tick(raw: bytes | str) -> Tick:
    """Parse a tick record's value (raises ``pydantic.ValidationError`` on bad input)."""
    return Tick.model_validate_json(raw)


def tick_record(tick: Tick) -> tuple[bytes, bytes]:
    """The key and value of a tick record."""
    return TICK_KEY, tick.model_dump_json().encode()
