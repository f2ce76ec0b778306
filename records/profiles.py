"""Member profiles: the person behind a member id, for the staff who call them.

Optional fields per member of a tenant (``member_profiles``, migration 0009_profiles): display
name, phone, email, plan, photo URL and the club's CRM id. The member's ids in other systems
(Kisi) are the directory's other half (records/directory.py, ``member_external_ids``).

Set through ``PUT /v1/members/{member_id}/profile`` (api/routers/profiles.py),
``lapse members import-profiles`` (a CSV, the whole file or nothing) and a membership event's
optional ``profile`` (stored by the detector's checkpoint, :func:`merge_profile`); the fields
and their rules are the contract's (schemas/profiles.py); shown on the staff page
and in ``/v1/members``. Profiles are personal data, so:

- error messages name the field and the line, never the value (a terminal or a log may keep
  them);
- nothing here logs, and no log line of the routes carries a field (tests/api/test_profiles.py);
- ``forget`` erases the profile with the member (records/erasure.py);
- webhook payloads never carry a profile: a CRM that receives alerts already knows its members
  (it sent the ids), and a payload is stored in ``webhook_deliveries`` and retried, so a copy of
  a phone number there would outlive a change or an erasure of the profile.

Validation (loose for names and plans, strict where a link is built) is in schemas/profiles.py.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from records.tables import MemberProfile
from schemas.events import MemberId
from schemas.profiles import FIELDS, ProfileIn

__all__ = ["FIELDS", "Profile", "ProfileIn"]

_MEMBER: TypeAdapter[str] = TypeAdapter(MemberId)


class Profile(ProfileIn):
    member_id: str
    updated_at: datetime


def profile_of_row(row: MemberProfile) -> Profile:
    return Profile(
        member_id=row.member_id,
        updated_at=row.updated_at,
        **{f: getattr(row, f) for f in FIELDS},
    )


async def set_profile(
    session: AsyncSession, tenant_id: str, member_id: str, profile: ProfileIn
) -> MemberProfile | None:
    """Replace the member's profile (the caller commits); an empty profile deletes it."""
    every = {f: getattr(profile, f) for f in FIELDS}
    return await merge_profile(session, tenant_id, member_id, every, datetime.now(UTC))


async def merge_profile(
    session: AsyncSession,
    tenant_id: str,
    member_id: str,
    fields: Mapping[str, str | None],
    now: datetime,
) -> MemberProfile | None:
    """Set the ``fields`` given (None clears one) and keep the others (the caller commits):
    a membership event's profile. A profile left with no field is deleted."""
    row = await session.get(MemberProfile, (tenant_id, member_id))
    if row is None:
        if all(v is None for v in fields.values()):
            return None
        row = MemberProfile(tenant_id=tenant_id, member_id=member_id)
        for f in FIELDS:
            setattr(row, f, None)
        session.add(row)
    for f, value in fields.items():
        if f in FIELDS:
            setattr(row, f, value)
    if all(getattr(row, f) is None for f in FIELDS):
        await session.delete(row)
        return None
    row.updated_at = now
    return row


async def profile_of(session: AsyncSession, tenant_id: str, member_id: str) -> Profile | None:
    row = await session.get(MemberProfile, (tenant_id, member_id))
    return profile_of_row(row) if row is not None else None


async def profiles_of(
    session: AsyncSession, tenant_id: str, member_ids: list[str]
) -> dict[str, MemberProfile]:
    """The profiles of these members (those with one), by member id."""
    out: dict[str, MemberProfile] = {}
    unique = sorted(set(member_ids))
    for start in range(0, len(unique), 1000):
        rows = await session.scalars(
            select(MemberProfile).where(
                MemberProfile.tenant_id == tenant_id,
                MemberProfile.member_id.in_(unique[start : start + 1000]),
            )
        )
        out.update({r.member_id: r for r in rows})
    return out


class ProfileFileError(ValueError):
    """A profiles file that cannot be imported as a whole; the message names lines and fields,
    never values (the file is personal data, the terminal may be logged)."""


@dataclass(frozen=True, slots=True)
class ProfileRow:
    line: int
    member_id: str
    profile: ProfileIn


def read_profiles(path: Path) -> list[ProfileRow]:
    """The rows of a CSV with a ``member_id`` column and any of the profile columns (others
    ignored; UTF-8, a BOM allowed; an empty cell is "not known"). Every row is checked before
    any is used: an error is reported by line and field."""
    errors: list[str] = []
    rows: list[ProfileRow] = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        columns = set(reader.fieldnames or ())
        if "member_id" not in columns:
            raise ProfileFileError(f"{path}: no column member_id")
        if not columns & set(FIELDS):
            raise ProfileFileError(f"{path}: no profile column ({', '.join(FIELDS)})")
        seen: dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            member = (row.get("member_id") or "").strip()
            values: dict[str, Any] = {
                f: (row.get(f) or "").strip() or None for f in FIELDS if f in columns
            }
            if not member and not any(values.values()):
                continue
            try:
                _MEMBER.validate_python(member)
            except ValidationError:
                errors.append(f"line {line}: member_id is not a valid member id")
                continue
            if member in seen:
                errors.append(f"line {line}: same member_id as line {seen[member]}")
                continue
            seen[member] = line
            try:
                profile = ProfileIn.model_validate(values)
            except ValidationError as exc:
                bad = sorted({str(e["loc"][0]) for e in exc.errors() if e.get("loc")})
                errors.append(f"line {line}: invalid {', '.join(bad)}")
                continue
            rows.append(ProfileRow(line, member, profile))
    if errors:
        more = f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""
        raise ProfileFileError("nothing imported: " + "; ".join(errors[:20]) + more)
    return rows


async def import_profiles(session: AsyncSession, tenant_id: str, rows: list[ProfileRow]) -> int:
    """Set every row's profile (the caller commits: the whole file or nothing); how many rows.
    A row replaces the member's whole profile, as a PUT does."""
    for row in rows:
        await set_profile(session, tenant_id, row.member_id, row.profile)
    await session.flush()
    return len(rows)
