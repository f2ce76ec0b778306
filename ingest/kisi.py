"""Kisi's event webhook: door unlocks as gate events, authenticated by Kisi's body signature.

Kisi posts one JSON event per request (``uuid``, ``type``, ``actor_id``, ``object_id``,
``place_id``, ``success``, ``created_at``, ...) and, when the integration has a signature
key, the HMAC-SHA256 of the raw body in ``X-Signature``. It cannot send a bearer token, and
an API key in the URL would end up in every proxy's access log, so the endpoint
``POST /v1/vendors/kisi/{tenant_id}/events`` authenticates by the signature alone: each
tenant's Kisi organisation is a row of ``vendor_integrations`` holding the signing key and
the map from Kisi ``place_id`` to our ``site_id``. The key is required here (Kisi makes it
optional; without it anyone could post unlocks). A tenant may have several Kisi
organisations: the signature picks the integration. Kisi signs no timestamp, so a captured
request can be replayed; the replay carries the same ``uuid`` and dedup absorbs it.

Mapping (``lock.unlock`` only; other types are acknowledged with 204 and ignored):

- ``success: true`` → ``gate_entry``, ``success: false`` → ``entry_denied``;
- ``actor_id`` → ``member_id`` (Kisi's user id: the club's member id where the club
  provisions Kisi users from its member system); ``place_id`` → ``site_id`` through the map;
  ``object_id`` (the lock) → ``device_id``; ``created_at`` → ``occurred_at``;
- ``uuid`` → ``event_id`` as ``kisi-{uuid}``, so Kisi's duplicate deliveries are deduplicated.

The event then takes the same admission path as ``POST /v1/events``
(:class:`ingest.intake.Intake`): schema, tenant and site, clock skew, dedup, acks=all.

Mount on the ingest app with ``app.include_router(kisi_router(settings))``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ingest.body import error, parse_json, read_body
from ingest.deps import StateDep, intake_for, unavailable
from ingest.producer import BrokerUnavailable
from lapse import problems
from lapse.auth import Principal
from lapse.db.models import VendorIntegration
from lapse.problems import Problem, validation_errors
from lapse.settings import Settings

log = logging.getLogger(__name__)

VENDOR = "kisi"
SIGNATURE_HEADER = "X-Signature"
# Our event fields, named as Kisi names them, so an error points at the field Kisi sent.
KISI_FIELD = {
    "event_id": "uuid",
    "member_id": "actor_id",
    "site_id": "place_id",
    "device_id": "object_id",
    "occurred_at": "created_at",
    "kind": "success",
    "tenant_id": "tenant_id",
}


class KisiUnlock(BaseModel):
    """The fields of a ``lock.unlock`` event Lapse uses; the others are ignored."""

    model_config = ConfigDict(extra="ignore")

    uuid: Annotated[str, Field(min_length=1, max_length=100)]
    type: str
    actor_id: int | Annotated[str, Field(min_length=1)]
    object_id: int | str | None = None
    place_id: int | Annotated[str, Field(min_length=1)]
    success: StrictBool
    created_at: AwareDatetime


class KisiAccepted(BaseModel):
    accepted: int
    event_ids: list[str]
    duplicates: int = Field(description="Received before (Kisi resends): not written again.")


# --- signatures and configuration ------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    """The signature Kisi sends: hex HMAC-SHA256 of the raw body under the signature key."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _presented_digest(header: str) -> bytes | None:
    """The digest in ``X-Signature``: hex (Kisi's documented form), ``sha256=`` hex, or base64."""
    value = header.strip()
    if value.lower().startswith("sha256="):
        value = value[7:]
    if len(value) == 64:
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def verify(secret: str, body: bytes, header: str | None) -> bool:
    if not header or not secret:
        return False
    presented = _presented_digest(header)
    if presented is None:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(presented, expected)


async def add_kisi_integration(
    session: AsyncSession,
    tenant_id: str,
    places: dict[str, str],
    secret: str | None = None,
) -> tuple[str, VendorIntegration]:
    """Add a Kisi organisation to ``tenant_id`` (the caller commits); returns the secret.

    ``places`` maps Kisi ``place_id`` (as a string) to our ``site_id``. Without ``secret`` a
    random one is made, to paste into Kisi's "signature key" field.
    """
    if not places:
        raise ValueError("map at least one Kisi place_id to a site_id")
    secret = secret or secrets.token_urlsafe(32)
    row = VendorIntegration(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        vendor=VENDOR,
        secret=secret,
        sites=dict(places),
        enabled=True,
        created_at=datetime.now(UTC),
    )
    session.add(row)
    return secret, row


async def _signed_by(
    sessions: async_sessionmaker[AsyncSession], tenant_id: str, body: bytes, header: str | None
) -> VendorIntegration | None:
    if not header:
        return None
    async with sessions() as session:
        rows = await session.scalars(
            select(VendorIntegration).where(
                VendorIntegration.tenant_id == tenant_id,
                VendorIntegration.vendor == VENDOR,
                VendorIntegration.enabled.is_(True),
            )
        )
        for row in rows:
            if verify(row.secret, body, header):
                return row
    return None


# --- the route -------------------------------------------------------------------------------


def _invalid(errors: list[dict[str, Any]]) -> Problem:
    fields = ", ".join(e["field"] or "body" for e in errors[:5])
    return Problem(
        422, "Invalid request", f"invalid field(s): {fields}", type_="validation", errors=errors
    )


def _field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """One error per top-level Kisi field (a union reports each alternative: merged here)."""
    by_field: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        by_field.setdefault(str(err["loc"][0]) if err["loc"] else "", []).append(err["msg"])
    return validation_errors(
        [
            {"loc": (name,) if name else (), "msg": " or ".join(msgs)}
            for name, msgs in by_field.items()
        ]
    )


def _unauthorized() -> Problem:
    # One answer for an unknown tenant, a tenant without Kisi, and a wrong signature.
    return Problem(
        401,
        "Unauthorized",
        f"missing or invalid {SIGNATURE_HEADER}: sign the raw body with HMAC-SHA256 under the "
        "integration's signature key",
        type_="unauthorized",
    )


def _problem_doc(description: str) -> dict[str, Any]:
    return {"description": description, "content": {problems.PROBLEM_JSON: {}}}


def kisi_router(settings: Settings) -> APIRouter:
    """The Kisi webhook route, to include in the ingest app."""
    router = APIRouter(tags=["vendors"])

    @router.post(
        "/v1/vendors/kisi/{tenant_id}/events",
        status_code=202,
        response_model=KisiAccepted,
        responses={
            204: {"description": "Not a `lock.unlock` event: acknowledged and ignored."},
            400: _problem_doc("Malformed JSON."),
            401: _problem_doc("Missing or wrong `X-Signature` (or no Kisi integration)."),
            413: _problem_doc("Body larger than the configured limit."),
            422: _problem_doc("A field is missing or invalid, or `place_id` is not mapped."),
            503: _problem_doc("Kafka or the database is unavailable; Kisi may resend."),
        },
    )
    async def kisi_event(
        request: Request,
        state: StateDep,
        tenant_id: Annotated[str, Path(max_length=128)],
    ) -> Any:
        """One Kisi event webhook delivery, signed in `X-Signature` (hex HMAC-SHA256 of the
        raw body). `lock.unlock` becomes `gate_entry` (or `entry_denied` when `success` is
        false); any other type is answered 204 and ignored."""
        body = await read_body(request, settings.max_body_bytes)
        try:
            integration = await _signed_by(
                state.sessions, tenant_id, body, request.headers.get(SIGNATURE_HEADER)
            )
        except (SQLAlchemyError, OSError) as exc:
            log.warning("Kisi integration lookup failed: %s", type(exc).__name__)
            raise unavailable("integrations cannot be checked right now; retry later") from None
        if integration is None:
            raise _unauthorized()
        raw = parse_json(body)
        if not isinstance(raw, dict):
            raise _invalid([{"pointer": "", "field": "body", "message": "expected an object"}])
        kind = raw.get("type")
        if not isinstance(kind, str):
            raise _invalid([error(("type",), "Field required (a string)")])
        if kind != "lock.unlock":
            return Response(status_code=204)
        try:
            unlock = KisiUnlock.model_validate(raw)
        except ValidationError as exc:
            raise _invalid(_field_errors(exc)) from None
        site = integration.sites.get(str(unlock.place_id))
        if not isinstance(site, str):
            raise _invalid(
                [error(("place_id",), f"place {unlock.place_id} is not mapped to a site")]
            )
        item: dict[str, Any] = {
            "event_id": f"kisi-{unlock.uuid}",
            "tenant_id": tenant_id,
            "member_id": str(unlock.actor_id),
            "site_id": site,
            "kind": "gate_entry" if unlock.success else "entry_denied",
            "occurred_at": unlock.created_at.isoformat(),
            "device_id": None if unlock.object_id is None else str(unlock.object_id),
            "source": "kisi",
        }
        principal = Principal(f"kisi:{integration.id}", tenant_id, None, frozenset())
        intake = intake_for(state)
        try:
            admission = await intake.admit([item], principal, prefix=None)
        except BrokerUnavailable:
            raise unavailable(
                "Kafka did not acknowledge the event in time; retry later", "broker-unavailable"
            ) from None
        if admission.rejected:
            errors = []
            for e in admission.rejected[0].errors:
                ours = (e["field"] or "body").split(".")[0]
                theirs = KISI_FIELD.get(ours, ours)
                errors.append({"pointer": f"/{theirs}", "field": theirs, "message": e["message"]})
            raise _invalid(errors)
        return KisiAccepted(
            accepted=len(admission.accepted),
            event_ids=admission.event_ids,
            duplicates=admission.duplicates,
        )

    return router


async def run_kisi_command(
    settings: Settings, action: str, tenant_id: str, places: list[str]
) -> str:
    """``lapse kisi add|list``: what to print. ``places`` are ``PLACE_ID=SITE_ID`` pairs."""
    from lapse.db.engine import create_engine, session_factory
    from lapse.db.migrate import upgrade

    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            if action == "add":
                mapping = {}
                for pair in places:
                    place, sep, site = pair.partition("=")
                    if not sep or not place.strip() or not site.strip():
                        raise ValueError(f"--place takes PLACE_ID=SITE_ID, not {pair!r}")
                    mapping[place.strip()] = site.strip()
                secret, row = await add_kisi_integration(session, tenant_id, mapping)
                await session.commit()
                return (
                    f"Kisi integration {row.id} for tenant {tenant_id}\n"
                    f"webhook URL: <ingest base URL>/v1/vendors/kisi/{tenant_id}/events\n"
                    f"signature key (shown once; paste it into Kisi's integration): {secret}"
                )
            rows = await session.scalars(
                select(VendorIntegration).where(
                    VendorIntegration.tenant_id == tenant_id, VendorIntegration.vendor == VENDOR
                )
            )
            return "\n".join(
                f"{r.id}  {'enabled' if r.enabled else 'disabled'}  "
                + " ".join(f"{p}={s}" for p, s in sorted(r.sites.items()))
                for r in rows
            )
    finally:
        await engine.dispose()
