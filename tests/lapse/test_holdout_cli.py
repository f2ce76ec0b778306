"""``lapse holdout set|stop|show`` against PostgreSQL: the periods it writes and prints, and
the input it refuses (exit 2, a clear message, nothing written) by the rule ``PUT
/v1/holdout`` and the staff page apply (schemas/holdout.py)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lapse.cli import main
from records.tables import HoldoutPeriodRow
from schemas.holdout import MAX_REASON

Sessions = async_sessionmaker[AsyncSession]
WHY = "measure whether the calls help"


@pytest.fixture(autouse=True)
def _database(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAPSE_DATABASE_URL", pg_url)


async def lapse(*argv: str) -> None:
    # main() runs its own event loop: give it a thread of its own.
    await asyncio.to_thread(main, ["holdout", *argv])


async def rows(sessions: Sessions, tenant: str) -> list[HoldoutPeriodRow]:
    async with sessions() as s:
        found = await s.scalars(
            select(HoldoutPeriodRow)
            .where(HoldoutPeriodRow.tenant_id == tenant)
            .order_by(HoldoutPeriodRow.id)
        )
        return list(found)


def period_lines(out: str) -> list[str]:
    """The lines of ``show`` after its header, one per period, newest first."""
    return [line.strip() for line in out.splitlines() if line.startswith("  ")]


async def test_set_show_and_stop_write_and_print_the_periods(
    sessions: Sessions, tenant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await lapse("set", "--tenant", tenant, "--share", "10%", "--reason", WHY)
    out = capsys.readouterr().out
    assert f"holdout of {tenant}: 10.0% of new episodes since " in out
    [first] = await rows(sessions, tenant)
    assert (first.share, first.end, first.set_by, first.reason) == (0.1, None, "cli", WHY)

    await lapse("set", "--tenant", tenant, "--share", "0.2", "--by", "ana")
    capsys.readouterr()
    closed, opened = await rows(sessions, tenant)
    assert closed.id == first.id and closed.end is not None and closed.ended_by == "ana"
    assert closed.end == opened.start
    assert (opened.share, opened.end, opened.set_by, opened.reason) == (0.2, None, "ana", None)

    await lapse("show", "--tenant", tenant)
    out = capsys.readouterr().out
    since = f"{opened.start:%Y-%m-%d %H:%M}"
    assert out.splitlines()[0] == f"holdout of {tenant}: 20.0% of new episodes since {since} UTC"
    newest, oldest = period_lines(out)
    assert newest.startswith(f"{since} to in force")
    assert newest.endswith("20.0%  set by ana")
    assert oldest.startswith(f"{first.start:%Y-%m-%d %H:%M} to {closed.end:%Y-%m-%d %H:%M}")
    assert oldest.endswith(f"10.0%  set by cli  ({WHY})")

    # Setting the share in force changes nothing and says so.
    await lapse("set", "--tenant", tenant, "--share", "20%")
    assert "unchanged: that share is in force" in capsys.readouterr().out
    assert len(await rows(sessions, tenant)) == 2

    await lapse("stop", "--tenant", tenant, "--reason", "enough episodes")
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"holdout of {tenant}: off"
    assert "in force" not in out
    _, stopped = await rows(sessions, tenant)
    assert stopped.id == opened.id and stopped.end is not None
    assert (stopped.ended_by, stopped.reason) == ("cli", "stopped: enough episodes")

    await lapse("stop", "--tenant", tenant)
    assert "unchanged: off" in capsys.readouterr().out
    assert len(await rows(sessions, tenant)) == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--share", "0"], "argument --share: share must be more than 0 and at most 0.5, got 0.0"),
        (["--share", "0%"], "share must be more than 0 and at most 0.5, got 0.0"),
        (["--share", "0.6"], "share must be more than 0 and at most 0.5, got 0.6"),
        (["--share", "60%"], "share must be more than 0 and at most 0.5, got 0.6"),
        (["--share", "nan"], "share must be more than 0 and at most 0.5, got nan"),
        (["--share", "abc"], "argument --share: not a share: 'abc' (give 0.1 or 10%"),
        (
            ["--share", "0.1", "--reason", "x" * (MAX_REASON + 1)],
            f"argument --reason: a reason is at most {MAX_REASON} characters, with no control "
            f"characters (got {MAX_REASON + 1} characters)",
        ),
        (
            ["--share", "0.1", "--reason", "call them \x1b[31mnow"],
            "argument --reason: a reason is at most",
        ),
        (["--share", "0.1", "--reason", "nul\x00"], "argument --reason: a reason is at most"),
    ],
)
async def test_bad_input_exits_2_and_writes_nothing(
    sessions: Sessions,
    tenant: str,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    await lapse("set", "--tenant", tenant, "--share", "0.3")
    capsys.readouterr()
    before = [(r.id, r.share, r.end, r.reason) for r in await rows(sessions, tenant)]
    assert len(before) == 1

    with pytest.raises(SystemExit) as exited:
        await lapse("set", "--tenant", tenant, *argv)
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""
    assert [(r.id, r.share, r.end, r.reason) for r in await rows(sessions, tenant)] == before

    if "--reason" in argv:  # stop takes the reason by the same rule
        with pytest.raises(SystemExit) as exited:
            await lapse("stop", "--tenant", tenant, *argv[2:])
        assert exited.value.code == 2
        assert "argument --reason: a reason is at most" in capsys.readouterr().err
        assert [(r.id, r.share, r.end, r.reason) for r in await rows(sessions, tenant)] == before


async def test_the_longest_reason_and_line_breaks_are_taken(
    sessions: Sessions, tenant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The limit is the route's: a reason of exactly ``MAX_REASON`` characters, with a line
    break and a tab, as ``PUT /v1/holdout`` takes it."""
    reason = ("why:\n\t" + "x" * MAX_REASON)[:MAX_REASON]
    await lapse("set", "--tenant", tenant, "--share", "5%", "--reason", reason)
    capsys.readouterr()
    [row] = await rows(sessions, tenant)
    assert (row.share, row.reason) == (0.05, reason)


async def test_another_tenants_show_is_empty(
    sessions: Sessions, tenant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    other = f"{tenant}-other"
    await lapse("set", "--tenant", tenant, "--share", "10%", "--reason", WHY)
    capsys.readouterr()

    await lapse("show", "--tenant", other)
    out = capsys.readouterr().out
    assert out.splitlines() == [f"holdout of {other}: off"]
    assert WHY not in out and "10.0%" not in out
    # Nor does another tenant's stop end it.
    await lapse("stop", "--tenant", other)
    assert "unchanged: off" in capsys.readouterr().out
    [row] = await rows(sessions, tenant)
    assert (row.share, row.end) == (0.1, None)
    assert await rows(sessions, other) == []
