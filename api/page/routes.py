"""``/staff``: the front desk's and the manager's page, served by the api itself.

Login and logout, the language switch, the to-do list and its CSV, a member's page, the
acknowledge action, the reports. Who is logged in and what their role opens is decided in
``api.page.access`` (the ``FrontDesk`` and ``Manager`` dependencies, ``SignedIn`` where a
page only asks whether someone is); every answer's headers, language and refusal come from
``api.page.answers``. Reads and the acknowledge action go through the read layer the JSON
api calls (``api.read``), so the page shows exactly what the api would, scoped to the key's
tenant (and site).
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.deps import SessionDep, settings_of
from api.page import access, export, i18n, listing, reports_page, session, timeline, views
from api.page import uplift as uplift_page
from api.page.access import FrontDesk, Manager, Posted, SignedIn, Staff
from api.page.answers import (
    ASSET_TYPES,
    ASSET_VERSION,
    ASSETS,
    LANG_COOKIE,
    REPORT_CSP,
    html,
    language,
    page_headers,
    redirect,
    refuse,
    wants_json,
)
from api.read import actions, alerts, calibration, members, trends
from api.read import reports as reads
from api.read import sites as tenant_sites
from api.read import worklist as worklists
from api.read.holdout import holdout_in_force
from api.read.outcomes import ACTION_KINDS
from api.read.scope import site_of
from records import staff_accounts as accounts
from records.api_keys import authenticate
from records.staff_accounts import Role
from schemas.events import NOTE_PATTERN

log = logging.getLogger(__name__)
BASE = views.BASE
router = APIRouter(prefix=BASE, include_in_schema=False)
# A note is free text, but not terminal escapes or other controls (the contract's rule).
_NOTE = re.compile(NOTE_PATTERN)


def _site(staff: Staff, requested: str | None) -> str | None:
    return site_of(staff.principal, requested)


SiteQuery = Annotated[str | None, Query(max_length=128)]

# -- login and logout ----------------------------------------------------------------------


def _login_form(
    request: Request, error: str | None = None, status: int = 200, *, key_error: bool = False
) -> Response:
    """The login page; ``error``: a catalogue key (``api.page.i18n``)."""
    nonce = session.login_nonce()
    token = session.login_token(access.signing_key(request), nonce)
    lang = language(request)
    text = None if error is None else i18n.t(lang, error)
    response = html(views.login(token, text, ASSET_VERSION, key_error=key_error, lang=lang), status)
    response.set_cookie(
        session.LOGIN_COOKIE,
        nonce,
        max_age=session.LOGIN_SECONDS,
        path=BASE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/login")
async def login_page(request: Request, staff: SignedIn) -> Response:
    if staff is not None:
        return redirect(f"{BASE}/")
    return _login_form(request)


@router.post("/login")
async def login(request: Request, db: SessionDep) -> Response:
    form = await access.read_form(request)
    key = access.signing_key(request)
    if form is None or access.cross_origin(request):
        return _login_form(request, "error.form", 400)
    if not session.login_ok(
        key, request.cookies.get(session.LOGIN_COOKIE), form.get("login_token", "")
    ):
        return _login_form(request, "error.expired", 400)
    lifetime = settings_of(request).session_hours * 3600.0
    api_key = form.get("api_key", "").strip()
    if api_key:
        principal = await authenticate(db, api_key)
        if principal is None:
            return _login_form(request, "error.key.unknown", 401, key_error=True)
        if not principal.allows("alerts:read"):
            return _login_form(request, "error.key.scope", 403, key_error=True)
        token, _ = session.issue(key, principal.key_id, time.time(), lifetime)
        log.info("staff page login with key %s of tenant %s", principal.key_id, principal.tenant_id)
    else:
        now = access.now(request)
        account = await accounts.check_password(
            db, form.get("login", ""), form.get("password", ""), now
        )
        if account is None:
            return _login_form(request, "error.refused", 401)
        token = await accounts.open_session(db, account, now, timedelta(seconds=lifetime))
        log.info("staff page login of account %s of tenant %s", account.id, account.tenant_id)
    response = redirect(f"{BASE}/")
    response.set_cookie(
        session.COOKIE,
        token,
        max_age=int(lifetime),
        path=BASE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(session.LOGIN_COOKIE, path=BASE)
    return response


@router.post("/logout")
async def logout(request: Request, staff: SignedIn, db: SessionDep) -> Response:
    form = await access.read_form(request) or {}
    if staff is not None and not session.csrf_ok(
        access.signing_key(request), staff.session, form.get("csrf", "")
    ):
        return refuse(request, 403, "Forbidden", "The form's security token did not match.")
    if staff is not None and staff.token is not None:
        await accounts.revoke_session(db, staff.token, access.now(request))
    response = redirect(f"{BASE}/login")
    response.delete_cookie(session.COOKIE, path=BASE)
    return response


@router.post("/language")
async def choose_language(
    request: Request, staff: FrontDesk, form: Posted, db: SessionDep
) -> Response:
    """Switch the page's language: stored on the staff account (so it follows the person to
    any device and api replica), or, for a key session, kept in this browser's cookie."""
    chosen = form.get("language", "")
    if chosen not in i18n.CATALOGUES:
        return refuse(request, 422, "Invalid request", "Choose English or Hebrew.")
    response = redirect(_back_to(request))
    if staff.token is not None:
        await accounts.set_language(db, staff.principal.tenant_id, staff.principal.key_id, chosen)
    else:
        response.set_cookie(
            LANG_COOKIE,
            chosen,
            max_age=365 * 86_400,
            path=BASE,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    return response


def _back_to(request: Request) -> str:
    """The page the switch was made on, when it is one of ours (never an open redirect)."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc == request.headers.get("host", "") and referer.path.startswith(BASE + "/"):
        return referer.path + (f"?{referer.query}" if referer.query else "")
    return f"{BASE}/"


# -- pages ---------------------------------------------------------------------------------


SortQuery = Annotated[str, Query(max_length=16)]
SeverityQuery = Annotated[str | None, Query(max_length=16)]
PageQuery = Annotated[int, Query(ge=1, le=10_000)]


def _order(sort: str, severity: str | None) -> tuple[str, str | None]:
    """An unknown sort is the default (risk); an unknown risk level is no filter."""
    return (
        sort if sort in listing.SORTS else "risk",
        severity if severity in listing.SEVERITIES else None,
    )


async def _arranged_list(
    db: SessionDep, staff: Staff, site: str | None, q: str | None, sort: str, severity: str | None
) -> worklists.Worklist:
    """The list as the page and the export show it: the key's scope, the search, the risk
    level and the order (one function, so the CSV is the list on the screen)."""
    work = await worklists.worklist(db, staff.principal, site)
    return listing.arranged(listing.matching(work, q or ""), sort=sort, severity=severity)


def _kept(keep: str) -> dict[str, str]:
    """The list's place (search, order, level, page) carried by a plain acknowledge form:
    only those keys, of sane length, and a page that is a number (anything else is dropped,
    never an error: the action is already recorded)."""
    try:
        parsed = parse_qs(keep[:400], max_num_fields=8)
    except ValueError:
        return {}
    out = {k: v[0][:100] for k, v in parsed.items() if k in ("q", "sort", "severity", "page")}
    if not out.get("page", "1").isdigit() or len(out.get("page", "")) > 5:
        out.pop("page", None)
    return out


@router.get("/")
async def worklist(
    staff: FrontDesk,
    db: SessionDep,
    site: SiteQuery = None,
    recorded: Annotated[str | None, Query(max_length=16)] = None,
    member: Annotated[str | None, Query(max_length=128)] = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    sort: SortQuery = "risk",
    severity: SeverityQuery = None,
    page: PageQuery = 1,
) -> Response:
    p = staff.principal
    chosen = _site(staff, site)
    sort, level = _order(sort, severity)
    work = await _arranged_list(db, staff, chosen, q, sort, level)
    notice = None
    if recorded in ACTION_KINDS and any(i.member.member_id == member for i in work.contacted):
        notice = i18n.t(
            staff.lang,
            "notice.recorded_for",
            action=views.action_word(recorded, staff.lang),
            member=member,
        )
    shown, paging = listing.paged(work, page, listing.PER_PAGE)
    body = views.worklist_page(
        shown,
        tenant=p.tenant_id,
        csrf=staff.csrf,
        sites=await tenant_sites.sites(db, p),
        site=chosen,
        fixed_site=p.site_id is not None,
        zones=await tenant_sites.site_zones(db, p.tenant_id),
        notice=notice,
        assets=ASSET_VERSION,
        reports=staff.opens_reports,
        query=(q or "").strip(),
        names=await tenant_sites.site_names(db, p.tenant_id),
        sort=sort,
        severity=level,
        paging=paging,
        counts=(len(work.todo), len(work.contacted)),
        lang=staff.lang,
        holdout=await holdout_in_force(db, p.tenant_id),
        admin=staff.role.at_least(Role.ADMIN),
    )
    return html(body)


@router.get("/export.csv")
async def export_csv(
    staff: FrontDesk,
    db: SessionDep,
    site: SiteQuery = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    sort: SortQuery = "risk",
    severity: SeverityQuery = None,
) -> Response:
    """The work list as CSV: the same role check, scope, search, filter and order as the
    page, every page at once. Cells a spreadsheet would run as a formula are quoted."""
    p = staff.principal
    chosen = _site(staff, site)
    sort, level = _order(sort, severity)
    work = await _arranged_list(db, staff, chosen, q, sort, level)
    body = export.worklist_csv(
        work,
        zones=await tenant_sites.site_zones(db, p.tenant_id),
        names=await tenant_sites.site_names(db, p.tenant_id),
    )
    log.info("staff page: work list exported by %s of tenant %s", p.key_id, p.tenant_id)
    headers = page_headers() | {"Content-Disposition": 'attachment; filename="lapse-worklist.csv"'}
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/members/{member_id}")
async def member_page(
    member_id: str,
    staff: FrontDesk,
    db: SessionDep,
    recorded: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    p = staff.principal
    row = await members.member_row(db, p, member_id)
    if row is None:
        page = views.not_found_page(
            "member",
            tenant=p.tenant_id,
            csrf=staff.csrf,
            assets=ASSET_VERSION,
            reports=staff.opens_reports,
            lang=staff.lang,
        )
        return html(page, 404)
    now = datetime.now(UTC)
    member = await members.member_of(db, p, row, now)
    episodes = await alerts.member_episodes(db, p, member_id)
    zones = await tenant_sites.site_zones(db, p.tenant_id)
    tz = views.zone(zones.get(member.site_id or ""))
    state: dict[str, Any] = row.state
    recent = [float(t) for t in state.get("recent", []) if isinstance(t, int | float)]
    usual_minutes = state.get("usual_minutes")
    data = timeline.TimelineData(
        now=now.timestamp(),
        visits=recent,
        deadline=row.deadline.timestamp() if row.deadline else None,
        usual_minutes=float(usual_minutes) if isinstance(usual_minutes, int | float) else None,
        episodes=[
            timeline.EpisodeSpan(
                start=ep.opened_at.timestamp(),
                end=ep.closed_at.timestamp() if ep.closed_at else None,
                status=ep.status,
                severity=ep.severity,
                actions=[(a.taken_at.timestamp(), a.action) for a in ep.actions],
            )
            for ep in episodes
        ],
    )

    def label(t: float) -> str:
        return i18n.short_date(staff.lang, datetime.fromtimestamp(t, tz), tz)

    notice = None
    if recorded in ACTION_KINDS:
        notice = i18n.t(
            staff.lang, "notice.recorded", action=views.action_word(recorded, staff.lang)
        )
    page = views.member_page(
        member,
        state=state,
        episodes=episodes,
        timeline_svg=timeline.render(data, label, lang=staff.lang),
        timeline_text=timeline.describe(data, label, staff.lang),
        visits=[datetime.fromtimestamp(t, UTC) for t in recent],
        tz=tz,
        tenant=p.tenant_id,
        csrf=staff.csrf,
        notice=notice,
        assets=ASSET_VERSION,
        reports=staff.opens_reports,
        lang=staff.lang,
    )
    return html(page)


@router.post("/alerts/{alert_id}/actions")
async def acknowledge(
    alert_id: str, request: Request, staff: FrontDesk, form: Posted, db: SessionDep
) -> Response:
    """Record what staff did: a plain form POST (redirects back) or, from the script, JSON."""
    kind = form.get("action", "")
    note = form.get("note", "").strip() or None
    if kind not in ACTION_KINDS:
        return refuse(request, 422, "Invalid request", "Choose what you did.")
    if note is not None and len(note) > 2000:
        return refuse(request, 422, "Invalid request", "The note is longer than 2000 characters.")
    if note is not None and not _NOTE.fullmatch(note):
        return refuse(request, 422, "Invalid request", "The note holds control characters.")
    alert = await alerts.alert_row(db, staff.principal, alert_id)
    if alert is None:
        if wants_json(request):
            return refuse(request, 404, "Not found", "no such alert")
        page = views.not_found_page(
            "alert",
            tenant=staff.principal.tenant_id,
            csrf=staff.csrf,
            assets=ASSET_VERSION,
            reports=staff.opens_reports,
            lang=staff.lang,
        )
        return html(page, 404)
    action = await actions.record_action(db, staff.principal, alert, kind, note, datetime.now(UTC))
    log.info("staff page: action %s recorded on alert %s", action.action, action.alert_id)
    if wants_json(request):
        zones = await tenant_sites.site_zones(db, staff.principal.tenant_id)
        tz = views.zone(zones.get(alert.site_id or ""))
        return JSONResponse(
            {
                "member_id": action.member_id,
                "action": action.action,
                "label": views.action_word(action.action, staff.lang),
                "taken_at": action.taken_at.isoformat(),
                # As the server writes times on the page: in the site's time zone.
                "taken_at_text": views.moment(action.taken_at, tz, staff.lang),
                # The row's "last contact" after the script moves it (the page's own words).
                "last_contact_text": i18n.t(
                    staff.lang,
                    "list.last_contact",
                    when=views.moment(action.taken_at, tz, staff.lang),
                ),
                "note": action.note,
                # What the script announces, in the page's language.
                "recorded_text": i18n.t(
                    staff.lang,
                    "notice.recorded",
                    action=views.action_word(action.action, staff.lang),
                ),
                "moved_text": i18n.t(
                    staff.lang,
                    "notice.moved",
                    action=views.action_word(action.action, staff.lang),
                    member=action.member_id,
                ),
            },
            status_code=201,
            headers=page_headers(),
        )
    if form.get("back") == "member":
        return redirect(f"{views.member_url(action.member_id)}?recorded={action.action}")
    site = _site(staff, form.get("site") or None)
    target = views.list_url(
        site, **_kept(form.get("keep", "")), recorded=action.action, member=action.member_id
    )
    return redirect(target + "#contacted-h")


# How many ISO weeks the reports' trends show (a quarter, to the current week).
TREND_WEEKS = 12


@router.get("/reports")
async def reports(
    request: Request,
    staff: Manager,
    db: SessionDep,
    site: SiteQuery = None,
    holdout: Annotated[str | None, Query(max_length=8)] = None,
) -> Response:
    """The manager's reports: read through ``api.read.reports`` (the JSON api's own reads),
    scoped to the person's tenant (and site), drawn by ``api.page.reports_page``."""
    p = staff.principal
    chosen = _site(staff, site)
    zones = await tenant_sites.site_zones(db, p.tenant_id)
    sites = await tenant_sites.sites(db, p)
    tz = views.zone(trends.shared_zone([chosen] if chosen else sites, zones))
    weekly = await reads.weekly_trends(
        db,
        p,
        mondays=trends.recent_weeks(access.now(request), tz, TREND_WEEKS),
        zone_of=lambda s: views.zone(zones.get(s or "")),
        site_id=chosen,
    )
    names = await tenant_sites.site_names(db, p.tenant_id)
    # Does reaching out work? (issue 22): the uplift and, inside it, the holdout control.
    uplift = await uplift_page.render(
        db,
        p.tenant_id,
        as_of=access.now(request),
        site_id=chosen,
        lang=staff.lang,
        tz=tz,
        names=names,
        csrf=staff.csrf,
        refusal=uplift_page.change_refusal(staff.role, staff.token is None, p.site_id),
        done=holdout,
    )
    page = reports_page.reports_page(
        await reads.action_summary(db, p, site_id=chosen),
        weekly,
        await calibration.latest_calibration(db, p.tenant_id),
        zone_name=tz.key,
        tenant=p.tenant_id,
        csrf=staff.csrf,
        sites=sites,
        site=chosen,
        fixed_site=p.site_id is not None,
        names=names,
        assets=ASSET_VERSION,
        lang=staff.lang,
        uplift=uplift,
    )
    return html(page)


@router.get("/reports/calibration/{report_id}")
async def calibration_report(report_id: str, staff: Manager, db: SessionDep) -> Response:
    """The stored report's own HTML (English, for analysts), sandboxed by its CSP; the
    reports page links to it below its own plain-words reading of the same figures."""
    body = await calibration.calibration_html(db, staff.principal.tenant_id, report_id[:64])
    if body is None:
        page = views.not_found_page(
            "report",
            tenant=staff.principal.tenant_id,
            csrf=staff.csrf,
            assets=ASSET_VERSION,
            lang=staff.lang,
        )
        return html(page, 404)
    return HTMLResponse(body, headers=page_headers(REPORT_CSP))


@router.get("/assets/{name}")
async def asset(name: str) -> Response:
    content = ASSETS.get(name)
    if content is None:
        return Response(
            "not found", status_code=404, media_type="text/plain", headers=page_headers()
        )
    headers = page_headers() | {"Cache-Control": "public, max-age=86400"}
    return Response(content, media_type=ASSET_TYPES[name], headers=headers)
