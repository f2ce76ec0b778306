"""``lapse migrate`` and ``lapse secrets``: the schema and the secrets stored in it
(docs/webhooks.md: encryption at rest, rotation)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from plumbing.database import create_engine, session_factory
from plumbing.settings import Settings
from records.migrate import upgrade

if TYPE_CHECKING:
    from records.sealing import Sealer


def add_migrate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub.add_parser("migrate", help="bring the database to the latest schema").set_defaults(
        run=run_migrate
    )


def add_secrets(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sec = sub.add_parser("secrets", help="the key webhook and Kisi secrets are encrypted with")
    sec.set_defaults(run=run_secrets)
    sec.add_argument(
        "action",
        choices=["new-key", "reseal"],
        help="new-key: print a fresh LAPSE_SECRET_KEY; reseal: re-encrypt every stored "
        "secret with LAPSE_SECRET_KEY (after a rotation, or once a key is set)",
    )


async def _upgrade_and_reseal(settings: Settings, sealer: Sealer) -> int:
    """Migrate, then the data step: secrets stored in clear (or under an old key) sealed
    with the current key. How many secrets were sealed."""
    from records.sealing import reseal_all

    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        return await reseal_all(session_factory(engine), sealer)
    finally:
        await engine.dispose()


async def run_migrate(settings: Settings, _args: argparse.Namespace) -> None:
    from records.sealing import Sealer

    sealer = Sealer.from_settings(settings)  # a malformed key stops here, before any change
    sealed = await _upgrade_and_reseal(settings, sealer)
    print("database at the latest revision")
    if sealed:
        print(f"{sealed} stored secret(s) (webhooks, Kisi) encrypted with LAPSE_SECRET_KEY")


async def run_secrets(settings: Settings, args: argparse.Namespace) -> None:
    """``lapse secrets new-key|reseal``."""
    from records.sealing import Sealer, new_key

    if args.action == "new-key":
        print(new_key())
        return
    sealer = Sealer.from_settings(settings)
    if not sealer.enabled:
        sys.exit("LAPSE_SECRET_KEY is not set: nothing to encrypt with")
    sealed = await _upgrade_and_reseal(settings, sealer)
    print(f"{sealed} stored secret(s) (webhooks, Kisi) re-encrypted with LAPSE_SECRET_KEY")
