"""The work list as the page arranges it: the search, the sort, the risk level and the pages.

Pure: the list is already loaded (``api.read.worklist``) and is the tenant's open episodes,
hundreds at most.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from api.read.worklist import WorkItem, Worklist


def matching(work: Worklist, query: str) -> Worklist:
    """The work list's members whose name or id contains ``query`` (case and accents as typed
    are compared case-insensitively; the list's order kept). Filtered here, not in SQL: the
    list is the tenant's open episodes (hundreds at most), already loaded with their names."""
    needle = query.strip().casefold()

    def hit(item: WorkItem) -> bool:
        m = item.member
        return needle in m.member_id.casefold() or needle in (m.display_name or "").casefold()

    if not needle:
        return work
    return Worklist([i for i in work.todo if hit(i)], [i for i in work.contacted if hit(i)])


# -- the work list's sort, severity filter and paging (pure: the list is already loaded) -----

SORTS = ("risk", "absent", "contact")
SEVERITIES = ("high", "medium", "low")
PER_PAGE = 25


def last_contact(item: WorkItem) -> datetime | None:
    """When staff last acted on the member's open episode (None: nobody has yet)."""
    return max((a.taken_at for a in item.actions), default=None)


def sorted_items(items: Sequence[WorkItem], sort: str) -> list[WorkItem]:
    """``risk``: the at-risk order as loaded (highest severity, then longest absent);
    ``absent``: longest absent first (unknown last); ``contact``: never contacted first, then
    the longest since the last contact. Stable: ties keep the risk order."""
    if sort == "absent":
        return sorted(items, key=lambda i: -(i.member.days_absent or -1.0))
    if sort == "contact":
        return sorted(
            items,
            key=lambda i: c.timestamp() if (c := last_contact(i)) is not None else float("-inf"),
        )
    return list(items)


def arranged(work: Worklist, *, sort: str, severity: str | None) -> Worklist:
    """The work list in the chosen order, only the chosen severity when one is given."""

    def keep(item: WorkItem) -> bool:
        return severity is None or item.member.severity == severity

    return Worklist(
        sorted_items([i for i in work.todo if keep(i)], sort),
        sorted_items([i for i in work.contacted if keep(i)], sort),
    )


@dataclass(frozen=True, slots=True)
class Paging:
    """Which page of the list is shown: ``page`` of ``pages`` (1-based), out of ``total``."""

    page: int
    pages: int
    total: int
    per_page: int


def paged(work: Worklist, page: int, per_page: int = PER_PAGE) -> tuple[Worklist, Paging]:
    """One page of the list: to-do members first, then contacted ones, ``per_page`` in all.

    A page past the end shows the last one (a link kept from a longer list still lands)."""
    total = len(work.todo) + len(work.contacted)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    start, end = (page - 1) * per_page, page * per_page
    n = len(work.todo)
    todo = work.todo[start:end]
    contacted = work.contacted[max(0, start - n) : max(0, end - n)]
    return Worklist(todo, contacted), Paging(page, pages, total, per_page)
