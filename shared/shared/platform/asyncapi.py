"""Generate the committed AsyncAPI documents from code.

`python -m shared.platform.asyncapi` rewrites `services/<service>/asyncapi.yaml` for every
service; a test fails when a committed file and the code disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter

from shared.contracts.registry import TOPIC_EVENTS
from shared.contracts.topics import Topic
from shared.platform.runtime import definition_of, envelope_schema

SERVICES = ("intake", "groups", "notifications", "news")


def document_commands(document: dict[str, Any], service: str, consumed: list[Topic]) -> None:
    """Give the topics a service owns but consumes (its commands) their payload schema.

    FastStream derives a subscriber's schema from the handler's signature; ours receive
    raw bytes (decoding errors are the platform's to dead-letter), so without this the
    command contract other channels must follow would appear as an empty payload.
    """
    for topic in consumed:
        address = topic.value
        if topic.owner != service:
            continue  # another service's events: their schema is in the producer's document
        schema = TypeAdapter(envelope_schema(TOPIC_EVENTS[topic])).json_schema(
            ref_template="#/components/schemas/{model}"
        )
        definitions = document.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in schema.pop("$defs", {}).items():
            if definitions.get(name, definition) != definition:
                raise ValueError(f"schema {name} of {address} clashes with another of that name")
            definitions[name] = definition
        for channel in document.get("channels", {}).values():
            if channel["address"] != address:
                continue
            for message in channel.get("messages", {}).values():
                name = message["$ref"].rsplit("/", 1)[-1]
                document["components"]["messages"][name]["payload"] = schema


def render(service: str) -> str:
    definition = definition_of(service)
    runtime = definition.build_default().runtime
    specification = runtime.asyncapi(definition.description).to_specification()
    jsonable = specification.to_jsonable()
    document_commands(jsonable, service, runtime.consumer.subscribed)
    # FastStream's channel order is not stable between runs: sort for a reviewable diff.
    document: str = yaml.safe_dump(jsonable, sort_keys=True, allow_unicode=True, width=100)
    return document


def document_path(repo_root: Path, service: str) -> Path:
    return repo_root / "services" / service / "asyncapi.yaml"


def main(argv: list[str]) -> int:
    repo_root = Path(argv[1]) if len(argv) > 1 else Path.cwd()
    for service in SERVICES:
        path = document_path(repo_root, service)
        path.write_text(render(service), encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
