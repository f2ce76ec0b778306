"""Member events, the values of topic ``lapse.member-events.v1`` (key ``tenant_id:member_id``).

Both kinds share one topic so a member's gate scans and membership changes stay in order
on one partition; ``kind`` tells them apart (the two sets of kinds do not overlap).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from schemas.profiles import ProfileIn

# Re-exported: the patterns were defined here first and are imported from here.
from schemas.text import LABEL_PATTERN as LABEL_PATTERN
from schemas.text import NOTE_PATTERN as NOTE_PATTERN

AccessKind = Literal["gate_entry", "gate_exit", "locker_open", "locker_close", "entry_denied"]
MembershipKind = Literal["joined", "frozen", "unfrozen", "cancelled", "payment_failed"]
CancelReason = Literal[
    "price", "service", "price_and_service", "moved", "health", "schedule", "competitor", "other"
]
ACCESS_KINDS: tuple[str, ...] = get_args(AccessKind)
MEMBERSHIP_KINDS: tuple[str, ...] = get_args(MembershipKind)

# The characters no id may hold (the grammar in docs/ingest.md). Controls (C0, DEL, C1):
# PostgreSQL's text and jsonb cannot hold NUL, so one accepted NUL would fail every later write
# of that member (or, in an event id, its deduplication), and the others are terminal escapes.
# Format characters (zero-width spaces and joiners, bidi marks, embeddings, overrides and
# isolates, the BOM, tags), private-use code points and surrogates: invisible or drawn as
# anything, so two ids that look the same would be two members, and a bidi override would make
# an id show as another one on the staff page or in a log. The set is written out (from
# Unicode 15's categories Cc, Cf, Co and Cs), not read from ``unicodedata``, so the same id is
# accepted or refused whatever the Python (and its Unicode version) running the service.
_INVISIBLE_BMP = (
    r"\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    r"\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ue000-\uf8ff"
    r"\ufeff\ufff9-\ufffb"
)
# Beyond the BMP: pydantic's regex engine (Rust's) names them as ``\x{...}``, a pattern in JSON
# Schema cannot (ECMA-262 without the ``u`` flag sees surrogate pairs, Python's ``re`` spells
# them otherwise). So the models validate with the full set, in pydantic-core, and the JSON
# Schema documents carry the BMP part (and the description the rest). Surrogates cannot occur:
# pydantic refuses a string holding one before any pattern.
_INVISIBLE_ASTRAL = (
    r"\x{110bd}\x{110cd}\x{13430}-\x{1343f}\x{1bca0}-\x{1bca3}\x{1d173}-\x{1d17a}"
    r"\x{e0001}\x{e0020}-\x{e007f}\x{f0000}-\x{10ffff}"
)
_INVISIBLE = re.compile(
    "["
    + _INVISIBLE_BMP
    + r"\ud800-\udfff\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    r"\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f\U000f0000-\U0010ffff]"
)  # the same set for Python's re (addressable(), for the routes' own parameters)
# Ids that no URL can carry in a path segment: ``.`` and ``..`` are removed by every client's
# dot-segment normalisation (RFC 3986 §5.2.4), and ``/`` splits the segment (its encoding,
# ``%2F``, is decoded before routing). An id the api cannot address could be alerted on but
# never looked up, answered, exported or erased, so it is refused here. Anything else is
# addressable once percent-encoded (``?``, ``#``, ``%``, ``\\``, non-ASCII):
# tests/api/test_routes_ids.py enumerates the routes to show it.
_DOT_SEGMENTS = frozenset((".", ".."))
# Member ids that equal a fixed segment beside ``/v1/members/{member_id}``: the fixed route
# would answer instead of the member (GET /v1/members/at-risk is the at-risk list).
RESERVED_MEMBER_IDS = frozenset(("at-risk",))


def addressable(value: str) -> str:
    """The id grammar in Python (the models check it in pydantic-core): for route parameters."""
    if value in _DOT_SEGMENTS:
        raise ValueError("must not be '.' or '..' (no URL path can carry it)")
    if not value.isascii() and _INVISIBLE.search(value):
        raise ValueError(
            "must not contain control, format (invisible, bidi) or private-use characters"
        )
    return value


def _not_reserved(value: str) -> str:
    """A member id no fixed route shadows (see ``RESERVED_MEMBER_IDS``)."""
    if value in RESERVED_MEMBER_IDS:
        raise ValueError(f"{value!r} is reserved (it names a route of the api)")
    return value


def _without_dot_segments(allowed: str) -> str:
    """A pattern of the strings of ``allowed`` characters other than ``.`` and ``..``, with no
    lookahead (which Rust's regex lacks): 3 or more characters, or 1-2 not made of dots only."""
    one = "[^" + allowed + "]"
    no_dot = "[^." + allowed + "]"
    return f"^(?:{one}{{3,}}|{no_dot}{one}?|\\.{no_dot})$"


# Ids are opaque strings from the club's systems; bounded so a key stays a sane size. Besides
# the invisible characters: no whitespace (a leading or trailing space is invisible too), no
# ``:`` (the Kafka key is ``tenant_id:member_id``), no ``/`` (see ``_DOT_SEGMENTS``).
# ``ID_PATTERN`` is the portable (JSON Schema, Python) form, the models validate with the full.
ID_PATTERN = r"^[^\s:/" + _INVISIBLE_BMP + r"]+$"
_ID_FULL = _without_dot_segments(r"\s:/" + _INVISIBLE_BMP + _INVISIBLE_ASTRAL)
_ID_DOC = (
    "No whitespace, `:`, `/`, control, format (zero-width, bidi) or private-use character "
    "(the pattern lists those of the BMP), and not `.` or `..` (docs/ingest.md#ids)."
)
Id = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=_ID_FULL,
        json_schema_extra={
            "pattern": ID_PATTERN,
            "not": {"enum": sorted(_DOT_SEGMENTS)},
            "$comment": _ID_DOC,
        },
    ),
]
MemberId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=_ID_FULL,
        json_schema_extra={
            "pattern": ID_PATTERN,
            "not": {"enum": sorted(_DOT_SEGMENTS | RESERVED_MEMBER_IDS)},
            "$comment": _ID_DOC + " Not `at-risk`, a route of the api.",
        },
    ),
    AfterValidator(_not_reserved),
]
# An event id is never part of a URL: only the invisible characters are refused.
_EVENT_ID_PATTERN = r"^[^" + _INVISIBLE_BMP + r"]+$"
EventId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[^" + _INVISIBLE_BMP + _INVISIBLE_ASTRAL + r"]+$",
        json_schema_extra={"pattern": _EVENT_ID_PATTERN},
    ),
]
Label = Annotated[str, Field(max_length=128, pattern=LABEL_PATTERN)]


_ID_FIELDS = frozenset(("tenant_id", "member_id", "site_id"))
_TEXT_FIELDS = frozenset(("device_id", "source", "note"))


def pattern_message(field: object) -> str | None:
    """What to tell a client whose ``field`` broke its pattern, instead of pydantic's "String
    should match pattern '...'" (the patterns are long lists of code points)."""
    if field in _ID_FIELDS:
        return (
            "not a valid id: no whitespace, ':', '/', control, invisible (zero-width, bidi) or "
            "private-use character, and not '.' or '..' (docs/ingest.md#ids)"
        )
    if field == "event_id":
        return "must not contain control, invisible (zero-width, bidi) or private-use characters"
    if field in _TEXT_FIELDS:
        return "must not contain control characters (terminal escapes, NUL, ...)"
    return None


REASON_FIELDS = 5
"""At most this many fields are named in a reason; the rest are counted."""


def joined_reason(faults: list[tuple[str, str]], limit: int = REASON_FIELDS) -> str:
    """``field: rule; field: rule`` for the first ``limit`` faults, then how many more."""
    text = "; ".join(f"{field}: {rule}" for field, rule in faults[:limit])
    more = len(faults) - limit
    return text + (f"; and {more} more" if more > 0 else "")


def refusal_reason(exc: BaseException, limit: int = REASON_FIELDS) -> str:
    """Why a record is not a member event, short, for a dead-letter header: each field at
    fault and its rule in words (``member_id: not a valid id: no whitespace, ...``), never
    pydantic's own text, which spells out the pattern (hundreds of code points) and quotes the
    input (a member id is personal data). The same words ingest answers with."""
    if not isinstance(exc, ValidationError):
        first = str(exc).strip().splitlines()
        return (first[0] if first else type(exc).__name__)[:300]
    faults = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = [str(part) for part in err["loc"]]
        if err["type"].startswith("union_tag_"):
            loc = ["kind"]  # reported at the root: the field is the tag
        elif loc and loc[0] in ACCESS_KINDS + MEMBERSHIP_KINDS:
            loc = loc[1:]  # the discriminated union's tag, not a field
        rule = err["msg"]
        if err["type"] == "string_pattern_mismatch":
            rule = (pattern_message(loc[-1]) if loc else None) or "breaks the field's pattern"
        faults.append((".".join(loc) or "event", rule))
    return joined_reason(faults, limit)


def _instant(value: object) -> object:
    """Only an ISO 8601 text (or a ``datetime``) is a time: pydantic would also read a number,
    or a text of digits, as Unix seconds, which the contract does not define (it asks for an
    offset, and a number in milliseconds would be read as a date some 50,000 years ahead).

    A text passes on when its fifth character is the date's ``-`` (``2024-``): a text of digits
    never has one, and pydantic's parser refuses whatever else is not a date-time. Written for
    speed: every event goes through it (about 0.1 µs, measured; ``docs/ingest.md``).
    """
    if type(value) is str and len(value) > 4 and value[4] == "-":
        return value
    if isinstance(value, datetime):
        return value
    raise ValueError(
        "must be an ISO 8601 date-time text with a UTC offset, e.g. 2024-03-01T18:30:00+01:00"
    )


# The instants an event may carry. A garbage device clock (year 1, year 9999) would otherwise
# pass as valid and break later: its time converted to UTC, or its deadlines, leave
# ``datetime``'s range. Whether a time is plausible (not in the future) is ingest's check.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)  # excluded


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # ``Literal[1]`` would take ``true`` (True == 1 in Python): a strict integer, documented
    # as the constant it is.
    schema_version: Annotated[
        int, Field(strict=True, ge=1, le=1, json_schema_extra={"const": 1})
    ] = 1
    event_id: EventId = Field(description="Unique per event; the idempotency key.")
    tenant_id: Id
    member_id: MemberId = Field(description="The club's own member id, opaque to Lapse.")
    occurred_at: Annotated[AwareDatetime, BeforeValidator(_instant)] = Field(
        ge=EARLIEST,
        lt=LATEST,
        description="ISO 8601 with a UTC offset; from 1900-01-01T00:00:00Z, before 9000.",
    )

    @property
    def key(self) -> str:
        """The Kafka key: one member's events stay ordered on one partition."""
        return f"{self.tenant_id}:{self.member_id}"


class AccessEvent(_Event):
    """A gate or locker scan."""

    kind: AccessKind
    site_id: Id
    device_id: Label | None = None
    source: Annotated[Label, Field(max_length=64)] | None = None


class MembershipEvent(_Event):
    """A change of membership reported by the club's system."""

    kind: MembershipKind
    reason: CancelReason | None = None
    # Free text: line breaks and tabs are fine, other controls are not (see ``Label``).
    note: Annotated[str, Field(max_length=2000, pattern=NOTE_PATTERN)] | None = None
    # Optional, and personal data: stored in ``member_profiles`` by the detector's checkpoint
    # (the fields given are set, null or absent ones kept), erased by forget, never logged,
    # never in a webhook (docs/ingest.md, "Profiles in membership events").
    profile: ProfileIn | None = Field(
        default=None,
        description="The member's profile as the club's system knows it: each field given "
        "(not null) is set, the others are kept (PUT /v1/members/{member_id}/profile "
        "replaces or clears a profile).",
    )


# One event of a member, either kind: the type the code passes around. ``MemberEvent`` is the
# same union with pydantic's discriminator, for parsing.
Event = AccessEvent | MembershipEvent
MemberEvent = Annotated[Event, Field(discriminator="kind")]
_member_event: TypeAdapter[Event] = TypeAdapter(MemberEvent)


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[MemberEvent] = Field(min_length=1)


def parse_member_event(raw: bytes | str) -> Event:
    """Parse one topic value (raises ``pydantic.ValidationError`` on bad input)."""
    return _member_event.validate_json(raw)
