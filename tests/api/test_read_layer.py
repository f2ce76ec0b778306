"""The api's layering rules (docs/architecture.md, "An API route"), read with ``ast``:

- no route module builds SQL: queries and writes are functions of ``api/read/``;
- no module calls a FastAPI endpoint function as a helper (imports one from another module,
  or calls one of its own module's endpoints);
- tenant and site scoping is written once: only ``api/read/scope.py`` compares a column with
  a principal's ``site_id``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "api"
# The modules holding routes: every module of the api that makes an ``APIRouter`` (the
# page's ``accounts.py`` is its staff-account repository and makes none).
ROUTE_MODULES = sorted(p for p in API.rglob("*.py") if "APIRouter(" in p.read_text())
SQL = {"select", "update", "delete", "insert", "union", "text"}
ROUTE_DECORATORS = {"get", "post", "put", "patch", "delete", "api_route"}


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _endpoints(tree: ast.Module) -> set[str]:
    """Names of the functions decorated as routes (``@router.get(...)`` and the like)."""
    out = set()
    for node in tree.body:
        if not isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef):
            continue
        for deco in node.decorator_list:
            func = deco.func if isinstance(deco, ast.Call) else deco
            if isinstance(func, ast.Attribute) and func.attr in ROUTE_DECORATORS:
                out.add(node.name)
    return out


def _names_principal(node: ast.expr) -> bool:
    """``principal``, ``p`` or ``staff.principal``: what the api calls a caller."""
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return name in ("principal", "p")


def test_route_modules_hold_no_sql() -> None:
    found = []
    for path in ROUTE_MODULES:
        for node in ast.walk(_tree(path)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in SQL
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.func.id}(")
    assert not found, f"SQL in route modules (move it to api/read/): {found}"


def test_no_endpoint_function_is_called_as_a_helper() -> None:
    endpoints = {_module(p): _endpoints(_tree(p)) for p in ROUTE_MODULES}
    assert sum(len(v) for v in endpoints.values()) > 40  # the scan sees the routes
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0].startswith(".") or rel.parts[0] in {"node_modules", "tests", "build"}:
            continue
        tree = _tree(path)
        own = endpoints.get(_module(path), set())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in endpoints:
                found += [
                    f"{rel}:{node.lineno} imports {node.module}.{a.name}"
                    for a in node.names
                    if a.name in endpoints[node.module]
                ]
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in own
            ):
                found.append(f"{rel}:{node.lineno} calls {node.func.id}")
    assert not found, f"endpoint functions called as helpers: {found}"


def test_site_scoping_is_written_once() -> None:
    """A comparison with ``<principal>.site_id`` inside a query condition appears only in
    ``api/read/scope.py`` (a route may still refuse a site a bound key asks for)."""
    found = []
    for path in sorted(API.rglob("*.py")):
        if path == API / "read" / "scope.py":
            continue
        for node in ast.walk(_tree(path)):
            if not isinstance(node, ast.Compare) or not isinstance(node.ops[0], ast.Eq):
                continue
            sides = [node.left, *node.comparators]
            column = any(isinstance(s, ast.Attribute) and s.attr == "site_id" for s in sides)
            principal = any(
                isinstance(s, ast.Attribute) and s.attr == "site_id" and _names_principal(s.value)
                for s in sides
            )
            if column and principal:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, f"site scoping outside api/read/scope.py: {found}"
