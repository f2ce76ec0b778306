"""A membership event's optional ``profile`` at the ingest (issue 20): accepted and carried
to the topic as sent; a bad field refuses the event naming the field, never the value."""

from __future__ import annotations

import json

from tests.ingest.conftest import membership_event, read_topic


async def test_a_profile_rides_a_membership_event_and_a_bad_one_is_refused_by_field(ingest):
    good = membership_event(
        ingest.tenant, profile={"display_name": "Ana Levi", "phone": "+972 50-111-0001"}
    )
    r = await ingest.client.post("/v1/events", json=good, headers=ingest.auth())
    assert r.status_code in (200, 202), r.text
    bad = membership_event(ingest.tenant, profile={"phone": "call me maybe", "nickname": "A"})
    r = await ingest.client.post("/v1/events", json=bad, headers=ingest.auth())
    assert r.status_code == 422, r.text
    fields = {e.get("field") or e.get("pointer") for e in r.json()["errors"]}
    assert any("profile" in str(f) and "phone" in str(f) for f in fields), r.json()
    assert any("nickname" in str(f) for f in fields), r.json()
    assert "call me maybe" not in r.text
    records = await read_topic(ingest.settings, 1)
    sent = [json.loads(rec.value) for rec in records]
    assert [e["profile"]["display_name"] for e in sent] == ["Ana Levi"]
    assert sent[0]["profile"]["phone"] == "+972501110001"  # separators removed, as the PUT
