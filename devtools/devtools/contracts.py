"""Contract compatibility: does a new AsyncAPI document break consumers of the old one?

Within one topic version a contract may only grow by optional fields, which tolerant
readers ignore. Everything else breaks someone:

* a field removed (or renamed: removed plus added) — old readers require or use it;
* a required field added — new readers reject events already on the topic;
* a type narrowed (a type, enum value or null no longer allowed, a tighter length, range,
  pattern or format) — new readers reject old events;
* a type widened (a new type, enum value or null, a looser bound) — old readers reject
  new events (a tolerant reader ignores unknown fields, not unknown values);
* an event type dropped from a topic, or a topic dropped without a newer version of it.

`breaking_changes(old, new)` lists them as sentences; a breaking change belongs on a new
topic version (`….v2`), or, when a change is known to be harmless in practice (values no
producer ever sent), in the reviewed list of accepted changes.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Schema = dict[str, Any]

_BOUNDS_TIGHTER_WHEN_LARGER = ("minLength", "minimum", "exclusiveMinimum", "minItems")
_BOUNDS_TIGHTER_WHEN_SMALLER = ("maxLength", "maximum", "exclusiveMaximum", "maxItems")
_VERSION = re.compile(r"^(?P<base>.*)\.v(?P<major>\d+)$")


@dataclass(frozen=True, slots=True)
class Message:
    """One event type on one topic, with its payload schema (refs resolved)."""

    topic: str
    event: str
    payload: Schema


def _resolve(schema: Any, document: Schema, seen: frozenset[str] = frozenset()) -> Any:
    """Inline every local `$ref` (cycles are cut off and left as refs)."""
    if isinstance(schema, list):
        return [_resolve(item, document, seen) for item in schema]
    if not isinstance(schema, dict):
        return schema
    reference = schema.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/"):
        if reference in seen:
            return schema
        target: Any = document
        for part in reference[2:].split("/"):
            target = target[part.replace("%5B", "[").replace("%5D", "]")]
        return _resolve(target, document, seen | {reference})
    return {key: _resolve(value, document, seen) for key, value in schema.items()}


def _envelopes(payload: Schema) -> Iterator[Schema]:
    alternatives = payload.get("anyOf") or payload.get("oneOf")
    if alternatives:
        yield from alternatives
    else:
        yield payload


def messages(document: Schema) -> dict[tuple[str, str], Message]:
    """Every (topic, event type) the document describes a payload for."""
    found: dict[tuple[str, str], Message] = {}
    for channel in document.get("channels", {}).values():
        topic = channel["address"]
        for message_ref in channel.get("messages", {}).values():
            message = _resolve(message_ref, document)
            payload = message.get("payload", {})
            for envelope in _envelopes(payload):
                data = envelope.get("properties", {}).get("data")
                if not isinstance(data, dict):
                    continue  # not an envelope (e.g. an undocumented consumer payload)
                event = str(data.get("title", envelope.get("title", "?")))
                found[(topic, event)] = Message(topic, event, data)
    return found


def _types(schema: Schema) -> dict[str, Schema]:
    """The alternatives a schema allows, by JSON type ("null" included)."""
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives:
        merged: dict[str, Schema] = {}
        for alternative in alternatives:
            merged.update(_types(alternative))
        return merged
    if "enum" in schema and "type" not in schema:
        kinds = {_json_type(value) for value in schema["enum"]}
        return {kind: schema for kind in kinds}
    kind = schema.get("type")
    if isinstance(kind, list):
        return {str(each): {**schema, "type": each} for each in kind}
    if kind is None:
        if "properties" in schema:
            return {"object": schema}
        return {"any": schema}
    return {str(kind): schema}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"


def _compare(old: Schema, new: Schema, path: str, changes: list[str]) -> None:
    old_types, new_types = _types(old), _types(new)
    if "any" not in new_types:
        for kind in sorted(set(old_types) - set(new_types)):
            changes.append(f"{path}: type narrowed ({kind} no longer allowed)")
    if "any" not in old_types:
        for kind in sorted(set(new_types) - set(old_types)):
            changes.append(f"{path}: type widened ({kind} now allowed)")
    for kind in sorted(set(old_types) & set(new_types)):
        _compare_same_type(old_types[kind], new_types[kind], path, changes)


def _compare_same_type(old: Schema, new: Schema, path: str, changes: list[str]) -> None:
    old_enum, new_enum = old.get("enum"), new.get("enum")
    if old_enum is not None or new_enum is not None:
        if new_enum is not None and (old_enum is None or set(old_enum) - set(new_enum)):
            lost = sorted(map(str, set(old_enum or []) - set(new_enum))) or ["free values"]
            changes.append(f"{path}: type narrowed (no longer allows {', '.join(lost)})")
        if old_enum is not None and (new_enum is None or set(new_enum) - set(old_enum)):
            gained = sorted(map(str, set(new_enum or []) - set(old_enum))) or ["free values"]
            changes.append(f"{path}: type widened (now allows {', '.join(gained)})")
    for key in ("format", "pattern", "const"):
        if old.get(key) != new.get(key):
            changes.append(f"{path}: {key} changed ({old.get(key)!r} → {new.get(key)!r})")
    for key in _BOUNDS_TIGHTER_WHEN_LARGER + _BOUNDS_TIGHTER_WHEN_SMALLER:
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        tighter = after is not None and (
            before is None
            or (after > before if key in _BOUNDS_TIGHTER_WHEN_LARGER else after < before)
        )
        direction = "narrowed" if tighter else "widened"
        changes.append(f"{path}: type {direction} ({key} {before!r} → {after!r})")
    if "items" in old or "items" in new:
        _compare(old.get("items", {}), new.get("items", {}), f"{path}[]", changes)
    if "properties" in old or "properties" in new:
        _compare_objects(old, new, path, changes)


def _compare_objects(old: Schema, new: Schema, path: str, changes: list[str]) -> None:
    old_fields, new_fields = old.get("properties", {}), new.get("properties", {})
    old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
    prefix = f"{path}." if path else ""
    for name in sorted(set(old_fields) - set(new_fields)):
        changes.append(f"{prefix}{name}: field removed")
    for name in sorted(new_required - old_required):
        if name in old_fields:
            changes.append(f"{prefix}{name}: field became required")
        else:
            changes.append(f"{prefix}{name}: required field added")
    for name in sorted(set(old_fields) & set(new_fields)):
        _compare(old_fields[name], new_fields[name], f"{prefix}{name}", changes)


def breaking_changes(old_document: Schema, new_document: Schema) -> list[str]:
    """Every change from `old_document` to `new_document` that breaks a reader or writer."""
    old_messages, new_messages = messages(old_document), messages(new_document)
    new_topics = {topic for topic, _ in new_messages}
    changes: list[str] = []
    for (topic, event), old in sorted(old_messages.items()):
        new = new_messages.get((topic, event))
        if new is None:
            if topic in new_topics:
                changes.append(f"{topic} {event}: event type dropped from the topic")
            elif not _has_newer_version(topic, new_topics):
                changes.append(f"{topic}: topic dropped without a newer version")
            continue
        found: list[str] = []
        _compare(old.payload, new.payload, "", found)
        changes.extend(f"{topic} {event}: {change}" for change in found)
    return changes


def _has_newer_version(topic: str, topics: set[str]) -> bool:
    match = _VERSION.match(topic)
    if match is None:
        return False
    base, major = match["base"], int(match["major"])
    return any(
        (other := _VERSION.match(candidate)) is not None
        and other["base"] == base
        and int(other["major"]) > major
        for candidate in topics
    )


def last_committed_other_version(repo: Path, path: Path, current: str) -> str | None:
    """The newest committed content of `path` that differs from `current`.

    With uncommitted changes that is the version at HEAD; with none, the version the
    latest commit replaced: so both a developer and CI compare against the contract as it
    stood before the change under review. None when there is no earlier version.
    """
    relative = path.resolve().relative_to(repo.resolve()).as_posix()
    revisions = subprocess.run(
        ["git", "-C", str(repo), "log", "--format=%H", "--", relative],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for revision in revisions:
        shown = subprocess.run(
            ["git", "-C", str(repo), "show", f"{revision}:{relative}"],
            capture_output=True,
            text=True,
        )
        if shown.returncode == 0 and shown.stdout != current:
            return shown.stdout
    return None


def load(text: str) -> Schema:
    document: Schema = yaml.safe_load(text)
    return document
