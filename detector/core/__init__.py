"""The pure domain: events and a clock in, member state changes and alerts out. No I/O.

Nothing here imports Kafka, SQLAlchemy or FastAPI, so the same code runs live, in replay,
in calibration and under property tests.

The modules may be compiled by mypyc (``setup.py``): ``COMPILED`` says which runs.
``LAPSE_PURE=1`` in the environment runs them interpreted all the same (tracebacks and
debuggers see the source; tests compare the two), and so do compiled modules that no longer
match their sources, with a warning (``buildinfo``).
"""

import os
import sys
import warnings
from importlib.machinery import ExtensionFileLoader
from pathlib import Path

from detector.core.buildinfo import SourcesOnly, compiled_modules, stale

_HERE = Path(__file__).parent
if compiled_modules(_HERE):
    _stale = stale(_HERE)
    if _stale:
        warnings.warn(
            f"detector/core: compiled module(s) {', '.join(_stale)} do not match their source "
            "(edited since the last build?), so the core runs interpreted: rebuild with "
            "`pip install -e .`, or `LAPSE_PURE=1 pip install -e .` to remove the build",
            RuntimeWarning,
            stacklevel=2,
        )
    if _stale or os.environ.get("LAPSE_PURE", "") not in ("", "0"):
        sys.meta_path.insert(0, SourcesOnly(__name__, _HERE))

from detector.core import engine  # noqa: E402  (after the check, deliberately)
from detector.core.clock import Clock, ManualClock, WallClock, Watermark  # noqa: E402
from detector.core.engine import Detector  # noqa: E402
from detector.core.hybrid import HybridPolicy  # noqa: E402
from detector.core.policy import BgNbdPolicy, CadencePolicy, FixedPolicy, Policy, Warnings  # noqa: E402
from detector.core.risk import RiskPolicy  # noqa: E402
from detector.core.state import MemberState, Status  # noqa: E402

# Whether the core runs compiled (mypyc) or interpreted.
COMPILED: bool = isinstance(getattr(engine, "__loader__", None), ExtensionFileLoader)

__all__ = [
    "COMPILED",
    "BgNbdPolicy",
    "CadencePolicy",
    "Clock",
    "Detector",
    "FixedPolicy",
    "HybridPolicy",
    "ManualClock",
    "MemberState",
    "Policy",
    "RiskPolicy",
    "Status",
    "WallClock",
    "Warnings",
    "Watermark",
]
