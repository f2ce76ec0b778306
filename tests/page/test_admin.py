"""The administration page (``/staff/admin``) over HTTP with PostgreSQL: an admin manages its
own club's staff accounts, API keys and webhooks through CSRF-protected forms; secrets are
shown once; another tenant's rows are "no such"; front desk, manager and a site-bound key are
refused; the webhook URL guard holds."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select

from records.api_keys import authenticate, create_key
from records.staff_accounts import Role
from records.tables import ApiKey, StaffAccount, WebhookSubscription
from tests.api.support import make_key
from tests.page.support import PASSWORD, add_staff, csrf_of, login
from tests.page.test_accounts import log_in, page

SHOWN = re.compile(r'<code dir="ltr" id="shown-once">([^<]+)</code>')


async def admin_client(client: httpx.AsyncClient, sessions: Any, tenant: str) -> str:
    """Log an admin account of ``tenant`` in; return the administration page's CSRF token."""
    who = await add_staff(sessions, tenant, Role.ADMIN)
    assert (await log_in(client, who, PASSWORD)).status_code == 303
    answer = await client.get("/staff/admin")
    assert answer.status_code == 200, answer.text[:300]
    return csrf_of(answer.text)


async def test_an_admin_manages_its_clubs_staff_keys_and_webhooks(settings, sessions, tenant):
    other = f"other-{uuid.uuid4().hex[:8]}"
    theirs = await add_staff(sessions, other, Role.FRONT_DESK)
    async with sessions() as db:
        _plain, their_key = await create_key(db, other, scopes=("alerts:read",), name="theirs")
        their_hook = WebhookSubscription(
            id=str(uuid.uuid4()),
            tenant_id=other,
            url="https://crm.example/theirs",
            secret="not-used",
            event_types=["at_risk"],
            created_at=datetime.now(UTC),
        )
        db.add(their_hook)
        await db.commit()
    async with page(settings) as client:
        csrf = await admin_client(client, sessions, tenant)
        shown = (await client.get("/staff/admin")).text
        assert theirs not in shown and "theirs" not in shown

        # Staff: add, change the role, disable.
        new = f"noa-{uuid.uuid4().hex[:8]}@club.example"
        r = await client.post(
            "/staff/admin/staff",
            data={
                "csrf": csrf,
                "login": new,
                "display_name": "Noa",
                "password": PASSWORD,
                "role": "front_desk",
            },
        )
        assert r.status_code == 303 and r.headers["location"] == "/staff/admin?done=account"
        assert "Account added." in (await client.get(r.headers["location"])).text
        short = await client.post(
            "/staff/admin/staff",
            data={"csrf": csrf, "login": "x@y.z", "password": "short", "role": "manager"},
        )
        assert short.status_code == 422
        assert "at least 10 characters" in short.text and "short" not in short.text.split("<h1")[1]
        r = await client.post(
            "/staff/admin/staff/role", data={"csrf": csrf, "login": new, "role": "manager"}
        )
        assert r.status_code == 303
        async with sessions() as db:
            row = await db.scalar(select(StaffAccount).where(StaffAccount.login == new))
        assert row is not None and row.tenant_id == tenant and row.role == "manager"
        r = await client.post("/staff/admin/staff/disable", data={"csrf": csrf, "login": new})
        assert r.status_code == 303
        async with sessions() as db:
            row = await db.scalar(select(StaffAccount).where(StaffAccount.login == new))
        assert row is not None and row.disabled

        # Keys: created and shown once, working; revoked.
        r = await client.post(
            "/staff/admin/keys",
            data={"csrf": csrf, "name": "north gate 3", "scope_events_write": "on"},
        )
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        match = SHOWN.search(r.text)
        assert match, r.text[:500]
        plain = match.group(1)
        async with sessions() as db:
            principal = await authenticate(db, plain)
        assert principal is not None and principal.tenant_id == tenant
        assert principal.scopes == frozenset({"events:write"})
        listed = (await client.get("/staff/admin")).text
        assert "north gate 3" in listed and plain not in listed
        r = await client.post(
            "/staff/admin/keys/revoke", data={"csrf": csrf, "key_id": principal.key_id}
        )
        assert r.status_code == 303
        async with sessions() as db:
            assert await authenticate(db, plain) is None
        none = await client.post("/staff/admin/keys", data={"csrf": csrf, "name": "x"})
        assert none.status_code == 422 and "Choose at least one scope." in none.text

        # Webhooks: added with the secret shown once; disabled.
        r = await client.post(
            "/staff/admin/webhooks",
            data={"csrf": csrf, "url": "http://127.0.0.1:9/hooks", "description": "CRM"},
        )
        assert r.status_code == 200
        match = SHOWN.search(r.text)
        assert match and match.group(1).startswith("whsec_"), r.text[:500]
        async with sessions() as db:
            hook = await db.scalar(
                select(WebhookSubscription).where(WebhookSubscription.tenant_id == tenant)
            )
        assert hook is not None and hook.enabled and hook.description == "CRM"
        assert match.group(1) not in (await client.get("/staff/admin")).text
        r = await client.post(
            "/staff/admin/webhooks/disable", data={"csrf": csrf, "webhook_id": hook.id}
        )
        assert r.status_code == 303
        async with sessions() as db:
            hook = await db.get(WebhookSubscription, hook.id)
        assert hook is not None and not hook.enabled
        assert hook.disabled_reason == "disabled through the staff page"

        # Another tenant's account and key are "no such", and stay as they were.
        r = await client.post("/staff/admin/staff/disable", data={"csrf": csrf, "login": theirs})
        assert r.status_code == 404 and "No such account." in r.text
        r = await client.post(
            "/staff/admin/keys/revoke", data={"csrf": csrf, "key_id": their_key.id}
        )
        assert r.status_code == 404
        r = await client.post(
            "/staff/admin/staff/role", data={"csrf": csrf, "login": theirs, "role": "admin"}
        )
        assert r.status_code == 404
        r = await client.post(
            "/staff/admin/webhooks/disable", data={"csrf": csrf, "webhook_id": their_hook.id}
        )
        assert r.status_code == 404
    async with sessions() as db:
        them = await db.scalar(select(StaffAccount).where(StaffAccount.login == theirs))
        key = await db.get(ApiKey, their_key.id)
        hook = await db.get(WebhookSubscription, their_hook.id)
    assert them is not None and not them.disabled and them.role == "front_desk"
    assert key is not None and key.revoked_at is None
    assert hook is not None and hook.enabled


# Every administration route and the case above that shows another tenant cannot use it
# (tests/api/test_isolation.py holds the app's routes to these and the page's own).
ISOLATION_CASES = {
    ("GET", "/staff/admin"): "lists none of another tenant's accounts, keys or webhooks",
    ("POST", "/staff/admin/staff"): "adds an account to the admin's own tenant only",
    ("POST", "/staff/admin/staff/role"): "404 for another tenant's account",
    ("POST", "/staff/admin/staff/disable"): "404 for another tenant's account",
    ("POST", "/staff/admin/keys"): "creates a key of the admin's own tenant only",
    ("POST", "/staff/admin/keys/revoke"): "404 for another tenant's key",
    ("POST", "/staff/admin/webhooks"): "adds a webhook of the admin's own tenant only",
    ("POST", "/staff/admin/webhooks/disable"): "404 for another tenant's webhook",
}


async def test_only_an_admin_of_the_whole_club_opens_it_and_forms_need_the_token(
    settings, sessions, tenant
):
    for role in (Role.FRONT_DESK, Role.MANAGER):
        who = await add_staff(sessions, tenant, role)
        async with page(settings) as client:
            await log_in(client, who, PASSWORD)
            csrf = csrf_of((await client.get("/staff/")).text)
            assert (await client.get("/staff/admin")).status_code == 403
            r = await client.post(
                "/staff/admin/keys", data={"csrf": csrf, "name": "x", "scope_admin": "on"}
            )
            assert r.status_code == 403
            # Who may post is checked before what was posted is read: a forged token or a
            # body that is no form is still refused for the role.
            for posted in ({"data": {"csrf": "forged"}}, {"content": b"\x00"}):
                r = await client.post("/staff/admin/keys", **posted)
                assert r.status_code == 403 and "role does not open" in r.text
            assert "Admin" not in (await client.get("/staff/")).text.split("</nav>")[0]
    site_key = await make_key(sessions, tenant, scopes=("admin",), site_id="north")
    async with page(settings) as client:
        await login(client, site_key)
        answer = await client.get("/staff/admin")
        assert answer.status_code == 403 and "does not administer the club" in answer.text
    async with page(settings) as client:
        csrf = await admin_client(client, sessions, tenant)
        assert (
            '<a href="/staff/admin" aria-current="page">' in (await client.get("/staff/admin")).text
        )
        r = await client.post(
            "/staff/admin/keys", data={"csrf": "forged", "name": "x", "scope_admin": "on"}
        )
        assert r.status_code == 403
        async with sessions() as db:
            made = await db.scalars(select(ApiKey.name).where(ApiKey.tenant_id == tenant))
            assert "x" not in list(made)


async def test_the_url_guard_and_an_admin_keeps_its_own_account(settings, sessions, tenant):
    strict = settings.model_copy(update={"webhook_allow_private": False})
    async with page(strict) as client:
        csrf = await admin_client(client, sessions, tenant)
        r = await client.post(
            "/staff/admin/webhooks", data={"csrf": csrf, "url": "http://127.0.0.1:9/hooks"}
        )
        assert r.status_code == 422 and "That URL is refused" in r.text
        async with sessions() as db:
            rows = await db.scalars(
                select(WebhookSubscription).where(WebhookSubscription.tenant_id == tenant)
            )
            assert list(rows) == []
        async with sessions() as db:
            me = await db.scalar(
                select(StaffAccount).where(
                    StaffAccount.tenant_id == tenant, StaffAccount.role == "admin"
                )
            )
        assert me is not None
        r = await client.post("/staff/admin/staff/disable", data={"csrf": csrf, "login": me.login})
        assert r.status_code == 409 and "your own account" in r.text
        r = await client.post(
            "/staff/admin/staff/role", data={"csrf": csrf, "login": me.login, "role": "manager"}
        )
        assert r.status_code == 409
