"""Who is at the staff page and what they may do: the page's clock, the logged-in person
(``Staff``), the role dependencies every page route takes (``SignedIn``, ``FrontDesk``,
``Manager``; ``api.page.admin`` adds ``Admin``) and the checked form a POST takes
(``Posted``). Shared by the page's routers (``api.page.routes``, ``api.page.holdout``,
``api.page.admin``), so none of them imports another's helpers.

Staff log in with their own account (``records.staff_accounts``): the browser then holds a
random session token, checked against the ``staff_sessions`` table on every request. An API
key of the club still logs in: that session is an HMAC-signed cookie naming the key
(``api.page.session``), checked against the key on every request. What a person may open is
decided here, in ``role``, and nowhere in a route.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import parse_qs, urlsplit

from fastapi import Depends, Request
from fastapi.responses import Response

from api.deps import SessionDep, settings_of
from api.page import i18n, session, views
from api.page.answers import language, redirect, refuse, wants_json
from records import staff_accounts as accounts
from records.api_keys import Principal
from records.staff_accounts import Role
from records.tables import ApiKey

MAX_FORM_BYTES = 16_384


def now(request: Request) -> datetime:
    """The page's clock: the app's (``create_app(now=...)``; a test's, for lockout expiry),
    else the wall clock."""
    clock: Callable[[], datetime] | None = getattr(request.app.state, "clock", None)
    return clock() if clock is not None else datetime.now(UTC)


def signing_key(request: Request) -> bytes:
    """The key that signs key sessions, login forms and CSRF tokens."""
    return session.session_key(settings_of(request).session_secret.get_secret_value())


@dataclass(frozen=True, slots=True)
class Staff:
    principal: Principal
    csrf: str
    session: session.Session
    role: Role
    # The account's login session token (None for a key session): logout revokes it.
    token: str | None = None
    # The page's language: the account's choice, else the key session's, else the browser's.
    lang: str = i18n.DEFAULT

    @property
    def opens_reports(self) -> bool:
        """Whether the page offers the reports link (the ``Manager`` check refuses it too)."""
        return self.role.at_least(Role.MANAGER)


async def _staff(request: Request, db: SessionDep) -> Staff | None:
    """The logged-in staff member, or None (no cookie, forged, expired, revoked, disabled)."""
    token = request.cookies.get(session.COOKIE)
    if not token:
        return None
    key = signing_key(request)
    if token.startswith(accounts.TOKEN_PREFIX):
        live = await accounts.session_of(db, token, now(request))
        if live is None:
            return None
        account = live.account
        # Actions are recorded as taken by the account (its id, as a key's id would be).
        principal = Principal(account.id, account.tenant_id, None, frozenset({"alerts:read"}))
        # The CSRF token is bound to this session (its digest) and the server's secret.
        bound = session.Session(f"staff:{account.id}", live.expires_at.timestamp(), live.digest)
        role = Role(account.role)
        lang = language(request, account.language)
        request.state.page_lang = lang  # for a refusal page later in this request
        return Staff(principal, session.csrf_token(key, bound), bound, role, token, lang)
    held = session.verify(key, token, time.time())
    if held is None:
        return None
    row = await db.get(ApiKey, held.key_id)
    if row is None or row.revoked_at is not None:
        return None
    principal = Principal(row.id, row.tenant_id, row.site_id, frozenset(row.scopes))
    if not principal.allows("alerts:read"):
        return None
    # A key reaches what it always did (reports too); an admin key also the admin role.
    role = Role.ADMIN if principal.allows("admin") else Role.MANAGER
    return Staff(principal, session.csrf_token(key, held), held, role, lang=language(request))


def cross_origin(request: Request) -> bool:
    """A POST whose Origin names another host (SameSite and the CSRF token are the main
    defence; this refuses the obvious case early)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return False
    return urlsplit(origin).netloc != request.headers.get("host", "")


async def read_form(request: Request) -> dict[str, str] | None:
    """A url-encoded form body, or None if it is not one or too big."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return None
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        parsed = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return None
    return {k: v[0] for k, v in parsed.items()}


def _to_login(request: Request) -> Response:
    if request.method != "GET" or wants_json(request):
        return refuse(request, 401, "Logged out", "Your session ended: log in again.")
    return redirect(f"{views.BASE}/login")


class PageRefusal(Exception):
    """Raised by the role dependencies: the answer to send instead of the page."""

    def __init__(self, response: Response) -> None:
        super().__init__("staff page refusal")
        self.response = response


async def refusal_handler(_request: Request, exc: Exception) -> Response:
    """Registered on the app (api/app.py) for ``PageRefusal``."""
    assert isinstance(exc, PageRefusal)
    return exc.response


# The staff session as a typed dependency: whoever is logged in, or None.
SignedIn = Annotated[Staff | None, Depends(_staff)]


def role(minimum: Role) -> Callable[[Request, Staff | None], Awaitable[Staff]]:
    """The one place the page decides who may open what: logged in, with ``minimum`` role."""

    async def check(request: Request, staff: SignedIn) -> Staff:
        if staff is None:
            raise PageRefusal(_to_login(request))
        if not staff.role.at_least(minimum):
            raise PageRefusal(
                refuse(request, 403, "Forbidden", "Your role does not open this page.")
            )
        return staff

    return check


async def _posted(request: Request, staff: SignedIn) -> dict[str, str]:
    """A form a logged-in person posted from the page: readable, same-origin and carrying
    their session's token; else the refusal, raised as the role dependencies raise theirs.
    A route takes it after its role (``staff: Manager, form: Posted``): FastAPI solves a
    route's dependencies in the order they are declared, so who may post is checked before
    what they posted is read (``tests/page/test_modules.py`` holds every route to it)."""
    if staff is None:
        raise PageRefusal(_to_login(request))
    form = await read_form(request)
    if form is None or cross_origin(request):
        raise PageRefusal(refuse(request, 400, "Bad request", "The form could not be read."))
    if not session.csrf_ok(signing_key(request), staff.session, form.get("csrf", "")):
        raise PageRefusal(
            refuse(request, 403, "Forbidden", "The form's security token did not match.")
        )
    return form


# The roles as typed dependencies (``api.page.admin`` adds ``Admin``).
FrontDesk = Annotated[Staff, Depends(role(Role.FRONT_DESK))]
Manager = Annotated[Staff, Depends(role(Role.MANAGER))]
# The form of a POST from the page, checked (``_posted``).
Posted = Annotated[dict[str, str], Depends(_posted)]
