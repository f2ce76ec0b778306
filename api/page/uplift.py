"""The manager's reports page: "Does reaching out work?" (issue 22), the uplift report as a
section of the reports page (``api/page/reports_page.py``), and inside it the control of the
control group (the holdout), in the person's language.

Plain words first: the verdict ("Proven: ..." / "Not proven yet: need about N more settled
episodes") and what it rests on; the figures and the tables by period, risk level, site,
first action and policy behind a ``<details>`` fold, each table narrow (four columns, the
counts under the shares) and scrolling in its own region should it still be too wide. The
figures are ``api/read/uplift.py``'s read, the same as ``/v1/uplift`` and ``lapse uplift``; the
verdict is chosen by ``api.uplift_stats.verdict_kind``, the one rule the API's words follow.

The holdout control shows the share in force, since when, who set it and why, every change
so far, and (for whom ``change_refusal`` allows) a form to set a share or stop it, posted to
``api/page/holdout.py``. Every value is escaped; figures, dates and names sit in ``<bdi>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from api.page import i18n
from api.page.charts import action_name, bdi_t, table_wrap
from api.page.i18n import t
from api.page.views import BASE, e, severity_word, site_label
from api.read.holdout import HoldoutOut, holdout_of, percent, who_set
from api.read.uplift import UpliftRead, read_uplift
from api.uplift_stats import NO_ACTION, Comparison, per_100, verdict_kind
from records.staff_accounts import Role
from schemas.holdout import MAX_SHARE

UTC_ZONE = ZoneInfo("UTC")
# The shares the form offers (the API takes any share up to MAX_SHARE; a share in force
# that is not one of these is offered too, so the form never hides the setting).
SHARES = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
ACTIONS = ("call", "message", "incentive", "other")
# The page's notice after a change (``?holdout=...`` on the redirect).
DONE = ("set", "stop", "same")


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.0f}%"


def _signed(x: float) -> str:
    return f"{x * 100:+.0f}" if round(abs(x) * 100) >= 1 else f"{x * 100:+.1f}"


# -- the verdict, in plain words ----------------------------------------------------------


def verdict_text(c: Comparison, lang: str) -> str:
    """The verdict as markup in ``lang``: the same case as the API's ``verdict`` words."""
    kind = verdict_kind(c.difference, c.interval, c.more_needed)
    key = f"up.verdict.{kind}"
    if kind in ("proven", "harmful") and c.difference is not None and c.interval is not None:
        low, high = per_100(c.interval.low), per_100(c.interval.high)
        if kind == "harmful":  # "between 5 and 19 fewer": the bounds' sizes, smaller first
            low, high = high, low
        return bdi_t(lang, key, n=per_100(c.difference), low=low, high=high)
    if kind == "need_more" and c.more_needed is not None:
        return bdi_t(lang, key, n=f"{c.more_needed:,}")
    return e(t(lang, key))


def _arm(lang: str, key: str, back: int, n: int, share: float | None) -> str:
    of = t(lang, "up.of", back=back, n=f"{n:,}", pct=_pct(share))
    return bdi_t(lang, key, share=of)


# -- the tables (behind the fold) -----------------------------------------------------------


def _cell(back: int, n: int, share: float | None) -> str:
    return (
        f'<td><bdi dir="ltr">{e(_pct(share))}</bdi>'
        f'<span class="up-n"><bdi dir="ltr">{back:,}/{n:,}</bdi></span></td>'
    )


def _difference(c: Comparison, lang: str) -> str:
    if c.difference is None or c.interval is None:
        return "<td>—</td>"
    interval = t(lang, "up.interval", low="\0lo\0", high="\0hi\0")
    interval = (
        e(interval)
        .replace("\0lo\0", f'<bdi dir="ltr">{_signed(c.interval.low)}</bdi>')
        .replace("\0hi\0", f'<bdi dir="ltr">{_signed(c.interval.high)}</bdi>')
    )
    return (
        f'<td><bdi dir="ltr">{_signed(c.difference)}</bdi><span class="up-n">{interval}</span></td>'
    )


def _row(label: str, c: Comparison, lang: str) -> str:
    """One group: ``label`` is markup (escaped by the caller)."""
    return (
        f'<tr><th scope="row">{label}</th>'
        f"{_cell(c.contact.back, c.contact.episodes, c.contact.back_share)}"
        f"{_cell(c.control.back, c.control.episodes, c.control.back_share)}"
        f"{_difference(c, lang)}</tr>"
    )


def _table(what: str, rows: list[str], days: str, lang: str) -> str:
    caption = t(lang, "up.caption", days=days, what=t(lang, f"up.what.{what}"))
    head = "".join(
        f'<th scope="col">{e(t(lang, f"up.col.{k}"))}</th>'
        for k in ("group", "contact", "control", "difference")
    )
    return table_wrap(
        caption,
        f'<table class="uplift-{what}"><caption>{e(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>",
        lang,
    )


def _period_label(c: Comparison, read: UpliftRead, tz: ZoneInfo, lang: str) -> str:
    try:
        start = datetime.fromisoformat(c.group)
    except ValueError:
        return f"<bdi>{e(c.group)}</bdi>"
    share = next((p.share for p in read.periods if p.start == start), None)
    return bdi_t(
        lang,
        "up.period",
        date=i18n.date_text(lang, start, tz),
        share=percent(share) if share is not None else "—",
    )


def _site(site: str, names: Mapping[str, str], lang: str) -> str:
    return f"<bdi>{e(site_label(site, names))}</bdi>" if site else e(t(lang, "up.no_site"))


def _action(kind: str, lang: str) -> str:
    if kind == NO_ACTION:
        return e(t(lang, "up.no_action"))
    return e(action_name(kind, lang)) if kind in ACTIONS else f"<bdi>{e(kind)}</bdi>"


def _policy(policy: str) -> str:
    if not policy:
        return "—"
    # A spec string may break after each comma (a phone's narrow column), never inside.
    return f'<code dir="ltr">{e(policy).replace(",", ",<wbr>")}</code>'


def figures(read: UpliftRead, lang: str, tz: ZoneInfo, names: Mapping[str, str]) -> str:
    """What sits behind the fold: counts left out, cancellations, months kept, the tables."""
    r, o = read.report, read.report.overall
    days = i18n.plural(lang, "day", r.settle_days)
    facts = [bdi_t(lang, "up.pending", days=days, n=f"{r.pending:,}")]
    if read.outside:
        facts.append(bdi_t(lang, "up.outside", n=f"{read.outside:,}"))
    if o.cancelled_difference is not None:
        facts.append(
            bdi_t(
                lang,
                "up.cancelled",
                days=days,
                contact=_pct(o.contact.cancelled_share),
                control=_pct(o.control.cancelled_share),
            )
        )
    if o.months_kept_per_100 is not None:
        # Fewer months kept is said so, never as "about -5 kept".
        kept = round(o.months_kept_per_100)
        key = "up.months.fewer" if kept < 0 else "up.months"
        facts.append(bdi_t(lang, key, n=f"{abs(kept):,}"))
    overall = [_row(e(t(lang, "up.all")), o, lang)] + [
        _row(_period_label(c, read, tz, lang), c, lang) for c in r.by_period
    ]
    tables = [
        _table("all", overall, days, lang),
        _table(
            "severity",
            [_row(e(severity_word(c.group, lang)), c, lang) for c in r.by_severity],
            days,
            lang,
        ),
        _table("site", [_row(_site(c.group, names, lang), c, lang) for c in r.by_site], days, lang),
        _table("action", [_row(_action(c.group, lang), c, lang) for c in r.by_action], days, lang),
        _table("policy", [_row(_policy(c.group), c, lang) for c in r.by_policy], days, lang),
    ]
    return (
        "<ul>"
        + "".join(f"<li>{f}</li>" for f in facts)
        + "</ul>"
        + tables[0]
        + tables[1]
        + tables[2]
        + tables[3]
        + f'<p class="hint">{e(t(lang, "up.action_note"))}</p>'
        + tables[4]
        + f'<p class="hint">{e(t(lang, "up.method"))}</p>'
    )


def section(
    read: UpliftRead,
    *,
    lang: str = "en",
    tz: ZoneInfo = UTC_ZONE,
    names: Mapping[str, str] | None = None,
    control: str = "",
) -> str:
    """The section: the verdict in plain words and what it rests on, the figures behind a
    fold, then ``control`` (the holdout control's markup, ``holdout_control``)."""
    r, o = read.report, read.report.overall
    head = (
        '<section aria-labelledby="uplift-h" class="uplift">'
        f'<h2 id="uplift-h">{e(t(lang, "up.h2"))}</h2>'
    )
    if not read.periods:
        return head + f'<p class="up-none">{e(t(lang, "up.none"))}</p>{control}</section>'
    days = i18n.plural(lang, "day", r.settle_days)
    settled = i18n.plural(lang, "settled_episode", r.settled)
    plain = (
        f'<div class="up-plain"><p class="verdict">{verdict_text(o, lang)}</p>'
        f"<p>{bdi_t(lang, 'up.rests', settled=settled, days=days)}</p><ul>"
        f"<li>{_arm(lang, 'up.arm.contact', o.contact.back, o.contact.episodes, o.contact.back_share)}</li>"  # noqa: E501
        f"<li>{_arm(lang, 'up.arm.control', o.control.back, o.control.episodes, o.control.back_share)}</li>"  # noqa: E501
        "</ul></div>"
    )
    fold = (
        f'<details class="up-details"><summary>{e(t(lang, "up.details"))}</summary>'
        f"{figures(read, lang, tz, names or {})}</details>"
    )
    return head + plain + fold + control + "</section>"


# -- the holdout control ------------------------------------------------------------------


def change_refusal(role: Role, key_session: bool, site_id: str | None) -> str | None:
    """Whether this person may set or stop the holdout: None if so, else the catalogue key
    (``hold.*``; ``refusal.holdout_*`` on a POST) of why not. A manager's account may; a key
    session only with the admin scope (``PUT /v1/holdout`` asks for it) and not bound to a
    site (the holdout is the whole club's)."""
    if not role.at_least(Role.MANAGER):
        return "role"
    if site_id is not None:
        return "site"
    if key_session and not role.at_least(Role.ADMIN):
        return "role"
    return None


def _who(ref: str | None, who: Mapping[str, tuple[str, str]], lang: str) -> str:
    if not ref:
        return "—"
    kind, name = who.get(ref, ("id", ref))
    return t(lang, "hold.key", name=name) if kind == "key" else name


def _options(current: float | None) -> str:
    shares = sorted(set(SHARES) | ({current} if current else set()))
    chosen = current if current else 0.1
    return "".join(
        f'<option value="{s * 100:g}"{" selected" if s == chosen else ""}>{e(percent(s))}</option>'
        for s in shares
        if 0 < s <= MAX_SHARE
    )


def holdout_control(
    state: HoldoutOut,
    who: Mapping[str, tuple[str, str]],
    *,
    csrf: str,
    lang: str = "en",
    tz: ZoneInfo = UTC_ZONE,
    refusal: str | None = None,
    done: str | None = None,
) -> str:
    """The control group: in force or off, since when, set by whom and why; the forms to set
    a share (with a reason) or stop it, unless ``refusal`` (``change_refusal``) says why
    this person may not; and every change so far, newest first."""
    now = state.periods[0] if state.active and state.periods else None
    parts = []
    if done in DONE:
        text = (
            bdi_t(lang, "hold.done.set", share=percent(state.share))
            if done == "set"
            else e(t(lang, f"hold.done.{done}"))
        )
        parts.append(f'<p class="notice" role="status" id="holdout-done">{text}</p>')
    if now is not None:
        status = bdi_t(
            lang, "hold.on", share=percent(now.share), date=i18n.date_text(lang, now.start, tz)
        )
        status += " " + bdi_t(lang, "hold.set_by", who=_who(now.set_by, who, lang))
        if now.reason:
            status += " " + bdi_t(lang, "hold.reason_was", reason=now.reason)
    else:
        status = e(t(lang, "hold.off"))
    parts.append(f'<p class="hold-state" id="holdout-state">{status}</p>')
    if refusal is not None:
        why = "hold.site_key" if refusal == "site" else "hold.needs"
        parts.append(f'<p class="hint" id="holdout-why">{e(t(lang, why))}</p>')
    else:
        parts.append(f'<p class="hint">{e(t(lang, "hold.hint"))}</p>')
        hidden = f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        parts.append(
            f'<form method="post" action="{BASE}/reports/holdout" class="stack card hold-set">'
            f"{hidden}"
            f'<label for="hold-share">{e(t(lang, "hold.share"))}</label>'
            f'<select id="hold-share" name="share">{_options(now.share if now else None)}</select>'
            f'<label for="hold-reason">{e(t(lang, "hold.reason"))}</label>'
            '<input id="hold-reason" name="reason" type="text" maxlength="500" required '
            'autocomplete="off" dir="auto">'
            f'<button type="submit" class="primary">{e(t(lang, "hold.set"))}</button></form>'
        )
        if now is not None:
            parts.append(
                f'<form method="post" action="{BASE}/reports/holdout/stop" '
                f'class="stack card hold-stop">{hidden}'
                f'<label for="hold-stop-reason">{e(t(lang, "hold.stop_reason"))}</label>'
                '<input id="hold-stop-reason" name="reason" type="text" maxlength="500" '
                'autocomplete="off" dir="auto">'
                f'<button type="submit">{e(t(lang, "hold.stop"))}</button></form>'
            )
    if state.periods:
        items = []
        for p in state.periods:
            values: dict[str, object] = {
                "share": percent(p.share),
                "start": i18n.date_text(lang, p.start, tz),
                "who": _who(p.set_by, who, lang),
            }
            if p.end is None:
                line = bdi_t(lang, "hold.period.open", **values)
            else:
                values |= {
                    "end": i18n.date_text(lang, p.end, tz),
                    "ender": _who(p.ended_by, who, lang),
                }
                line = bdi_t(lang, "hold.period", **values)
            if p.reason:
                line += " " + bdi_t(lang, "hold.reason_was", reason=p.reason)
            items.append(f"<li>{line}</li>")
        parts.append(
            f'<details class="hold-history"><summary>{e(t(lang, "hold.history"))}</summary>'
            f"<ul>{''.join(items)}</ul></details>"
        )
    return (
        '<div class="holdout-control">'
        f'<h3 id="holdout-h">{e(t(lang, "hold.h3"))}</h3>{"".join(parts)}</div>'
    )


async def render(
    session: AsyncSession,
    tenant_id: str,
    *,
    as_of: datetime,
    site_id: str | None = None,
    lang: str = "en",
    tz: ZoneInfo = UTC_ZONE,
    names: Mapping[str, str] | None = None,
    csrf: str | None = None,
    refusal: str | None = "role",
    done: str | None = None,
) -> str:
    """The section for one tenant (and site): what the reports page's handler calls. With
    ``csrf`` the holdout control is drawn inside it (forms only when ``refusal`` is None)."""
    read = await read_uplift(session, tenant_id, as_of=as_of, site_id=site_id)
    control = ""
    if csrf is not None:
        state = await holdout_of(session, tenant_id)
        refs = [r for p in state.periods for r in (p.set_by, p.ended_by)]
        control = holdout_control(
            state,
            await who_set(session, tenant_id, refs),
            csrf=csrf,
            lang=lang,
            tz=tz,
            refusal=refusal,
            done=done,
        )
    return section(read, lang=lang, tz=tz, names=names, control=control)
