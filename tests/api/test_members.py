"""``/v1/members``: a member's state and today's at-risk list, from the detector's rows."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from api.app import create_app
from detector.core.state import MemberState, Status
from records.tables import MemberStateRow
from schemas.units import DAY
from tests.api.support import api, make_key


async def store_states(
    sessions, states: list[MemberState], extra: dict[str, Any] | None = None
) -> None:
    now = datetime.now(UTC)
    async with sessions() as s:
        for st in states:
            state = st.to_dict() | (extra or {})
            s.add(
                MemberStateRow(
                    tenant_id=st.tenant_id,
                    member_id=st.member_id,
                    partition=0,
                    site_id=st.site_id,
                    status=str(st.status),
                    last_visit=datetime.fromtimestamp(st.last_visit, UTC)
                    if st.last_visit
                    else None,
                    deadline=datetime.fromtimestamp(st.deadline, UTC) if st.deadline else None,
                    episode_id=st.episode_id,
                    state=state,
                    updated_at=now,
                )
            )
        await s.commit()


def member(tenant, mid, *, absent_days, site="north", severity=None, status=Status.ACTIVE):
    now = datetime.now(UTC).timestamp()
    last = now - absent_days * DAY
    st = MemberState(tenant, mid, site_id=site, status=status, last_visit=last, anchor=last)
    st.deadline = last + 45 * DAY
    if severity:
        st.episode_id = f"ep-{mid}"
        st.episode_start = last
        st.severity = severity
    return st


async def test_member_state_and_at_risk_order(settings, sessions, tenant, key):
    await store_states(
        sessions,
        [
            member(tenant, "regular", absent_days=2),
            member(tenant, "long-medium", absent_days=80, severity="medium"),
            member(tenant, "short-high", absent_days=50, severity="high"),
            member(tenant, "longer-high", absent_days=95, severity="high"),
            member(tenant, "short-medium", absent_days=46, severity="medium"),
            member(tenant, "south-high", absent_days=99, severity="high", site="south"),
        ],
    )
    async with api(create_app(settings, deliver=False), key) as client:
        r = await client.get("/v1/members/at-risk", params={"site_id": "north"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert [m["member_id"] for m in body["items"]] == [
            "longer-high",
            "short-high",
            "long-medium",
            "short-medium",
        ]
        everywhere = (await client.get("/v1/members/at-risk")).json()["items"]
        assert everywhere[0]["member_id"] == "south-high" and len(everywhere) == 5
        limited = (await client.get("/v1/members/at-risk", params={"limit": 1})).json()
        assert len(limited["items"]) == 1

        m = (await client.get("/v1/members/short-high")).json()
        assert m["status"] == "active" and m["site_id"] == "north"
        assert m["severity"] == "high" and 49.9 < m["days_absent"] < 50.1
        assert m["open_episode"]["episode_id"] == "ep-short-high"
        assert m["open_episode"]["severity"] == "high"
        assert m["deadline"] and m["last_visit"] == m["absent_since"]
        # No gap seen yet (one visit on record): no usual rhythm, null rather than invented.
        assert m["usual_gap_days"] is None and m["visits_last_4_weeks"] is None
        regular = (await client.get("/v1/members/regular")).json()
        assert regular["open_episode"] is None and regular["severity"] is None
        assert (await client.get("/v1/members/nobody")).status_code == 404


async def test_cadence_figures_come_from_the_detectors_state(settings, sessions, tenant, key):
    st = member(tenant, "cadenced", absent_days=20, severity="medium")
    now = datetime.now(UTC).timestamp()
    # Every 3.5 days until 20 days ago: 3 visits in the last 4 weeks (20, 23.5 and 27 days
    # ago), 8 usually.
    st.recent = [now - (20 + 3.5 * k) * DAY for k in range(11, -1, -1)]
    st.visits, st.gap_n, st.gap_mu = 40, 39, math.log(3.5)
    await store_states(sessions, [st])
    async with api(create_app(settings, deliver=False), key) as client:
        m = (await client.get("/v1/members/cadenced")).json()
        assert m["usual_gap_days"] == 3.5 and m["usual_visits_4_weeks"] == 8.0
        assert m["visits_last_4_weeks"] == 3


async def test_a_site_bound_key_sees_its_site_members_only(settings, sessions, tenant):
    await store_states(
        sessions,
        [
            member(tenant, "n", absent_days=60, severity="medium"),
            member(tenant, "s", absent_days=60, severity="medium", site="south"),
        ],
    )
    key = await make_key(sessions, tenant, scopes=("alerts:read",), site_id="north")
    async with api(create_app(settings, deliver=False), key) as client:
        items = (await client.get("/v1/members/at-risk")).json()["items"]
        assert [m["member_id"] for m in items] == ["n"]
        assert (await client.get("/v1/members/s")).status_code == 404
        assert (await client.get("/v1/members/n")).status_code == 200
