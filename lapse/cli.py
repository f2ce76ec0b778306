"""The ``lapse`` command: the parser assembled from the subcommands of ``lapse/commands/``,
and ``main``, the console script (``lapse = "lapse.cli:main"``).

Each group of subcommands is a module that adds its parsers and runs them; this module only
lists them, in the order ``lapse --help`` shows, and runs the one chosen with the settings
(``LAPSE_*``) and logging configured. A file named on the command line that is missing or
cannot be read as a history file or a detector configuration, or history files with no visit
left to learn from or score (every row rejected), end the command with one line saying which
and why (exit status 1), not a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from detector.config import ConfigError
from lapse.commands import (
    database,
    history,
    holdout,
    keys,
    kisi,
    members,
    service,
    simulate,
    staff,
    uplift,
)
from offline.replay import NothingToLearn
from plumbing import logs
from plumbing.settings import Settings
from schemas.history import HistoryFormatError

Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, None]]
AddParser = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

# The subcommands in the order of ``lapse --help``.
SUBCOMMANDS: tuple[AddParser, ...] = (
    database.add_migrate,
    keys.add_parser,
    staff.add_parser,
    service.add_broker,
    database.add_secrets,
    service.add_detector,
    service.add_ingest,
    service.add_api,
    service.add_demo,
    history.add_replay,
    history.add_evaluate,
    history.add_calibrate,
    history.add_import,
    history.add_sort,
    members.add_parser,
    kisi.add_parser,
    simulate.add_parser,
    uplift.add_parser,
    service.add_mqtt_bridge,
    holdout.add_parser,
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lapse", description="The ``lapse`` command.")
    sub = p.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format == "json")
    run: Command = args.run
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run(settings, args))
    except (HistoryFormatError, ConfigError, NothingToLearn) as exc:
        # a history or configuration file, or history files with no visit left to use
        sys.exit(f"lapse {args.command}: {exc}")
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:  # a file named
        sys.exit(f"lapse {args.command}: {exc.filename}: {exc.strerror}")


if __name__ == "__main__":
    main()
