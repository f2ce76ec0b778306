"""RFC 9457 problem details for every HTTP service, so clients see one error shape."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://lapse.io/problems/"


class Problem(Exception):
    """Raise from a route to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type_: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = TYPE_BASE + type_ if type_ else "about:blank"
        self.headers = headers
        self.extensions = extensions


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    type_: str = "about:blank",
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    """Pydantic errors as ``{"pointer", "field", "message"}``: the field is named."""
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        out.append(
            {
                "pointer": "/" + "/".join(loc),
                "field": ".".join(loc) or None,
                "message": err.get("msg", "invalid"),
            }
        )
    return out


class RefuseNul:
    """ASGI middleware: a URL holding NUL (``%00``) is answered before any route runs.

    PostgreSQL's text cannot hold NUL, so a path or query value with one, compared with a
    column, failed the request with a 500. No stored id can hold one (the contract refuses
    it), so a path with NUL names nothing (404), and a query parameter with NUL is invalid (422,
    naming it), both documented on every operation.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            response: JSONResponse | None = None
            path = scope.get("path", "")
            if "\x00" in path:
                response = problem_response(404, "Not found", "no such resource", instance=None)
            else:
                query = scope.get("query_string", b"").decode("latin-1")
                bad = [k for k, v in parse_qsl(query, keep_blank_values=True) if "\x00" in k + v]
                if bad:
                    errors = [
                        {"pointer": f"/{k}", "field": k, "message": "must not contain NUL"}
                        for k in dict.fromkeys(bad)
                    ]
                    response = problem_response(
                        422,
                        "Invalid request",
                        "invalid field(s): " + ", ".join(e["field"] for e in errors),
                        type_=TYPE_BASE + "validation",
                        errors=errors,
                    )
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_middleware(RefuseNul)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status,
            exc.title,
            exc.detail,
            type_=exc.type,
            instance=request.url.path,
            headers=exc.headers,
            **exc.extensions,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc.errors())
        fields = ", ".join(e["field"] or "body" for e in errors[:5])
        return problem_response(
            422,
            "Invalid request",
            f"invalid field(s): {fields}",
            type_=TYPE_BASE + "validation",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            exc.status_code,
            str(exc.detail) if exc.detail else "Error",
            instance=request.url.path,
            headers=dict(exc.headers) if exc.headers else None,
        )

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return problem_response(500, "Internal error", instance=request.url.path)
