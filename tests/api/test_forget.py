"""The right to be forgotten: erase a member mid-stream with the live detector running, then
show nothing reveals them and nobody else's alerts changed."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from sqlalchemy import inspect, select, text

from api.app import create_app
from detector.core import Detector, FixedPolicy
from detector.core.replay import replay
from detector.core.winback import DEFAULT_PLAN
from detector.runner import DetectorRunner
from plumbing.database import create_engine, session_factory
from plumbing.kafka import ensure_topics
from records.tables import AlertRow, ForgottenMember, MemberStateRow
from schemas import Event
from tests.api.leaver_support import leaver, visit
from tests.api.support import api, make_key, until
from tests.support import encoded, produce, settings_env


async def _everywhere(engine, needle: str) -> list[str]:
    """Every table and text/JSON column whose value contains ``needle``."""
    found = []
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        for table in tables:
            cols = await conn.run_sync(lambda c, t=table: inspect(c).get_columns(t))
            for col in cols:
                kind = str(col["type"]).upper()
                if not any(k in kind for k in ("CHAR", "TEXT", "JSON")):
                    continue
                hit = await conn.scalar(
                    text(f'SELECT count(*) FROM "{table}" WHERE "{col["name"]}"::text LIKE :n'),
                    {"n": f"%{needle}%"},
                )
                if hit:
                    found.append(f"{table}.{col['name']}")
    return found


async def test_forget_mid_stream_erases_everything_and_replay_cannot_resurrect(
    settings, fresh_pg_url, tenant
):
    s = settings.model_copy(
        update={
            "database_url": fresh_pg_url,
            "clock": "event",
            "allowed_lateness_seconds": 0.0,
            "policy": "fixed",
            "fixed_absence_days": 20.0,
            "checkpoint_interval_seconds": 0.1,
            "leavers_refresh_seconds": 0.2,
        }
    )
    await ensure_topics(s)
    gone = "m-forget-me-7q"
    first = leaver(tenant, gone, "price") + leaver(tenant, "keep-a", "price")
    first += [visit(tenant, "keep-b", d) for d in range(0, 61, 5)]
    later = [visit(tenant, gone, d) for d in range(70, 120, 3)]  # would come back
    later += [visit(tenant, "keep-b", d) for d in range(90, 200, 5)]
    first.sort(key=lambda e: e.occurred_at)  # in time order: batching cannot matter
    later.sort(key=lambda e: e.occurred_at)
    engine = create_engine(s.database_url)
    sessions = session_factory(engine)
    key = await make_key(sessions, tenant, ("alerts:read", "admin"))
    runner = DetectorRunner(s, sessions)
    task = asyncio.create_task(runner.run())
    try:
        parts = await produce(s, encoded(first))

        async def stored():
            async with sessions() as db:
                rows = await db.scalars(
                    select(MemberStateRow.member_id).where(MemberStateRow.tenant_id == tenant)
                )
                return gone in set(rows)

        await until(stored, within=30)
        async with api(create_app(s, deliver=False), key) as c:
            r = await c.delete(f"/v1/members/{gone}")
            assert r.status_code == 200, r.text
            assert r.json()["erased"]["member_states"] == 1
            assert (await c.delete(f"/v1/members/{gone}")).status_code == 404  # nothing left
            assert (await c.delete("/v1/members/never-was")).status_code == 404
            # The member's events come again (a replay, late devices): nothing resurrects.
            parts += await produce(s, encoded(later))

            async def done():
                async with sessions() as db:
                    got = set(
                        (await db.execute(select(AlertRow.alert_id, AlertRow.member_id))).all()
                    )
                return got if "keep-b" in {m for _, m in got} else None

            await until(done, within=30)
            await asyncio.sleep(1.0)  # a few more checkpoints
            assert (await c.get(f"/v1/members/{gone}")).status_code == 404
            metrics = (await c.get("/metrics")).text
        assert await _everywhere(engine, gone) == []
        assert gone not in metrics
        from prometheus_client import REGISTRY, generate_latest

        assert gone.encode() not in generate_latest(REGISTRY)  # the detector's own metrics
        async with sessions() as db:
            assert await db.scalar(select(ForgottenMember.member_hash)) is not None
            others = {
                (a, m)
                for a, m in await db.execute(
                    select(AlertRow.alert_id, AlertRow.member_id).where(
                        AlertRow.tenant_id == tenant
                    )
                )
            }
        # Everyone else's alerts are those of a replay that never had the member: their
        # events still move each partition's clock, but create no state.
        by_part: dict[int, list[Event]] = {}
        for e, p in zip(first + later, parts, strict=True):
            by_part.setdefault(p, []).append(e)
        expected = set()
        for evs in by_part.values():
            d = Detector(
                FixedPolicy(20.0),
                winback=lambda _t: DEFAULT_PLAN,
                is_forgotten=lambda _t, m: m == gone,
            )
            expected |= {
                (a.alert_id, a.member_id) for a in replay(evs, d.policy_for, 0.0, detector=d)
            }
        assert "keep-b" in {m for _, m in expected}  # keep-a: only if its clock passed day 85
        assert others == expected
    finally:
        runner.stop()
        await asyncio.wait_for(task, 15)
        await engine.dispose()


def test_cli_forget_unknown_member_is_a_clear_error(settings, tenant):
    env = settings_env(settings)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lapse.cli",
            "members",
            "forget",
            "--tenant",
            tenant,
            "--member",
            "nobody",
        ],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "nothing erased" in proc.stderr
