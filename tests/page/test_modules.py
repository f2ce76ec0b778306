"""How the staff page's modules share code: what one router needs of another (the session,
the form and role checks, the clock, the refusal, the headers) is a public name of the
module that holds it (``api.page.access``, ``api.page.answers``), never a private helper
reached into from outside; and every form route checks who posts before it reads what was
posted."""

from __future__ import annotations

import ast
import typing
from pathlib import Path
from typing import Any

import api.page
from api.app import create_app
from api.page import access
from plumbing.settings import Settings

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


def test_every_form_route_checks_who_posts_before_reading_the_form(settings: Settings) -> None:
    """A page POST takes the checked form (``access.Posted``) after its role dependency:
    FastAPI solves a route's dependencies in the order they are declared, so a person
    without the role is refused for the role, whatever they posted (``test_admin.py`` holds
    one route to it over HTTP; this holds every route)."""
    posted = typing.get_args(access.Posted)[1].dependency
    forms = 0
    for included in create_app(settings, deliver=False).routes:
        contexts = getattr(included, "effective_route_contexts", None)
        routes: list[Any] = list(contexts()) if contexts is not None else [included]
        for route in routes:
            needs = route.dependant.dependencies if hasattr(route, "dependant") else []
            calls = [d.call for d in needs]
            if posted not in calls:
                continue
            forms += 1
            before = [d.name for d in needs[: calls.index(posted)]]
            assert "staff" in before, f"{route.path}: its form is read before its role"
    assert forms >= 11  # the admin's seven, language, acknowledge, the control group's two
