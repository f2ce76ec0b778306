"""A simulated club's history (members, visits, payments, cancellations, ground truth), written
as the files a club would export. Imports only the contracts (schemas).

Every default in :class:`SimParams` is either a published figure (``docs/references.md``,
"How gyms lose members") or a stated assumption; ``docs/simulator.md`` lists each with its
source. The point of the simulator is to be *hard in the right ways*: retained members go on
holiday for weeks, low-frequency members are silent for a month as a matter of course, clubs
close on public holidays, members freeze; dropouts fade gradually or stop at once, and cancel
months after their last visit. A rule that looks good here has had to tell those apart.

The modules: ``params`` (the assumptions and the club profiles), ``club`` (what every
member of a run shares, and the run's clock), ``calendar`` (closures), ``members`` (a
member's life), ``visits`` (visit days and the rows a visit leaves), ``contact`` (the effect
of reaching out), ``truth`` (the ground truth and a member's rows), ``files`` (writing the
files; the demo's club).
"""

from simulator.calendar import closure_days, easter
from simulator.files import (
    Summary,
    read_contacts,
    simulate_club,
    simulate_files,
    simulate_profile,
)
from simulator.members import simulate_former, simulate_member
from simulator.params import PROFILES, REASONS, Profile, SimParams
from simulator.truth import TRUTH_COLUMNS, Fate

__all__ = [
    "PROFILES",
    "REASONS",
    "TRUTH_COLUMNS",
    "Fate",
    "Profile",
    "SimParams",
    "Summary",
    "closure_days",
    "easter",
    "read_contacts",
    "simulate_club",
    "simulate_files",
    "simulate_former",
    "simulate_member",
    "simulate_profile",
]
