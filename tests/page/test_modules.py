"""How the staff page's modules share code: what one router needs of another (the session,
the form and role checks, the clock, the refusal, the headers) is a public name of the
module that holds it (``api.page.access``, ``api.page.answers``), never a private helper
reached into from outside."""

from __future__ import annotations

import ast
from pathlib import Path

import api.page

PAGE = Path(api.page.__file__).parent


def test_no_page_module_imports_another_modules_private_names() -> None:
    reached: list[str] = []
    for path in sorted(PAGE.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        # the page's modules this one imports as modules (``from api.page import access``)
        modules = {
            a.asname or a.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "api.page"
            for a in node.names
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("api.page"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                reached += [f"{path.name}:{node.lineno}: {node.module}.{n}" for n in private]
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in modules
                and node.attr.startswith("_")
            ):
                reached.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")
    assert not reached, "private names used outside their module:\n" + "\n".join(reached)
