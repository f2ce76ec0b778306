"""The pure domain: events and a clock in, member state changes and alerts out. No I/O.

Nothing here imports Kafka, SQLAlchemy or FastAPI, so the same code runs live, in replay,
in calibration and under property tests.
"""

from detector.core.clock import Clock, ManualClock, WallClock, Watermark
from detector.core.engine import Detector
from detector.core.policy import BgNbdPolicy, CadencePolicy, FixedPolicy, Policy, Warnings
from detector.core.state import MemberState, Status

__all__ = [
    "BgNbdPolicy",
    "CadencePolicy",
    "Clock",
    "Detector",
    "FixedPolicy",
    "ManualClock",
    "MemberState",
    "Policy",
    "Status",
    "WallClock",
    "Warnings",
    "Watermark",
]
