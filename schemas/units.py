"""The units every room counts time in: POSIX seconds, as floats (``datetime.timestamp()``).

Here, in the contracts, because every room may import ``schemas`` (the pure core included:
docs/architecture.md's room table), so each room takes the day from one place.
"""

from __future__ import annotations

from typing import Final

DAY: Final = 86_400.0  # seconds in a day
