"""``lapse holdout set|stop|show``: the tenant's control group, a share of new episodes held
back from contact (docs/webhooks.md, records/holdout.py)."""

from __future__ import annotations

import argparse

from lapse.commands.session import migrated_session
from plumbing.settings import Settings
from schemas.holdout import MAX_REASON, MAX_SHARE, check_reason, check_share


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hold = sub.add_parser(
        "holdout",
        help="the tenant's control group: a share of new episodes held back from contact",
    )
    hold.set_defaults(run=run_holdout)
    hact = hold.add_subparsers(dest="action", required=True)
    hs = hact.add_parser("set", help="hold back a share of the episodes opened from now on")
    hs.add_argument("--share", required=True, type=_share, help="0.1 or 10%%; at most 0.5")
    hst = hact.add_parser("stop", help="contact every episode opened from now on")
    hsh = hact.add_parser("show", help="the share in force and every period")
    for h in (hs, hst, hsh):
        h.add_argument("--tenant", required=True)
    for h in (hs, hst):
        h.add_argument(
            "--reason",
            type=_reason,
            help=f"why, kept with the period (at most {MAX_REASON} characters, no control "
            "characters)",
        )
        h.add_argument(
            "--by", default="cli", type=_who, help="who (kept with the period; default cli)"
        )


def _share(text: str) -> float:
    """A share as 0.1 or 10%: more than 0, at most 0.5 (schemas/holdout.py)."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a share: {text!r} (give 0.1 or 10%, more than 0 and at most {MAX_SHARE})"
        ) from None
    try:
        return check_share(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _reason(text: str) -> str:
    """The reason as ``PUT /v1/holdout`` and the staff page take it (schemas/holdout.py)."""
    try:
        return check_reason(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _who(text: str) -> str:
    if not 0 < len(text) <= 36:
        raise argparse.ArgumentTypeError("1 to 36 characters")
    return text


async def run_holdout(settings: Settings, args: argparse.Namespace) -> None:
    from records import holdout

    async with migrated_session(settings) as session:
        if args.action == "set":
            change = await holdout.set_share(
                session, args.tenant, args.share, by=args.by, reason=args.reason
            )
        elif args.action == "stop":
            change = await holdout.stop(session, args.tenant, by=args.by, reason=args.reason)
        await session.commit()
        if args.action != "show" and not change.changed:
            print("unchanged: " + ("that share is in force" if args.action == "set" else "off"))
        rows = await holdout.period_rows(session, args.tenant)
    now = holdout.in_force(rows)
    print(
        f"holdout of {args.tenant}: "
        + (
            f"{now.share:.1%} of new episodes since {now.start:%Y-%m-%d %H:%M} UTC"
            if now
            else "off"
        )
    )
    for r in reversed(rows):
        end = f"{r.end:%Y-%m-%d %H:%M}" if r.end else "in force"
        print(
            f"  {r.start:%Y-%m-%d %H:%M} to {end:16}  {r.share:6.1%}  set by {r.set_by}"
            + (f"  ({r.reason})" if r.reason else "")
        )
