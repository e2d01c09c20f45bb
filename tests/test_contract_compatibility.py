"""Event contracts stay compatible within a topic version.

Each service's AsyncAPI document, as the code generates it now, is compared with the last
committed version that differs from it (the contract before the change under review). A
breaking change fails the suite unless it moves to a new topic version or is listed, with
a reason, in `shared/contracts/accepted-changes.yaml`. The checker itself is tested on
small documents below, so it is known to fail when it should.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.contracts import breaking_changes, last_committed_other_version, load
from shared.platform.asyncapi import SERVICES, document_path, render

REPO = Path(__file__).resolve().parents[1]
ACCEPTED = REPO / "shared" / "shared" / "contracts" / "accepted-changes.yaml"


def accepted_changes(document: Path) -> set[str]:
    entries: list[dict[str, str]] = yaml.safe_load(ACCEPTED.read_text(encoding="utf-8")) or []
    relative = document.relative_to(REPO).as_posix()
    for entry in entries:
        assert entry.get("reason"), f"accepted change without a reason: {entry}"
    return {entry["change"] for entry in entries if entry["document"] == relative}


@pytest.mark.parametrize("service", SERVICES)
def test_contract_changes_are_compatible(service: str) -> None:
    path = document_path(REPO, service)
    current = render(service)
    previous = last_committed_other_version(REPO, path, current)
    if previous is None:
        return  # the first version of the contract: nothing to be compatible with
    breaking = set(breaking_changes(load(previous), load(current))) - accepted_changes(path)
    assert not breaking, (
        f"{path.relative_to(REPO)} breaks its consumers; publish on a new topic version "
        "instead (or, for a change no message can notice, accept it with a reason in "
        "shared/contracts/accepted-changes.yaml):\n  " + "\n  ".join(sorted(breaking))
    )


# --- the checker on small documents --------------------------------------------------------


def document(topic: str, data: dict[str, Any], event: str = "ThingHappened") -> dict[str, Any]:
    return {
        "channels": {
            f"{topic}:svc": {
                "address": topic,
                "messages": {"Message": {"$ref": "#/components/messages/m"}},
            }
        },
        "components": {
            "messages": {"m": {"payload": {"$ref": "#/components/schemas/Envelope"}}},
            "schemas": {
                "Envelope": {
                    "type": "object",
                    "properties": {"data": {"$ref": f"#/components/schemas/{event}"}},
                },
                event: {"title": event, "type": "object", **data},
            },
        },
    }


BASE = {
    "properties": {
        "thing_id": {"type": "string", "format": "uuid"},
        "label": {"type": "string", "maxLength": 300},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "kind": {"enum": ["a", "b"], "type": "string"},
    },
    "required": ["thing_id", "label", "kind"],
}


def changed(**edits: Any) -> dict[str, Any]:
    properties = {**BASE["properties"], **edits.pop("properties", {})}
    for name in edits.pop("drop", ()):
        del properties[name]
    return {"properties": properties, "required": edits.pop("required", BASE["required"])}


def check(new: dict[str, Any], *, topic: str = "svc.things.v1") -> list[str]:
    return breaking_changes(document("svc.things.v1", BASE), document(topic, new))


def test_an_optional_field_may_be_added() -> None:
    assert check(changed(properties={"extra": {"type": "integer"}})) == []


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        (changed(drop=["label"], required=["thing_id", "kind"]), "label: field removed"),
        (
            changed(
                properties={"extra": {"type": "integer"}}, required=[*BASE["required"], "extra"]
            ),
            "extra: required field added",
        ),
        (changed(required=[*BASE["required"], "note"]), "note: field became required"),
        (changed(properties={"label": {"type": "integer"}}), "label: type narrowed (string"),
        (
            changed(properties={"label": {"type": "string", "maxLength": 100}}),
            "maxLength 300 → 100",
        ),
        (changed(properties={"note": {"type": "string"}}), "note: type narrowed (null"),
        (changed(properties={"kind": {"enum": ["a"], "type": "string"}}), "no longer allows b"),
        (changed(properties={"kind": {"enum": ["a", "b", "c"], "type": "string"}}), "now allows c"),
        (changed(properties={"thing_id": {"type": "string"}}), "format changed"),
    ],
)
def test_breaking_changes_are_named(new: dict[str, Any], expected: str) -> None:
    found = check(new)
    assert any(expected in change for change in found), found


def test_a_renamed_field_is_a_removal() -> None:
    renamed = changed(
        drop=["label"],
        properties={"name": {"type": "string", "maxLength": 300}},
        required=["thing_id", "name", "kind"],
    )
    assert set(check(renamed)) == {
        "svc.things.v1 ThingHappened: label: field removed",
        "svc.things.v1 ThingHappened: name: required field added",
    }


def test_a_breaking_change_on_a_new_topic_version_is_fine() -> None:
    assert check(changed(drop=["label"]), topic="svc.things.v2") == []
    assert check(changed(drop=["label"]), topic="svc.other.v1") == [
        "svc.things.v1: topic dropped without a newer version"
    ]
