"""``lapse kisi add|map|list``: the Kisi webhook integrations of a tenant
(docs/integrations/kisi.md); ``ingest.kisi`` does the work and words the lines."""

from __future__ import annotations

import argparse
import sys

from plumbing.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    kisi = sub.add_parser("kisi", help="Kisi webhook integrations of a tenant")
    kisi.set_defaults(run=run_kisi)
    kisi.add_argument("action", choices=["add", "map", "list"])
    kisi.add_argument("--tenant", required=True)
    kisi.add_argument(
        "--place", action="append", metavar="PLACE_ID=SITE_ID", help="for add and map"
    )
    kisi.add_argument("--integration", metavar="ID", help="for map: the integration to change")
    kisi.add_argument(
        "--require-mapping",
        choices=["on", "off"],
        help="for add and map: on, a Kisi user the member directory does not map to a member "
        "is acknowledged and counted (unmapped_user), not taken as a member id (default off)",
    )


async def run_kisi(settings: Settings, args: argparse.Namespace) -> None:
    from ingest.kisi import run_kisi_command

    try:
        require = None if args.require_mapping is None else args.require_mapping == "on"
        text = await run_kisi_command(
            settings, args.action, args.tenant, args.place or [], args.integration, require
        )
    except ValueError as exc:
        sys.exit(f"lapse kisi: {exc}")
    print(text)
