"""Kisi user ids mapped to the club's members (the member directory's external ids), over the
real api and ingest services, PostgreSQL and the local broker; Kisi signature keys sealed."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from argparse import Namespace
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy import select, update

from api.app import create_app as create_api
from ingest.app import create_app as create_ingest
from ingest.kisi import add_kisi_integration, run_kisi_command
from lapse.commands.database import run_migrate
from plumbing.database import create_engine, session_factory
from plumbing.kafka import ensure_topics
from plumbing.settings import Settings
from records.directory import ExternalIdCache, set_external_id
from records.sealing import PREFIX, Sealer, new_key, reseal_all
from records.tables import ExternalId, VendorIntegration
from schemas.events import parse_member_event
from tests.api.support import api, make_key, serve, until
from tests.ingest.conftest import read_topic
from tests.ingest.test_kisi import SECRET, unlock

PROBLEM = "application/problem+json"


def _signed(event: dict[str, Any], secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Signature": signature}


@pytest_asyncio.fixture
async def services(
    settings: Settings, sessions: Any, tenant: str
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, str]]:
    """(api client with an events:write key, ingest client, integration id)."""
    await ensure_topics(settings)
    async with sessions() as session:
        _, row = await add_kisi_integration(session, tenant, {"501": "north"}, secret=SECRET)
        await session.commit()
    key = await make_key(sessions, tenant, scopes=("events:write", "alerts:read"))
    api_app = create_api(settings.model_copy(update={"alerts_relay": False}), deliver=False)
    async with (
        api(api_app, key) as api_client,
        serve(create_ingest(settings)) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as ingest_client,
    ):

        async def ready() -> bool:
            return (await ingest_client.get("/readyz")).status_code == 200

        await until(ready, within=10)
        yield api_client, ingest_client, row.id


async def _kisi(client: httpx.AsyncClient, tenant: str, event: dict[str, Any]) -> httpx.Response:
    body, headers = _signed(event)
    return await client.post(f"/v1/vendors/kisi/{tenant}/events", content=body, headers=headers)


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


def _count(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_mapped_kisi_user_lands_on_the_clubs_member_an_unmapped_one_keeps_its_id(
    services, settings, sessions, tenant, caplog
):
    caplog.set_level(logging.DEBUG)
    api_client, ingest_client, _ = services
    r = await api_client.put("/v1/members/m-ada/external-ids/kisi", json={"external_id": "4711"})
    assert r.status_code == 200, r.text
    assert r.json() == {"member_id": "m-ada", "external_ids": {"kisi": "4711"}}
    again = await api_client.put(
        "/v1/members/m-ada/external-ids/kisi", json={"external_id": "4711"}
    )
    assert again.status_code == 200  # idempotent
    got = await api_client.get("/v1/members/m-ada/external-ids")
    assert got.json() == {"member_id": "m-ada", "external_ids": {"kisi": "4711"}}

    mapped = _count("lapse_ingest_kisi_members_total", {"how": "mapped"})
    fallback = _count("lapse_ingest_kisi_members_total", {"how": "kisi_user_id"})
    ada, other = unlock(actor_id=4711), unlock(actor_id=99)
    for event in (ada, other):
        r = await _kisi(ingest_client, tenant, event)
        assert r.status_code == 202, r.text
    records = await read_topic(settings, expected=2)
    members = {parse_member_event(r.value).event_id: r for r in records}
    ada_record = members[f"kisi-{ada['uuid']}"]
    assert parse_member_event(ada_record.value).member_id == "m-ada"
    assert ada_record.key == f"{tenant}:m-ada".encode()
    # Not mapped, and the integration does not require it: Kisi's user id, as before.
    assert parse_member_event(members[f"kisi-{other['uuid']}"].value).member_id == "99"
    assert _count("lapse_ingest_kisi_members_total", {"how": "mapped"}) == mapped + 1
    assert _count("lapse_ingest_kisi_members_total", {"how": "kisi_user_id"}) == fallback + 1
    # External ids are personal data: in no log line of any service.
    assert not [r.getMessage() for r in caplog.records if "4711" in r.getMessage()]


async def test_mappings_are_checked_scoped_and_isolated(services, sessions, tenant):
    api_client, _, _ = services
    url = "/v1/members/m-ada/external-ids/kisi"
    assert (await api_client.put(url, json={"external_id": "4711"})).status_code == 200
    # One member per Kisi user: another member cannot take it silently.
    taken = await api_client.put(
        "/v1/members/m-bob/external-ids/kisi", json={"external_id": "4711"}
    )
    assert taken.status_code == 409 and taken.headers["content-type"] == PROBLEM
    assert "4711" not in taken.text
    # One Kisi user per member: a new one replaces the old, which is then free.
    moved = await api_client.put(url, json={"external_id": "4712"})
    assert moved.json()["external_ids"] == {"kisi": "4712"}
    free = await api_client.put("/v1/members/m-bob/external-ids/kisi", json={"external_id": "4711"})
    assert free.status_code == 200, free.text
    for bad_url, body in (
        ("/v1/members/m-ada/external-ids/Kisi!", {"external_id": "1"}),
        (url, {"external_id": ""}),
        (url, {"external_id": 4711}),  # a text, as Kisi's ids are shown: not a number
        (url, {"external_id": "a\x1b[31m"}),
        (url, {"external_id": "1", "extra": True}),
        ("/v1/members/a%20b/external-ids/kisi", {"external_id": "1"}),  # not a member id
    ):
        r = await api_client.put(bad_url, json=body)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (bad_url, body)

    reader = await make_key(sessions, tenant, scopes=("alerts:read",))
    r = await api_client.put(
        url, json={"external_id": "9"}, headers={"authorization": f"Bearer {reader}"}
    )
    assert r.status_code == 403 and r.json()["scope"] == "events:write"
    site_key = await make_key(sessions, tenant, scopes=("events:write",), site_id="north")
    r = await api_client.put(
        url, json={"external_id": "9"}, headers={"authorization": f"Bearer {site_key}"}
    )
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM

    # Another tenant sees none of it, and may map the same Kisi id to its own member.
    other = f"club-{uuid.uuid4().hex[:8]}"
    other_key = {"authorization": f"Bearer {await make_key(sessions, other, ('admin',))}"}
    seen = await api_client.get("/v1/members/m-ada/external-ids", headers=other_key)
    assert seen.status_code == 404
    gone = await api_client.delete(url, headers=other_key)
    assert gone.status_code == 404
    mine = await api_client.put(
        "/v1/members/m-x/external-ids/kisi", json={"external_id": "4712"}, headers=other_key
    )
    assert mine.status_code == 200
    assert (await api_client.get("/v1/members/m-ada/external-ids")).json()["external_ids"] == {
        "kisi": "4712"
    }
    # Unmapped: the DELETE answers the member's ids left.
    r = await api_client.delete(url)
    assert r.status_code == 200 and r.json()["external_ids"] == {}
    assert (await api_client.delete(url)).status_code == 404


async def test_an_integration_requiring_a_mapping_acknowledges_unmapped_users(
    services, settings, tenant, caplog
):
    caplog.set_level(logging.DEBUG, logger="ingest.kisi")
    api_client, ingest_client, integration = services
    text = await run_kisi_command(settings, "map", tenant, [], integration, require_mapping=True)
    assert "require-mapping" in text
    await api_client.put("/v1/members/m-ada/external-ids/kisi", json={"external_id": "4711"})
    before = _count("lapse_ingest_kisi_ignored_total", {"reason": "unmapped_user"})
    stranger = await _kisi(ingest_client, tenant, unlock(actor_id=99))
    assert stranger.status_code == 200, stranger.text
    assert stranger.json()["ignored"] == "unmapped_user" and "actor_id" in stranger.json()["detail"]
    assert _count("lapse_ingest_kisi_ignored_total", {"reason": "unmapped_user"}) == before + 1
    ada = unlock(actor_id=4711)
    assert (await _kisi(ingest_client, tenant, ada)).status_code == 202
    (record,) = await read_topic(settings, expected=1)
    assert parse_member_event(record.value).member_id == "m-ada"
    lines = [r.getMessage() for r in caplog.records if "unmapped_user" in r.getMessage()]
    assert lines and not [line for line in lines if "99" in line.split(":")[-1]]


async def test_forgetting_a_member_erases_their_external_ids(services, sessions, tenant):
    api_client, _, _ = services
    await api_client.put("/v1/members/m-ada/external-ids/kisi", json={"external_id": "4711"})
    admin = {"authorization": f"Bearer {await make_key(sessions, tenant, ('admin',))}"}
    # Lapse held nothing else about this member: the mapping alone is worth erasing.
    r = await api_client.delete("/v1/members/m-ada", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["erased"]["member_external_ids"] == 1
    async with sessions() as session:
        left = await session.scalars(select(ExternalId).where(ExternalId.tenant_id == tenant))
        assert list(left) == []


async def test_the_directory_cache_serves_a_copy_at_most_its_ttl_old(sessions, tenant):
    now = [0.0]
    cache = ExternalIdCache(sessions, "kisi", ttl=30.0, clock=lambda: now[0])
    async with sessions() as session:
        await set_external_id(session, tenant, "m-ada", "kisi", "4711")
        await session.commit()
    assert await cache.member_of(tenant, "4711") == "m-ada"
    assert await cache.member_of(tenant, "4712") is None
    async with sessions() as session:
        await set_external_id(session, tenant, "m-ada", "kisi", "4712")
        await session.commit()
    now[0] = 29.9  # within the TTL: the copy, as loaded
    assert await cache.member_of(tenant, "4711") == "m-ada"
    now[0] = 30.0
    assert await cache.member_of(tenant, "4711") is None
    assert await cache.member_of(tenant, "4712") == "m-ada"
    assert await cache.member_of("another-tenant", "4712") is None  # per tenant
    # Another system's ids are not Kisi's.
    assert await ExternalIdCache(sessions, "crm").member_of(tenant, "4712") is None


@pytest_asyncio.fixture
async def fresh(settings: Settings, fresh_pg_url: str) -> AsyncIterator[tuple[Settings, Any]]:
    """A database of the test's own: resealing touches every stored secret."""
    settings = settings.model_copy(update={"database_url": fresh_pg_url})
    engine = create_engine(fresh_pg_url)
    try:
        yield settings, session_factory(engine)
    finally:
        await engine.dispose()


async def _secret_of(sessions: Any, tenant: str) -> str:
    async with sessions() as session:
        (row,) = await session.scalars(
            select(VendorIntegration).where(VendorIntegration.tenant_id == tenant)
        )
    secret: str = row.secret
    return secret


async def test_kisi_signature_keys_are_sealed_at_rest_and_still_check_kisi(fresh, tenant):
    settings, sessions = fresh
    await ensure_topics(settings)
    first = new_key()
    sealed = settings.model_copy(update={"secret_key": SecretStr(first)})
    printed = await run_kisi_command(sealed, "add", tenant, ["501=north"])
    secret = printed.rsplit(": ", 1)[1].strip()
    stored = await _secret_of(sessions, tenant)
    assert stored.startswith(PREFIX) and secret not in stored
    assert Sealer([first]).open(stored) == secret

    # Rotated: the old key in LAPSE_SECRET_KEYS_OLD still opens it; reseal moves it on.
    second = new_key()
    rotated = settings.model_copy(
        update={"secret_key": SecretStr(second), "secret_keys_old": [SecretStr(first)]}
    )
    async with (
        serve(create_ingest(rotated)) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as client,
    ):

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await until(ready, within=10)
        body, headers = _signed(unlock(), secret)
        r = await client.post(f"/v1/vendors/kisi/{tenant}/events", content=body, headers=headers)
        assert r.status_code == 202, r.text
        body, headers = _signed(unlock(), "not-the-key")
        r = await client.post(f"/v1/vendors/kisi/{tenant}/events", content=body, headers=headers)
        assert r.status_code == 401
    assert await reseal_all(sessions, Sealer.from_settings(rotated)) == 1
    assert Sealer([second]).open(await _secret_of(sessions, tenant)) == secret

    # A replica without the key: it cannot check Kisi's signature, so it says "later" (503,
    # Kisi resends) rather than 401 (a wrong signature, which would be a lie).
    async with (
        serve(create_ingest(settings)) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as client,
    ):
        await until(lambda: _ready(client), within=10)
        body, headers = _signed(unlock(), secret)
        r = await client.post(f"/v1/vendors/kisi/{tenant}/events", content=body, headers=headers)
        assert r.status_code == 503 and r.headers["content-type"] == PROBLEM, r.text
        assert secret not in r.text

    # Stored in clear before a key was set: `lapse migrate` seals it.
    async with sessions() as session:
        await session.execute(
            update(VendorIntegration)
            .where(VendorIntegration.tenant_id == tenant)
            .values(secret=secret)
        )
        await session.commit()
    await run_migrate(rotated, Namespace())
    stored = await _secret_of(sessions, tenant)
    assert stored.startswith(PREFIX) and Sealer([second]).open(stored) == secret


def test_a_malformed_secret_key_stops_the_kisi_route_at_start(settings: Settings) -> None:
    with pytest.raises(ValueError, match="Fernet keys"):
        create_ingest(settings.model_copy(update={"secret_key": SecretStr("not-a-key")}))


async def test_a_csv_of_mappings_is_imported_whole_or_not_at_all(
    settings, sessions, tenant, tmp_path, capsys
):
    from lapse.commands.members import run_members

    async def mapped() -> dict[str, str]:
        async with sessions() as session:
            rows = await session.scalars(select(ExternalId).where(ExternalId.tenant_id == tenant))
            return {r.member_id: r.external_id for r in rows}

    async def run(text: str) -> None:
        path = tmp_path / "ids.csv"
        path.write_text(text, encoding="utf-8")
        args = Namespace(action="map-ids", tenant=tenant, system="kisi", file=str(path))
        await run_members(settings, args)

    await run("\ufeffmember_id,external_id,name\r\nm-ada,4711,Ada\r\nm-bob,4712,Bob\r\n")
    assert await mapped() == {"m-ada": "4711", "m-bob": "4712"}
    assert "2 kisi id(s)" in capsys.readouterr().out
    # Ids may move between members of the same file (a swap).
    await run("member_id,external_id\nm-ada,4712\nm-bob,4711\n")
    assert await mapped() == {"m-ada": "4712", "m-bob": "4711"}
    assert "2 new or changed" in capsys.readouterr().out
    await run("member_id,external_id\nm-ada,4712\nm-bob,4711\n")  # again: nothing to do
    assert "0 new or changed" in capsys.readouterr().out
    for bad, says in (
        ("member_id,external_id\nm-cat,1\nAda Lovelace,2\n", "line 3: member_id"),
        ("member_id,external_id\nm-cat,1\nm-dan,1\n", "line 3: same external_id as line 2"),
        ("member_id,external_id\nm-cat,\n", "line 2: external_id"),
        ("member,kisi\nm-cat,1\n", "no column external_id, member_id"),
        # 4711 is m-bob's, who is not in this file: refused, nothing of the file written.
        ("member_id,external_id\nm-cat,5\nm-dan,4711\n", "line(s) 3 belongs to another member"),
    ):
        with pytest.raises(SystemExit) as exited:
            await run(bad)
        message = str(exited.value.code)
        assert says in message, message
        assert "Lovelace" not in message and "4711" not in message, message
        assert await mapped() == {"m-ada": "4712", "m-bob": "4711"}
