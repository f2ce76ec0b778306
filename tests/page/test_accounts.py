"""Staff accounts on the page, over HTTP with PostgreSQL: password login, one refusal for
every failure, lockout and its end (injected clock), server-side revocation, roles and
tenant isolation; and ``lapse staff`` (the password read from stdin, never printed)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from api.app import create_app
from api.page.i18n import t
from lapse import cli
from plumbing.settings import Settings
from records import staff_accounts as accounts
from records.staff_accounts import Role
from records.tables import ActionRow, StaffAccount, StaffSession
from tests.api.support import Clock, serve
from tests.page.support import LOGIN_TOKEN, PASSWORD, add_staff, csrf_of, make_club

REFUSAL = t("en", "error.refused")


@asynccontextmanager
async def page(settings: Settings, clock: Clock | None = None) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, deliver=False, now=clock)
    async with serve(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as client:
        yield client


async def log_in(client: httpx.AsyncClient, login: str, password: str) -> httpx.Response:
    form = await client.get("/staff/login")
    match = LOGIN_TOKEN.search(form.text)
    assert match, form.text[:500]
    return await client.post(
        "/staff/login",
        data={"login_token": match.group(1), "login": login, "password": password},
    )


def error_of(r: httpx.Response) -> str:
    return r.text.split('id="login-error">', 1)[1].split("<", 1)[0]


async def test_an_account_logs_in_and_the_database_keeps_only_the_tokens_digest(
    settings, sessions, tenant
):
    login = await add_staff(sessions, tenant)
    async with page(settings) as client:
        r = await log_in(client, login.upper(), PASSWORD)  # the login name is case-blind
        assert r.status_code == 303 and r.headers["location"] == "/staff/"
        cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("lapse_session"))
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        token = cookie.split(";")[0].split("=", 1)[1]
        assert token.startswith(accounts.TOKEN_PREFIX) and PASSWORD not in cookie
        home = await client.get("/staff/")
        assert home.status_code == 200 and "At-risk members today" in home.text
    async with sessions() as db:
        account = await db.scalar(select(StaffAccount).where(StaffAccount.login == login))
        assert account is not None and account.password_hash.startswith("$argon2id$")
        assert PASSWORD not in account.password_hash
        digests = list(
            await db.scalars(
                select(StaffSession.digest).where(StaffSession.account_id == account.id)
            )
        )
    assert len(digests) == 1 and token not in digests and digests[0] != token


async def test_wrong_password_and_unknown_account_get_the_same_answer(settings, sessions, tenant):
    login = await add_staff(sessions, tenant)
    async with page(settings) as client:
        wrong = await log_in(client, login, "not the password")
        unknown = await log_in(client, f"nobody-{login}", PASSWORD)
        assert wrong.status_code == unknown.status_code == 401
        assert error_of(wrong) == error_of(unknown) == REFUSAL
        assert "lapse_session" not in wrong.headers.get("set-cookie", "")
        assert (await client.get("/staff/")).status_code == 303


async def test_five_failures_lock_the_account_until_fifteen_minutes_pass(
    settings, sessions, tenant
):
    login = await add_staff(sessions, tenant)
    clock = Clock()
    async with page(settings, clock) as client:
        # Four failures then success: the count starts again.
        for _ in range(4):
            assert (await log_in(client, login, "wrong password!")).status_code == 401
        assert (await log_in(client, login, PASSWORD)).status_code == 303
        client.cookies.clear()
        for _ in range(accounts.MAX_FAILURES):
            assert (await log_in(client, login, "wrong password!")).status_code == 401
        # Locked: the right password is refused, with the very same words.
        locked = await log_in(client, login, PASSWORD)
        assert locked.status_code == 401 and error_of(locked) == REFUSAL
        clock.now += accounts.LOCK - timedelta(seconds=1)
        assert (await log_in(client, login, PASSWORD)).status_code == 401
        clock.now += timedelta(seconds=2)
        assert (await log_in(client, login, PASSWORD)).status_code == 303
        assert (await client.get("/staff/")).status_code == 200


async def test_logout_and_disabling_revoke_sessions_on_the_server(settings, sessions, tenant):
    login = await add_staff(sessions, tenant)
    async with page(settings) as client:
        await log_in(client, login, PASSWORD)
        token = client.cookies["lapse_session"]
        home = (await client.get("/staff/")).text
        r = await client.post("/staff/logout", data={"csrf": csrf_of(home)})
        assert r.status_code == 303
        # The same cookie presented again (a copy kept elsewhere) is refused: revoked.
        client.cookies.set("lapse_session", token, path="/staff")
        assert (await client.get("/staff/")).status_code == 303

        client.cookies.clear()
        assert (await log_in(client, login, PASSWORD)).status_code == 303
        assert (await client.get("/staff/")).status_code == 200
        async with sessions() as db:
            rows = list(
                await db.scalars(
                    select(StaffSession)
                    .join(StaffAccount, StaffAccount.id == StaffSession.account_id)
                    .where(StaffAccount.login == login)
                )
            )
        # The revoked session was cleared at this login: the live one only.
        assert [r.revoked_at for r in rows] == [None]
        async with sessions() as db:
            assert await accounts.disable_account(db, tenant, login, datetime.now(UTC))
        assert (await client.get("/staff/")).status_code == 303
        assert (await log_in(client, login, PASSWORD)).status_code == 401


async def test_a_session_is_valid_on_another_api_replica(settings, sessions, tenant):
    login = await add_staff(sessions, tenant)
    async with page(settings) as one, page(settings) as two:
        await log_in(one, login, PASSWORD)
        two.cookies.set("lapse_session", one.cookies["lapse_session"], path="/staff")
        assert (await two.get("/staff/")).status_code == 200


async def test_front_desk_cannot_open_reports_a_manager_can(settings, sessions, tenant):
    await make_club(sessions, tenant)
    desk = await add_staff(sessions, tenant, Role.FRONT_DESK)
    manager = await add_staff(sessions, tenant, Role.MANAGER)
    async with page(settings) as client:
        await log_in(client, desk, PASSWORD)
        # Not offered a link it would be refused, on any of its pages.
        for url, status in (
            ("/staff/", 200),
            ("/staff/members/ben", 200),
            ("/staff/members/x", 404),
        ):
            r = await client.get(url)
            assert r.status_code == status and 'href="/staff/reports"' not in r.text
        r = await client.get("/staff/reports")
        assert r.status_code == 403 and "role" in r.text
        assert (await client.get("/staff/reports/calibration/1")).status_code == 403
        r = await client.get("/staff/reports", headers={"accept": "application/json"})
        assert r.status_code == 403 and r.json()["title"] == "Forbidden"
    async with page(settings) as client:
        await log_in(client, manager, PASSWORD)
        assert (await client.get("/staff/reports")).status_code == 200
        home = await client.get("/staff/")
        assert home.status_code == 200 and 'href="/staff/reports"' in home.text


async def test_front_desk_acknowledges_as_itself(settings, sessions, tenant):
    club = await make_club(sessions, tenant)
    desk = await add_staff(sessions, tenant)
    alert = club.open_alert("ben")
    async with page(settings) as client:
        await log_in(client, desk, PASSWORD)
        home = (await client.get("/staff/")).text
        r = await client.post(
            f"/staff/alerts/{alert.alert_id}/actions",
            data={"csrf": csrf_of(home), "action": "call"},
        )
        assert r.status_code == 303
        # Another session's token does not pass this session's forms.
        r = await client.post(
            f"/staff/alerts/{alert.alert_id}/actions", data={"csrf": "x" + csrf_of(home)}
        )
        assert r.status_code == 403
    async with sessions() as db:
        account_id = await db.scalar(select(StaffAccount.id).where(StaffAccount.login == desk))
        taken_by = list(
            await db.scalars(select(ActionRow.taken_by).where(ActionRow.tenant_id == tenant))
        )
    assert taken_by == [account_id]


async def test_another_tenants_staff_see_nothing(settings, sessions, tenant):
    club = await make_club(sessions, tenant)
    other = await add_staff(sessions, f"{tenant}-b", Role.ADMIN)
    alert = club.open_alert("ben")
    async with page(settings) as b:
        await log_in(b, other, PASSWORD)
        home = (await b.get("/staff/")).text
        assert 'data-member="' not in home and "ben" not in home
        assert (await b.get("/staff/members/ben")).status_code == 404
        r = await b.post(
            f"/staff/alerts/{alert.alert_id}/actions",
            data={"csrf": csrf_of(home), "action": "call"},
        )
        assert r.status_code == 404
        reports = (await b.get("/staff/reports")).text
        assert alert.episode_id not in reports and 'value="north"' not in reports
    async with sessions() as s:
        acted = await s.scalar(
            select(func.count()).select_from(ActionRow).where(ActionRow.tenant_id == tenant)
        )
    assert acted == 0


def test_staff_cli_adds_lists_and_disables_without_echoing_the_password(
    settings, tenant, monkeypatch, capsys
):
    monkeypatch.setenv("LAPSE_DATABASE_URL", settings.database_url)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    cli.main(["staff", "add", "--tenant", tenant, "--login", "Desk@Example.org",
              "--role", "manager", "--name", "Dana", "--password-stdin"])  # fmt: skip
    cli.main(["staff", "list", "--tenant", tenant])
    cli.main(["staff", "list", "--tenant", f"{tenant}-b"])
    out = capsys.readouterr()
    assert PASSWORD not in out.out + out.err
    lines = out.out.splitlines()
    assert lines[0] == f"account desk@example.org (manager) for tenant {tenant}"
    assert lines[1].split() == ["desk@example.org", "manager", "active", "Dana"]
    assert len(lines) == 2  # the other tenant lists nothing
    with pytest.raises(SystemExit, match="no account"):
        cli.main(["staff", "disable", "--tenant", f"{tenant}-b", "desk@example.org"])
    cli.main(["staff", "disable", "--tenant", tenant, "desk@example.org"])
    cli.main(["staff", "list", "--tenant", tenant])
    assert capsys.readouterr().out.splitlines()[-1].split()[2] == "disabled"


async def test_every_refusal_costs_one_argon2_verification(sessions, tenant, monkeypatch):
    """Same work whether the account exists, is locked, disabled or the password wrong, so
    the answer's timing does not tell them apart."""
    calls: list[str] = []
    real = accounts._verify_now

    def counting(stored: str, password: str) -> bool:
        calls.append(stored[:9])
        return real(stored, password)

    monkeypatch.setattr(accounts, "_verify_now", counting)
    login = await add_staff(sessions, tenant)
    now = datetime.now(UTC)
    async with sessions() as db:
        assert await accounts.check_password(db, f"x{login}", PASSWORD, now) is None
        assert await accounts.check_password(db, login, "wrong password", now) is None
        assert await accounts.check_password(db, login, PASSWORD, now) is not None
        assert calls == ["$argon2id"] * 3  # unknown name, wrong password, right password
        for _ in range(accounts.MAX_FAILURES):
            await accounts.check_password(db, login, "wrong password", now)
        calls.clear()
        assert await accounts.check_password(db, login, PASSWORD, now) is None  # locked
        assert await accounts.disable_account(db, tenant, login, now)
        later = now + accounts.LOCK * 2
        assert await accounts.check_password(db, login, PASSWORD, later) is None  # disabled
    assert calls == ["$argon2id"] * 2
