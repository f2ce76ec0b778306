"""The AsyncAPI document of the topics: it parses, every $ref resolves, it matches the relay."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from api.relay import record_headers
from plumbing.settings import Settings
from tests.api.support import make_alert

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield v
            else:
                yield from refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from refs(v)


def pointer(doc: Any, fragment: str) -> Any:
    node = doc
    for part in fragment.lstrip("/").split("/") if fragment else []:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def test_asyncapi_parses_and_every_ref_resolves():
    doc = yaml.safe_load((SCHEMAS / "asyncapi.yaml").read_text())
    assert doc["asyncapi"].startswith("3.")
    defaults = Settings()
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == {defaults.events_topic, defaults.alerts_topic, defaults.dlq_topic}
    found = list(refs(doc))
    assert len(found) > 10
    files = 0
    for ref in found:
        target, _, fragment = ref.partition("#")
        if target:
            path = (SCHEMAS / target).resolve()
            assert path.is_file(), ref
            assert pointer(json.loads(path.read_text()), fragment) is not None, ref
            files += 1
        else:
            assert pointer(doc, fragment) is not None, ref
    assert files == 3  # the member event, the tick, the alert
    for op in doc["operations"].values():
        assert op["action"] in ("send", "receive")


def test_the_alert_headers_documented_are_the_ones_sent():
    doc = yaml.safe_load((SCHEMAS / "asyncapi.yaml").read_text())
    documented = doc["components"]["messages"]["alert"]["headers"]
    sent = dict(record_headers(make_alert("t").model_dump(mode="json")))
    assert set(documented["required"]) == set(documented["properties"]) == set(sent)
    assert documented["properties"]["ce_type"]["enum"][0].encode() == sent["ce_type"]
