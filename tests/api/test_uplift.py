"""``/v1/uplift`` end to end on PostgreSQL (issue 22): a simulated club with a known effect
of reaching out, replayed, its episodes' arms drawn as the api stores them, the contact
arm called; the report must hold the simulated difference inside its interval and call it
proven, and read "not proven" when contact does nothing. The loop: bench/uplift_bench.py."""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from schemas.holdout import HoldoutPeriod
from simulator import SimParams
from tests.api.support import api, make_key


def _load_bench() -> Any:
    """bench/ is a folder of scripts, not a package: load the script as its own module."""
    path = Path(__file__).resolve().parents[2] / "bench" / "uplift_bench.py"
    spec = importlib.util.spec_from_file_location("uplift_bench", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["uplift_bench"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bench = _load_bench()
UNIFORM, closed_loop, expected_difference, load = (
    bench.UNIFORM,
    bench.closed_loop,
    bench.expected_difference,
    bench.load,
)

SHARE = 0.3  # the first half year; then 0.4 (a manager raised it)
EFFECT = 0.4
SETTLE = 60.0
START = datetime(2025, 1, 1, tzinfo=UTC)
MID = datetime(2025, 7, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Any:
    # 1,500 members for a year: about 800 settled episodes, 30 % then 40 % held back.
    # Factors of 1, so the expected difference is the effect times the share of stopped
    # members.
    return closed_loop(
        str(tmp_path_factory.mktemp("uplift")),
        members=1500,
        days=365,
        seed=1,
        share=[HoldoutPeriod(START, MID, SHARE), HoldoutPeriod(MID, None, 0.4)],
        effect=EFFECT,
        params=replace(SimParams(), **UNIFORM),
    )


async def _report(settings, sessions, loop: Any, tenant: str, **params: str) -> Any:
    async with sessions() as session:
        await load(session, loop, tenant)
        await session.commit()
    key = await make_key(sessions, tenant)
    async with api(create_app(settings, deliver=False), key) as client:
        r = await client.get("/v1/uplift", params={"as_of": loop.end.isoformat(), **params})
        assert r.status_code == 200, r.text
        return r.json()


async def test_report_recovers_the_simulated_effect(settings, sessions, tenant, loop):
    body = await _report(settings, sessions, loop, tenant)
    o = body["overall"]
    expected = expected_difference(loop, EFFECT, SETTLE)
    assert expected > 0.05  # the loop does make a difference to find
    assert o["interval"]["low"] <= expected <= o["interval"]["high"]
    assert o["interval"]["low"] > 0
    assert o["verdict"].startswith("proven: reaching out brings back about")
    assert o["more_needed"] == 0
    # The arms are the draw's: about 30 %, then 40 %, of settled episodes held back (4 sd);
    # each period reported apart, and the whole weighted by their episodes, not pooled.
    n = o["contact"]["episodes"] + o["control"]["episodes"]
    assert n == body["settled"] > 500
    periods = body["by_period"]
    assert [p["group"] for p in periods] == [START.isoformat(), MID.isoformat()]
    weighted = 0.0
    for p, share in zip(periods, (SHARE, 0.4), strict=True):
        k = p["contact"]["episodes"] + p["control"]["episodes"]
        assert abs(p["control"]["episodes"] / k - share) < 4 * (share * (1 - share) / k) ** 0.5
        weighted += k / n * p["difference"]
    assert o["difference"] == pytest.approx(weighted)
    # Nobody in the control group was called: the per-action rows are contact-arm only.
    calls = next(c for c in body["by_action"] if c["group"] == "call")
    assert calls["contact"]["episodes"] > 0 and calls["randomised"] is False
    assert {c["group"] for c in body["by_severity"]} <= {"low", "medium", "high"}
    assert body["pending"] > 0 and body["outside_holdout"] == 0


async def test_no_effect_reads_not_proven(settings, sessions, tenant, loop):
    # The first run of the loop: the same club and calls, contact changing nothing.
    nothing = replace(loop, after=loop.before)
    o = (await _report(settings, sessions, nothing, tenant))["overall"]
    assert o["interval"]["low"] <= 0 <= o["interval"]["high"]
    assert o["verdict"].startswith("not proven")


async def test_tenant_and_site_scoped(settings, sessions, tenant, loop):
    body = await _report(settings, sessions, loop, tenant)
    assert body["settled"] > 0
    other = await make_key(sessions, tenant + "-other")
    bound = await make_key(sessions, tenant, site_id="site1")
    async with api(create_app(settings, deliver=False), other) as client:
        r = await client.get("/v1/uplift", params={"as_of": loop.end.isoformat()})
        assert r.status_code == 200 and r.json()["settled"] == 0
    async with api(create_app(settings, deliver=False), bound) as client:
        r = await client.get(
            "/v1/uplift", params={"as_of": loop.end.isoformat(), "site_id": "site2"}
        )
        assert r.status_code == 403
        assert r.headers["content-type"].startswith("application/problem+json")
        r = await client.get("/v1/uplift", params={"as_of": loop.end.isoformat()})
        assert r.status_code == 200
        assert r.json()["site_id"] == "site1"
        assert r.json()["settled"] < body["settled"]  # episodes without a site left out
        r = await client.get("/v1/uplift", params={"settle_days": "0"})
        assert r.status_code == 422
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_lapse_uplift_says_it_in_plain_words(settings, sessions, tenant, loop, capsys):
    from lapse.cli import parser
    from lapse.commands.uplift import run_uplift

    body = await _report(settings, sessions, loop, tenant)
    argv = ["uplift", "--tenant", tenant, "--as-of", loop.end.isoformat()]
    args = parser().parse_args([*argv, "--settle-days", str(SETTLE)])  # as the command reads it
    await run_uplift(settings, args)
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first == body["overall"]["verdict"]
    assert f"settled episodes: {body['settled']}" in out
    assert "holdout 30% from 2025-01-01T00:00:00+00:00 to 2025-07-01" in out
    assert "holdout 40% from 2025-07-01T00:00:00+00:00 to now" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("all ")}
    contact, control = body["overall"]["contact"], body["overall"]["control"]
    assert rows["all"].split()[1:2] == [str(contact["episodes"])]
    assert str(control["episodes"]) in rows["all"]
    # The reports page's section reads the same figures.
    from api.page.uplift import render

    async with sessions() as session:
        html = await render(session, tenant, as_of=loop.end)
    text = re.sub(r"<[^>]+>", "", html)  # figures sit in <bdi> on the page
    verdict = body["overall"]["verdict"]
    assert f"{verdict[0].upper()}{verdict[1:]}." in text
    assert f"{body['settled']:,} settled episodes" in text
