"""``lapse staff add|list|disable``: the staff page accounts of a tenant
(records/staff_accounts.py); the password is never echoed, printed or logged."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from lapse.commands.session import migrated_session
from plumbing.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    staff = sub.add_parser("staff", help="staff page accounts of a tenant (people, roles)")
    staff.set_defaults(run=run_staff)
    sact = staff.add_subparsers(dest="action", required=True)
    sa = sact.add_parser("add", help="add an account; the password is prompted for")
    sa.add_argument("--tenant", required=True)
    sa.add_argument("--login", required=True, help="an email or a user name")
    sa.add_argument("--name", default="", help="the name shown on the page")
    sa.add_argument("--role", choices=["front_desk", "manager", "admin"], default="front_desk")
    sa.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )
    sl = sact.add_parser("list")
    sl.add_argument("--tenant", required=True)
    sd = sact.add_parser("disable", help="disable an account and end its sessions")
    sd.add_argument("--tenant", required=True)
    sd.add_argument("login")


def _read_password(from_stdin: bool) -> str:
    """The new password: the first line of stdin, or typed twice at a hidden prompt."""
    import getpass

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password (not shown): ")
    if getpass.getpass("Again: ") != first:
        sys.exit("the two passwords differ")
    return first


async def run_staff(settings: Settings, args: argparse.Namespace) -> None:
    from records import staff_accounts as accounts

    password = _read_password(args.password_stdin) if args.action == "add" else ""
    async with migrated_session(settings) as session:
        now = datetime.now(UTC)
        if args.action == "add":
            try:
                row = await accounts.add_account(
                    session,
                    args.tenant,
                    args.login,
                    password,
                    role=accounts.Role(args.role),
                    display_name=args.name,
                    now=now,
                )
            except ValueError as exc:
                sys.exit(str(exc))
            await session.commit()
            print(f"account {row.login} ({row.role}) for tenant {row.tenant_id}")
        elif args.action == "list":
            for r in await accounts.accounts_of(session, args.tenant):
                locked = r.locked_until is not None and r.locked_until > now
                state = "disabled" if r.disabled else "locked" if locked else "active"
                print(f"{r.login}  {r.role:10} {state:8} {r.display_name}")
        elif not await accounts.disable_account(session, args.tenant, args.login, now):
            sys.exit(f"no account {args.login} for tenant {args.tenant}")
        else:
            print(f"disabled {args.login} and ended its sessions")
