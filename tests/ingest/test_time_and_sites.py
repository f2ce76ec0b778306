"""Time rules (future skew refused, days-late uploads accepted, offsets kept) and sites."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote

from ingest.app import create_app
from schemas.events import parse_member_event
from tests.ingest.conftest import access_event, read_topic, running_ingest

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def at(delta: timedelta, tz: timezone = UTC) -> str:
    return (NOW + delta).astimezone(tz).isoformat()


async def test_future_events_are_refused_and_late_ones_accepted(settings, sessions, tenant):
    settings = settings.model_copy(update={"max_future_skew_seconds": 300})
    async with running_ingest(settings, sessions, tenant, now=lambda: NOW) as ingest:
        post, auth = ingest.client.post, ingest.auth()
        berlin = timezone(timedelta(hours=1))
        ok_soon = access_event(tenant, occurred_at=at(timedelta(seconds=299), berlin))
        too_far = access_event(tenant, occurred_at=at(timedelta(seconds=301)))
        days_late = access_event(tenant, occurred_at=at(-timedelta(days=9), berlin))

        r = await post("/v1/events", json=too_far, headers=auth)
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["reason"] == "future"
        assert [e["field"] for e in body["errors"]] == ["occurred_at"]
        assert "ahead of the server clock" in body["errors"][0]["message"]

        r = await post(
            "/v1/events/batch", json={"events": [ok_soon, too_far, days_late]}, headers=auth
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["event_ids"] == [ok_soon["event_id"], days_late["event_id"]]
        assert [(x["index"], x["reason"]) for x in body["rejected"]] == [(1, "future")]
        assert body["rejected"][0]["errors"][0]["field"] == "events.1.occurred_at"

        records = await read_topic(ingest.settings, expected=2)
        got = {e.event_id: e for e in (parse_member_event(rec.value) for rec in records)}
        assert set(got) == {ok_soon["event_id"], days_late["event_id"]}
        # The device's offset is trusted and kept: the instant is exact, the offset as sent.
        late = got[days_late["event_id"]]
        assert late.occurred_at == NOW - timedelta(days=9)
        assert late.occurred_at.utcoffset() == timedelta(hours=1)


async def test_sites_store_their_time_zone_per_tenant(ingest):
    get, put = ingest.client.get, ingest.client.put
    admin = ingest.auth(await ingest.make_key(scopes=("admin",)))

    r = await put(
        "/v1/sites/north", json={"time_zone": "Europe/Berlin", "name": "North"}, headers=admin
    )
    assert r.status_code == 201, r.text
    assert r.json()["time_zone"] == "Europe/Berlin"
    r = await put(
        "/v1/sites/north", json={"time_zone": "Europe/Vienna", "name": "North"}, headers=admin
    )
    assert r.status_code == 200, r.text
    r = await put("/v1/sites/south", json={"time_zone": "America/New_York"}, headers=admin)
    assert r.status_code == 201
    r = await get("/v1/sites", headers=admin)
    assert [(s["site_id"], s["time_zone"]) for s in r.json()["sites"]] == [
        ("north", "Europe/Vienna"),
        ("south", "America/New_York"),
    ]

    # Not canonical IANA zones: names of no place that zoneinfo can nevertheless load
    # (``localtime`` is the host's own zone, ``Factory`` is "-00"), copies, and aliases (which
    # are answered with their zone's name).
    for zone in (
        *("Mars/Olympus", "CET; DROP TABLE sites", "../../etc/passwd", ""),
        *("localtime", "Factory", "posixrules", "posix/Europe/Berlin", "right/UTC", "EST5EDT"),
    ):
        r = await put("/v1/sites/north", json={"time_zone": zone}, headers=admin)
        assert r.status_code == 422, (zone, r.text)
        assert [e["field"] for e in r.json()["errors"]] == ["time_zone"]
    for alias, zone in (("Asia/Calcutta", "Asia/Kolkata"), ("Etc/UTC", "UTC")):
        r = await put("/v1/sites/north", json={"time_zone": alias}, headers=admin)
        assert r.status_code == 422 and zone in r.json()["errors"][0]["message"], r.text
    # Site ids follow the contract's id grammar (a site stored is one events can name; "/"
    # and ".." cannot even reach the route).
    for site in ("a:b", "s\u202e1", "s\u200b", "s\x85"):
        r = await put(f"/v1/sites/{quote(site, safe='')}", json={"time_zone": "UTC"}, headers=admin)
        assert r.status_code == 422, (site, r.text)

    # A writer key may not manage sites; another tenant sees none of these.
    r = await put("/v1/sites/north", json={"time_zone": "UTC"}, headers=ingest.auth())
    assert r.status_code == 403
    assert (await get("/v1/sites", headers=ingest.auth())).status_code == 403
    # A key bound to a site manages only that site.
    bound = ingest.auth(await ingest.make_key(scopes=("admin",), site_id="south"))
    assert (
        await put("/v1/sites/north", json={"time_zone": "UTC"}, headers=bound)
    ).status_code == 403
    r = await get("/v1/sites", headers=bound)
    assert [s["site_id"] for s in r.json()["sites"]] == ["south"]


async def test_sites_of_another_tenant_stay_apart(settings, sessions, tenant):
    other = tenant + "-other"
    async with running_ingest(settings, sessions, other) as ingest:
        admin = ingest.auth(await ingest.make_key(scopes=("admin",)))
        await ingest.client.put("/v1/sites/north", json={"time_zone": "UTC"}, headers=admin)
    async with running_ingest(settings, sessions, tenant) as ingest:
        admin = ingest.auth(await ingest.make_key(scopes=("admin",)))
        assert (await ingest.client.get("/v1/sites", headers=admin)).json() == {"sites": []}


def test_openapi_documents_sites_and_429(settings):
    doc = create_app(settings).openapi()
    assert {"put"} <= set(doc["paths"]["/v1/sites/{site_id}"])
    assert "429" in doc["paths"]["/v1/events/batch"]["post"]["responses"]
