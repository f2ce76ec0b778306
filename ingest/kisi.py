"""Kisi's event webhook: door unlocks as gate events, authenticated by Kisi's body signature.

Kisi posts one JSON event per request (``uuid``, ``type``, ``actor_id``, ``object_id``,
``place_id``, ``success``, ``created_at``, ...) and, when the integration has a signature
key, the HMAC-SHA256 of the raw body in ``X-Signature``. It cannot send a bearer token, and
an API key in the URL would end up in every proxy's access log, so the endpoint
``POST /v1/vendors/kisi/{tenant_id}/events`` authenticates by the signature alone: each
tenant's Kisi organisation is a row of ``vendor_integrations`` holding the signing key and
the map from Kisi ``place_id`` to our ``site_id``. The key is required here (Kisi makes it
optional; without it anyone could post unlocks), and stored sealed with ``LAPSE_SECRET_KEY``
(records/sealing.py) like webhook secrets. A tenant may have several Kisi
organisations: the signature picks the integration. Kisi signs no timestamp, so a captured
request can be replayed; the replay carries the same ``uuid`` and dedup absorbs it.

Mapping (``lock.unlock`` only; other types are acknowledged with 204 and ignored):

- ``success: true`` → ``gate_entry``, ``success: false`` → ``entry_denied``;
- ``actor_id`` → ``member_id``: the club's member that the member directory maps this Kisi
  user id to (``PUT /v1/members/{member_id}/external-ids/kisi``, records/directory.py); a user
  id the directory does not map is taken as the member id itself (right where the club
  provisions Kisi users with its member ids), unless the integration requires a mapping
  (``lapse kisi map --require-mapping on``): then the event is acknowledged and counted as
  ``unmapped_user``. The mapping is applied here, once: the Kafka record carries the member id,
  so replays read what live ingest wrote; ``place_id`` → ``site_id`` through the map;
  ``object_id`` (the lock) → ``device_id``; ``created_at`` → ``occurred_at``;
- ``uuid`` → ``event_id`` as ``kisi-{uuid}``, so Kisi's duplicate deliveries are deduplicated.

The event then takes the same admission path as ``POST /v1/events``
(:class:`ingest.intake.Intake`): schema, tenant and site, clock skew, dedup, acks=all.

A signed event Lapse cannot use (no actor, a place not mapped to a site, a user not mapped
to a member when the integration requires it, a field it cannot read, an event the contract
refuses) is acknowledged ``200`` with the reason, counted in
``lapse_ingest_kisi_ignored_total{reason}`` and logged (tenant, integration, reason, Kisi's
event uuid and field names; never the actor's id or name). Answering an error would not make
Kisi send a better event, and Kisi switches off integrations whose deliveries keep failing:
one unmapped door would cut the whole club off. Only a bad signature (401), a body too large
(413) and an outage (503, Kisi resends) are errors. See docs/integrations/kisi.md.

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
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ingest.body import parse_json, read_body
from ingest.deps import IngestState, StateDep, intake_for, unavailable
from ingest.producer import BrokerUnavailable
from plumbing import problems
from plumbing.problems import Problem, validation_errors
from plumbing.settings import Settings
from records.api_keys import Principal
from records.directory import ExternalIdCache
from records.sealing import Sealer, SecretUnavailable
from records.tables import VendorIntegration

log = logging.getLogger(__name__)

VENDOR = "kisi"
IGNORED = Counter(
    "lapse_ingest_kisi_ignored",
    "Signed Kisi events acknowledged without becoming a member event, by reason "
    "(not_an_unlock, no_actor, unmapped_place, unmapped_user, invalid, refused, malformed).",
    ["reason"],
)
MEMBER_IDS = Counter(
    "lapse_ingest_kisi_members",
    "Kisi unlocks admitted, by how the member id was found: mapped (the member directory) or "
    "kisi_user_id (no mapping: Kisi's user id taken as the member id).",
    ["how"],
)
# How loudly each reason is logged: a non-unlock is routine (Kisi sends many kinds), an
# unlock with no user is expected now and then (a remote or scheduled unlock); the others
# say the integration or Kisi's payload needs looking at.
_LEVEL = {"not_an_unlock": logging.DEBUG, "no_actor": logging.INFO, "unmapped_user": logging.INFO}
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


class KisiIgnored(BaseModel):
    """A signed event acknowledged without becoming a member event (Kisi must not retry it
    nor count it as a failure)."""

    accepted: int = 0
    ignored: str = Field(
        description="Why: `no_actor`, `unmapped_place`, `unmapped_user`, `invalid`, `refused` "
        "or `malformed`."
    )
    detail: str = Field(description="What to change, naming Kisi's fields (never values).")


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
    *,
    sealer: Sealer | None = None,
    require_mapping: bool = False,
) -> tuple[str, VendorIntegration]:
    """Add a Kisi organisation to ``tenant_id`` (the caller commits); returns the secret.

    ``places`` maps Kisi ``place_id`` (as a string) to our ``site_id``. Without ``secret`` a
    random one is made, to paste into Kisi's "signature key" field. It is stored sealed by
    ``sealer`` (in clear without one, or when it has no key: ``lapse migrate`` seals it later).
    """
    if not places:
        raise ValueError("map at least one Kisi place_id to a site_id")
    secret = secret or secrets.token_urlsafe(32)
    row = VendorIntegration(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        vendor=VENDOR,
        secret=sealer.seal(secret) if sealer is not None else secret,
        sites=dict(places),
        enabled=True,
        created_at=datetime.now(UTC),
        require_mapping=require_mapping,
    )
    session.add(row)
    return secret, row


class _Opener:
    """Stored (sealed) signature keys opened once each: Fernet costs tens of microseconds, a
    dictionary look-up nothing. Keyed by the stored value, so a rotated or resealed key is
    opened afresh; bounded (cleared when full) since stored values only ever change."""

    LIMIT = 1024

    def __init__(self, sealer: Sealer) -> None:
        self.sealer = sealer
        self._opened: dict[str, str] = {}

    def __call__(self, stored: str) -> str:
        opened = self._opened.get(stored)
        if opened is None:
            opened = self.sealer.open(stored)  # SecretUnavailable: a key is missing
            if len(self._opened) >= self.LIMIT:
                self._opened.clear()
            self._opened[stored] = opened
        return opened


async def _signed_by(
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: str,
    body: bytes,
    header: str | None,
    opener: _Opener,
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
            if verify(opener(row.secret), body, header):
                return row
    return None


# --- the route -------------------------------------------------------------------------------


def _describe(errors: list[dict[str, Any]]) -> str:
    """The Kisi fields at fault, by name only: messages may quote a value (an actor id)."""
    fields = sorted({str(e.get("field") or "body") for e in errors})
    return "invalid field(s): " + ", ".join(fields[:5])


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
    opener = _Opener(Sealer.from_settings(settings))
    directories: dict[int, ExternalIdCache] = {}  # one per session factory (one per app)

    @router.post(
        "/v1/vendors/kisi/{tenant_id}/events",
        status_code=202,
        response_model=KisiAccepted,
        responses={
            200: {
                "model": KisiIgnored,
                "description": "Signed, but Lapse cannot use it (no actor, an unmapped place, "
                "an invalid field): acknowledged, counted and logged, not written.",
            },
            204: {"description": "Not a `lock.unlock` event: acknowledged and ignored."},
            401: _problem_doc("Missing or wrong `X-Signature` (or no Kisi integration)."),
            413: _problem_doc("Body larger than the configured limit."),
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
        header = request.headers.get(SIGNATURE_HEADER)
        integration = await _integration(state, tenant_id, body, header, opener)
        try:
            unlock = _unlock_of(body)
            site = _site_of(integration, unlock)
            directory = directories.get(id(state.sessions))
            if directory is None:
                directory = directories[id(state.sessions)] = ExternalIdCache(
                    state.sessions, VENDOR
                )
            member = await _member_of(directory, integration, unlock)
            return await _admit_unlock(state, integration, unlock, site, member)
        except _Ignored as why:
            return _answer_ignored(why, integration)

    return router


class _Ignored(Exception):
    """A signed event Lapse acknowledges without making it a member event: ``reason`` (the
    metric's label), ``detail`` (what to change, naming Kisi's fields, never values) and
    Kisi's ``uuid`` of the event when it had one (for the log line)."""

    def __init__(self, reason: str, detail: str, kisi_uuid: object = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
        self.kisi_uuid = kisi_uuid


def _answer_ignored(why: _Ignored, integration: VendorIntegration) -> Response:
    """Count and log an ignored event; 200 with the reason, or 204 for a type that is not an
    unlock (routine: Kisi sends many kinds)."""
    IGNORED.labels(why.reason).inc()
    log.log(
        _LEVEL.get(why.reason, logging.WARNING),
        "Kisi event ignored (%s) for tenant %s, integration %s: %s",
        why.reason,
        integration.tenant_id,
        integration.id,
        why.detail,
        extra={"event_id": f"kisi-{why.kisi_uuid}" if isinstance(why.kisi_uuid, str) else None},
    )
    if why.reason == "not_an_unlock":
        return Response(status_code=204)
    doc = KisiIgnored(ignored=why.reason, detail=why.detail).model_dump()
    return JSONResponse(doc, status_code=200)


async def _integration(
    state: IngestState, tenant_id: str, body: bytes, header: str | None, opener: _Opener
) -> VendorIntegration:
    """The tenant's Kisi integration whose key signed ``body``; 401 when none did, 503 when
    the integrations cannot be read (the database, or a sealing key this deployment lacks)."""
    try:
        integration = await _signed_by(state.sessions, tenant_id, body, header, opener)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("Kisi integration lookup failed: %s", type(exc).__name__)
        raise unavailable("integrations cannot be checked right now; retry later") from None
    except SecretUnavailable as exc:
        # A deployment without the key the signature keys were sealed with: Kisi resends.
        log.error("Kisi signature keys of tenant %s cannot be opened: %s", tenant_id, exc)
        raise unavailable("integrations cannot be checked right now; retry later") from None
    if integration is None:
        raise _unauthorized()
    return integration


def _unlock_of(body: bytes) -> KisiUnlock:
    """The unlock in a signed body; ``_Ignored`` when it is not JSON, not an unlock, an
    unlock with no user, or one whose fields Lapse cannot read."""
    try:
        raw = parse_json(body)
    except Problem:
        raise _Ignored("malformed", "the body is not JSON") from None
    if not isinstance(raw, dict):
        raise _Ignored("malformed", "the body is not a JSON object")
    kind = raw.get("type")
    event_uuid = raw.get("uuid")
    if not isinstance(kind, str):
        raise _Ignored("malformed", "no `type`", event_uuid)
    if kind != "lock.unlock":
        raise _Ignored("not_an_unlock", f"type {kind[:64]!r}", event_uuid)
    if raw.get("actor_id") in (None, ""):
        # An unlock with no user behind it (a schedule, a button, an admin's remote
        # unlock): nobody's visit.
        raise _Ignored("no_actor", "`actor_id` is empty: no member to count", event_uuid)
    try:
        return KisiUnlock.model_validate(raw)
    except ValidationError as exc:
        raise _Ignored("invalid", _describe(_field_errors(exc)), event_uuid) from None


def _site_of(integration: VendorIntegration, unlock: KisiUnlock) -> str:
    """Our site for the unlock's Kisi place, through the integration's map."""
    site = integration.sites.get(str(unlock.place_id))
    if not isinstance(site, str):
        # Place ids are Kisi's, not personal data: named so ops can map it.
        raise _Ignored(
            "unmapped_place",
            f"`place_id` {str(unlock.place_id)[:64]} is not mapped to a site of the "
            "integration (docs/integrations/kisi.md)",
            unlock.uuid,
        )
    return site


async def _member_of(
    directory: ExternalIdCache, integration: VendorIntegration, unlock: KisiUnlock
) -> str | None:
    """The member the directory maps the unlock's Kisi user to; None when it maps none and
    the integration takes the user id as the member id (``_Ignored`` when it requires a
    mapping), 503 when the directory cannot be read."""
    try:
        member = await directory.member_of(integration.tenant_id, str(unlock.actor_id))
    except (SQLAlchemyError, OSError) as exc:
        log.warning("member directory lookup failed: %s", type(exc).__name__)
        raise unavailable("the member directory cannot be read right now; retry later") from None
    if member is None and integration.require_mapping:
        raise _Ignored(
            "unmapped_user",
            "`actor_id` is mapped to no member (PUT /v1/members/{member_id}/external-ids/"
            "kisi; docs/integrations/kisi.md)",
            unlock.uuid,
        )
    return member


async def _admit_unlock(
    state: IngestState,
    integration: VendorIntegration,
    unlock: KisiUnlock,
    site: str,
    member: str | None,
) -> KisiAccepted:
    """The unlock as a member event, through the same admission as ``POST /v1/events``;
    an event the contract refuses is ``_Ignored`` with its errors named as Kisi names the
    fields, 503 when Kafka does not acknowledge it."""
    tenant_id = integration.tenant_id
    item: dict[str, Any] = {
        "event_id": f"kisi-{unlock.uuid}",
        "tenant_id": tenant_id,
        "member_id": member if member is not None else str(unlock.actor_id),
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
        refused = admission.rejected[0]
        errors = []
        for e in refused.errors:
            ours = (e["field"] or "body").split(".")[0]
            theirs = KISI_FIELD.get(ours, ours)
            errors.append({"pointer": f"/{theirs}", "field": theirs, "message": e["message"]})
        raise _Ignored("refused", f"{refused.reason}: {_describe(errors)}", unlock.uuid)
    if admission.accepted:
        MEMBER_IDS.labels("mapped" if member is not None else "kisi_user_id").inc()
    return KisiAccepted(
        accepted=len(admission.accepted),
        event_ids=admission.event_ids,
        duplicates=admission.duplicates,
    )


def _places(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        place, sep, site = pair.partition("=")
        if not sep or not place.strip() or not site.strip():
            raise ValueError(f"--place takes PLACE_ID=SITE_ID, not {pair!r}")
        mapping[place.strip()] = site.strip()
    return mapping


def _describe_integration(row: VendorIntegration) -> str:
    """One line of ``lapse kisi list`` (never the signature key)."""
    return (
        f"{row.id}  {'enabled' if row.enabled else 'disabled'}  "
        f"{'require-mapping' if row.require_mapping else 'user-id-as-member'}  "
        + " ".join(f"{p}={s}" for p, s in sorted(row.sites.items()))
    )


async def run_kisi_command(
    settings: Settings,
    action: str,
    tenant_id: str,
    places: list[str],
    integration_id: str | None = None,
    require_mapping: bool | None = None,
) -> str:
    """``lapse kisi add|map|list``: what to print. ``places`` are ``PLACE_ID=SITE_ID`` pairs;
    ``map`` adds them to (or changes them in) ``integration_id``'s map, same signature key,
    and sets ``require_mapping`` when given (a Kisi user must be mapped to a member)."""
    from plumbing.database import create_engine, session_factory
    from records.migrate import upgrade

    sealer = Sealer.from_settings(settings)  # a malformed key stops here, before any change
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            if action == "map":
                mapping = _places(places)
                if not (mapping or require_mapping is not None) or not integration_id:
                    raise ValueError(
                        "map takes --integration ID and one --place or more (or --require-mapping)"
                    )
                found = await session.get(VendorIntegration, integration_id)
                if found is None or found.tenant_id != tenant_id or found.vendor != VENDOR:
                    raise ValueError(f"no Kisi integration {integration_id} for {tenant_id}")
                found.sites = {**found.sites, **mapping}
                if require_mapping is not None:
                    found.require_mapping = require_mapping
                await session.commit()
                return _describe_integration(found)
            if action == "add":
                mapping = _places(places)
                secret, row = await add_kisi_integration(
                    session,
                    tenant_id,
                    mapping,
                    sealer=sealer,
                    require_mapping=bool(require_mapping),
                )
                await session.commit()
                stored = (
                    "stored encrypted with LAPSE_SECRET_KEY"
                    if sealer.enabled
                    else "stored in clear: set LAPSE_SECRET_KEY and run `lapse migrate`"
                )
                return (
                    f"Kisi integration {row.id} for tenant {tenant_id} ({stored})\n"
                    f"webhook URL: <ingest base URL>/v1/vendors/kisi/{tenant_id}/events\n"
                    f"signature key (shown once; paste it into Kisi's integration): {secret}"
                )
            rows = await session.scalars(
                select(VendorIntegration).where(
                    VendorIntegration.tenant_id == tenant_id, VendorIntegration.vendor == VENDOR
                )
            )
            return "\n".join(_describe_integration(r) for r in rows)
    finally:
        await engine.dispose()
