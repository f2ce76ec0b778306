"""``/staff/admin``: the administration of a club for its admin role (issue 20): staff
accounts (add, change a role, disable), API keys (create, shown once; revoke) and webhooks
(add behind the URL guard, secret shown once; disable).

One page with three sections, and one POST route per action, each a plain form carrying the
session's CSRF token (``access.Posted``, as the acknowledge and language forms do), so
it works without a script. The work itself is done by the functions the CLI and the JSON api
use (``records.staff_accounts``, ``records.api_keys``, ``api.read.webhooks``), scoped to the admin's
tenant: another tenant's account, key or webhook is "no such", exactly like one that does not
exist. Front desk and manager are refused (403) by the ``Admin`` dependency, as is a key bound
to one site. A secret (the new key, the webhook's signing secret) is rendered once into the
answer to the POST (``Cache-Control: no-store``) and never stored in plain or logged.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.deps import SessionDep, settings_of
from api.page import access
from api.page.access import PageRefusal, Posted, Staff
from api.page.answers import ASSET_VERSION, html, redirect, refuse
from api.page.i18n import t
from api.page.views import BASE, e, layout, ltr
from api.read.webhooks import add_subscription, set_enabled, subscription, subscriptions_of
from api.urls import UnsafeUrl
from records import staff_accounts as accounts
from records.api_keys import SCOPES, create_key, keys_of, revoke_key
from records.staff_accounts import Role
from records.tables import ApiKey, StaffAccount, WebhookSubscription
from schemas import ALERT_TYPES
from schemas.events import NOTE_PATTERN

router = APIRouter(prefix=f"{BASE}/admin", include_in_schema=False)
_TEXT = re.compile(NOTE_PATTERN)
DONE = ("account", "role", "disabled", "revoked", "hook_disabled")


async def _admin(
    request: Request, staff: Annotated[Staff, Depends(access.role(Role.ADMIN))]
) -> Staff:
    if staff.principal.site_id is not None:
        raise PageRefusal(
            refuse(
                request,
                403,
                "Forbidden",
                "A key bound to one site does not administer the club.",
            )
        )
    return staff


Admin = Annotated[Staff, Depends(_admin)]


# -- views ---------------------------------------------------------------------------------


def _hidden(csrf: str, **values: str) -> str:
    fields = {"csrf": csrf, **values}
    return "".join(f'<input type="hidden" name="{k}" value="{e(v)}">' for k, v in fields.items())


def _button_form(action: str, csrf: str, field: tuple[str, str], text: str, whom: str) -> str:
    """A one-button form acting on one row (``field``: the row's id). The button's name ends
    with ``whom`` (hidden from sight) so that a column of "Disable" buttons does not sound
    alike to a screen reader, and begins with its visible text (voice control says that)."""
    return (
        f'<form method="post" action="{BASE}/admin/{action}" class="inline">'
        f"{_hidden(csrf, **dict([field]))}"
        f'<button type="submit">{e(text)}<span class="visually-hidden"> <bdi>{e(whom)}</bdi>'
        "</span></button></form>"
    )


def _state(lang: str, key: str) -> str:
    return e(t(lang, f"admin.{key}"))


def _role_options(chosen: str, lang: str) -> str:
    return "".join(
        f'<option value="{r.value}"{" selected" if r.value == chosen else ""}>'
        f"{e(t(lang, f'role.{r.value}'))}</option>"
        for r in Role
    )


def _staff_section(rows: list[StaffAccount], csrf: str, now: datetime, lang: str) -> str:
    body = []
    for n, a in enumerate(rows):
        locked = a.locked_until is not None and a.locked_until > now
        state = "disabled" if a.disabled else "locked" if locked else "active"
        controls = ""
        if not a.disabled:
            controls = (
                f'<form method="post" action="{BASE}/admin/staff/role" class="inline">'
                f"{_hidden(csrf, login=a.login)}"
                f'<label class="visually-hidden" for="role-{n}">'
                f"{e(t(lang, 'admin.role_of', name=a.display_name))}</label>"
                f'<select id="role-{n}" name="role">{_role_options(a.role, lang)}</select>'
                f'<button type="submit">{e(t(lang, "admin.change_role"))}</button></form>'
                + _button_form(
                    "staff/disable",
                    csrf,
                    ("login", a.login),
                    t(lang, "admin.disable"),
                    a.display_name,
                )
            )
        body.append(
            f"<tr><td><bdi>{e(a.display_name)}</bdi></td><td>{ltr(a.login)}</td>"
            f"<td>{e(t(lang, f'role.{a.role}'))}</td><td>{_state(lang, state)}</td>"
            f"<td>{controls}</td></tr>"
        )
    table = _table(
        lang,
        ("admin.name", "admin.login", "admin.role", "admin.state", None),
        body,
        "admin.staff",
    )
    form = (
        f'<form method="post" action="{BASE}/admin/staff" class="stack card">'
        f"{_hidden(csrf)}"
        f'<label for="new-login">{e(t(lang, "admin.login"))}</label>'
        '<input id="new-login" name="login" type="text" autocomplete="off" required '
        'spellcheck="false" autocapitalize="off" dir="auto">'
        f'<label for="new-name">{e(t(lang, "admin.name"))}</label>'
        '<input id="new-name" name="display_name" type="text" autocomplete="off" dir="auto">'
        f'<label for="new-password">{e(t(lang, "admin.password"))}</label>'
        '<input id="new-password" name="password" type="password" autocomplete="new-password" '
        'required minlength="10">'
        f'<label for="new-role">{e(t(lang, "admin.role"))}</label>'
        f'<select id="new-role" name="role">{_role_options(Role.FRONT_DESK.value, lang)}</select>'
        f'<button type="submit" class="primary">{e(t(lang, "admin.add_account"))}</button></form>'
    )
    return (
        f'<section aria-labelledby="staff-h"><h2 id="staff-h">{e(t(lang, "admin.staff"))}</h2>'
        f"{table}{form}</section>"
    )


def _table(lang: str, heads: tuple[str | None, ...], rows: list[str], caption: str) -> str:
    if not rows:
        return f"<p>{e(t(lang, 'admin.none'))}</p>"
    cells = "".join(
        f'<th scope="col">{e(t(lang, h)) if h else ""}</th>' if h else "<td></td>" for h in heads
    )
    return (
        # Focusable and named: on a phone the table scrolls sideways, by keyboard too.
        f'<div class="table-wrap" tabindex="0" role="region" aria-labelledby="{caption}-c">'
        f'<table><caption class="visually-hidden" id="{caption}-c">'
        f"{e(t(lang, caption))}</caption><thead><tr>{cells}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _keys_section(rows: list[ApiKey], csrf: str, lang: str) -> str:
    body = []
    for k in rows:
        state = "revoked" if k.revoked_at is not None else "active"
        revoke = (
            ""
            if k.revoked_at is not None
            else _button_form(
                "keys/revoke",
                csrf,
                ("key_id", k.id),
                t(lang, "admin.revoke"),
                k.name or k.prefix,
            )
        )
        body.append(
            f"<tr><td><bdi>{e(k.name)}</bdi></td><td>{ltr(k.prefix + '…')}</td>"
            f"<td>{ltr(' '.join(k.scopes))}</td><td>{ltr(k.site_id or '')}</td>"
            f"<td>{_state(lang, state)}</td><td>{revoke}</td></tr>"
        )
    table = _table(
        lang,
        ("admin.name", "admin.prefix", "admin.scopes", "admin.site", "admin.state", None),
        body,
        "admin.keys",
    )
    boxes = "".join(
        f'<label class="check"><input type="checkbox" name="scope_{s.replace(":", "_")}">'
        f"{ltr(s)}</label>"
        for s in SCOPES
    )
    form = (
        f'<form method="post" action="{BASE}/admin/keys" class="stack card">'
        f"{_hidden(csrf)}"
        f'<label for="key-name">{e(t(lang, "admin.key_name"))}</label>'
        '<input id="key-name" name="name" type="text" autocomplete="off" dir="auto">'
        f"<fieldset><legend>{e(t(lang, 'admin.scopes'))}</legend>{boxes}</fieldset>"
        f'<label for="key-site">{e(t(lang, "admin.site"))}</label>'
        '<input id="key-site" name="site_id" type="text" autocomplete="off" dir="ltr">'
        f'<button type="submit" class="primary">{e(t(lang, "admin.create_key"))}</button></form>'
    )
    return (
        f'<section aria-labelledby="keys-h"><h2 id="keys-h">{e(t(lang, "admin.keys"))}</h2>'
        f"{table}{form}</section>"
    )


def _hooks_section(rows: list[WebhookSubscription], csrf: str, lang: str) -> str:
    body = []
    for w in rows:
        state = "active" if w.enabled else "disabled"
        disable = (
            ""
            if not w.enabled
            else _button_form(
                "webhooks/disable",
                csrf,
                ("webhook_id", w.id),
                t(lang, "admin.disable"),
                w.url,
            )
        )
        body.append(
            f'<tr><td class="url">{ltr(w.url)}</td><td><bdi>{e(w.description or "")}</bdi></td>'
            f"<td>{ltr(w.site_id or '')}</td><td>{_state(lang, state)}</td><td>{disable}</td></tr>"
        )
    table = _table(
        lang,
        ("admin.url", "admin.description", "admin.site", "admin.state", None),
        body,
        "admin.webhooks",
    )
    form = (
        f'<form method="post" action="{BASE}/admin/webhooks" class="stack card">'
        f"{_hidden(csrf)}"
        f'<label for="hook-url">{e(t(lang, "admin.url"))}</label>'
        '<input id="hook-url" name="url" type="url" autocomplete="off" required dir="ltr">'
        f'<label for="hook-description">{e(t(lang, "admin.description"))}</label>'
        '<input id="hook-description" name="description" type="text" autocomplete="off" '
        'dir="auto">'
        f'<button type="submit" class="primary">{e(t(lang, "admin.add_webhook"))}</button></form>'
    )
    return (
        f'<section aria-labelledby="hooks-h"><h2 id="hooks-h">{e(t(lang, "admin.webhooks"))}</h2>'
        f"{table}{form}</section>"
    )


async def _page(
    request: Request,
    db: SessionDep,
    staff: Staff,
    *,
    notice: str | None = None,
    error: str | None = None,
    secret: tuple[str, str] | None = None,
    status: int = 200,
) -> Response:
    """The administration page; ``secret``: (catalogue key of its caption, the secret),
    shown once in this answer."""
    lang, tenant, csrf = staff.lang, staff.principal.tenant_id, staff.csrf
    top = ""
    if error is not None:
        top += f'<p class="error" role="alert" id="admin-error">{e(error)}</p>'
    if notice is not None:
        top += f'<p class="notice" role="status">{e(notice)}</p>'
    if secret is not None:
        caption, value = secret
        top += (
            f'<div class="notice shown-once" role="status"><p>{e(t(lang, caption))}</p>'
            f'<p><code dir="ltr" id="shown-once">{e(value)}</code></p></div>'
        )
    main = (
        f"<h1>{e(t(lang, 'admin.title'))}</h1>{top}"
        f"{_staff_section(await accounts.accounts_of(db, tenant), csrf, access.now(request), lang)}"
        f"{_keys_section(await keys_of(db, tenant), csrf, lang)}"
        f"{_hooks_section(await subscriptions_of(db, staff.principal), csrf, lang)}"
    )
    body = layout(
        t(lang, "admin.title"),
        main,
        tenant=tenant,
        csrf=csrf,
        current="admin",
        assets=ASSET_VERSION,
        reports=True,
        admin=True,
        lang=lang,
    )
    return html(body, status)


def _done(what: str) -> Response:
    return redirect(f"{BASE}/admin?done={what}")


# -- routes --------------------------------------------------------------------------------


@router.get("")
async def admin_page(request: Request, staff: Admin, db: SessionDep, done: str = "") -> Response:
    notice = t(staff.lang, f"admin.done.{done}") if done in DONE else None
    return await _page(request, db, staff, notice=notice)


@router.post("/staff")
async def add_account(request: Request, staff: Admin, form: Posted, db: SessionDep) -> Response:
    lang = staff.lang
    if form.get("role") not in {r.value for r in Role}:
        return await _page(request, db, staff, error=t(lang, "admin.error.role"), status=422)
    name = form.get("display_name", "").strip()
    if len(name) > 200 or not _TEXT.fullmatch(name):
        return await _page(request, db, staff, error=t(lang, "admin.error.text"), status=422)
    try:
        await accounts.add_account(
            db,
            staff.principal.tenant_id,
            form.get("login", ""),
            form.get("password", ""),
            role=Role(form["role"]),
            display_name=name,
            now=access.now(request),
        )
    except ValueError as exc:
        key = (
            "admin.error.taken"
            if "taken" in str(exc)
            else "admin.error.password"
            if "password" in str(exc)
            else "admin.error.login"
        )
        await db.rollback()
        return await _page(request, db, staff, error=t(lang, key), status=422)
    await db.commit()
    return _done("account")


async def _account_of(db: SessionDep, staff: Staff, login: str) -> StaffAccount | None:
    for account in await accounts.accounts_of(db, staff.principal.tenant_id):
        if account.login == accounts.normal_login(login):
            return account
    return None


@router.post("/staff/role")
async def change_role(request: Request, staff: Admin, form: Posted, db: SessionDep) -> Response:
    lang = staff.lang
    if form.get("role") not in {r.value for r in Role}:
        return await _page(request, db, staff, error=t(lang, "admin.error.role"), status=422)
    account = await _account_of(db, staff, form.get("login", ""))
    if account is None:
        return await _page(request, db, staff, error=t(lang, "admin.error.no_account"), status=404)
    if account.id == staff.principal.key_id and staff.token and form["role"] != Role.ADMIN:
        return await _page(request, db, staff, error=t(lang, "admin.error.self"), status=409)
    await accounts.set_role(db, staff.principal.tenant_id, account.login, Role(form["role"]))
    return _done("role")


@router.post("/staff/disable")
async def disable_account(request: Request, staff: Admin, form: Posted, db: SessionDep) -> Response:
    lang = staff.lang
    account = await _account_of(db, staff, form.get("login", ""))
    if account is None:
        return await _page(request, db, staff, error=t(lang, "admin.error.no_account"), status=404)
    if account.id == staff.principal.key_id and staff.token:
        return await _page(request, db, staff, error=t(lang, "admin.error.self"), status=409)
    await accounts.disable_account(
        db, staff.principal.tenant_id, account.login, access.now(request)
    )
    return _done("disabled")


@router.post("/keys")
async def create_api_key(request: Request, staff: Admin, form: Posted, db: SessionDep) -> Response:
    lang = staff.lang
    scopes = tuple(s for s in SCOPES if form.get(f"scope_{s.replace(':', '_')}"))
    if not scopes:
        return await _page(request, db, staff, error=t(lang, "admin.error.scopes"), status=422)
    name = form.get("name", "").strip()
    if len(name) > 200 or not _TEXT.fullmatch(name):
        return await _page(request, db, staff, error=t(lang, "admin.error.text"), status=422)
    try:
        plain, _row = await create_key(
            db,
            staff.principal.tenant_id,
            scopes=scopes,
            site_id=form.get("site_id", "").strip() or None,
            name=name,
        )
    except ValueError as exc:
        error = t(lang, "admin.error.key", reason=str(exc))
        return await _page(request, db, staff, error=error, status=422)
    await db.commit()
    return await _page(request, db, staff, secret=("admin.key_shown", plain))


@router.post("/keys/revoke")
async def revoke_api_key(request: Request, staff: Admin, form: Posted, db: SessionDep) -> Response:
    if not await revoke_key(
        db, staff.principal.tenant_id, form.get("key_id", ""), access.now(request)
    ):
        error = t(staff.lang, "admin.error.no_key")
        return await _page(request, db, staff, error=error, status=404)
    await db.commit()
    return _done("revoked")


@router.post("/webhooks")
async def add_webhook(request: Request, staff: Admin, form: Posted, db: SessionDep) -> Response:
    lang = staff.lang
    description = form.get("description", "").strip()
    if len(description) > 500 or not _TEXT.fullmatch(description):
        return await _page(request, db, staff, error=t(lang, "admin.error.text"), status=422)
    settings = settings_of(request)
    url = form.get("url", "").strip()
    try:
        if not url or len(url) > 2048:
            raise UnsafeUrl("give an https URL of at most 2048 characters")
        _sub, secret = await add_subscription(
            db,
            settings,
            tenant_id=staff.principal.tenant_id,
            site_id=None,
            url=url,
            event_types=list(ALERT_TYPES),
            description=description or None,
        )
    except UnsafeUrl as exc:
        error = t(lang, "admin.error.url", reason=str(exc))
        return await _page(request, db, staff, error=error, status=422)
    await db.commit()
    return await _page(request, db, staff, secret=("admin.secret_shown", secret))


@router.post("/webhooks/disable")
async def disable_webhook(request: Request, staff: Admin, form: Posted, db: SessionDep) -> Response:
    sub = await subscription(db, staff.principal, form.get("webhook_id", ""), for_update=True)
    if sub is None:
        error = t(staff.lang, "admin.error.no_hook")
        return await _page(request, db, staff, error=error, status=404)
    set_enabled(sub, False, access.now(request), by="the staff page")
    await db.commit()
    return _done("hook_disabled")
