"""Request bodies at the edge: media type, size limit, JSON, and events validated one by one.

Every failure is a :class:`plumbing.problems.Problem` (or, for one item of a batch, a
:class:`Rejection`) whose errors name the field, as ``{"pointer", "field", "message"}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pydantic_core
from fastapi import Request
from pydantic import TypeAdapter, ValidationError

from plumbing.problems import Problem, validation_errors
from records.api_keys import Principal
from schemas.events import (
    ACCESS_KINDS,
    MEMBERSHIP_KINDS,
    AccessEvent,
    Event,
    EventBatch,
    MemberEvent,
    pattern_message,
)

Loc = tuple[str | int, ...]

_event: TypeAdapter[Event] = TypeAdapter(MemberEvent)
_KINDS = frozenset(ACCESS_KINDS) | frozenset(MEMBERSHIP_KINDS)


def kind_label(raw: object) -> str:
    """A bounded metrics label for whatever ``kind`` the client sent."""
    kind = raw.get("kind") if isinstance(raw, dict) else None
    return kind if isinstance(kind, str) and kind in _KINDS else "unknown"


def error(loc: Loc, message: str) -> dict[str, Any]:
    """One error entry in the shape of :func:`plumbing.problems.validation_errors`."""
    return validation_errors([{"loc": loc, "msg": message}])[0]


def body_error(message: str) -> dict[str, Any]:
    """An error about the whole body (``validation_errors`` drops a ``body`` location)."""
    return {"pointer": "", "field": "body", "message": message}


@dataclass(slots=True)
class Rejection:
    """Why one event was refused: ``invalid`` (fix the event), ``forbidden`` (wrong key) or
    ``future`` (``occurred_at`` too far ahead: the device clock is off)."""

    reason: str
    errors: list[dict[str, Any]]
    event_id: str | None = None
    index: int | None = None
    kind: str = field(default="unknown")

    def as_item(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "event_id": self.event_id,
            "reason": self.reason,
            "errors": self.errors,
        }


# --- media type and size ---------------------------------------------------------------------


def require_json(request: Request) -> None:
    """415 unless the body is declared as JSON (``application/json`` or ``application/*+json``)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return
    raise Problem(
        415,
        "Unsupported media type",
        f"send Content-Type: application/json, not {media[:100] or 'none'!r}",
        type_="unsupported-media-type",
        headers={"Accept-Post": "application/json"},
    )


def _too_large(limit: int) -> Problem:
    return Problem(
        413,
        "Content too large",
        f"the body exceeds the limit of {limit} bytes",
        type_="too-large",
        limit_bytes=limit,
        errors=[body_error(f"at most {limit} bytes")],
    )


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing it as soon as it passes ``limit`` bytes.

    A declared ``Content-Length`` over the limit is refused before reading anything; the limit
    is enforced again on the bytes actually received, so a chunked body is cut off too.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise _too_large(limit)
    return bytes(buf)


def parse_json(body: bytes) -> Any:
    """400 naming the body (and the position) when it is not JSON."""
    try:
        return pydantic_core.from_json(body)
    except ValueError as exc:
        raise Problem(
            400,
            "Malformed JSON",
            f"the body is not valid JSON: {exc}",
            type_="malformed-json",
            errors=[body_error(str(exc))],
        ) from None


# --- events ----------------------------------------------------------------------------------


def _errors(exc: ValidationError, raw: object, prefix: Loc) -> list[dict[str, Any]]:
    """Pydantic errors with the field named as the client wrote it.

    The discriminated union puts the tag in front of the field (``gate_entry.site_id``) and
    reports a missing or unknown tag at the root: both are rewritten to name the field.
    """
    kind = raw.get("kind") if isinstance(raw, dict) else None
    errs = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc: Loc = tuple(err["loc"])
        if err["type"].startswith("union_tag_"):
            loc = ("kind",)
        elif loc and kind is not None and loc[0] == kind:
            loc = loc[1:]
        message = err["msg"]
        if err["type"] == "string_pattern_mismatch" and loc:
            message = pattern_message(loc[-1]) or message
        errs.append({"loc": prefix + loc, "msg": message})
    return validation_errors(errs)


def validate_event(raw: object, prefix: Loc = ()) -> Event | Rejection:
    """One event, or why it is invalid (errors located under ``prefix``)."""
    try:
        return _event.validate_python(raw)
    except ValidationError as exc:
        event_id = raw.get("event_id") if isinstance(raw, dict) else None
        return Rejection(
            "invalid",
            _errors(exc, raw, prefix),
            event_id=event_id if isinstance(event_id, str) else None,
            kind=kind_label(raw),
        )


def authorize(event: Event, principal: Principal, prefix: Loc = ()) -> Rejection | None:
    """A key writes only its own tenant's events, and only its own site's if bound to one."""
    errs = []
    if event.tenant_id != principal.tenant_id:
        errs.append(error((*prefix, "tenant_id"), "does not match the API key's tenant"))
    if (
        principal.site_id is not None
        and isinstance(event, AccessEvent)
        and event.site_id != principal.site_id
    ):
        errs.append(error((*prefix, "site_id"), "does not match the API key's site"))
    if not errs:
        return None
    return Rejection("forbidden", errs, event_id=event.event_id, kind=event.kind)


def valid_batch(body: bytes, max_events: int) -> list[Event] | None:
    """The events of a batch body whose every item is valid, or ``None`` (check item by item).

    One call into pydantic for the whole body (the contract's own ``EventBatch``: the JSON
    parsed and every item validated in Rust, no intermediate ``dict`` per item) costs less
    than half of parsing it and then validating item by item, which is what the service spends
    most CPU on. Anything this does not accept whole (malformed JSON, a wrong envelope, one
    invalid item, more than ``max_events`` items) goes the item-by-item way, which then says
    exactly what is wrong; tests/ingest/test_batch_fast.py shows the two build identical
    events from the same bodies.
    """
    try:
        events = EventBatch.model_validate_json(body).events
    except ValidationError:
        return None
    return events if len(events) <= max_events else None


def batch_items(raw: object, max_events: int) -> Sequence[object]:
    """The items of ``{"events": [...]}``; 422 naming ``events`` when the envelope is wrong."""
    if not isinstance(raw, dict):
        errs = [body_error("expected an object with an 'events' list")]
    elif "events" not in raw:
        errs = [error(("events",), "Field required")]
    elif not isinstance(raw["events"], list):
        errs = [error(("events",), "Input should be a valid list")]
    elif not 1 <= len(raw["events"]) <= max_events:
        errs = [error(("events",), f"expected 1 to {max_events} events, got {len(raw['events'])}")]
    else:
        errs = [error((k,), "Extra inputs are not permitted") for k in raw if k != "events"]
    if errs:
        fields = ", ".join(e["field"] or "body" for e in errs)
        raise Problem(
            422, "Invalid request", f"invalid field(s): {fields}", type_="validation", errors=errs
        )
    assert isinstance(raw, dict)
    items: list[object] = raw["events"]
    return items
