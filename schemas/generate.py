"""Write the JSON Schema files in ``schemas/json`` from the models.

Run ``python -m schemas.generate`` after changing a model; a test fails when the
checked-in files drift from the models.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, TypeAdapter

from schemas.alerts import Alert, AlertCloudEvent
from schemas.events import AccessEvent, EventBatch, MemberEvent, MembershipEvent
from schemas.ticks import Tick

JSON_DIR = Path(__file__).parent / "json"


def documents() -> dict[str, dict[str, object]]:
    models: dict[str, type[BaseModel]] = {
        "access-event.v1.json": AccessEvent,
        "membership-event.v1.json": MembershipEvent,
        "event-batch.v1.json": EventBatch,
        "alert-cloudevent.v1.json": AlertCloudEvent,
        "alert.v1.json": Alert,
        "tick.v1.json": Tick,
    }
    docs = {name: model.model_json_schema() for name, model in models.items()}
    docs["member-event.v1.json"] = TypeAdapter(MemberEvent).json_schema()
    for name, doc in docs.items():
        doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        doc["$id"] = f"https://lapse.io/schemas/{name}"
    return docs


def render(doc: dict[str, object]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def main() -> None:
    JSON_DIR.mkdir(exist_ok=True)
    for name, doc in documents().items():
        (JSON_DIR / name).write_text(render(doc))


if __name__ == "__main__":
    main()
