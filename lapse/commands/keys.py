"""``lapse keys create|list|revoke``: the API keys of a tenant (records/api_keys.py)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from lapse.commands.session import migrated_session
from plumbing.settings import Settings
from records.api_keys import SCOPES, create_key, keys_of, revoke_key


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="API keys of a tenant")
    keys.set_defaults(run=run_keys)
    kact = keys.add_subparsers(dest="action", required=True)
    kc = kact.add_parser("create")
    kc.add_argument("--tenant", required=True)
    kc.add_argument("--site")
    kc.add_argument("--name", default="")
    kc.add_argument("--scope", action="append", choices=SCOPES)
    kl = kact.add_parser("list")
    kl.add_argument("--tenant", required=True)
    kr = kact.add_parser("revoke")
    kr.add_argument("--tenant", required=True)
    kr.add_argument("key_id")


async def run_keys(settings: Settings, args: argparse.Namespace) -> None:
    async with migrated_session(settings) as session:
        if args.action == "create":
            scopes = tuple(args.scope or SCOPES)
            try:
                plain, row = await create_key(
                    session, args.tenant, scopes=scopes, site_id=args.site, name=args.name
                )
            except ValueError as exc:
                sys.exit(str(exc))
            await session.commit()
            print(f"key id {row.id} for tenant {row.tenant_id}, scopes {' '.join(scopes)}")
            print(f"{plain}\n(shown once: store it now)")
        elif args.action == "list":
            for r in await keys_of(session, args.tenant):
                state = "revoked" if r.revoked_at else "active"
                print(f"{r.id}  {r.prefix}…  {state:8} {' '.join(r.scopes)}  {r.name}")
        else:
            found = await revoke_key(session, args.tenant, args.key_id, datetime.now(UTC))
            await session.commit()
            if not found:
                sys.exit(f"no key {args.key_id} for tenant {args.tenant}")
            print(f"revoked {args.key_id}")
