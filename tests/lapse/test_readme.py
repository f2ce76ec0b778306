"""The README's "Commands" and "Settings" tables stay true: every ``lapse`` command has a
row naming each of its options (or the doc its row sends the reader to does), and the
settings table names every ``LAPSE_*`` variable ``Settings`` reads and no other."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

from lapse import cli
from plumbing.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.index("\n## ", start + 1)
    return README[start:end]


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(("lapse", *path)), parser
    for action in subs:
        for name, sub in action.choices.items():
            yield from _commands(sub, (*path, name))


def _mentions(text: str, option: str) -> bool:
    return re.search(re.escape(option) + r"(?![\w-])", text) is not None


def test_every_command_and_option_is_in_the_commands_table() -> None:
    # the first cell of each row (a pipe inside it is escaped: "access\|membership")
    rows = [
        re.split(r"(?<!\\)\|", line)[1:3]
        for line in _section("Commands").splitlines()
        if line.startswith("| `lapse ")
    ]
    missing: list[str] = []
    commands = list(_commands(cli.parser()))
    assert len(commands) > 20
    for name, parser in commands:
        # (a row may name several commands: "`lapse keys list …`, `lapse keys revoke …`")
        row = next((r for r in rows if _mentions(r[0], f"`{name}")), None)
        if row is None:
            missing.append(f"{name}: no row")
            continue
        docs = [(ROOT / d).read_text() for d in re.findall(r"`(docs/[\w-]+\.md)`", row[1])]
        for action in parser._actions:
            names = [o for o in action.option_strings if o not in ("-h", "--help")]
            in_row = any(_mentions(row[0], o) for o in names)
            if names and not in_row and not any(_mentions(d, o) for d in docs for o in names):
                missing.append(f"{name}: {names[-1]}")
    assert not missing, "the README's commands table misses:\n" + "\n".join(missing)


def test_the_settings_table_names_every_setting_and_no_other() -> None:
    # the first cell of each row names one variable or several ("`LAPSE_A`, `LAPSE_B`")
    cells = [line.split("|")[1] for line in _section("Settings").splitlines() if "| `" in line]
    table = {v for cell in cells for v in re.findall(r"`(LAPSE_[A-Z0-9_]+)`", cell)}
    settings = {f"LAPSE_{name.upper()}" for name in Settings.model_fields}
    assert table == settings
