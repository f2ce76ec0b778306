"""Which core modules the mypyc build compiled, and whether they still match their sources.

``setup.py`` compiles the core's modules with mypyc when it can (see there). Python imports an
extension module in preference to the ``.py`` beside it, so after an edit a compiled module
left from an earlier build would run the old code silently. The build therefore writes
``MANIFEST``, the SHA-256 of each source it compiled; on import, ``detector.core`` compares it
with the sources (``stale``) and, if any differs, runs every module from its source instead
(``SourcesOnly``), with a warning. Contents, not times: a wheel install or a checkout sets
file times that say nothing about which is newer. All or nothing: compiled and interpreted
modules of the core would hold two different copies of the same classes.

Never compiled itself (``setup.py`` leaves it out): it judges the compiled modules.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Iterable, Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import EXTENSION_SUFFIXES, ModuleSpec
from pathlib import Path
from types import ModuleType

MANIFEST = "compiled.json"
# The modules that stay interpreted: the package's __init__ (it runs the check) and this one.
INTERPRETED = frozenset({"__init__", "buildinfo"})
# mypyc's runtime for the whole group: one extension module next to the package, named after
# the group (``group_name`` in setup.py).
SHARED_LIB = "core__mypyc"


def digest(source: Path) -> str:
    return hashlib.sha256(source.read_bytes()).hexdigest()


def compiled_modules(directory: Path) -> list[str]:
    """The modules of ``directory`` present as extension modules (whatever built them)."""
    return sorted({m for m in map(_extension_module, directory.iterdir()) if m is not None})


def _extension_module(path: Path) -> str | None:
    """The module an extension file holds (``engine`` for ``engine.cpython-311-….so``)."""
    for suffix in EXTENSION_SUFFIXES:  # the most specific first (``.so`` last)
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return None


def write_manifest(directory: Path, modules: Iterable[str]) -> None:
    """Record the sources about to be compiled (called by setup.py)."""
    hashes = {m: digest(directory / f"{m}.py") for m in sorted(modules)}
    (directory / MANIFEST).write_text(json.dumps(hashes, indent=1) + "\n")


def stale(directory: Path) -> list[str]:
    """Compiled modules of ``directory`` whose source is not what was compiled (or is gone,
    or was never recorded): each would run other code than its ``.py`` says."""
    compiled = compiled_modules(directory)
    if not compiled:
        return []
    try:
        built: dict[str, str] = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return compiled
    out = []
    for module in compiled:
        source = directory / f"{module}.py"
        if not source.exists() or built.get(module) != digest(source):
            out.append(module)
    return out


def remove_compiled(directory: Path) -> list[Path]:
    """Delete the compiled modules of ``directory`` and the group's shared library beside it
    (a pure build, or a compiled build that failed half way): the removed files."""
    removed = []
    for path in [*directory.iterdir(), *directory.parent.iterdir()]:
        module = _extension_module(path)
        if module is not None and (path.parent == directory or module == SHARED_LIB):
            path.unlink()
            removed.append(path)
    return removed


class SourcesOnly(MetaPathFinder):
    """Finds the modules of ``package`` in their ``.py`` files only, ahead of the standard
    finders (which prefer an extension module): the core interpreted although compiled."""

    def __init__(self, package: str, directory: Path) -> None:
        self.prefix = package + "."
        self.directory = directory

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        name = fullname.removeprefix(self.prefix)
        source = self.directory / f"{name}.py"
        if name == fullname or "." in name or not source.exists():
            return None
        return importlib.util.spec_from_file_location(fullname, source)
