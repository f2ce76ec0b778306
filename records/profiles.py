"""Member profiles: the person behind a member id, for the staff who call them.

Optional fields per member of a tenant (``member_profiles``, migration 0009_profiles): display
name, phone, email, plan, photo URL and the club's CRM id. The member's ids in other systems
(Kisi) are the directory's other half (records/directory.py, ``member_external_ids``).

Set through ``PUT /v1/members/{member_id}/profile`` (api/routers/profiles.py) and
``lapse members import-profiles`` (a CSV, the whole file or nothing); shown on the staff page
and in ``/v1/members``. Profiles are personal data, so:

- error messages name the field and the line, never the value (a terminal or a log may keep
  them);
- nothing here logs, and no log line of the routes carries a field (tests/api/test_profiles.py);
- ``forget`` erases the profile with the member (records/erasure.py);
- webhook payloads never carry a profile: a CRM that receives alerts already knows its members
  (it sent the ids), and a payload is stored in ``webhook_deliveries`` and retried, so a copy of
  a phone number there would outlive a change or an erasure of the profile.

Validation is deliberately loose where the world is varied (names, plans) and strict where a
link is built from the value: a phone becomes a ``tel:``/``sms:`` link (digits, an optional
leading ``+``; separators removed), an email a ``mailto:`` link, a photo URL an ``<img>`` source
(``https`` only, so a page served over https never loads mixed content or a ``javascript:`` URL).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from records.tables import MemberProfile
from schemas.events import LABEL_PATTERN, MemberId

FIELDS = ("display_name", "phone", "email", "plan", "photo_url", "crm_id")
_MEMBER: TypeAdapter[str] = TypeAdapter(MemberId)
_SEPARATORS = re.compile(r"[\s().\-/]")
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")
# One @, no spaces or characters that would break out of a mailto: link or an attribute.
_EMAIL = re.compile(
    r"^[^@\s<>\"'(),;:\\\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)


def _phone(value: str | None) -> str | None:
    """E.164-ish: an optional ``+`` and 6 to 15 digits once spaces, dots, dashes, slashes and
    parentheses are removed (a national number without the ``+`` is kept: the desk dials it)."""
    if value is None:
        return None
    compact = _SEPARATORS.sub("", value)
    if not _PHONE.match(compact):
        raise ValueError("not a phone number: digits with an optional leading +, 6 to 15 digits")
    return compact


def _email(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError("not an email address")
    return value


def _photo(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or re.search(r"[\s\"'<>]", value):
        raise ValueError("not an https URL")
    return value


Text = Annotated[str, Field(min_length=1, pattern=LABEL_PATTERN, strict=True)]


class ProfileIn(BaseModel):
    """A member's profile as written; every field optional (null or absent: not known). A PUT
    replaces the whole profile."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    display_name: Annotated[Text, Field(max_length=200)] | None = Field(
        default=None, description="The name the staff call the member by."
    )
    phone: Annotated[Text | None, Field(max_length=32), AfterValidator(_phone)] = Field(
        default=None,
        description="E.164 preferred (+972501234567); spaces, dots, dashes and parentheses are "
        "removed; 6 to 15 digits.",
    )
    email: Annotated[Text | None, AfterValidator(_email)] = Field(
        default=None, description="An email address (at most 254 characters)."
    )
    plan: Annotated[Text, Field(max_length=100)] | None = Field(
        default=None, description="The membership plan, as the club names it."
    )
    photo_url: Annotated[Text | None, Field(max_length=500), AfterValidator(_photo)] = Field(
        default=None, description="An https URL of the member's photo."
    )
    crm_id: Annotated[Text, Field(max_length=128)] | None = Field(
        default=None, description="The member's id in the club's CRM."
    )

    def is_empty(self) -> bool:
        return all(getattr(self, f) is None for f in FIELDS)


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
    row = await session.get(MemberProfile, (tenant_id, member_id))
    if profile.is_empty():
        if row is not None:
            await session.delete(row)
        return None
    if row is None:
        row = MemberProfile(tenant_id=tenant_id, member_id=member_id)
        session.add(row)
    for f in FIELDS:
        setattr(row, f, getattr(profile, f))
    row.updated_at = datetime.now(UTC)
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


async def erase_profile(session: AsyncSession, tenant_id: str, member_id: str) -> int:
    result = await session.execute(
        delete(MemberProfile).where(
            MemberProfile.tenant_id == tenant_id, MemberProfile.member_id == member_id
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


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
