"""The room table of docs/architecture.md, held against every import in the tree.

Every import is read with ``ast`` (inside functions and ``TYPE_CHECKING`` blocks too: a lazy
import is still a dependency), mapped to the room of the module it names, and checked against
the rooms the importing room may import. The table lives in the doc so that the design and
the rule are one text.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
OUTSIDE = {"tests", "build", "node_modules", "scripts", "deploy", "docs"}


def room_table() -> dict[str, set[str]]:
    """``{room: rooms it may import}`` from the table between the doc's ``rooms`` markers."""
    text = DOC.read_text()
    block = text.split("<!-- rooms:", 1)[1].split("<!-- /rooms -->", 1)[0]
    table: dict[str, set[str]] = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        allowed = set(re.findall(r"`([\w.]+)`", cells[2]))
        table[cells[0].strip("`")] = allowed
    return table


def room_of(module: str, rooms: set[str]) -> str | None:
    """The longest room name that is the module or a package above it."""
    best = None
    for room in rooms:
        if (module == room or module.startswith(room + ".")) and (
            best is None or len(room) > len(best)
        ):
            best = room
    return best


def modules() -> list[tuple[str, Path]]:
    """Every module of the house (tests, tooling and generated trees left out)."""
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0].startswith(".") or rel.parts[0] in OUTSIDE or len(rel.parts) == 1:
            continue
        out.append((".".join(rel.with_suffix("").parts).removesuffix(".__init__"), path))
    return out


def imported(path: Path, module: str) -> list[tuple[int, str]]:
    """``(line, module)`` for every import of the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((node.lineno, name))
            # ``from plumbing import retry``: the name may be a module of its own room
            out += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return out


def test_the_table_names_every_package_and_only_packages_that_exist() -> None:
    table = room_table()
    tops = {
        p.name
        for p in ROOT.iterdir()
        if p.is_dir()
        and not p.name.startswith(".")
        and p.name not in OUTSIDE
        and (any(p.glob("*.py")))
    }
    assert tops <= {r.split(".")[0] for r in table}, f"packages in no room: {tops - set(table)}"
    for room in table:
        assert (ROOT / room.replace(".", "/")).is_dir(), f"room {room} has no folder"
        for other in table[room]:
            assert other in table, f"{room} may import {other}, which is no room"


def test_no_room_imports_one_it_may_not() -> None:
    table = room_table()
    rooms = set(table)
    stdlib = sys.stdlib_module_names
    wrong: list[str] = []
    for module, path in modules():
        mine = room_of(module, rooms)
        assert mine is not None, f"{module} is in no room"
        for line, name in imported(path, module):
            theirs = room_of(name, rooms)
            where = f"{path.relative_to(ROOT)}:{line}"
            if theirs is None:
                top = name.split(".")[0]
                if top == "tests":
                    wrong.append(f"{where}: {mine} imports the tests ({name})")
                if mine == "detector.core" and top not in stdlib and top != "__future__":
                    wrong.append(f"{where}: the pure core imports {name} (third party)")
                continue
            if theirs != mine and theirs not in table[mine]:
                wrong.append(f"{where}: {mine} imports {name} ({theirs})")
    assert not wrong, "imports across rooms the table forbids:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import plumbing.settings\n", "plumbing.settings"),
        ("def f():\n    from records.tables import AlertRow\n", "records.tables"),
    ],
)
def test_imports_inside_functions_are_read(tmp_path: Path, source: str, expected: str) -> None:
    """The checker itself: a lazy import in a function body is seen like a top-level one."""
    f = tmp_path / "m.py"
    f.write_text(source)
    assert expected in {name for _, name in imported(f, "x.m")}
