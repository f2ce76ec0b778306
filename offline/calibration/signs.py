"""The failed payments and denied entries the calibration recorders note per absence.

Both recorders (the risk fit's, ``risk.RecordingRisk``, and the hybrid search's,
``hybrid.RecordingHybrid``) need, for each absence, the first sign during it (when the
payment term or rule began to count) and the latest sign before it (for the payment
lookback). The engine keeps only the latest sign (``trouble_at``), so what a recorder saw at
an earlier event of the absence is merged in: a second failure during the absence must not
move the first, and a row arriving late may bring an earlier sign before it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from detector.core.store import MemberStore


def absence_signs(
    m: MemberStore, slot: int, known: tuple[float, float] | None
) -> tuple[float, float]:
    """``(first sign during the member's current absence, inf if none; latest before it,
    -inf if none)``, merged with ``known``, the pair noted at an earlier event of the same
    absence (None at its first)."""
    a, t = m.anchor[slot], m.trouble_at[slot]
    during = t if t >= a else math.inf  # (False for NaN: none)
    before = t if t < a else -math.inf
    if known is not None:
        during, before = min(during, known[0]), max(before, known[1])
    return during, before
