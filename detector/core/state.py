"""What the detector remembers about one member."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"
    CANCELLED = "cancelled"


@dataclass(slots=True)
class MemberState:
    """One member of one tenant. Times are POSIX seconds.

    ``anchor`` is where the current absence is counted from: the last visit, or the day
    the member joined or came back from a freeze if that is later.
    """

    tenant_id: str
    member_id: str
    site_id: str | None = None
    status: Status = Status.ACTIVE
    status_at: float | None = None
    last_visit: float | None = None
    anchor: float | None = None
    deadline: float | None = None
    episode_id: str | None = None
    episode_start: float | None = None
    severity: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.tenant_id, self.member_id)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MemberState:
        values: dict[str, Any] = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        values["status"] = Status(values.get("status", Status.ACTIVE))
        return cls(**values)
