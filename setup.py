"""Build hook: compile the detector's pure core (``detector/core``) with mypyc when possible.

Everything else is in pyproject.toml. The core is plain, strictly typed Python; compiled it
runs faster (bench/detector_bench.py core prints which one ran), interpreted it runs the same.
So compiling is best effort, and the install never depends on it:

- ``LAPSE_PURE=1`` skips it (and removes compiled modules an earlier build left in the tree);
- any failure (mypyc rejects the code, no C compiler as in a slim image) is printed and the
  install goes on without the compiled modules.

Compiled modules sit next to their sources (editable installs copy them there) with a
manifest of the sources they were built from; ``detector.core`` refuses compiled modules
that no longer match (see detector/core/buildinfo.py).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

# setuptools ships no types before 71 (the venv's may be older): ignored either way.
from setuptools import setup  # type: ignore[import-untyped, unused-ignore]
from setuptools.command.build_ext import (  # type: ignore[import-untyped, unused-ignore]
    build_ext,
)

ROOT = Path(__file__).resolve().parent
CORE = ROOT / "detector" / "core"


def _buildinfo() -> ModuleType:
    """detector/core/buildinfo.py by path: importing the package would import the core."""
    spec = importlib.util.spec_from_file_location("_lapse_buildinfo", CORE / "buildinfo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _say(message: str) -> None:
    print(f"lapse setup.py: {message}", file=sys.stderr, flush=True)


def _pure(reason: str) -> list[Any]:
    removed = _buildinfo().remove_compiled(CORE)
    tail = f"; removed {len(removed)} compiled module(s) of an earlier build" if removed else ""
    _say(f"the detector core stays pure Python: {reason}{tail}")
    return []


# The commands that build extension modules. pip runs setup.py for metadata first (egg_info,
# dist_info): translating the core then would only repeat mypy's work.
BUILDS = {"build", "build_ext", "bdist_wheel", "editable_wheel", "develop", "install"}


def _extensions() -> list[Any]:
    if not BUILDS & set(sys.argv[1:]):
        return []
    if os.environ.get("LAPSE_PURE", "") not in ("", "0"):
        return _pure("LAPSE_PURE is set")
    info = _buildinfo()
    modules = sorted(p.stem for p in CORE.glob("*.py") if p.stem not in info.INTERPRETED)
    try:
        from mypyc.build import mypycify

        # Relative paths: mypyc names the modules after them (and runs from the root).
        os.chdir(ROOT)
        extensions = mypycify(
            [f"detector/core/{m}.py" for m in modules], group_name="detector.core"
        )
    except (Exception, SystemExit):  # mypyc exits on type errors
        traceback.print_exc()
        return _pure("mypyc could not translate it (see above)")
    info.write_manifest(CORE, modules)
    return list(extensions)


class OptionalBuildExt(build_ext):  # type: ignore[misc, unused-ignore]
    """build_ext that falls back to the pure core when the C build fails: all or nothing
    (a half-compiled core would mix native and interpreted copies of the same classes)."""

    extensions: list[Any]
    build_lib: str

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # CompileError, a missing compiler, ...
            for ext in self.extensions:  # what was built before the failure
                built = Path(self.build_lib, self.get_ext_filename(ext.name))
                built.unlink(missing_ok=True)
            self.extensions = []
            _pure(f"compiling failed ({type(exc).__name__}: {exc})")

    def get_outputs(self) -> list[str]:
        return super().get_outputs() if self.extensions else []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
