"""``lapse keys create|list|revoke`` against a database of the test's own, and ingest's answer."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from ingest.app import create_app
from ingest.deps import KEY_CACHE_SECONDS
from lapse.cli import main
from tests.api.support import serve
from tests.ingest.conftest import access_event


def lapse(argv: list[str]) -> None:
    main(argv)


async def test_create_shows_once_list_never_revoke_locks_out(
    fresh_pg_url, settings, tenant, monkeypatch, capsys
):
    monkeypatch.setenv("LAPSE_DATABASE_URL", fresh_pg_url)
    # main() runs its own event loop: give it a thread of its own.
    await asyncio.to_thread(
        lapse, ["keys", "create", "--tenant", tenant, "--site", "north", "--name", "gate 3"]
    )
    out = capsys.readouterr().out
    key = re.search(r"^(lapse_\S+)$", out, re.MULTILINE)
    assert key, out
    plain = key.group(1)
    found_id = re.search(r"key id (\S+) for tenant", out)
    assert found_id, out
    key_id = found_id.group(1)
    assert "shown once" in out

    await asyncio.to_thread(lapse, ["keys", "list", "--tenant", tenant])
    listed = capsys.readouterr().out
    assert key_id in listed and "active" in listed and "gate 3" in listed
    assert plain not in listed
    assert plain[:12] in listed  # the prefix, to tell keys apart
    assert plain[12:] not in listed

    await asyncio.to_thread(lapse, ["keys", "list", "--tenant", "someone-else"])
    assert key_id not in capsys.readouterr().out

    # A fake monotonic clock drives the API key cache (and the rate limiter).
    clock = [1000.0]
    app = create_app(
        settings.model_copy(update={"database_url": fresh_pg_url}),
        monotonic=lambda: clock[0],
        key_cache_seconds=KEY_CACHE_SECONDS,
    )
    async with serve(app) as base, httpx.AsyncClient(base_url=base) as client:
        auth = {"Authorization": f"Bearer {plain}"}

        async def post() -> httpx.Response:
            for _ in range(100):  # until the producer is connected
                r = await client.post(
                    "/v1/events", json=access_event(tenant, site_id="north"), headers=auth
                )
                if r.status_code != 503:
                    return r
                await asyncio.sleep(0.05)
            return r

        assert (await post()).status_code == 202
        # A revoke by another tenant touches nothing.
        with pytest.raises(SystemExit):
            await asyncio.to_thread(lapse, ["keys", "revoke", "--tenant", "someone-else", key_id])
        assert (await post()).status_code == 202

        await asyncio.to_thread(lapse, ["keys", "revoke", "--tenant", tenant, key_id])
        assert f"revoked {key_id}" in capsys.readouterr().out
        # The instance trusts the key it checked for up to KEY_CACHE_SECONDS (the documented
        # trade-off), never longer.
        clock[0] += KEY_CACHE_SECONDS / 2
        assert (await post()).status_code == 202
        clock[0] += KEY_CACHE_SECONDS / 2
        r = await post()
        assert r.status_code == 401
        assert "invalid_token" in r.headers["www-authenticate"]

    await asyncio.to_thread(lapse, ["keys", "list", "--tenant", tenant])
    assert "revoked" in capsys.readouterr().out
