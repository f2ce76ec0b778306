"""What every answer of the staff page carries, and in which language: its security headers
(the Content-Security-Policy, a stricter sandbox for a stored calibration report), its
script and stylesheet with the version their URLs name, the HTML page and the redirect built
with those headers, the page's language for a request, and the refusal (a short page in that
language, or a problem to a script asking for JSON). Shared by the page's routers
(``api.page.routes``, ``api.page.holdout``, ``api.page.admin``) and its access checks
(``api.page.access``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from api.page import i18n, views

# Scripts only from this origin (no inline script, no eval); styles only from the stylesheet.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
# A stored calibration report is shown as it was written (it may carry inline styles), in a
# sandbox: an opaque origin, no script, no form, no network, framed by nothing but this page.
REPORT_CSP = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
# A key session's chosen language (an account's is stored on the account): not a secret,
# only ever one of the catalogue's codes, read back through ``i18n.lang_of``.
LANG_COOKIE = "lapse_lang"
ASSET_DIR = Path(__file__).parent / "assets"
ASSET_TYPES = {"page.css": "text/css; charset=utf-8", "page.js": "text/javascript; charset=utf-8"}


def _load_assets() -> tuple[dict[str, bytes], str]:
    files = {name: (ASSET_DIR / name).read_bytes() for name in ASSET_TYPES}
    version = hashlib.sha256(b"".join(files[n] for n in sorted(files))).hexdigest()[:12]
    return files, version


ASSETS, ASSET_VERSION = _load_assets()


def page_headers(csp: str = CSP) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        # Full URLs to this origin only (so forms carry an Origin header), nothing elsewhere.
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "SAMEORIGIN" if csp is REPORT_CSP else "DENY",
        "Cache-Control": "no-store",
    }


def html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=page_headers())


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=page_headers())


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def language(request: Request, chosen: str | None = None) -> str:
    """The page's language: ``chosen`` (an account's stored choice), else the one this
    browser chose with a key session or on the login page, else ``Accept-Language``."""
    if chosen in i18n.CATALOGUES:
        return i18n.lang_of(chosen)
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in i18n.CATALOGUES:
        return i18n.lang_of(cookie)
    return i18n.from_accept_language(request.headers.get("accept-language"))


def refuse(request: Request, status: int, title: str, detail: str) -> Response:
    """The refusal: a problem (RFC 9457) to a script asking for JSON, else a short page in
    the person's language (``i18n.refusal``, keyed by the English words written here)."""
    if wants_json(request):
        return JSONResponse(
            {"title": title, "status": status, "detail": detail},
            status_code=status,
            media_type="application/problem+json",
            headers=page_headers(),
        )
    # The page (not the JSON, the API's contract) in the person's language.
    lang = getattr(request.state, "page_lang", None) or language(request)
    page = views.problem_page(
        i18n.refusal(lang, title), i18n.refusal(lang, detail), assets=ASSET_VERSION, lang=lang
    )
    return html(page, status)
