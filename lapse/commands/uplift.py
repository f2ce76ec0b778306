"""``lapse uplift``: whether reaching out brings members back, the report of /v1/uplift in
plain words and a table (docs/uplift.md)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from lapse.commands.arguments import iso_time, positive
from lapse.commands.session import migrated_session
from plumbing.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = sub.add_parser(
        "uplift",
        help="whether reaching out brings members back: contacted against the control group",
        description="The report of /v1/uplift in plain words and a table (docs/uplift.md).",
    )
    up.set_defaults(run=run_uplift)
    up.add_argument("--tenant", required=True)
    up.add_argument("--site", help="one site only")
    up.add_argument(
        "--as-of",
        type=iso_time,
        help="ISO 8601 moment of the report, with its offset (default: now)",
    )
    up.add_argument(
        "--settle-days",
        type=positive,
        default=60.0,
        help="an episode is settled this many days after it opened (default 60)",
    )


async def run_uplift(settings: Settings, args: argparse.Namespace) -> None:
    from api.read.uplift import read_uplift, text_report

    as_of = args.as_of or datetime.now(UTC)
    if as_of.tzinfo is None:
        sys.exit("--as-of needs a UTC offset, e.g. 2026-01-01T00:00:00+00:00")
    async with migrated_session(settings) as session:
        read = await read_uplift(
            session, args.tenant, as_of=as_of, site_id=args.site, settle_days=args.settle_days
        )
    print(text_report(read))
