"""The broker lets each principal do what its code needs and nothing else (real broker).

The matrix is derived from the same registry the ACLs are (`shared.platform.kafka_access`),
so it covers every topic, dead-letter topic and consumer group of the namespace: each
principal is refused writing every topic outside its write set, reading every topic
outside its read set and using any consumer group but its own; and it succeeds where the
code needs it to. Credentials are checked too: a wrong password, a principal of another
namespace and an unauthenticated client are turned away.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)

from devtools.kafka_auth import (
    admin_connection,
    aensure_namespace,
    principal_connection,
)
from devtools.pytest_plugin import DatabaseFactory
from devtools.testing import (
    DEADLINE_SECONDS,
    eventually,
    settings_for_test,
    start_service,
    unique_prefix,
)
from shared.contracts.registry import SERVICES
from shared.contracts.topics import COMMAND_TOPICS, Topic, TopicNames, dead_letter_topic
from shared.platform.kafka_access import (
    FRONT_CHANNEL,
    Access,
    AclBinding,
    KafkaAccessAdmin,
    Operation,
    ResourceType,
    acl_bindings,
    all_access,
    front_channel_access,
    principals,
    service_access,
)
from shared.platform.kafka_security import KafkaConnection
from shared.platform.runtime import definition_of
from shared.platform.topics_admin import ensure_topics

pytestmark = pytest.mark.integration

# A principal allowed to write nowhere is refused its idempotent producer id already.
WRITE_REFUSED = (TopicAuthorizationFailedError, ClusterAuthorizationFailedError)
LOGICAL_TOPICS = sorted({*map(str, Topic), *(dead_letter_topic(t) for t in Topic)})
ACCESS = {access.name: access for access in all_access()}


@pytest.fixture(scope="module")
def prefix() -> str:
    return unique_prefix("acl")


@pytest.fixture
async def namespace(kafka_bootstrap_servers: str, prefix: str) -> AsyncIterator[TopicNames]:
    """Every topic and dead-letter topic of the namespace exists (made by the admin), so a
    refusal is the ACLs' doing, never a missing topic."""
    await aensure_namespace(kafka_bootstrap_servers, prefix)
    names = TopicNames(prefix)
    await ensure_topics(
        admin_connection(kafka_bootstrap_servers),
        {names(topic): {} for topic in LOGICAL_TOPICS},
        partitions=1,
        replication=1,
    )
    yield names


async def write(connection: KafkaConnection, topic: str) -> None:
    producer = AIOKafkaProducer(**connection.client_options(), enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{}", key=b"k")
    finally:
        await producer.stop()


async def describe_refused(connection: KafkaConnection, topic: str) -> bool:
    admin = AIOKafkaAdminClient(**connection.client_options())
    await admin.start()
    try:
        [description] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return bool(description["error_code"] == TopicAuthorizationFailedError.errno)


async def read(connection: KafkaConnection, topic: str) -> None:
    """Fetch from the start of partition 0 without a group: needs DESCRIBE and READ."""
    if await describe_refused(connection, topic):
        raise TopicAuthorizationFailedError(topic)
    consumer = AIOKafkaConsumer(
        **connection.client_options(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        async with asyncio.timeout(DEADLINE_SECONDS):
            await consumer.getone()  # every topic holds a record: the admin wrote one
    finally:
        await consumer.stop()


async def join_group(connection: KafkaConnection, topic: str, group: str) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        **connection.client_options(),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        await consumer.start()
        async with asyncio.timeout(DEADLINE_SECONDS):
            await consumer.getone()
    finally:
        await consumer.stop()


def test_the_acl_set_follows_the_registry() -> None:
    """Writes: own topics but commands, plus the dead letters of what it reads; reads: its
    subscriptions; the front channel writes only intake's command topic."""
    intake = service_access("intake")
    assert Topic.INTAKE_SUBMISSION_COMMANDS not in intake.writes
    assert intake.writes >= {
        Topic.INTAKE_CONSULTATIONS,
        Topic.INTAKE_SUBMISSIONS,
        Topic.INTAKE_PRIVACY_REQUESTS,
        Topic.INTAKE_PRIVACY_REPLIES,
        dead_letter_topic(Topic.INTAKE_SUBMISSION_COMMANDS),
    }
    assert not intake.writes & {Topic.GROUPS_PRIVACY_REPLIES, Topic.NEWS_ALERTS}
    assert Topic.INTAKE_SUBMISSION_COMMANDS in intake.reads
    assert Topic.GROUPS_PRIVACY_REPLIES in intake.reads
    notifications = service_access("notifications")
    assert not notifications.writes & {Topic.INTAKE_SUBMISSIONS, Topic.INTAKE_CONSULTATIONS}
    assert Topic.INTAKE_SUBMISSIONS in notifications.reads
    assert front_channel_access().writes == {Topic.INTAKE_SUBMISSION_COMMANDS}
    assert not front_channel_access().reads
    assert set(ACCESS) == {*SERVICES, FRONT_CHANNEL}


@pytest.mark.parametrize("service", SERVICES)
def test_the_registry_grants_what_the_service_uses_no_more(service: str) -> None:
    """Built from its definition, a service subscribes to exactly its declared topics and
    publishes only topics it may write: no right is granted that the code does not use
    (a subscription missing from the registry is refused when the service is built)."""
    runtime = definition_of(service).build_default().runtime
    access = service_access(service)
    assert set(map(str, runtime.consumer.subscribed)) == access.reads
    assert set(map(str, runtime.published)) <= access.writes
    assert {dead_letter_topic(t) for t in access.reads} <= access.writes
    published_by_code = {str(t) for t in Topic if t.owner == service} - set(
        map(str, COMMAND_TOPICS)
    )
    assert set(map(str, runtime.published)) == published_by_code


@pytest.mark.parametrize("name", [*SERVICES, FRONT_CHANNEL])
async def test_a_principal_writes_only_its_topics(
    kafka_bootstrap_servers: str, prefix: str, namespace: TopicNames, name: str
) -> None:
    access: Access = ACCESS[name]
    me = principal_connection(kafka_bootstrap_servers, prefix, name)
    for topic in LOGICAL_TOPICS:
        if topic in access.writes:
            await write(me, namespace(topic))
        else:
            with pytest.raises(WRITE_REFUSED):
                await write(me, namespace(topic))


@pytest.mark.parametrize("name", [*SERVICES, FRONT_CHANNEL])
async def test_a_principal_reads_only_what_it_subscribes_to(
    kafka_bootstrap_servers: str, prefix: str, namespace: TopicNames, name: str
) -> None:
    admin = admin_connection(kafka_bootstrap_servers)
    for topic in LOGICAL_TOPICS:
        await write(admin, namespace(topic))  # something to read everywhere
    access = ACCESS[name]
    me = principal_connection(kafka_bootstrap_servers, prefix, name)
    for topic in LOGICAL_TOPICS:
        if topic in access.reads:
            await read(me, namespace(topic))
        else:
            with pytest.raises(TopicAuthorizationFailedError):
                await read(me, namespace(topic))


@pytest.mark.parametrize("name", [service for service in SERVICES if ACCESS[service].reads])
async def test_a_service_uses_only_its_own_consumer_group(
    kafka_bootstrap_servers: str, prefix: str, namespace: TopicNames, name: str
) -> None:
    topic = namespace(sorted(ACCESS[name].reads)[0])
    await write(admin_connection(kafka_bootstrap_servers), topic)
    me = principal_connection(kafka_bootstrap_servers, prefix, name)
    await join_group(me, topic, namespace.group(name))
    for other in [*SERVICES, FRONT_CHANNEL, "attacker"]:
        if other == name:
            continue
        with pytest.raises(GroupAuthorizationFailedError):
            await join_group(me, topic, namespace.group(other))


async def test_the_front_channel_cannot_forge_a_submission(
    kafka_bootstrap_servers: str, prefix: str, namespace: TopicNames
) -> None:
    """The attack of the issue: a well-formed SubmissionReceived from anyone but intake."""
    for name in (FRONT_CHANNEL, "notifications", "groups", "news"):
        forger = principal_connection(kafka_bootstrap_servers, prefix, name)
        with pytest.raises(WRITE_REFUSED):
            await write(forger, namespace(Topic.INTAKE_SUBMISSIONS))


async def test_another_namespace_is_out_of_reach(
    kafka_bootstrap_servers: str, prefix: str, namespace: TopicNames
) -> None:
    """intake of another gmina (prefix) is another principal: no right in this namespace."""
    other = unique_prefix("other")
    await aensure_namespace(kafka_bootstrap_servers, other)
    stranger = principal_connection(kafka_bootstrap_servers, other, "intake")
    with pytest.raises(TopicAuthorizationFailedError):
        await write(stranger, namespace(Topic.INTAKE_SUBMISSIONS))
    with pytest.raises(TopicAuthorizationFailedError):
        await read(stranger, namespace(Topic.INTAKE_SUBMISSION_COMMANDS))


async def test_bad_credentials_are_refused(
    kafka_bootstrap_servers: str, prefix: str, namespace: TopicNames
) -> None:
    admin = admin_connection(kafka_bootstrap_servers)
    intake = principal_connection(kafka_bootstrap_servers, prefix, "intake")
    wrong_password = intake.as_user(intake.username or "", uuid.uuid4().hex)
    unknown_user = intake.as_user(f"{prefix}nobody", uuid.uuid4().hex)
    admin_guess = admin.as_user(admin.username or "", "admin")
    for connection in (wrong_password, unknown_user, admin_guess):
        with pytest.raises(KafkaConnectionError):  # SASL authentication failed
            await write(connection, namespace(Topic.INTAKE_SUBMISSIONS))
    anonymous = KafkaConnection(kafka_bootstrap_servers, "PLAINTEXT")
    with pytest.raises(KafkaConnectionError):
        await write(anonymous, namespace(Topic.INTAKE_SUBMISSIONS))


@pytest.mark.parametrize("service", SERVICES)
async def test_every_service_runs_as_its_own_principal(
    kafka_bootstrap_servers: str, new_database: DatabaseFactory, service: str
) -> None:
    """The legitimate side: built and started with nothing but its own principal's
    credentials, each service creates its topics, joins its group and is ready."""
    definition = definition_of(service)
    settings = settings_for_test(
        definition.settings,
        database_url=await new_database.create(service),
        kafka=kafka_bootstrap_servers,
        prefix=unique_prefix(service),
    )
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_connection(service).username == f"{settings.kafka_topic_prefix}{service}"
    running = await start_service(service, settings)
    try:
        response = await running.client.get("/health/ready")
        assert response.status_code == 200, response.text
    finally:
        await running.stop()


async def test_applying_again_removes_grants_the_code_no_longer_derives(
    kafka_bootstrap_servers: str,
) -> None:
    """A subscription dropped from the code loses its ACL on the next apply, and applying
    twice changes nothing (users are upserted, ACLs synced)."""
    prefix = unique_prefix("sync")
    await aensure_namespace(kafka_bootstrap_servers, prefix)
    names = TopicNames(prefix)
    user = f"{prefix}news"
    stale = AclBinding(
        f"User:{user}", ResourceType.TOPIC, names(Topic.INTAKE_SUBMISSIONS), Operation.READ
    )
    # The broker's authorizer applies ACL changes from the metadata log a moment after
    # CreateAcls/DeleteAcls answer, so what it describes is awaited, not read once.
    async with KafkaAccessAdmin(admin_connection(kafka_bootstrap_servers)) as admin:

        async def granted() -> set[AclBinding]:
            found: set[AclBinding] = set()
            for principal in principals(prefix):
                found |= await admin.acls_of(f"User:{principal}")
            return found

        await eventually(lambda: granted_as(granted, acl_bindings(prefix)), "the namespace's ACLs")
        await admin.sync_acls({stale} | acl_bindings(prefix), principals(prefix))
        await eventually(
            lambda: granted_as(granted, {stale} | acl_bindings(prefix)), "the stale grant"
        )
        await admin.sync_acls(acl_bindings(prefix), principals(prefix))
        await eventually(
            lambda: granted_as(granted, acl_bindings(prefix)), "the stale grant removed"
        )


async def granted_as(
    granted: Callable[[], Awaitable[set[AclBinding]]], wanted: set[AclBinding]
) -> bool:
    return await granted() == wanted
