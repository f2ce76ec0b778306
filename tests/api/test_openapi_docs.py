"""Both services' OpenAPI documents and docs pages: errors as problem documents, the bearer
scheme, the package's version, and Swagger UI served without any CDN: its page, its assets and
a Content-Security-Policy that lets a browser fetch nothing from elsewhere."""

from __future__ import annotations

import importlib.metadata
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app as create_api
from ingest.app import create_app as create_ingest
from plumbing.settings import Settings

METHODS = ("get", "put", "post", "delete", "patch")


def _apps(settings: Settings) -> list[FastAPI]:
    return [create_api(settings, deliver=False), create_ingest(settings)]


def _client(app: FastAPI) -> httpx.AsyncClient:
    # No lifespan: the docs need neither the database nor Kafka.
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://lapse.test")


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, item[method])
        for path, item in doc["paths"].items()
        for method in METHODS
        if method in item
    ]


@pytest.mark.parametrize("which", [0, 1], ids=["api", "ingest"])
def test_the_document_describes_errors_security_and_version(settings: Settings, which: int) -> None:
    doc = _apps(settings)[which].openapi()
    assert doc["info"]["version"] == importlib.metadata.version("lapse")
    schemes = doc["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["HTTPBearer"]["description"],
    }
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    problem = doc["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status"}
    secured = 0
    for method, path, op in _operations(doc):
        responses = op["responses"]
        for status, response in responses.items():
            if status[0] in "45":
                assert response["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, (method, path, status)
        if op.get("security"):
            secured += 1
            assert {"401", "403"} <= set(responses), (method, path)
        if "{" in path:
            assert "404" in responses, (method, path)
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in responses, (method, path)
    assert secured >= (15 if which == 0 else 3)


@pytest.mark.parametrize("which", [0, 1], ids=["api", "ingest"])
async def test_docs_pages_load_nothing_from_elsewhere(settings: Settings, which: int) -> None:
    async with _client(_apps(settings)[which]) as client:
        assert (await client.get("/redoc")).status_code == 404  # its logo comes from redoc.ly
        for page in ("/docs",):
            r = await client.get(page)
            assert r.status_code == 200
            csp = r.headers["content-security-policy"]
            assert "default-src 'self'" in csp and "connect-src 'self'" in csp
            assert '"validatorUrl": null' in r.text  # no badge from validator.swagger.io
            urls = re.findall(r"""(?:src|href|url)\s*[=:(]\s*['"]?([^'")\s>]+)""", r.text)
            assert urls, r.text
            for url in urls:
                assert url.startswith("/"), (page, url)  # same origin: no CDN, no fonts
                if url.startswith("/docs/assets/"):
                    asset = await client.get(url)
                    assert asset.status_code == 200 and len(asset.content) > 1000, url
            assert "cdn" not in r.text.lower() and "googleapis" not in r.text
        assert (await client.get("/docs/assets/../../etc/passwd")).status_code == 404
        assert (await client.get("/docs/assets/core.py")).status_code == 404
