"""Webhook secrets at rest: encrypted with LAPSE_SECRET_KEY, opened only to sign, rotatable."""

from __future__ import annotations

from argparse import Namespace
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from pydantic import SecretStr
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook

from api.app import create_app
from api.signing import generate_secret
from lapse.commands.database import run_migrate
from plumbing.database import create_engine, session_factory
from plumbing.settings import Settings
from records.sealing import PREFIX, Sealer, SecretUnavailable, new_key, reseal_all
from records.tables import WebhookSubscription
from tests.api.support import api, make_alert, make_key, store_alerts, until


def test_a_sealed_secret_opens_and_says_nothing_of_itself() -> None:
    sealer = Sealer([new_key()])
    secret = generate_secret()
    stored = sealer.seal(secret)
    assert stored.startswith(PREFIX) and secret not in stored
    assert secret.removeprefix("whsec_") not in stored
    assert sealer.seal(secret) != stored  # a random IV each time
    assert sealer.open(stored) == secret
    assert len(stored) <= 200  # the column's width
    # Authenticated: any change to the token is refused, not opened to something else.
    body = stored[len(PREFIX) :]
    flipped = body[:40] + ("A" if body[40] != "A" else "B") + body[41:]
    with pytest.raises(SecretUnavailable):
        sealer.open(PREFIX + flipped)


def test_rotation_old_keys_open_the_new_one_seals() -> None:
    old, new = new_key(), new_key()
    secret = generate_secret()
    stored = Sealer([old]).seal(secret)
    rotated = Sealer([new, old])
    assert rotated.open(stored) == secret
    assert not rotated.current(stored)
    resealed = rotated.seal(rotated.open(stored))
    assert rotated.current(resealed) and Sealer([new]).open(resealed) == secret
    with pytest.raises(SecretUnavailable, match="LAPSE_SECRET_KEYS_OLD"):
        Sealer([new]).open(stored)  # the old key dropped too early: says which setting


def test_clear_secrets_stay_readable_and_keys_are_checked() -> None:
    secret = generate_secret()
    assert Sealer([]).seal(secret) == secret  # no key: in clear (a warning at start)
    assert Sealer([new_key()]).open(secret) == secret  # stored before a key was set
    with pytest.raises(SecretUnavailable, match="LAPSE_SECRET_KEY is not set"):
        Sealer([]).open(Sealer([new_key()]).seal(secret))
    with pytest.raises(ValueError, match="Fernet keys"):
        Sealer(["not-a-key"])
    with pytest.raises(ValueError, match="LAPSE_SECRET_KEY is not"):
        Sealer.from_settings(Settings(secret_keys_old=[SecretStr(new_key())]))


@pytest_asyncio.fixture
async def fresh(fast_settings, fresh_pg_url, tenant) -> AsyncIterator[tuple[Settings, Any, str]]:
    """(settings, sessions, key) on a database of the test's own: re-encrypting touches every
    stored secret, which on the shared database would be other tests' too."""
    settings = fast_settings.model_copy(update={"database_url": fresh_pg_url})
    engine = create_engine(fresh_pg_url)
    try:
        sessions = session_factory(engine)
        yield settings, sessions, await make_key(sessions, tenant)
    finally:
        await engine.dispose()


async def _stored(sessions, wid: str) -> tuple[str, str | None]:
    async with sessions() as s:
        row = await s.scalar(select(WebhookSubscription).where(WebhookSubscription.id == wid))
        assert row is not None
        return row.secret, row.previous_secret


async def test_the_api_stores_sealed_secrets_and_signs_with_them(fresh, tenant, receiver) -> None:
    settings, sessions, key = fresh
    first = new_key()
    settings = settings.model_copy(update={"secret_key": SecretStr(first)})
    async with api(create_app(settings), key) as client:
        created = (await client.post("/v1/webhooks", json={"url": receiver.url})).json()
        wid, secret = created["id"], created["secret"]
        stored, _ = await _stored(sessions, wid)
        assert stored.startswith(PREFIX) and secret not in stored
        alert = make_alert(tenant)
        await store_alerts(sessions, [alert])
        await until(lambda: _received(receiver, 1))
        event = Webhook(secret).verify(receiver.requests[0].body, receiver.requests[0].headers)
        assert event["data"]["alert_id"] == alert.alert_id
        # Rotating the webhook's secret: the new one sealed too, the old one still signs.
        rotated = (await client.post(f"/v1/webhooks/{wid}/rotate-secret")).json()["secret"]
        stored, previous = await _stored(sessions, wid)
        assert stored.startswith(PREFIX) and rotated not in stored
        assert previous is not None and previous.startswith(PREFIX) and secret not in previous
        r = await client.post(f"/v1/webhooks/{wid}/test")
        assert r.json()["ok"] is True
        ping = receiver.requests[-1]
        Webhook(rotated).verify(ping.body, ping.headers)
        Webhook(secret).verify(ping.body, ping.headers)

    # The key itself rotated: the old one in LAPSE_SECRET_KEYS_OLD, deliveries go on.
    second = new_key()
    settings = settings.model_copy(
        update={"secret_key": SecretStr(second), "secret_keys_old": [SecretStr(first)]}
    )
    async with api(create_app(settings), key) as client:
        await store_alerts(sessions, [make_alert(tenant, "m-2")])
        await until(lambda: _received(receiver, 3))
        Webhook(rotated).verify(receiver.requests[-1].body, receiver.requests[-1].headers)
    # Re-encrypted with the new key, after which the old one can go.
    sealer = Sealer.from_settings(settings)
    assert await reseal_all(sessions, sealer) >= 2
    assert await reseal_all(sessions, sealer) == 0
    stored, previous = await _stored(sessions, wid)
    assert Sealer([second]).open(stored) == rotated
    assert previous is not None and Sealer([second]).open(previous) == secret


async def _received(receiver, n: int) -> bool:
    return len(receiver.requests) >= n


async def test_migrate_encrypts_the_secrets_stored_in_clear(fresh, receiver) -> None:
    settings, sessions, key = fresh
    async with api(create_app(settings, deliver=False), key) as client:  # no key: in clear
        created = (await client.post("/v1/webhooks", json={"url": receiver.url})).json()
    wid, secret = created["id"], created["secret"]
    assert await _stored(sessions, wid) == (secret, None)
    async with sessions() as s:  # another in clear, mid-rotation
        await s.execute(
            update(WebhookSubscription)
            .where(WebhookSubscription.id == wid)
            .values(previous_secret=secret)
        )
        await s.commit()
    secret_key = new_key()
    await run_migrate(
        settings.model_copy(update={"secret_key": SecretStr(secret_key)}), Namespace()
    )
    stored, previous = await _stored(sessions, wid)
    assert Sealer([secret_key]).open(stored) == secret and secret not in stored
    assert previous is not None and Sealer([secret_key]).open(previous) == secret


def test_the_new_key_command_prints_a_usable_key(capsys: pytest.CaptureFixture[str]) -> None:
    from lapse.cli import main

    main(["secrets", "new-key"])
    key = capsys.readouterr().out.strip()
    sealer = Sealer([key])
    assert sealer.open(sealer.seal("whsec_x")) == "whsec_x"
