"""``/staff/reports/holdout``: a manager sets or stops the club's control group from the
reports page (issue 22), as ``PUT /v1/holdout`` and ``lapse holdout`` do.

Two plain forms carrying the session's CSRF token (``access.Posted``, as every form of the
page): ``POST /staff/reports/holdout`` (``share`` in percent, more than 0 and at most 50,
and a ``reason``, required) and ``POST /staff/reports/holdout/stop`` (an optional
``reason``). The work is ``records.holdout.set_share`` / ``stop``, the functions the API and
the CLI call, recorded as made by the person's staff account (its id in ``set_by`` /
``ended_by``; a key session's key id). Who may: ``api.page.uplift.change_refusal`` (a
manager's account; a key only with the admin scope and not bound to a site); the front desk
is refused by the ``Manager`` dependency (403). Each answer redirects to the reports page,
which states the share in force.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.deps import SessionDep
from api.page import access
from api.page.access import Manager, PageRefusal, Posted, Staff
from api.page.answers import redirect, refuse
from api.page.uplift import change_refusal
from api.page.views import BASE
from records import holdout
from schemas.holdout import MAX_REASON, check_reason, check_share

log = logging.getLogger(__name__)
router = APIRouter(prefix=f"{BASE}/reports/holdout", include_in_schema=False)


def _refused(request: Request, staff: Staff) -> Response | None:
    why = change_refusal(staff.role, staff.token is None, staff.principal.site_id)
    if why == "site":
        return refuse(
            request,
            403,
            "Forbidden",
            "The control group applies to the whole club: a key bound to one site cannot "
            "change it.",
        )
    if why is not None:
        return refuse(
            request,
            403,
            "Forbidden",
            "Changing the control group needs a manager's account or a key with the admin scope.",
        )
    return None


async def _changer(request: Request, staff: Manager) -> Staff:
    """Someone who may change the control group; else the refusal (raised, as the role
    dependencies raise theirs), before the form is read."""
    refused = _refused(request, staff)
    if refused is not None:
        raise PageRefusal(refused)
    return staff


Changer = Annotated[Staff, Depends(_changer)]


def _reason(request: Request, raw: str, *, required: bool) -> str | Response | None:
    reason = raw.strip() or None
    if reason is not None:
        try:
            return check_reason(reason)
        except ValueError:
            pass
    elif not required:
        return None
    return refuse(
        request,
        422,
        "Invalid request",
        f"Give a reason for the change (at most {MAX_REASON} characters, no control characters).",
    )


def _done(what: str) -> Response:
    return redirect(f"{BASE}/reports?holdout={what}#holdout-h")


@router.post("")
async def set_holdout(request: Request, staff: Changer, form: Posted, db: SessionDep) -> Response:
    """Hold back ``share`` percent of the episodes opened from now on."""
    try:
        share = check_share(float(form.get("share", "")) / 100)
    except ValueError:
        return refuse(
            request, 422, "Invalid request", "Choose a share of more than 0 and at most 50 %."
        )
    reason = _reason(request, form.get("reason", ""), required=True)
    if isinstance(reason, Response):
        return reason
    p = staff.principal
    change = await holdout.set_share(
        db, p.tenant_id, share, by=p.key_id, reason=reason, now=access.now(request)
    )
    await db.commit()
    if not change.changed:
        return _done("same")
    log.info("staff page: holdout of tenant %s set to %s by %s", p.tenant_id, share, p.key_id)
    return _done("set")


@router.post("/stop")
async def stop_holdout(request: Request, staff: Changer, form: Posted, db: SessionDep) -> Response:
    """End the period in force: every episode opened from now on is contacted."""
    reason = _reason(request, form.get("reason", ""), required=False)
    if isinstance(reason, Response):
        return reason
    p = staff.principal
    change = await holdout.stop(
        db, p.tenant_id, by=p.key_id, reason=reason, now=access.now(request)
    )
    await db.commit()
    if not change.changed:
        return _done("same")
    log.info("staff page: holdout of tenant %s stopped by %s", p.tenant_id, p.key_id)
    return _done("stop")
