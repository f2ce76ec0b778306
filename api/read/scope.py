"""The one place a query is scoped to its caller: the principal's tenant, and its site when
the API key or staff account is bound to one.

Every read of a tenant's rows that carry a site (alerts, member states, webhook
subscriptions) takes its conditions from ``scoped``, so a site-bound key can never see
another site's rows, nor any key another tenant's (tests/api/test_isolation.py).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement

from records.api_keys import Principal
from records.tables import AlertRow, MemberStateRow, WebhookSubscription

# The tables whose rows belong to a tenant and (maybe) a site.
Scopable = type[AlertRow] | type[MemberStateRow] | type[WebhookSubscription]


def scoped(
    principal: Principal, table: Scopable, site_id: str | None = None
) -> list[ColumnElement[bool]]:
    """The conditions every query of ``table`` by this caller carries: its tenant, its site
    if the key is bound to one, and ``site_id`` when the caller chose a site too (a bound
    key choosing another site then reads nothing, as it always did)."""
    conds: list[ColumnElement[bool]] = [table.tenant_id == principal.tenant_id]
    if principal.site_id is not None:
        conds.append(table.site_id == principal.site_id)
    if site_id is not None:
        conds.append(table.site_id == site_id)
    return conds


def site_of(principal: Principal, requested: str | None) -> str | None:
    """The site a caller reads: the one its key is bound to, else the one it asked for."""
    if principal.site_id is not None:
        return principal.site_id
    return requested or None
