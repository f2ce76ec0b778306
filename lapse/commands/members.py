"""``lapse members forget|map-ids|import-profiles``: the member directory of a tenant (ids in
other systems, profiles) and the right to be forgotten (docs/after-they-leave.md)."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from lapse.commands.session import migrated_session
from plumbing.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mem = sub.add_parser(
        "members",
        help="members of a tenant: the directory (ids, profiles) and the right to be forgotten",
    )
    mem.set_defaults(run=run_members)
    mact = mem.add_subparsers(dest="action", required=True)
    forget = mact.add_parser("forget", help="erase one member everywhere Lapse can (a tombstone)")
    forget.add_argument("--tenant", required=True)
    forget.add_argument("--member", required=True)
    mapids = mact.add_parser(
        "map-ids",
        help="map members to their ids in another system (Kisi) from a CSV with the columns "
        "member_id,external_id; the whole file or nothing",
    )
    mapids.add_argument("--tenant", required=True)
    mapids.add_argument("--system", default="kisi", help="default: kisi")
    mapids.add_argument("file", metavar="FILE")
    profiles = mact.add_parser(
        "import-profiles",
        help="set member profiles from a CSV with the column member_id and any of "
        "display_name,phone,email,plan,photo_url,crm_id; each row replaces the member's "
        "profile; the whole file or nothing",
    )
    profiles.add_argument("--tenant", required=True)
    profiles.add_argument("file", metavar="FILE")


async def run_members(settings: Settings, args: argparse.Namespace) -> None:
    if args.action == "map-ids":
        await _map_ids(settings, args)
    elif args.action == "import-profiles":
        await _import_profiles(settings, args)
    else:
        await _forget(settings, args)


async def _map_ids(settings: Settings, args: argparse.Namespace) -> None:
    """A CSV of (member_id, external_id) into the member directory
    (docs/integrations/kisi.md); the whole file or nothing."""
    from records.directory import MappingFileError, import_mappings, read_mappings

    try:
        rows = read_mappings(Path(args.file))
    except (MappingFileError, OSError, UnicodeDecodeError, csv.Error) as exc:
        sys.exit(f"lapse members map-ids: {exc}")
    async with migrated_session(settings) as session:
        try:
            changed = await import_mappings(session, args.tenant, args.system, rows)
        except MappingFileError as exc:
            await session.rollback()
            sys.exit(f"lapse members map-ids: {exc}")
        await session.commit()
    print(
        f"{len(rows)} {args.system} id(s) of tenant {args.tenant} in the file, "
        f"{changed} new or changed; ingest applies them within 30 s"
    )


async def _import_profiles(settings: Settings, args: argparse.Namespace) -> None:
    """A CSV of member profiles (records/profiles.py); the whole file or nothing, errors by
    line and field, never a value (personal data)."""
    from records.profiles import ProfileFileError, import_profiles, read_profiles

    try:
        rows = read_profiles(Path(args.file))
    except (ProfileFileError, OSError, UnicodeDecodeError, csv.Error) as exc:
        sys.exit(f"lapse members import-profiles: {exc}")
    async with migrated_session(settings) as session:
        count = await import_profiles(session, args.tenant, rows)
        await session.commit()
    print(f"{count} profile(s) of tenant {args.tenant} set")


async def _forget(settings: Settings, args: argparse.Namespace) -> None:
    """Erase one member of one tenant, a tombstone kept (records/erasure.py)."""
    from records.erasure import erase

    async with migrated_session(settings) as session:
        pepper = settings.forget_pepper.get_secret_value()
        counts = await erase(session, args.tenant, args.member, pepper)
        if counts is None:
            await session.rollback()
            sys.exit(f"no member {args.member} of tenant {args.tenant}: nothing erased")
        await session.commit()
    rows = ", ".join(f"{t} {n}" for t, n in counts.items() if n)
    print(f"erased member {args.member} of {args.tenant} ({rows}); tombstone kept")
