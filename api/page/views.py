"""The staff page's HTML: plain server-rendered markup, every value escaped on the way in.

No template engine (the api has none as a dependency): each view is a function returning a
string, and everything that came from data goes through :func:`e`. Scripts only enhance:
every form works as a plain POST, and the layout loads one same-origin script file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from api.page import i18n, reasons
from api.page.i18n import t
from api.page.listing import Paging
from api.read.alerts import Episode
from api.read.holdout import HoldoutNote, percent
from api.read.members import Member
from api.read.outcomes import ACTION_KINDS
from api.read.worklist import WorkItem, Worklist

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


def action_word(kind: str, lang: str = "en") -> str:
    return t(lang, f"action.{kind}") if kind in ACTION_BUTTONS else kind


def severity_word(severity: str, lang: str = "en") -> str:
    return t(lang, f"severity.{severity}") if severity in SEVERITY_WORDS else severity


def status_word(status: str, lang: str = "en") -> str:
    return t(lang, f"status.{status}") if status in STATUS_WORDS else status


def alert_word(kind: str, lang: str = "en") -> str:
    known = ("at_risk", "escalated", "recovered", "churned", "win_back_due")
    return t(lang, f"alert.{kind}") if kind in known else kind.replace("_", " ")


def member_status(status: str, lang: str = "en") -> str:
    known = ("active", "frozen", "cancelled")
    return t(lang, f"member.{status}") if status in known else status


def ltr(value: object) -> str:
    """An id or figure isolated from the text around it (``<bdi>``), so that an id such as
    ``m000099`` or ``12:30`` keeps its order inside a right-to-left sentence."""
    return f'<bdi dir="ltr">{e(value)}</bdi>'


def e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def day(value: datetime | None, tz: ZoneInfo, lang: str = "en") -> str:
    if value is None:
        return "–"
    return i18n.date_text(lang, value, tz, weekday=True)


def moment(value: datetime | None, tz: ZoneInfo, lang: str = "en") -> str:
    if value is None:
        return "–"
    local = value.astimezone(tz)
    return f"{i18n.date_text(lang, value, tz)}, {local:%H:%M} {local.tzname() or ''}".rstrip()


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
    lang: str = "en",
    admin: bool = False,
) -> str:
    """The page around ``main``; ``reports``: whether the person's role opens the reports
    (a front-desk account is not offered a link it would be refused); ``admin``: whether it
    opens the administration (staff, keys, webhooks). ``lang`` sets
    ``<html lang dir>``: the stylesheet uses logical properties, so the layout mirrors."""
    nav = ""
    if tenant is not None:
        links = [("todo", f"{BASE}/", t(lang, "nav.todo"))]
        if reports:
            links.append(("reports", f"{BASE}/reports", t(lang, "nav.reports")))
        if admin:
            links.append(("admin", f"{BASE}/admin", t(lang, "nav.admin")))
        items = "".join(
            f'<li><a href="{href}"{CURRENT if key == current else ""}>{label}</a></li>'
            for key, href, label in links
        )
        nav = (
            f'<nav aria-label="{e(t(lang, "nav.main"))}"><ul>{items}</ul></nav>'
            f"{language_form(lang, csrf)}"
            f'<form class="logout" method="post" action="{BASE}/logout">'
            f'<input type="hidden" name="csrf" value="{e(csrf)}">'
            f'<button type="submit">{e(t(lang, "logout"))}</button></form>'
        )
    who = f' <span class="tenant">· <bdi>{e(tenant)}</bdi></span>' if tenant else ""
    return (
        f'<!doctype html>\n<html lang="{e(lang)}" dir="{i18n.direction(lang)}"><head>'
        '<meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)} · Lapse</title>"
        '<link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{BASE}/assets/page.css?v={e(assets)}">'
        f'<script src="{BASE}/assets/page.js?v={e(assets)}" defer></script>'
        "</head><body>"
        f'<a class="skip" href="#main">{e(t(lang, "skip"))}</a>'
        f'<header class="top"><p class="brand">Lapse{who}</p>{nav}</header>'
        f'<main id="main" tabindex="-1">{main}</main>'
        '<div id="announce" class="visually-hidden" role="status" aria-live="polite"></div>'
        "</body></html>"
    )


def language_form(lang: str, csrf: str | None) -> str:
    """The small control that switches the page's language (stored on the staff account, or
    in a key session's cookie); each option is named in its own language."""
    options = "".join(
        f'<option value="{code}" lang="{code}"{" selected" if code == lang else ""}>{name}</option>'
        for code, name in (("en", "English"), ("he", "עברית"))
    )
    return (
        f'<form class="language" method="post" action="{BASE}/language">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        f'<label for="lang-pick">{e(t(lang, "language"))}</label>'
        f'<select id="lang-pick" name="language">{options}</select>'
        f'<button type="submit">{e(t(lang, "language.change"))}</button></form>'
    )


# -- login ---------------------------------------------------------------------------------


def login(
    token: str,
    error: str | None = None,
    assets: str = "",
    key_error: bool = False,
    lang: str = "en",
) -> str:
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
        f'<h1>{e(t(lang, "login.title"))}</h1><div class="card narrow">'
        f"{alert}"
        f'<form method="post" action="{BASE}/login" class="stack">'
        f'<input type="hidden" name="login_token" value="{e(token)}">'
        f'<label for="login">{e(t(lang, "login.login"))}</label>'
        '<input id="login" name="login" type="text" autocomplete="username" '
        f'spellcheck="false" autocapitalize="off" dir="auto"{described}>'
        f'<label for="password">{e(t(lang, "login.password"))}</label>'
        f'<input id="password" name="password" type="password" '
        f'autocomplete="current-password"{described}>'
        f'<button type="submit" class="primary">{e(t(lang, "login.submit"))}</button></form>'
        # Machines and set-up only: folded away so a person sees name and password first.
        f"<details{' open' if key_error else ''}>"
        f"<summary>{e(t(lang, 'login.key.summary'))}</summary>"
        f'<form method="post" action="{BASE}/login" class="stack">'
        f'<input type="hidden" name="login_token" value="{e(token)}">'
        f'<label for="api_key">{e(t(lang, "login.key.label"))}</label>'
        '<input id="api_key" name="api_key" type="password" autocomplete="off" required '
        f'spellcheck="false" autocapitalize="off" dir="ltr"{key_described}>'
        f'<p class="hint" id="key-hint">{e(t(lang, "login.key.hint.1"))} '
        '<code dir="ltr">alerts:read</code> '
        f'(<code dir="ltr">lapse keys create</code>). {e(t(lang, "login.key.hint.3"))}</p>'
        f'<button type="submit">{e(t(lang, "login.key.submit"))}</button></form></details></div>'
    )
    return layout(t(lang, "login.title"), main, assets=assets, lang=lang)


# -- the work list -------------------------------------------------------------------------


def no_gate_data_before(m: Member, tz: ZoneInfo, lang: str = "en") -> str:
    """Where the member's absence was counted from the start of gate data (their own last
    visit or joining is earlier): say so, as the absence is not longer than that."""
    if not m.absence_clipped or m.gate_data_since is None:
        return ""
    return t(lang, "fig.no_gate_data", date=i18n.date_text(lang, m.gate_data_since, tz))


def _figures(m: Member, tz: ZoneInfo, lang: str = "en") -> str:
    absent = reasons.days(m.days_absent, lang) if m.days_absent is not None else "–"
    usual_gap = (
        t(lang, "fig.usually_every", days=reasons.days(m.usual_gap_days, lang))
        if m.usual_gap_days is not None
        else t(lang, "fig.no_rhythm")
    )
    clipped = no_gate_data_before(m, tz, lang)
    if clipped:
        usual_gap = f"{usual_gap}; {clipped}"
    visits = "–" if m.visits_last_4_weeks is None else str(m.visits_last_4_weeks)
    usual_visits = (
        t(lang, "fig.usually_about", n=f"{m.usual_visits_4_weeks:.0f}")
        if m.usual_visits_4_weeks is not None
        else t(lang, "fig.no_count")
    )
    return (
        '<dl class="figures">'
        f"<div><dt>{e(t(lang, 'fig.absent'))}</dt><dd><strong>{e(absent)}</strong> "
        f'<span class="vs">{e(usual_gap)}</span></dd></div>'
        f"<div><dt>{e(t(lang, 'fig.visits4'))}</dt><dd><strong>{e(visits)}</strong> "
        f'<span class="vs">{e(usual_visits)}</span></dd></div>'
        "</dl>"
    )


def reason_items(item: WorkItem, lang: str = "en") -> str:
    if not item.reasons:
        return ""
    lis = "".join(
        f"<li><strong>{e(reasons.title(r.code, lang))}.</strong> "
        f"{e(reasons.detail(r.code, r.figures, lang))}</li>"
        for r in item.reasons
    )
    return f'<ul class="reasons" aria-label="{e(t(lang, "reasons"))}">{lis}</ul>'


def severity_badge(severity: str | None, lang: str = "en") -> str:
    if severity is None:
        return ""
    return f'<span class="sev sev-{e(severity)}">{e(severity_word(severity, lang))}</span>'


def ack_form(
    alert_id: str,
    csrf: str,
    *,
    uid: str,
    site: str | None,
    back: str,
    keep: str = "",
    lang: str = "en",
) -> str:
    """``keep``: the list's query (search, order, level, page) to return to after a plain
    POST, so acknowledging does not lose the person's place."""
    buttons = "".join(
        f'<button type="submit" name="action" value="{k}">{e(action_word(k, lang))}</button>'
        for k in ACTION_KINDS
    )
    return (
        f'<form class="ack" method="post" action="{BASE}/alerts/{e(quote(alert_id, safe=""))}'
        f'/actions" data-enhance="ack" data-actions="{e(t(lang, "actions.taken"))}" '
        f'data-failed="{e(t(lang, "ack.failed"))}" data-retry="{e(t(lang, "ack.retry"))}">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        f'<input type="hidden" name="site" value="{e(site)}">'
        f'<input type="hidden" name="back" value="{e(back)}">'
        + (f'<input type="hidden" name="keep" value="{e(keep)}">' if keep else "")
        + f'<label for="note-{uid}">{e(t(lang, "note.optional"))}</label>'
        f'<textarea id="note-{uid}" name="note" rows="2" maxlength="2000" dir="auto"></textarea>'
        f"<fieldset><legend>{e(t(lang, 'ack.legend'))}</legend>"
        f'<div class="buttons">{buttons}</div></fieldset>'
        '<p class="form-status" role="status"></p></form>'
    )


def action_line(
    kind: str, taken_at: datetime, note: str | None, tz: ZoneInfo, lang: str = "en"
) -> str:
    text = f"{action_word(kind, lang)} · {moment(taken_at, tz, lang)}"
    note_html = f' <q class="note" dir="auto">{e(note)}</q>' if note else ""
    return f"<li>{e(text)}{note_html}</li>"


def member_name(m: Member) -> str:
    """The name the staff call the member by, else the member id."""
    return m.display_name or m.member_id


def contact_links(m: Member, lang: str = "en") -> str:
    """One-tap call, text and email links from the member's profile (nothing when none).

    The phone and email were validated when set (records/profiles.py: digits and a leading +; an
    address with no quote, space or bracket), and are escaped here all the same.
    """
    p = m.profile
    if p is None or not (p.phone or p.email):
        return ""
    links = []
    name = e(member_name(m))
    if p.phone:
        call = e(t(lang, "contact.call", name="\0")).replace("\0", f"<bdi>{name}</bdi>")
        links.append(f'<a class="contact" href="tel:{e(p.phone)}">{call}</a>')
        links.append(f'<a class="contact" href="sms:{e(p.phone)}">{e(t(lang, "contact.text"))}</a>')
    if p.email:
        links.append(
            f'<a class="contact" href="mailto:{e(p.email)}">{e(t(lang, "contact.email"))}</a>'
        )
    return f'<p class="contacts">{" ".join(links)}</p>'


def row_summary(item: WorkItem, tz: ZoneInfo, lang: str = "en") -> str:
    """The compact row: days absent and last contact (the name, badge and call link sit
    beside it, outside the fold: a link inside a ``<summary>`` is nested interactive)."""
    m = item.member
    absent = reasons.days(m.days_absent, lang) if m.days_absent is not None else "–"
    contact = max((a.taken_at for a in item.actions), default=None)
    when = (
        t(lang, "list.last_contact", when=moment(contact, tz, lang))
        if contact is not None
        else t(lang, "list.never")
    )
    return (
        f'<p class="row-facts"><span>{e(t(lang, "list.absent", days=absent))}</span> '
        f'<span class="last-contact">{e(when)}</span></p>'
    )


def _with_name(text: str, name: str) -> str:
    """``text`` (escaped) with the ``\\0`` placeholder replaced by ``name`` in ``<bdi>``, so
    a Latin name keeps its order inside a right-to-left sentence."""
    return e(text).replace("\0", f"<bdi>{e(name)}</bdi>")


def call_link(m: Member, lang: str = "en") -> str:
    p = m.profile
    if p is None or not p.phone:
        return ""
    call = _with_name(t(lang, "contact.call", name="\0"), member_name(m))
    return f'<a class="contact" href="tel:{e(p.phone)}">{call}</a>'


def other_contacts(m: Member, lang: str = "en") -> str:
    """Text and email links (inside the fold; the call link is on the row itself)."""
    p = m.profile
    if p is None or not (p.phone or p.email):
        return ""
    links = []
    if p.phone:
        links.append(f'<a class="contact" href="sms:{e(p.phone)}">{e(t(lang, "contact.text"))}</a>')
    if p.email:
        links.append(
            f'<a class="contact" href="mailto:{e(p.email)}">{e(t(lang, "contact.email"))}</a>'
        )
    return f'<p class="contacts">{" ".join(links)}</p>'


def work_item(
    item: WorkItem,
    i: int,
    csrf: str,
    site: str | None,
    tz: ZoneInfo,
    keep: str = "",
    lang: str = "en",
) -> str:
    """One member as a compact row that opens on tap (``<details>``): the row shows the name,
    risk, days absent, last contact and a one-tap call; the note and buttons are inside."""
    m = item.member
    uid = f"m{i}"
    opened = (
        f'<p class="episode">'
        f"{e(t(lang, 'episode.open_since', date=day(item.opened_at, tz, lang)))}</p>"
        if item.opened_at
        else ""
    )
    if item.actions:
        done = "".join(action_line(a.action, a.taken_at, a.note, tz, lang) for a in item.actions)
        tail = f'<ul class="actions" aria-label="{e(t(lang, "actions.taken"))}">{done}</ul>'
    elif item.alert_id is not None:
        tail = ack_form(item.alert_id, csrf, uid=uid, site=site, back="list", keep=keep, lang=lang)
    else:
        tail = f'<p class="hint">{e(t(lang, "alert.not_stored"))}</p>'
    call = call_link(m, lang)
    call_html = f'<p class="call">{call}</p>' if call else ""
    more_about = _with_name(t(lang, "list.more_about", name="\0"), member_name(m))
    return (
        f'<li class="member" data-member="{e(m.member_id)}">'
        f'<article aria-labelledby="{uid}-h">'
        '<div class="row">'
        f'<h3 id="{uid}-h" tabindex="-1"><a href="{e(member_url(m.member_id))}">'
        f"<bdi>{e(member_name(m))}</bdi></a> {severity_badge(m.severity, lang)}</h3>"
        f"{row_summary(item, tz, lang)}{call_html}</div>"
        f"<details><summary>{e(t(lang, 'list.more'))}"
        f'<span class="visually-hidden"> {more_about}</span></summary>'
        f"{other_contacts(m, lang)}{_figures(m, tz, lang)}{opened}{reason_items(item, lang)}"
        f"{tail}</details></article></li>"
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
    lang: str = "en",
    names: Mapping[str, str] | None = None,
) -> str:
    names = names or {}
    if fixed:
        label = f"<bdi>{e(site_label(site or '', names))}</bdi>"
        return f'<p class="site-fixed">{e(t(lang, "site"))}: <strong>{label}</strong></p>'
    options = [f'<option value="">{e(t(lang, "site.all"))}</option>'] + [
        f'<option value="{e(s)}"{" selected" if s == site else ""}>{e(site_label(s, names))}'
        "</option>"
        for s in sorted(sites, key=lambda s: (names.get(s, s).casefold(), s))
    ]
    return (
        f'<form class="site-picker" method="get" action="{e(action)}">'
        f'<label for="site">{e(t(lang, "site"))}</label>'
        f'<select id="site" name="site">{"".join(options)}</select>'
        f'<button type="submit">{e(t(lang, "site.show"))}</button></form>'
    )


def search_form(
    site: str | None,
    query: str,
    sort: str = "risk",
    severity: str | None = None,
    lang: str = "en",
) -> str:
    """Find a member on the list by name or id (a plain GET form: works without the script);
    the site, order and risk level chosen are kept."""
    keep_site = "".join(
        f'<input type="hidden" name="{k}" value="{e(v)}">'
        for k, v in list_query(site, "", sort, severity).items()
    )
    shown = (
        '<p class="search-note">'
        + e(t(lang, "search.note", query="\0")).replace("\0", f"<bdi>{e(query)}</bdi>")
        + f' <a href="{e(list_url(site))}">{e(t(lang, "search.everyone"))}</a></p>'
        if query
        else ""
    )
    return (
        f'<form class="site-picker search" role="search" method="get" action="{e(BASE)}/">'
        f'{keep_site}<label for="q">{e(t(lang, "search.label"))}</label>'
        f'<input id="q" name="q" type="search" maxlength="100" value="{e(query)}" '
        f'autocomplete="off" dir="auto" placeholder="{e(t(lang, "search.placeholder"))}">'
        f'<button type="submit">{e(t(lang, "search.submit"))}</button></form>{shown}'
    )


def list_query(
    site: str | None, query: str, sort: str, severity: str | None, page: int = 1
) -> dict[str, str]:
    """The list's query string without defaults: what paging and the export link keep."""
    out = {"site": site or "", "q": query, "severity": severity or ""}
    out["sort"] = "" if sort == "risk" else sort
    out["page"] = "" if page <= 1 else str(page)
    return {k: v for k, v in out.items() if v}


def order_form(
    site: str | None, query: str, sort: str, severity: str | None, lang: str = "en"
) -> str:
    """Sort and risk level (a plain GET form, keeping the site and the search)."""
    keep = "".join(
        f'<input type="hidden" name="{k}" value="{e(v)}">'
        for k, v in (("site", site or ""), ("q", query))
        if v
    )
    sorts = "".join(
        f'<option value="{k}"{" selected" if k == sort else ""}>{e(t(lang, "list.sort." + k))}'
        "</option>"
        for k in ("risk", "absent", "contact")
    )
    levels = f'<option value="">{e(t(lang, "list.any_severity"))}</option>' + "".join(
        f'<option value="{k}"{" selected" if k == severity else ""}>'
        f"{e(severity_word(k, lang))}</option>"
        for k in ("high", "medium", "low")
    )
    return (
        f'<form class="site-picker order" method="get" action="{e(BASE)}/">{keep}'
        f'<label for="sort">{e(t(lang, "list.sort"))}</label>'
        f'<select id="sort" name="sort">{sorts}</select>'
        f'<label for="severity">{e(t(lang, "list.severity"))}</label>'
        f'<select id="severity" name="severity">{levels}</select>'
        f'<button type="submit">{e(t(lang, "list.apply"))}</button></form>'
    )


def pager(paging: Paging, params: dict[str, str], lang: str = "en") -> str:
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
            f'<a rel="prev" href="{e(href(paging.page - 1))}">{e(t(lang, "list.previous"))}</a>'
        )
    text = t(
        lang,
        "list.page",
        page=paging.page,
        pages=paging.pages,
        members=i18n.plural(lang, "member", paging.total),
    )
    links.append(f'<span aria-current="page">{e(text)}</span>')
    if paging.page < paging.pages:
        links.append(
            f'<a rel="next" href="{e(href(paging.page + 1))}">{e(t(lang, "list.next"))}</a>'
        )
    label = e(t(lang, "list.pages"))
    return f'<nav class="pager" aria-label="{label}">{" ".join(links)}</nav>'


def zone_note(
    sites: Sequence[str], zones: Mapping[str, str], names: Mapping[str, str], lang: str = "en"
) -> str:
    """Say in which time zone the list's times are: each site's own, or UTC where a site
    has none set (there is no tenant-wide zone to fall back to). Site names and zone ids are
    the club's data, isolated in ``<bdi>`` inside the sentence."""

    def bdi(value: str) -> str:
        return f"<bdi>{e(value)}</bdi>"

    zoned = [f"{bdi(site_label(s, names))}: {bdi(zones[s])}" for s in sites if zones.get(s)]
    bare = [bdi(site_label(s, names)) for s in sites if not zones.get(s)]
    parts = []
    if zoned:
        parts.append(e(t(lang, "list.zone_site", zones="\0")).replace("\0", "; ".join(zoned)))
    if bare:
        parts.append(e(t(lang, "list.zone_utc", sites="\0")).replace("\0", ", ".join(bare)))
    return f'<p class="hint zones">{" ".join(parts)}</p>' if parts else ""


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
    lang: str = "en",
    holdout: HoldoutNote | None = None,
    admin: bool = False,
) -> str:
    """``work``: the members on this page; ``counts``: the to-do and contacted totals of the
    whole (filtered) list, shown in the headings (the page's own counts when not given);
    ``holdout``: the tenant's control group in force (its members are not on the list)."""
    names = names or {}

    def tz(item: WorkItem) -> ZoneInfo:
        return zone(zones.get(item.member.site_id or ""))

    params = list_query(site, query, sort, severity, paging.page if paging else 1)
    keep = urlencode({k: v for k, v in params.items() if k != "site"})
    todo = "".join(
        work_item(it, i, csrf, site, tz(it), keep, lang) for i, it in enumerate(work.todo)
    )
    offset = len(work.todo)
    contacted = "".join(
        work_item(it, offset + i, csrf, site, tz(it), keep, lang)
        for i, it in enumerate(work.contacted)
    )
    n_todo, n_contacted = counts if counts is not None else (len(work.todo), len(work.contacted))
    empty_todo = f'<p class="empty" data-empty="todo">{e(t(lang, "list.todo.empty"))}</p>'
    notice_html = f'<p class="notice" role="status">{e(notice)}</p>' if notice else ""
    if holdout is not None:
        held = holdout_text("holdout.list", holdout, ZoneInfo("UTC"), lang)
        notice_html += f'<p class="holdout" role="note">{e(held)}</p>'
    export_query = {k: v for k, v in params.items() if k != "page"}
    export = f"{BASE}/export.csv" + (f"?{urlencode(export_query)}" if export_query else "")
    shown_sites = [site] if site else list(sites)
    pages = pager(paging, params, lang) if paging is not None else ""
    main = (
        f"<h1>{e(t(lang, 'list.h1'))}</h1>"
        f"{site_picker(sites, site, BASE + '/', fixed_site, lang, names)}"
        f"{search_form(site, query, sort, severity, lang)}"
        f"{order_form(site, query, sort, severity, lang)}"
        f"{zone_note(shown_sites, zones, names, lang)}"
        f'<p class="export"><a href="{e(export)}" download>{e(t(lang, "list.export"))}</a></p>'
        f"{notice_html}"
        '<div class="columns">'
        '<section aria-labelledby="todo-h" class="todo">'
        f'<h2 id="todo-h">{e(t(lang, "list.todo"))} '
        f'<span class="count" id="todo-count">{n_todo}</span></h2>'
        f'<p class="hint">{e(t(lang, "list.todo.hint"))}</p>'
        f'<ol class="members" id="todo-list">{todo}</ol>'
        f"{'' if n_todo else empty_todo}</section>"
        '<section aria-labelledby="contacted-h" class="contacted">'
        f'<h2 id="contacted-h">{e(t(lang, "list.contacted"))} '
        f'<span class="count" id="contacted-count">{n_contacted}</span></h2>'
        f'<p class="hint">{e(t(lang, "list.contacted.hint"))}</p>'
        f'<ol class="members" id="contacted-list">{contacted}</ol></section></div>'
        f"{pages}"
    )
    return layout(
        t(lang, "list.title"),
        main,
        tenant=tenant,
        csrf=csrf,
        current="todo",
        assets=assets,
        reports=reports,
        lang=lang,
        admin=admin,
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
    lang: str = "en",
) -> str:
    def fig(key: str, value: str, extra: str = "") -> str:
        vs = f' <span class="vs">{e(extra)}</span>' if extra else ""
        return f"<div><dt>{e(t(lang, key))}</dt><dd><strong>{e(value)}</strong>{vs}</dd></div>"

    deadline_note = ""
    if m.deadline is not None:
        passed = m.deadline <= datetime.now(UTC)
        deadline_note = t(lang, "member.deadline.passed" if passed else "member.deadline.future")
    first = state.get("first_visit")
    total = state.get("visits")
    usual_minutes = state.get("usual_minutes")
    first_dt = datetime.fromtimestamp(first, UTC) if isinstance(first, int | float) else None
    facts = [
        fig("member.status", member_status(m.status, lang)),
        fig("site", m.site_id or "–"),
        fig(
            "fig.absent",
            reasons.days(m.days_absent, lang) if m.days_absent is not None else "–",
            "; ".join(
                x
                for x in (
                    t(lang, "fig.usually_every", days=reasons.days(m.usual_gap_days, lang))
                    if m.usual_gap_days
                    else "",
                    no_gate_data_before(m, tz, lang),
                )
                if x
            ),
        ),
        fig(
            "fig.visits4",
            "–" if m.visits_last_4_weeks is None else str(m.visits_last_4_weeks),
            t(lang, "fig.usually_about", n=f"{m.usual_visits_4_weeks:.0f}")
            if m.usual_visits_4_weeks
            else "",
        ),
        fig("member.last_visit", day(m.last_visit, tz, lang)),
        fig("member.deadline", day(m.deadline, tz, lang), deadline_note),
        fig("member.first_visit", day(first_dt, tz, lang)),
        fig("member.visits_all", str(total) if isinstance(total, int) else "–"),
        fig(
            "member.visit_length",
            t(lang, "member.minutes", n=f"{usual_minutes:.0f}")
            if isinstance(usual_minutes, int | float)
            else t(lang, "member.unknown"),
        ),
    ]
    rows = []
    previous: datetime | None = None
    for v in visits:
        gap = (
            "–" if previous is None else reasons.days((v - previous).total_seconds() / 86_400, lang)
        )
        rows.append(f"<tr><td>{e(moment(v, tz, lang))}</td><td>{e(gap)}</td></tr>")
        previous = v
    visit_table = (
        f'<div class="table-wrap"><table><caption>{e(t(lang, "member.visits.caption"))}'
        f'</caption><thead><tr><th scope="col">{e(t(lang, "member.visits.started"))}</th>'
        f'<th scope="col">{e(t(lang, "member.visits.gap"))}</th></tr></thead>'
        f"<tbody>{''.join(reversed(rows))}</tbody></table></div>"
        if rows
        else f"<p>{e(t(lang, 'member.visits.none'))}</p>"
    )
    notice_html = f'<p class="notice" role="status">{e(notice)}</p>' if notice else ""
    # Held back (the holdout's control group): said plainly, and no call links.
    held = holdout_text("holdout.member", m.holdout, tz, lang) if m.holdout else ""
    held_html = f'<p class="notice holdout" role="note">{e(held)}</p>' if held else ""
    known = [t(lang, "member.id", id=m.member_id)]
    if m.profile is not None:
        known += [t(lang, "member.plan", plan=m.profile.plan)] if m.profile.plan else []
        known += [t(lang, "member.crm", id=m.profile.crm_id)] if m.profile.crm_id else []
    ident = f'<p class="ident">{e(" · ".join(known))}</p>' if m.display_name else ""
    title = m.display_name or t(lang, "member.title", id=m.member_id)
    eps = "".join(episode_block(ep, i, csrf, tz, m.site_id, lang) for i, ep in enumerate(episodes))
    legend = "".join(
        f'<li><span class="key key-{k}" aria-hidden="true"></span>{e(t(lang, f"legend.{k}"))}</li>'
        for k in ("visit", "open", "recovered", "churned", "action", "deadline")
    )
    main = (
        f'<p class="back"><a href="{e(list_url(None))}">{e(t(lang, "member.back"))}</a></p>'
        f"<h1><bdi>{e(title)}</bdi> {severity_badge(m.severity, lang)}</h1>{ident}{notice_html}"
        f"{held_html or contact_links(m, lang)}"
        f'<dl class="figures wide">{"".join(facts)}</dl>'
        f'<section aria-labelledby="timeline-h"><h2 id="timeline-h">{e(t(lang, "timeline"))}</h2>'
        '<figure class="timeline-wrap"><div class="scroll" tabindex="0" role="region" '
        f'aria-label="{e(t(lang, "timeline.region"))}">{timeline_svg}</div>'
        f"<figcaption>{e(timeline_text)}</figcaption></figure>"
        f'<ul class="legend" aria-label="{e(t(lang, "legend"))}">{legend}</ul>'
        f'<p class="hint">{e(t(lang, "timeline.hint"))}</p>'
        f"{visit_table}</section>"
        f'<section aria-labelledby="episodes-h"><h2 id="episodes-h">{e(t(lang, "episodes"))}</h2>'
        f"{eps or '<p>' + e(t(lang, 'episodes.none')) + '</p>'}</section>"
    )
    return layout(title, main, tenant=tenant, csrf=csrf, assets=assets, reports=reports, lang=lang)


def holdout_text(key: str, note: HoldoutNote, tz: ZoneInfo, lang: str) -> str:
    """Why an episode is held back, in the page's language ("10 % of new episodes since
    1 Dec 2026")."""
    return t(lang, key, share=percent(note.share), date=i18n.date_text(lang, note.since, tz))


def episode_block(
    ep: Episode, i: int, csrf: str, tz: ZoneInfo, site: str | None, lang: str = "en"
) -> str:
    alerts = "".join(
        f"<li>{e(day(a.raised_at, tz, lang))}: {e(alert_word(a.type, lang))} "
        f"({e(severity_word(a.severity, lang))})"
        + "".join(
            f" — {e(reasons.title(r.code, lang))}: {e(reasons.detail(r.code, r.figures, lang))}"
            for r in a.reasons
        )
        + "</li>"
        for a in ep.alerts
    )
    actions = "".join(action_line(a.action, a.taken_at, a.note, tz, lang) for a in ep.actions)
    actions_html = (
        f'<ul class="actions">{actions}</ul>'
        if actions
        else f"<p>{e(t(lang, 'episode.none_yet'))}</p>"
    )
    start = day(ep.opened_at, tz, lang)
    span = (
        t(lang, "episode.to", start=start, end=day(ep.closed_at, tz, lang))
        if ep.closed_at
        else start
    )
    heading = f"{span}: {status_word(ep.status, lang)}, {severity_word(ep.severity, lang)}"
    form = ""
    held = ""
    if ep.holdout is not None:
        text = holdout_text("holdout.episode", ep.holdout, tz, lang)
        held = f'<p class="holdout">{e(text)}</p>'
    elif ep.status == "open":
        opening = [a for a in ep.alerts if a.type not in ("recovered", "churned")]
        if opening:
            form = ack_form(
                opening[-1].alert_id, csrf, uid=f"e{i}", site=site, back="member", lang=lang
            )
    return (
        f'<article class="episode-card ep-{e(ep.status)}" aria-labelledby="ep{i}-h">'
        f'<h3 id="ep{i}-h">{e(heading)}</h3>{held}'
        f'<h4>{e(t(lang, "episode.alerts"))}</h4><ul class="alerts">{alerts}</ul>'
        f"<h4>{e(t(lang, 'episode.actions'))}</h4>{actions_html}"
        f"{form}</article>"
    )


def not_found_page(
    what: str,
    *,
    tenant: str | None,
    csrf: str | None,
    assets: str,
    reports: bool = True,
    lang: str = "en",
) -> str:
    """``what``: "member" or "report"."""
    main = (
        f"<h1>{e(t(lang, 'notfound.title'))}</h1><p>{e(t(lang, f'notfound.{what}'))}</p>"
        f'<p><a href="{BASE}/">{e(t(lang, "member.back"))}</a></p>'
    )
    return layout(
        t(lang, "notfound.title"),
        main,
        tenant=tenant,
        csrf=csrf,
        assets=assets,
        reports=reports,
        lang=lang,
    )


def problem_page(title: str, detail: str, *, assets: str, lang: str = "en") -> str:
    main = f'<h1>{e(title)}</h1><p>{e(detail)}</p><p><a href="{BASE}/">{e(t(lang, "back"))}</a></p>'
    return layout(title, main, assets=assets, lang=lang)
