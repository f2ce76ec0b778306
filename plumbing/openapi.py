"""The services' OpenAPI documents as the services answer, and their docs pages served locally.

FastAPI documents what it knows: the 2xx models and its own 422 body (``{"detail": [...]}``).
Every Lapse service answers its errors as RFC 9457 problem documents
(``application/problem+json``, :mod:`plumbing.problems`), from dependencies FastAPI does not see
through (the API key: 401, its scopes: 403; a resource of another tenant: 404). :func:`finish`
rewrites each document to say so: one ``Problem`` schema for every 4xx/5xx, 401 and 403 on
every operation that takes a key, 404 on every operation with a path parameter, 422 wherever
there is input, and the bearer scheme. Statuses particular to one route (409, 413, 415, 429,
503) are declared on the route itself. tests/api/test_openapi_fuzz.py and
tests/ingest/test_openapi_fuzz.py run schemathesis's response-conformance checks (status,
content type, headers, body) against both documents.

``/docs`` (Swagger UI) loads its script, styles and icon from this service (the files of the
``fastapi-offline`` package), never from a CDN, under a Content-Security-Policy that allows
nothing else: a closed network, a strict proxy or a privacy review of the docs page then need
nothing from outside. ReDoc is not served (its page fetches its logo from redoc.ly).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from plumbing.problems import PROBLEM_JSON

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
BEARER = "HTTPBearer"

_FIELD_ERROR: dict[str, Any] = {
    "title": "FieldError",
    "type": "object",
    "description": "One invalid field of the request.",
    "required": ["pointer", "field", "message"],
    "properties": {
        "pointer": {"type": "string", "description": "JSON pointer into the request."},
        "field": {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "description": "The field, dotted (`events.3.site_id`); null for the whole body.",
        },
        "message": {"type": "string"},
    },
}
_PROBLEM: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "An RFC 9457 problem document (`application/problem+json`). `type` names "
    "the kind of problem (https://lapse.io/problems/...); other members are extensions.",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri-reference"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "The request's path."},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
    },
    "additionalProperties": True,
}
_DEFAULTS = {
    "401": "Missing, unknown or revoked API key (with `WWW-Authenticate: Bearer`).",
    "403": "The API key lacks the scope this operation needs.",
    "404": "No such resource (or it is another tenant's: the answer is the same).",
    "422": "Invalid parameters or body; `errors` names each field.",
}
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def package_version() -> str:
    """The installed distribution's version (pyproject.toml), the one ``lapse --version`` says."""
    try:
        return importlib.metadata.version("lapse")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        from lapse import __version__

        return __version__


def problem_response(description: str) -> dict[str, Any]:
    """A ``responses`` entry for a route: an error answered as a problem document."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}


def finish(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` (FastAPI's) rewritten to describe the errors as the service sends them."""
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = _PROBLEM
    schemas["FieldError"] = _FIELD_ERROR
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemes = components.setdefault("securitySchemes", {})
    schemes[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key, made with `lapse keys create` (scopes decide what it may do).",
    }
    for path, item in doc.get("paths", {}).items():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            responses: dict[str, Any] = op.setdefault("responses", {})
            secured = bool(op.get("security"))
            wanted = []
            if secured:
                wanted += ["401", "403"]
            if "{" in path:
                wanted.append("404")
            if op.get("parameters") or op.get("requestBody"):
                wanted.append("422")
            for status in wanted:
                responses.setdefault(status, {"description": _DEFAULTS[status]})
            for status, response in responses.items():
                if status[:1] in ("4", "5"):
                    if response.get("description") == "Validation Error":  # FastAPI's
                        response["description"] = _DEFAULTS["422"]
                    response["content"] = {PROBLEM_JSON: {"schema": PROBLEM_REF}}
    return doc


def _static_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).resolve().parent / "static"


_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}
# Nothing from elsewhere, whatever the page's script might try (its own inline start-up script
# and styles excepted: Swagger UI's page is built that way).
_DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)


def install_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) with its assets under ``/docs/assets/`` (create the app with
    ``docs_url=None, redoc_url=None``). No ReDoc: its page loads its logo from redoc.ly."""
    static = _static_dir()
    for name in _ASSETS:
        if not (static / name).is_file():
            raise RuntimeError(f"the docs asset {name} is missing from {static}")
    title = f"{app.title} {app.version}"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=title,
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon.png",
            oauth2_redirect_url=None,
            # Swagger UI would send the document to validator.swagger.io for its badge.
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers["content-security-policy"] = _DOCS_CSP
        return page

    @app.get("/docs/assets/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        media = _ASSETS.get(name)
        if media is None:
            return HTMLResponse("not found", status_code=404)
        return FileResponse(
            static / name,
            media_type=media,
            headers={"cache-control": f"public, max-age={7 * 86400}"},
        )
