"""Credentials on the secured broker for tests, benchmarks and the local stack.

* The **admin** (the broker's super user) is what test helpers use to read and write topics
  directly: `admin_connection(kafka)` / `admin_options(kafka)`, the one helper for that.
* Each **service under test** connects as its own principal `<prefix><service>`, like in
  production: `ensure_namespace(kafka, prefix)` creates the namespace's SCRAM users and
  the ACLs derived from the code (`shared.platform.kafka_access`), once per namespace;
  `principal_password` gives a principal's password (an HMAC of its name under a key made
  afresh for every test session, so nothing is stored and nothing leaks between runs).

A broker this process started registers its admin here (`register_admin`); a broker named
by `STRATEGIA_TEST_KAFKA_BOOTSTRAP_SERVERS` takes its admin from
`STRATEGIA_TEST_KAFKA_ADMIN_USERNAME` (default `admin`), `…_ADMIN_PASSWORD`,
`…_SECURITY_PROTOCOL` (default `SASL_PLAINTEXT`) and `…_CA_FILE`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import threading
from pathlib import Path
from typing import Any, cast

from shared.platform.kafka_access import (
    AclBinding,
    KafkaAccessAdmin,
    acl_bindings,
    apply_access,
    principals,
)
from shared.platform.kafka_security import KafkaConnection, SecurityProtocol, principal_name

_ADMINS: dict[str, KafkaConnection] = {}
_SESSION_KEY = secrets.token_bytes(32)
_READY: set[tuple[str, str]] = set()
_LOCK = threading.Lock()


def register_admin(connection: KafkaConnection) -> None:
    _ADMINS[connection.bootstrap_servers] = connection


def admin_connection(kafka: str) -> KafkaConnection:
    """The super user's connection to the broker at `kafka`."""
    known = _ADMINS.get(kafka)
    if known is not None:
        return known
    password = os.environ.get("STRATEGIA_TEST_KAFKA_ADMIN_PASSWORD", "")
    if not password:
        raise RuntimeError(
            f"no admin credentials for the Kafka broker at {kafka}: set "
            "STRATEGIA_TEST_KAFKA_ADMIN_PASSWORD (and _ADMIN_USERNAME, _SECURITY_PROTOCOL, "
            "_CA_FILE when not admin, SASL_PLAINTEXT, none)"
        )
    ca_file = os.environ.get("STRATEGIA_TEST_KAFKA_CA_FILE", "")
    connection = KafkaConnection(
        bootstrap_servers=kafka,
        security_protocol=cast(
            SecurityProtocol,
            os.environ.get("STRATEGIA_TEST_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT"),
        ),
        username=os.environ.get("STRATEGIA_TEST_KAFKA_ADMIN_USERNAME", "admin"),
        password=password,
        ca_file=Path(ca_file) if ca_file else None,
    )
    register_admin(connection)
    return connection


def admin_options(kafka: str) -> dict[str, Any]:
    """Keyword arguments of an aiokafka client connecting as the admin."""
    return admin_connection(kafka).client_options()


def principal_password(principal: str) -> str:
    return hmac.new(_SESSION_KEY, principal.encode(), hashlib.sha256).hexdigest()


def principal_connection(kafka: str, prefix: str, name: str) -> KafkaConnection:
    """`name`'s principal (a service, or `front-channel`) in the namespace `prefix`."""
    user = principal_name(prefix, name)
    return admin_connection(kafka).as_user(user, principal_password(user))


async def aensure_namespace(kafka: str, prefix: str) -> None:
    """SCRAM users and ACLs of every principal of the namespace (once per namespace)."""
    if (kafka, prefix) in _READY:
        return
    passwords = {user: principal_password(user) for user in principals(prefix)}
    await apply_access(admin_connection(kafka), prefix, passwords)
    await _until_authorizer_has(kafka, prefix)
    _READY.add((kafka, prefix))


async def _until_authorizer_has(kafka: str, prefix: str, deadline_s: float = 30.0) -> None:
    """The broker's authorizer applies new ACLs from the metadata log a moment after
    CreateAcls answers: a client of the namespace must not start before they hold."""
    wanted = acl_bindings(prefix)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    async with KafkaAccessAdmin(admin_connection(kafka)) as admin:
        while True:
            found: set[AclBinding] = set()
            for principal in principals(prefix):
                found |= await admin.acls_of(f"User:{principal}")
            if found == wanted:
                return
            if loop.time() > deadline:
                raise RuntimeError(f"the broker did not apply the ACLs of namespace {prefix!r}")
            await asyncio.sleep(0.05)


def ensure_namespace(kafka: str, prefix: str) -> None:
    """`aensure_namespace` from sync code, even while an event loop runs in this thread."""
    with _LOCK:
        if (kafka, prefix) in _READY:
            return
        errors: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(aensure_namespace(kafka, prefix))
            except BaseException as error:  # re-raised in the caller's thread
                errors.append(error)

        worker = threading.Thread(target=run, name="kafka-namespace")
        worker.start()
        worker.join()
        if errors:
            raise errors[0]


def service_kafka_settings(kafka: str, prefix: str, service: str) -> dict[str, Any]:
    """Settings that make `service` connect as its own principal (namespace ready)."""
    ensure_namespace(kafka, prefix)
    admin = admin_connection(kafka)
    user = principal_name(prefix, service)
    settings: dict[str, Any] = {
        "kafka_security_protocol": admin.security_protocol,
        "kafka_sasl_username": user,
        "kafka_sasl_password": principal_password(user),
    }
    if admin.ca_file is not None:
        settings["kafka_ssl_ca_file"] = str(admin.ca_file)
    return settings
