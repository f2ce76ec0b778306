"""The staff page's HTML: plain server-rendered markup, every value escaped on the way in.

No template engine (the api has none as a dependency): each view is a function returning a
string, and everything that came from data goes through :func:`e`. Scripts only enhance:
every form works as a plain POST, and the layout loads one same-origin script file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from api.outcomes import ACTION_KINDS
from api.page import charts, reasons
from api.page.repository import Paging, WorkItem, Worklist
from api.routers.actions import ActionSummaryRow
from api.routers.alerts import Episode
from api.routers.members import Member
from lapse.db.models import CalibrationReport

BASE = "/staff"
ACTION_BUTTONS = {
    "call": "Called",
    "message": "Messaged",
    "incentive": "Offered incentive",
    "other": "Other",
}
CURRENT = ' aria-current="page"'
SEVERITY_WORDS = {"high": "High risk", "medium": "Medium risk", "low": "Low risk"}
STATUS_WORDS = {"open": "open", "recovered": "came back", "churned": "cancelled"}


def e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def day(value: datetime | None, tz: ZoneInfo) -> str:
    if value is None:
        return "–"
    return value.astimezone(tz).strftime("%a %-d %b %Y")


def moment(value: datetime | None, tz: ZoneInfo) -> str:
    if value is None:
        return "–"
    local = value.astimezone(tz)
    return local.strftime("%-d %b %Y, %H:%M ") + (local.tzname() or "")


def member_url(member_id: str) -> str:
    return f"{BASE}/members/{quote(member_id, safe='')}"


def list_url(site: str | None, **extra: str) -> str:
    query = {"site": site or "", **extra} if site else extra
    return f"{BASE}/" + (f"?{urlencode(query)}" if query else "")


def layout(
    title: str,
    main: str,
    *,
    tenant: str | None = None,
    csrf: str | None = None,
    current: str = "",
    assets: str = "",
    reports: bool = True,
) -> str:
    """The page around ``main``; ``reports``: whether the person's role opens the reports
    (a front-desk account is not offered a link it would be refused)."""
    nav = ""
    if tenant is not None:
        links = [("todo", f"{BASE}/", "To do")]
        if reports:
            links.append(("reports", f"{BASE}/reports", "Reports"))
        items = "".join(
            f'<li><a href="{href}"{CURRENT if key == current else ""}>{label}</a></li>'
            for key, href, label in links
        )
        nav = (
            f'<nav aria-label="Main"><ul>{items}</ul></nav>'
            f'<form class="logout" method="post" action="{BASE}/logout">'
            f'<input type="hidden" name="csrf" value="{e(csrf)}">'
            '<button type="submit">Log out</button></form>'
        )
    who = f' <span class="tenant">· {e(tenant)}</span>' if tenant else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)} · Lapse</title>"
        '<link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{BASE}/assets/page.css?v={e(assets)}">'
        f'<script src="{BASE}/assets/page.js?v={e(assets)}" defer></script>'
        "</head><body>"
        '<a class="skip" href="#main">Skip to main content</a>'
        f'<header class="top"><p class="brand">Lapse{who}</p>{nav}</header>'
        f'<main id="main" tabindex="-1">{main}</main>'
        '<div id="announce" class="visually-hidden" role="status" aria-live="polite"></div>'
        "</body></html>"
    )


# -- login ---------------------------------------------------------------------------------


def login(token: str, error: str | None = None, assets: str = "", key_error: bool = False) -> str:
    alert = (
        f'<p class="error" role="alert" id="login-error">{e(error)}</p>'
        if error is not None
        else ""
    )
    described = ' aria-describedby="login-error"' if error else ""
    key_described = (
        ' aria-describedby="login-error key-hint"' if error else ' aria-describedby="key-hint"'
    )
    main = (
        '<h1>Log in</h1><div class="card narrow">'
        f"{alert}"
        f'<form method="post" action="{BASE}/login" class="stack">'
        f'<input type="hidden" name="login_token" value="{e(token)}">'
        '<label for="login">Email or user name</label>'
        '<input id="login" name="login" type="text" autocomplete="username" '
        f'spellcheck="false" autocapitalize="off"{described}>'
        '<label for="password">Password</label>'
        f'<input id="password" name="password" type="password" '
        f'autocomplete="current-password"{described}>'
        '<button type="submit" class="primary">Log in</button></form>'
        # Machines and set-up only: folded away so a person sees name and password first.
        f"<details{' open' if key_error else ''}><summary>Log in with an API key instead</summary>"
        f'<form method="post" action="{BASE}/login" class="stack">'
        f'<input type="hidden" name="login_token" value="{e(token)}">'
        '<label for="api_key">Or an API key (set-up and machines)</label>'
        '<input id="api_key" name="api_key" type="password" autocomplete="off" required '
        f'spellcheck="false" autocapitalize="off"{key_described}>'
        '<p class="hint" id="key-hint">A key of your club with the <code>alerts:read</code> '
        "scope (<code>lapse keys create</code>). It stays on the server: the browser keeps "
        "only a session cookie.</p>"
        '<button type="submit">Log in with the key</button></form></details></div>'
    )
    return layout("Log in", main, assets=assets)


# -- the work list -------------------------------------------------------------------------


def no_gate_data_before(m: Member, tz: ZoneInfo) -> str:
    """Where the member's absence was counted from the start of gate data (their own last
    visit or joining is earlier): say so, as the absence is not longer than that."""
    if not m.absence_clipped or m.gate_data_since is None:
        return ""
    return f"no gate data before {m.gate_data_since.astimezone(tz).strftime('%-d %b %Y')}"


def _figures(m: Member, tz: ZoneInfo) -> str:
    absent = reasons.days(m.days_absent) if m.days_absent is not None else "–"
    usual_gap = (
        f"usually every {reasons.days(m.usual_gap_days)}"
        if m.usual_gap_days is not None
        else "no usual rhythm yet"
    )
    clipped = no_gate_data_before(m, tz)
    if clipped:
        usual_gap = f"{usual_gap}; {clipped}"
    visits = "–" if m.visits_last_4_weeks is None else str(m.visits_last_4_weeks)
    usual_visits = (
        f"usually about {m.usual_visits_4_weeks:.0f}"
        if m.usual_visits_4_weeks is not None
        else "no usual count yet"
    )
    return (
        '<dl class="figures">'
        f'<div><dt>Absent</dt><dd><strong>{e(absent)}</strong> <span class="vs">'
        f"{e(usual_gap)}</span></dd></div>"
        f"<div><dt>Visits, last 4 weeks</dt><dd><strong>{e(visits)}</strong> "
        f'<span class="vs">{e(usual_visits)}</span></dd></div>'
        "</dl>"
    )


def reason_items(item: WorkItem) -> str:
    if not item.reasons:
        return ""
    lis = "".join(
        f"<li><strong>{e(reasons.title(r.code))}.</strong> {e(reasons.detail(r.code, r.figures))}"
        "</li>"
        for r in item.reasons
    )
    return f'<ul class="reasons" aria-label="Reasons">{lis}</ul>'


def severity_badge(severity: str | None) -> str:
    if severity is None:
        return ""
    return f'<span class="sev sev-{e(severity)}">{e(SEVERITY_WORDS.get(severity, severity))}</span>'


def ack_form(
    alert_id: str, csrf: str, *, uid: str, site: str | None, back: str, keep: str = ""
) -> str:
    """``keep``: the list's query (search, order, level, page) to return to after a plain
    POST, so acknowledging does not lose the person's place."""
    buttons = "".join(
        f'<button type="submit" name="action" value="{k}">{e(ACTION_BUTTONS[k])}</button>'
        for k in ACTION_KINDS
    )
    return (
        f'<form class="ack" method="post" action="{BASE}/alerts/{e(quote(alert_id, safe=""))}'
        f'/actions" data-enhance="ack">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        f'<input type="hidden" name="site" value="{e(site)}">'
        f'<input type="hidden" name="back" value="{e(back)}">'
        + (f'<input type="hidden" name="keep" value="{e(keep)}">' if keep else "")
        + f'<label for="note-{uid}">Note (optional)</label>'
        f'<textarea id="note-{uid}" name="note" rows="2" maxlength="2000"></textarea>'
        f'<fieldset><legend>Acknowledge with what you did</legend><div class="buttons">{buttons}'
        "</div></fieldset>"
        '<p class="form-status" role="status"></p></form>'
    )


def action_line(kind: str, taken_at: datetime, note: str | None, tz: ZoneInfo) -> str:
    text = f"{ACTION_BUTTONS.get(kind, kind)} · {moment(taken_at, tz)}"
    note_html = f' <q class="note">{e(note)}</q>' if note else ""
    return f"<li>{e(text)}{note_html}</li>"


def member_name(m: Member) -> str:
    """The name the staff call the member by, else the member id."""
    return m.display_name or m.member_id


def contact_links(m: Member) -> str:
    """One-tap call, text and email links from the member's profile (nothing when none).

    The phone and email were validated when set (lapse/profiles.py: digits and a leading +; an
    address with no quote, space or bracket), and are escaped here all the same.
    """
    p = m.profile
    if p is None or not (p.phone or p.email):
        return ""
    links = []
    name = member_name(m)
    if p.phone:
        links.append(f'<a class="contact" href="tel:{e(p.phone)}">Call {e(name)}</a>')
        links.append(f'<a class="contact" href="sms:{e(p.phone)}">Text</a>')
    if p.email:
        links.append(f'<a class="contact" href="mailto:{e(p.email)}">Email</a>')
    return f'<p class="contacts">{" ".join(links)}</p>'


# The work list's own words (one place, for the translation of the page).
LIST_WORDS = {
    "sort": "Sort by",
    "sort_risk": "Risk",
    "sort_absent": "Days absent",
    "sort_contact": "Last contact",
    "severity": "Risk level",
    "any_severity": "Any",
    "apply": "Apply",
    "more": "More",
    "more_about": "about {name}",
    "absent": "absent {days}",
    "never": "not contacted yet",
    "contacted": "last contact {when}",
    "previous": "Previous page",
    "next": "Next page",
    "page": "Page {page} of {pages} ({total} members)",
    "export": "Download this list (CSV)",
    "zone_site": "Times are in each site's own time zone: {zones}.",
    "zone_utc": "{sites}: no time zone is set for the site, so its times are in UTC.",
}


def row_summary(item: WorkItem, tz: ZoneInfo) -> str:
    """The compact row: days absent and last contact (the name, badge and call link sit
    beside it, outside the fold: a link inside a ``<summary>`` is nested interactive)."""
    m = item.member
    absent = reasons.days(m.days_absent) if m.days_absent is not None else "–"
    contact = max((a.taken_at for a in item.actions), default=None)
    when = (
        LIST_WORDS["contacted"].format(when=moment(contact, tz))
        if contact is not None
        else LIST_WORDS["never"]
    )
    return (
        f'<p class="row-facts"><span>{e(LIST_WORDS["absent"].format(days=absent))}</span> '
        f'<span class="last-contact">{e(when)}</span></p>'
    )


def call_link(m: Member) -> str:
    p = m.profile
    if p is None or not p.phone:
        return ""
    return f'<a class="contact" href="tel:{e(p.phone)}">Call {e(member_name(m))}</a>'


def other_contacts(m: Member) -> str:
    """Text and email links (inside the fold; the call link is on the row itself)."""
    p = m.profile
    if p is None or not (p.phone or p.email):
        return ""
    links = []
    if p.phone:
        links.append(f'<a class="contact" href="sms:{e(p.phone)}">Text</a>')
    if p.email:
        links.append(f'<a class="contact" href="mailto:{e(p.email)}">Email</a>')
    return f'<p class="contacts">{" ".join(links)}</p>'


def work_item(
    item: WorkItem, i: int, csrf: str, site: str | None, tz: ZoneInfo, keep: str = ""
) -> str:
    """One member as a compact row that opens on tap (``<details>``): the row shows the name,
    risk, days absent, last contact and a one-tap call; the note and buttons are inside."""
    m = item.member
    uid = f"m{i}"
    opened = (
        f'<p class="episode">Episode open since {e(day(item.opened_at, tz))}</p>'
        if item.opened_at
        else ""
    )
    if item.actions:
        done = "".join(action_line(a.action, a.taken_at, a.note, tz) for a in item.actions)
        tail = f'<ul class="actions" aria-label="Actions taken">{done}</ul>'
    elif item.alert_id is not None:
        tail = ack_form(item.alert_id, csrf, uid=uid, site=site, back="list", keep=keep)
    else:
        tail = '<p class="hint">The alert of this episode is not stored yet.</p>'
    call = call_link(m)
    call_html = f'<p class="call">{call}</p>' if call else ""
    return (
        f'<li class="member" data-member="{e(m.member_id)}">'
        f'<article aria-labelledby="{uid}-h">'
        '<div class="row">'
        f'<h3 id="{uid}-h" tabindex="-1"><a href="{e(member_url(m.member_id))}">'
        f"{e(member_name(m))}</a> {severity_badge(m.severity)}</h3>"
        f"{row_summary(item, tz)}{call_html}</div>"
        f"<details><summary>{e(LIST_WORDS['more'])}"
        f'<span class="visually-hidden"> {e(LIST_WORDS["more_about"].format(name=member_name(m)))}'
        "</span></summary>"
        f"{other_contacts(m)}{_figures(m, tz)}{opened}{reason_items(item)}{tail}"
        "</details></article></li>"
    )


def site_label(site: str, names: Mapping[str, str]) -> str:
    """A site as staff know it: its name, with the id when a name is set."""
    name = names.get(site)
    return f"{name} ({site})" if name else site


def site_picker(
    sites: Sequence[str],
    site: str | None,
    action: str,
    fixed: bool,
    names: Mapping[str, str] | None = None,
) -> str:
    names = names or {}
    if fixed:
        return (
            f'<p class="site-fixed">Site: <strong>{e(site_label(site or "", names))}</strong></p>'
        )
    options = ['<option value="">All sites</option>'] + [
        f'<option value="{e(s)}"{" selected" if s == site else ""}>{e(site_label(s, names))}'
        "</option>"
        for s in sorted(sites, key=lambda s: (names.get(s, s).casefold(), s))
    ]
    return (
        f'<form class="site-picker" method="get" action="{e(action)}">'
        '<label for="site">Site</label>'
        f'<select id="site" name="site">{"".join(options)}</select>'
        '<button type="submit">Show</button></form>'
    )


def search_form(
    site: str | None, query: str, sort: str = "risk", severity: str | None = None
) -> str:
    """Find a member on the list by name or id (a plain GET form: works without the script);
    the site, order and risk level chosen are kept."""
    keep_site = "".join(
        f'<input type="hidden" name="{k}" value="{e(v)}">'
        for k, v in list_query(site, "", sort, severity).items()
    )
    shown = (
        f'<p class="search-note">Members whose name or id contains “{e(query)}”. '
        f'<a href="{e(list_url(site))}">Show everyone</a></p>'
        if query
        else ""
    )
    return (
        f'<form class="site-picker search" role="search" method="get" action="{e(BASE)}/">'
        f'{keep_site}<label for="q">Find a member</label>'
        f'<input id="q" name="q" type="search" maxlength="100" value="{e(query)}" '
        'autocomplete="off" placeholder="Name or id">'
        f'<button type="submit">Find</button></form>{shown}'
    )


def list_query(
    site: str | None, query: str, sort: str, severity: str | None, page: int = 1
) -> dict[str, str]:
    """The list's query string without defaults: what paging and the export link keep."""
    out = {"site": site or "", "q": query, "severity": severity or ""}
    out["sort"] = "" if sort == "risk" else sort
    out["page"] = "" if page <= 1 else str(page)
    return {k: v for k, v in out.items() if v}


def order_form(site: str | None, query: str, sort: str, severity: str | None) -> str:
    """Sort and risk level (a plain GET form, keeping the site and the search)."""
    keep = "".join(
        f'<input type="hidden" name="{k}" value="{e(v)}">'
        for k, v in (("site", site or ""), ("q", query))
        if v
    )
    sorts = "".join(
        f'<option value="{k}"{" selected" if k == sort else ""}>{e(LIST_WORDS["sort_" + k])}'
        "</option>"
        for k in ("risk", "absent", "contact")
    )
    levels = f'<option value="">{e(LIST_WORDS["any_severity"])}</option>' + "".join(
        f'<option value="{k}"{" selected" if k == severity else ""}>{e(SEVERITY_WORDS[k])}</option>'
        for k in ("high", "medium", "low")
    )
    return (
        f'<form class="site-picker order" method="get" action="{e(BASE)}/">{keep}'
        f'<label for="sort">{e(LIST_WORDS["sort"])}</label>'
        f'<select id="sort" name="sort">{sorts}</select>'
        f'<label for="severity">{e(LIST_WORDS["severity"])}</label>'
        f'<select id="severity" name="severity">{levels}</select>'
        f'<button type="submit">{e(LIST_WORDS["apply"])}</button></form>'
    )


def pager(paging: Paging, params: dict[str, str]) -> str:
    """Previous/next links keeping the query (nothing when the list fits one page)."""
    if paging.pages <= 1:
        return ""

    def href(page: int) -> str:
        query = {k: v for k, v in params.items() if k != "page"}
        if page > 1:
            query["page"] = str(page)
        return f"{BASE}/" + (f"?{urlencode(query)}" if query else "")

    links = []
    if paging.page > 1:
        links.append(
            f'<a rel="prev" href="{e(href(paging.page - 1))}">{e(LIST_WORDS["previous"])}</a>'
        )
    text = LIST_WORDS["page"].format(page=paging.page, pages=paging.pages, total=paging.total)
    links.append(f'<span aria-current="page">{e(text)}</span>')
    if paging.page < paging.pages:
        links.append(f'<a rel="next" href="{e(href(paging.page + 1))}">{e(LIST_WORDS["next"])}</a>')
    return f'<nav class="pager" aria-label="Pages of the list">{" ".join(links)}</nav>'


def zone_note(sites: Sequence[str], zones: Mapping[str, str], names: Mapping[str, str]) -> str:
    """Say in which time zone the list's times are: each site's own, or UTC where a site
    has none set (there is no tenant-wide zone to fall back to)."""
    zoned = [f"{site_label(s, names)}: {zones[s]}" for s in sites if zones.get(s)]
    bare = [site_label(s, names) for s in sites if not zones.get(s)]
    parts = []
    if zoned:
        parts.append(LIST_WORDS["zone_site"].format(zones="; ".join(zoned)))
    if bare:
        parts.append(LIST_WORDS["zone_utc"].format(sites=", ".join(bare)))
    return f'<p class="hint zones">{e(" ".join(parts))}</p>' if parts else ""


def worklist_page(
    work: Worklist,
    *,
    tenant: str,
    csrf: str,
    sites: Sequence[str],
    site: str | None,
    fixed_site: bool,
    zones: dict[str, str],
    notice: str | None,
    assets: str,
    reports: bool = True,
    query: str = "",
    names: Mapping[str, str] | None = None,
    sort: str = "risk",
    severity: str | None = None,
    paging: Paging | None = None,
    counts: tuple[int, int] | None = None,
) -> str:
    """``work``: the members on this page; ``counts``: the to-do and contacted totals of the
    whole (filtered) list, shown in the headings (the page's own counts when not given)."""
    names = names or {}

    def tz(item: WorkItem) -> ZoneInfo:
        return zone(zones.get(item.member.site_id or ""))

    params = list_query(site, query, sort, severity, paging.page if paging else 1)
    keep = urlencode({k: v for k, v in params.items() if k != "site"})
    todo = "".join(work_item(it, i, csrf, site, tz(it), keep) for i, it in enumerate(work.todo))
    offset = len(work.todo)
    contacted = "".join(
        work_item(it, offset + i, csrf, site, tz(it), keep) for i, it in enumerate(work.contacted)
    )
    n_todo, n_contacted = counts if counts is not None else (len(work.todo), len(work.contacted))
    empty_todo = (
        '<p class="empty" data-empty="todo">Nothing to do: every open episode has an action.</p>'
    )
    notice_html = f'<p class="notice" role="status">{e(notice)}</p>' if notice else ""
    export_query = {k: v for k, v in params.items() if k != "page"}
    export = f"{BASE}/export.csv" + (f"?{urlencode(export_query)}" if export_query else "")
    shown_sites = [site] if site else list(sites)
    pages = pager(paging, params) if paging is not None else ""
    main = (
        "<h1>At-risk members today</h1>"
        f"{site_picker(sites, site, BASE + '/', fixed_site, names)}"
        f"{search_form(site, query, sort, severity)}"
        f"{order_form(site, query, sort, severity)}"
        f"{zone_note(shown_sites, zones, names)}"
        f'<p class="export"><a href="{e(export)}" download>{e(LIST_WORDS["export"])}</a></p>'
        f"{notice_html}"
        '<div class="columns">'
        '<section aria-labelledby="todo-h" class="todo">'
        f'<h2 id="todo-h">To do <span class="count" id="todo-count">{n_todo}</span></h2>'
        '<p class="hint">Members with an open episode nobody has acted on yet. Acknowledge '
        "with what you did: they move to Contacted.</p>"
        f'<ol class="members" id="todo-list">{todo}</ol>'
        f"{'' if n_todo else empty_todo}</section>"
        '<section aria-labelledby="contacted-h" class="contacted">'
        f'<h2 id="contacted-h">Contacted <span class="count" id="contacted-count">'
        f"{n_contacted}</span></h2>"
        '<p class="hint">Open episodes someone has acted on; they leave the list when the '
        "member comes back or cancels.</p>"
        f'<ol class="members" id="contacted-list">{contacted}</ol></section></div>'
        f"{pages}"
    )
    return layout(
        "At-risk members",
        main,
        tenant=tenant,
        csrf=csrf,
        current="todo",
        assets=assets,
        reports=reports,
    )


# -- a member ------------------------------------------------------------------------------


def member_page(
    m: Member,
    *,
    state: dict[str, object],
    episodes: Sequence[Episode],
    timeline_svg: str,
    timeline_text: str,
    visits: Sequence[datetime],
    tz: ZoneInfo,
    tenant: str,
    csrf: str,
    notice: str | None,
    assets: str,
    reports: bool = True,
) -> str:
    def fig(name: str, value: str, extra: str = "") -> str:
        vs = f' <span class="vs">{e(extra)}</span>' if extra else ""
        return f"<div><dt>{e(name)}</dt><dd><strong>{e(value)}</strong>{vs}</dd></div>"

    deadline_note = ""
    if m.deadline is not None:
        passed = m.deadline <= datetime.now(UTC)
        deadline_note = "passed" if passed else "when this absence stops being normal"
    first = state.get("first_visit")
    total = state.get("visits")
    usual_minutes = state.get("usual_minutes")
    first_dt = datetime.fromtimestamp(first, UTC) if isinstance(first, int | float) else None
    facts = [
        fig("Status", m.status),
        fig("Site", m.site_id or "–"),
        fig(
            "Absent",
            reasons.days(m.days_absent) if m.days_absent is not None else "–",
            "; ".join(
                x
                for x in (
                    f"usually every {reasons.days(m.usual_gap_days)}" if m.usual_gap_days else "",
                    no_gate_data_before(m, tz),
                )
                if x
            ),
        ),
        fig(
            "Visits, last 4 weeks",
            "–" if m.visits_last_4_weeks is None else str(m.visits_last_4_weeks),
            f"usually about {m.usual_visits_4_weeks:.0f}" if m.usual_visits_4_weeks else "",
        ),
        fig("Last visit", day(m.last_visit, tz)),
        fig("Deadline", day(m.deadline, tz), deadline_note),
        fig("First visit", day(first_dt, tz)),
        fig("Visits in all", str(total) if isinstance(total, int) else "–"),
        fig(
            "Usual visit length",
            f"{usual_minutes:.0f} min" if isinstance(usual_minutes, int | float) else "unknown",
        ),
    ]
    rows = []
    previous: datetime | None = None
    for v in visits:
        gap = "–" if previous is None else reasons.days((v - previous).total_seconds() / 86_400)
        rows.append(f"<tr><td>{e(moment(v, tz))}</td><td>{e(gap)}</td></tr>")
        previous = v
    visit_table = (
        '<div class="table-wrap"><table><caption>Recent visits kept by the detector'
        '</caption><thead><tr><th scope="col">Visit started</th>'
        '<th scope="col">Gap since the previous</th></tr></thead>'
        f"<tbody>{''.join(reversed(rows))}</tbody></table></div>"
        if rows
        else "<p>No visit on record.</p>"
    )
    notice_html = f'<p class="notice" role="status">{e(notice)}</p>' if notice else ""
    known = [f"Member id {m.member_id}"]
    if m.profile is not None:
        known += [f"Plan {m.profile.plan}"] if m.profile.plan else []
        known += [f"CRM id {m.profile.crm_id}"] if m.profile.crm_id else []
    ident = f'<p class="ident">{e(" · ".join(known))}</p>' if m.display_name else ""
    title = m.display_name or f"Member {m.member_id}"
    eps = "".join(episode_block(ep, i, csrf, tz, m.site_id) for i, ep in enumerate(episodes))
    main = (
        f'<p class="back"><a href="{e(list_url(None))}">Back to the list</a></p>'
        f"<h1>{e(title)} {severity_badge(m.severity)}</h1>{ident}{notice_html}"
        f"{contact_links(m)}"
        f'<dl class="figures wide">{"".join(facts)}</dl>'
        '<section aria-labelledby="timeline-h"><h2 id="timeline-h">Visit timeline</h2>'
        '<figure class="timeline-wrap"><div class="scroll" tabindex="0" role="region" '
        f'aria-label="Visit timeline (scrolls sideways on small screens)">{timeline_svg}</div>'
        f"<figcaption>{e(timeline_text)}</figcaption></figure>"
        '<ul class="legend" aria-label="Legend">'
        '<li><span class="key key-visit" aria-hidden="true"></span>a visit (start time)</li>'
        '<li><span class="key key-open" aria-hidden="true"></span>episode open</li>'
        '<li><span class="key key-recovered" aria-hidden="true"></span>came back</li>'
        '<li><span class="key key-churned" aria-hidden="true"></span>cancelled</li>'
        '<li><span class="key key-action" aria-hidden="true"></span>action taken</li>'
        '<li><span class="key key-deadline" aria-hidden="true"></span>deadline</li></ul>'
        '<p class="hint">Lapse keeps the start times of the last 12 visits, the first and last '
        "visit and the visit count, not every visit nor each visit's length.</p>"
        f"{visit_table}</section>"
        '<section aria-labelledby="episodes-h"><h2 id="episodes-h">Episodes</h2>'
        f"{eps or '<p>No episode so far.</p>'}</section>"
    )
    return layout(title, main, tenant=tenant, csrf=csrf, assets=assets, reports=reports)


def episode_block(ep: Episode, i: int, csrf: str, tz: ZoneInfo, site: str | None) -> str:
    alerts = "".join(
        f"<li>{e(day(a.raised_at, tz))}: {e(a.type.replace('_', ' '))} ({e(a.severity)})"
        + "".join(
            f" — {e(reasons.title(r.code))}: {e(reasons.detail(r.code, r.figures))}"
            for r in a.reasons
        )
        + "</li>"
        for a in ep.alerts
    )
    actions = "".join(action_line(a.action, a.taken_at, a.note, tz) for a in ep.actions)
    actions_html = f'<ul class="actions">{actions}</ul>' if actions else "<p>None yet.</p>"
    closed = f" to {day(ep.closed_at, tz)}" if ep.closed_at else ""
    heading = (
        f"{day(ep.opened_at, tz)}{closed}: {STATUS_WORDS.get(ep.status, ep.status)}, "
        f"{SEVERITY_WORDS.get(ep.severity, ep.severity).lower()}"
    )
    form = ""
    if ep.status == "open":
        opening = [a for a in ep.alerts if a.type not in ("recovered", "churned")]
        if opening:
            form = ack_form(opening[-1].alert_id, csrf, uid=f"e{i}", site=site, back="member")
    return (
        f'<article class="episode-card ep-{e(ep.status)}" aria-labelledby="ep{i}-h">'
        f'<h3 id="ep{i}-h">{e(heading)}</h3>'
        f'<h4>Alerts</h4><ul class="alerts">{alerts}</ul>'
        f"<h4>Actions</h4>{actions_html}"
        f"{form}</article>"
    )


# -- reports -------------------------------------------------------------------------------


def _json_block(value: object) -> str:
    return f"<pre>{e(json.dumps(value, indent=2, sort_keys=True, default=str))}</pre>"


def reports_page(
    summary: Sequence[ActionSummaryRow],
    report: CalibrationReport | None,
    *,
    tenant: str,
    csrf: str,
    sites: Sequence[str],
    site: str | None,
    fixed_site: bool,
    assets: str,
) -> str:
    utc = ZoneInfo("UTC")
    if report is None:
        calibration = (
            "<p>No calibration report yet. <code>lapse calibrate</code> measures the policies "
            "on the club's own history and stores its report here.</p>"
        )
    else:
        window = f"{day(report.window_start, utc)} to {day(report.window_end, utc)}"
        src = f"{BASE}/reports/calibration/{quote(str(report.id), safe='')}"
        calibration = (
            f'<dl class="figures"><div><dt>Made</dt><dd>{e(moment(report.created_at, utc))}'
            f"</dd></div><div><dt>History used</dt><dd>{e(window)}</dd></div></dl>"
            f"<details><summary>Policy chosen</summary>{_json_block(report.policy)}</details>"
            f"<details><summary>Scores</summary>{_json_block(report.scores)}</details>"
            f'<iframe class="report" src="{e(src)}" title="Calibration report" sandbox '
            'loading="lazy"></iframe>'
            f'<p><a href="{e(src)}">Open the calibration report on its own</a></p>'
        )
    has_data = any(r.episodes for r in summary)
    outcomes = (
        charts.outcome_bars(summary) + charts.outcome_table(summary)
        if has_data
        else "<p>No episodes yet.</p>"
    )
    main = (
        "<h1>Reports</h1>"
        '<section aria-labelledby="outcomes-h"><h2 id="outcomes-h">Which actions bring members '
        "back</h2>"
        f"{site_picker(sites, site, BASE + '/reports', fixed_site)}"
        '<p class="hint">Episodes by the action staff took; "no action" is the baseline to '
        "beat. These are associations, not causes: staff choose whom to call.</p>"
        f'<figure class="chart-wrap">{outcomes}</figure></section>'
        '<section aria-labelledby="calibration-h"><h2 id="calibration-h">Latest calibration'
        f"</h2>{calibration}</section>"
    )
    return layout("Reports", main, tenant=tenant, csrf=csrf, current="reports", assets=assets)


def not_found_page(
    what: str, *, tenant: str | None, csrf: str | None, assets: str, reports: bool = True
) -> str:
    main = (
        f"<h1>Not found</h1><p>There is no such {e(what)}.</p>"
        f'<p><a href="{BASE}/">Back to the list</a></p>'
    )
    return layout("Not found", main, tenant=tenant, csrf=csrf, assets=assets, reports=reports)


def problem_page(title: str, detail: str, *, assets: str) -> str:
    main = f'<h1>{e(title)}</h1><p>{e(detail)}</p><p><a href="{BASE}/">Back</a></p>'
    return layout(title, main, assets=assets)
