"""Who may do what on the broker, derived from the contracts, and how it is applied.

Every grant follows from the registry (`shared/contracts/registry.py`), never from a
hand-kept ACL list:

* a **service** (principal `<prefix><service>`) may write the topics it owns (a topic's
  owner is the first part of its name) except its command topics (`COMMAND_TOPICS` in
  `shared/contracts/topics.py`), read the topics it
  subscribes to (`SUBSCRIPTIONS`, which the platform enforces when a handler subscribes),
  write the dead-letter topics of what it reads (its consumer dead-letters there), create
  the topics it uses, and use one consumer group, `<prefix><service>`;
* a **front channel** (principal `<prefix>front-channel`) may only write the command topics
  (today intake's `intake.submission-commands.v1`);
* the **admin** principal is a super user of the broker (`super.users`), not granted here.

Resource names are the physical names in the namespace (`STRATEGIA_KAFKA_TOPIC_PREFIX`),
with the LITERAL pattern: a PREFIXED pattern on `…submissions.v1` would also match
`…submissions.v1.dlt` or `…v10`. A new service or topic gets its ACLs on the next
`apply` (stack start, compose's `kafka-init`, a test's namespace); grants that no longer
follow from the code are deleted.

The aiokafka admin client has no ACL or SCRAM calls, so the requests are built here from
aiokafka's protocol structures (CreateAcls/DescribeAcls/DeleteAcls v1,
AlterUserScramCredentials v0, KIP-554).

`python -m shared.platform.kafka_access` applies users and ACLs with the admin's
credentials (`STRATEGIA_KAFKA_*`), reading each principal's password from
`STRATEGIA_KAFKA_PASSWORD_<NAME>` (e.g. `…_INTAKE`, `…_FRONT_CHANNEL`; the principal
itself is `<prefix><name>`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any, cast

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import (
    CreateAclsRequest_v1,
    DeleteAclsRequest_v1,
    DescribeAclsRequest_v1,
)
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from shared.contracts.registry import SERVICES, SUBSCRIPTIONS
from shared.contracts.topics import COMMAND_TOPICS, Topic, TopicNames, dead_letter_topic
from shared.platform.kafka_security import KafkaConnection, SecurityProtocol, principal_name

FRONT_CHANNEL = "front-channel"
SCRAM_ITERATIONS = 8192
_SCRAM_SHA_512 = 2  # ScramMechanism id in the Kafka protocol


class ResourceType(IntEnum):
    TOPIC = 2
    GROUP = 3


class Operation(IntEnum):
    ANY = 1
    READ = 3
    WRITE = 4
    CREATE = 5
    DESCRIBE = 8


_PATTERN_ANY = 1
_PATTERN_LITERAL = 3
_PERMISSION_ANY = 1
_PERMISSION_ALLOW = 3
_RESOURCE_ANY = 1


@dataclass(frozen=True, slots=True, order=True)
class AclBinding:
    """ALLOW `operation` on the LITERAL resource for `principal` (`User:<name>`), any host."""

    principal: str
    resource_type: ResourceType
    resource_name: str
    operation: Operation


@dataclass(frozen=True, slots=True)
class Access:
    """What one principal needs, in logical topic names (no prefix)."""

    name: str
    writes: frozenset[str]
    reads: frozenset[str]
    creates: frozenset[str]
    groups: frozenset[str]


def command_topics() -> frozenset[Topic]:
    """Commands other channels send a service (which consumes them, never writes them)."""
    return COMMAND_TOPICS


def service_access(service: str) -> Access:
    reads = frozenset(SUBSCRIPTIONS.get(service, ()))
    publishes = frozenset(t for t in Topic if t.owner == service and t not in COMMAND_TOPICS)
    dead_letters = frozenset(dead_letter_topic(t) for t in reads)
    return Access(
        name=service,
        writes=frozenset(map(str, publishes)) | dead_letters,
        reads=frozenset(map(str, reads)),
        # what the service itself creates at start-up (runtime._topics_to_create)
        creates=frozenset(map(str, publishes | reads)) | dead_letters,
        groups=frozenset({service}) if reads else frozenset(),
    )


def front_channel_access() -> Access:
    commands = frozenset(map(str, command_topics()))
    return Access(FRONT_CHANNEL, commands, frozenset(), frozenset(), frozenset())


def all_access() -> list[Access]:
    return [*(service_access(service) for service in SERVICES), front_channel_access()]


def principals(prefix: str = "") -> list[str]:
    """Every SCRAM user the system needs in the namespace (the admin aside)."""
    return [principal_name(prefix, access.name) for access in all_access()]


def acl_bindings(prefix: str = "", accesses: Iterable[Access] | None = None) -> set[AclBinding]:
    names = TopicNames(prefix)
    bindings: set[AclBinding] = set()
    for access in all_access() if accesses is None else accesses:
        principal = f"User:{principal_name(prefix, access.name)}"

        def grant(
            kind: ResourceType, name: str, *operations: Operation, principal: str = principal
        ) -> None:
            for operation in operations:
                bindings.add(AclBinding(principal, kind, name, operation))

        for topic in access.writes:
            grant(ResourceType.TOPIC, names(topic), Operation.WRITE, Operation.DESCRIBE)
        for topic in access.reads:
            grant(ResourceType.TOPIC, names(topic), Operation.READ, Operation.DESCRIBE)
        for topic in access.creates:
            grant(ResourceType.TOPIC, names(topic), Operation.CREATE, Operation.DESCRIBE)
        for group in access.groups:
            grant(ResourceType.GROUP, names.group(group), Operation.READ, Operation.DESCRIBE)
    return bindings


# --- protocol requests aiokafka's admin client lacks ------------------------------------------


def _acl_tuple(b: AclBinding) -> tuple[int, str, int, str, str, int, int]:
    """An ACL binding as CreateAcls creations and DeleteAcls filters both spell it: a
    LITERAL resource, any host, ALLOW."""
    return (
        int(b.resource_type),
        b.resource_name,
        _PATTERN_LITERAL,
        b.principal,
        "*",
        int(b.operation),
        _PERMISSION_ALLOW,
    )


class _CreateAcls(Request[CreateAclsRequest_v1]):  # type: ignore[misc]  # aiokafka is untyped
    API_KEY = 30

    def __init__(self, bindings: Iterable[AclBinding]) -> None:
        self._creations = [_acl_tuple(b) for b in bindings]

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class(self._creations)


class _DescribeAcls(Request[DescribeAclsRequest_v1]):  # type: ignore[misc]  # aiokafka is untyped
    API_KEY = 29

    def __init__(self, principal: str) -> None:
        self._principal = principal

    def build(self, request_struct_class: type[DescribeAclsRequest_v1]) -> DescribeAclsRequest_v1:
        return request_struct_class(
            _RESOURCE_ANY, None, _PATTERN_ANY, self._principal, None, Operation.ANY, 1
        )


class _DeleteAcls(Request[DeleteAclsRequest_v1]):  # type: ignore[misc]  # aiokafka is untyped
    API_KEY = 31

    def __init__(self, bindings: Iterable[AclBinding]) -> None:
        self._filters = [_acl_tuple(b) for b in bindings]

    def build(self, request_struct_class: type[DeleteAclsRequest_v1]) -> DeleteAclsRequest_v1:
        return request_struct_class(self._filters)


class _AlterScramResponse(Response):  # type: ignore[misc]  # aiokafka is untyped
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _AlterScramStruct(RequestStruct):  # type: ignore[misc]  # aiokafka is untyped
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = _AlterScramResponse
    SCHEMA = Schema(
        (
            "deletions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("tags", TaggedFields),
            ),
        ),
        (
            "upsertions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _AlterScram(Request[_AlterScramStruct]):  # type: ignore[misc]  # aiokafka is untyped
    API_KEY = 51

    def __init__(self, passwords: Mapping[str, str]) -> None:
        self._upsertions: list[tuple[str, int, int, bytes, bytes, dict[int, bytes]]] = []
        for user, password in sorted(passwords.items()):
            salt = secrets.token_bytes(32)
            salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, SCRAM_ITERATIONS)
            self._upsertions.append((user, _SCRAM_SHA_512, SCRAM_ITERATIONS, salt, salted, {}))

    def build(self, request_struct_class: type[_AlterScramStruct]) -> _AlterScramStruct:
        return request_struct_class([], self._upsertions, {})


class KafkaAccessError(RuntimeError):
    pass


def _check(errors: Iterable[tuple[int, str | None]], what: str) -> None:
    failed = [f"error {code}: {message}" for code, message in errors if code]
    if failed:
        raise KafkaAccessError(f"{what} failed: {'; '.join(failed)}")


class KafkaAccessAdmin:
    """SCRAM users and ACLs, with a super user's connection."""

    def __init__(self, connection: KafkaConnection) -> None:
        self._admin = AIOKafkaAdminClient(client_id="access-admin", **connection.client_options())

    async def __aenter__(self) -> KafkaAccessAdmin:
        await self._admin.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._admin.close()

    async def _send(self, request: Request[Any]) -> Any:
        # Any node forwards these to the controller.
        return await self._admin._send_request(request)

    async def upsert_users(self, passwords: Mapping[str, str]) -> None:
        """Create or update SCRAM-SHA-512 credentials (a new salt each time: rotation is the
        same call with the new password; open connections stay authenticated)."""
        if not passwords:
            return
        response = await self._send(_AlterScram(passwords))
        _check(((r[1], r[2]) for r in response.results), "SCRAM credentials")

    async def acls_of(self, principal: str) -> set[AclBinding]:
        response = await self._send(_DescribeAcls(principal))
        _check([(response.error_code, response.error_message)], "describing ACLs")
        found: set[AclBinding] = set()
        for resource_type, name, pattern, acls in response.resources:
            for acl_principal, _host, operation, permission in acls:
                if pattern != _PATTERN_LITERAL or permission != _PERMISSION_ALLOW:
                    continue
                if resource_type in (ResourceType.TOPIC, ResourceType.GROUP):
                    found.add(
                        AclBinding(
                            acl_principal,
                            ResourceType(resource_type),
                            name,
                            Operation(operation)
                            if operation in Operation._value2member_map_
                            else Operation.ANY,
                        )
                    )
        return found

    async def sync_acls(self, wanted: set[AclBinding], principals: Iterable[str]) -> None:
        """Make the principals' ALLOW ACLs exactly `wanted`."""
        existing: set[AclBinding] = set()
        for principal in principals:
            existing |= await self.acls_of(f"User:{principal}")
        stale = existing - wanted
        missing = wanted - existing
        if stale:
            response = await self._send(_DeleteAcls(sorted(stale)))
            _check(((r[0], r[1]) for r in response.filter_responses), "deleting ACLs")
        if missing:
            response = await self._send(_CreateAcls(sorted(missing)))
            _check(((r[0], r[1]) for r in response.creation_responses), "creating ACLs")


async def apply_access(
    admin: KafkaConnection, prefix: str, passwords: Mapping[str, str] | None
) -> None:
    """Users (when passwords are given, keyed by principal name) and ACLs of a namespace."""
    async with KafkaAccessAdmin(admin) as access:
        if passwords:
            await access.upsert_users(passwords)
        await access.sync_acls(acl_bindings(prefix), principals(prefix))


def password_variable(name: str) -> str:
    """Where tools find the password of a principal: by its unprefixed name
    (`STRATEGIA_KAFKA_PASSWORD_INTAKE`, `…_FRONT_CHANNEL`)."""
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in name.upper())
    return f"STRATEGIA_KAFKA_PASSWORD_{cleaned}"


def principal_names() -> list[str]:
    """Services and client roles that get a principal (unprefixed)."""
    return [access.name for access in all_access()]


def main(environ: Mapping[str, str]) -> int:
    """Apply users and ACLs for the namespace in the environment (compose's kafka-init)."""
    prefix = environ.get("STRATEGIA_KAFKA_TOPIC_PREFIX", "")
    ca_file = environ.get("STRATEGIA_KAFKA_SSL_CA_FILE")
    admin = KafkaConnection(
        bootstrap_servers=environ.get("STRATEGIA_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        security_protocol=cast(
            SecurityProtocol, environ.get("STRATEGIA_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
        ),
        username=environ.get("STRATEGIA_KAFKA_SASL_USERNAME"),
        password=environ.get("STRATEGIA_KAFKA_SASL_PASSWORD"),
        ca_file=Path(ca_file) if ca_file else None,
    )
    passwords = {
        principal_name(prefix, name): environ.get(password_variable(name), "")
        for name in principal_names()
    }
    missing = [
        password_variable(name)
        for name in principal_names()
        if not environ.get(password_variable(name))
    ]
    if missing:
        print(f"kafka-access: no password given in {', '.join(missing)}", file=sys.stderr)
        return 2
    asyncio.run(apply_access(admin, prefix, passwords))
    print(
        f"kafka-access: {len(passwords)} SCRAM users, {len(acl_bindings(prefix))} ACLs applied",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(os.environ))
