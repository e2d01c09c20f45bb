"""The compose deployment's Kafka security, run for real without Docker.

`deploy/kafka/start.sh` (the compose broker's entrypoint) starts the Maven-resolved Kafka
of the local stack with the `KAFKA_CFG_*` settings of docker-compose.yml (only addresses
and paths adapted), on TLS material made by `deploy/kafka/make-certs.sh`; then the
compose `kafka-init` step (`python -m shared.platform.kafka_access`) creates the users and
ACLs over SASL_SSL, and the services' principals connect over verified TLS.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError

from devtools.kafka import STARTED_LINE, ensure_java, ensure_kafka_jars
from devtools.proc import free_ports, repo_root, stop_popen
from shared.contracts.topics import Topic
from shared.platform.kafka_access import password_variable, principal_names
from shared.platform.kafka_security import KafkaConnection
from shared.platform.topics_admin import ensure_topics
from tests.platform.test_kafka_security import write

pytestmark = pytest.mark.integration

ROOT = repo_root()


def fake_kafka_home(home: Path) -> Path:
    """`bin/kafka-storage.sh` and `bin/kafka-server-start.sh` as in the image, on our jars."""
    jars = ensure_kafka_jars()
    java = ensure_java()
    log4j = ROOT / "devtools" / "kafka" / "log4j2.properties"
    (home / "bin").mkdir(parents=True)
    for script, main in (
        ("kafka-storage.sh", "kafka.tools.StorageTool"),
        ("kafka-server-start.sh", "kafka.Kafka"),
    ):
        path = home / "bin" / script
        path.write_text(
            "#!/bin/sh\n"
            f'exec "{java}" -Xmx512m -Dlog4j2.configurationFile={log4j}'
            f' -cp "{jars}/*" {main} "$@"\n'
        )
        path.chmod(0o755)
    return home


class ComposeBroker:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port, self.controller_port = free_ports(2)
        self.certs = tmp / "certs"
        self.admin_password = os.urandom(16).hex()
        self.passwords = {name: os.urandom(16).hex() for name in principal_names()}

    @property
    def bootstrap(self) -> str:
        return f"localhost:{self.port}"  # a name the certificate carries

    def environment(self) -> dict[str, str]:
        compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
        kafka_env = {
            key: str(value)
            for key, value in compose["services"]["kafka"]["environment"].items()
            if key.startswith("KAFKA_CFG_")
        }
        kafka_env.update(
            {
                "KAFKA_CFG_LISTENERS": (
                    f"SASL_SSL://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
                ),
                "KAFKA_CFG_ADVERTISED_LISTENERS": f"SASL_SSL://{self.bootstrap}",
                "KAFKA_CFG_CONTROLLER_QUORUM_VOTERS": f"1@127.0.0.1:{self.controller_port}",
                "KAFKA_CFG_LOG_DIRS": str(self.tmp / "data"),
                "KAFKA_CFG_SSL_KEYSTORE_LOCATION": str(self.certs / "broker.pem"),
                "KAFKA_CFG_SSL_TRUSTSTORE_LOCATION": str(self.certs / "ca.crt"),
            }
        )
        return {
            "PATH": os.environ["PATH"],
            "KAFKA_HOME": str(fake_kafka_home(self.tmp / "kafka-home")),
            "STRATEGIA_KAFKA_CONF_DIR": str(self.tmp / "conf"),
            "CLUSTER_ID": "n7x2B66dTGiJ3NBg9aIDiQ",
            "KAFKA_ADMIN_PASSWORD": self.admin_password,
            **kafka_env,
        }

    def connection(self, name: str, password: str | None = None) -> KafkaConnection:
        return KafkaConnection(
            self.bootstrap,
            "SASL_SSL",
            name,
            password or self.passwords[name],
            self.certs / "ca.crt",
        )


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeBroker]:
    tmp = tmp_path_factory.mktemp("compose-kafka")
    broker = ComposeBroker(tmp)
    subprocess.run(
        [ROOT / "deploy" / "kafka" / "make-certs.sh", "30"],
        env={**os.environ, "STRATEGIA_KAFKA_CERTS_DIR": str(broker.certs)},
        check=True,
        capture_output=True,
    )
    log_path = tmp / "kafka.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["/bin/sh", str(ROOT / "deploy" / "kafka" / "start.sh")],
            env=broker.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while STARTED_LINE not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"compose broker did not start:\n{log_path.read_text()[-4000:]}"
                )
            time.sleep(0.3)
        # compose's kafka-init step, as the admin over SASL_SSL
        init = subprocess.run(
            [sys.executable, "-m", "shared.platform.kafka_access"],
            env={
                **os.environ,
                "STRATEGIA_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
                "STRATEGIA_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "STRATEGIA_KAFKA_SSL_CA_FILE": str(broker.certs / "ca.crt"),
                "STRATEGIA_KAFKA_SASL_USERNAME": "admin",
                "STRATEGIA_KAFKA_SASL_PASSWORD": broker.admin_password,
                **{password_variable(n): p for n, p in broker.passwords.items()},
            },
            capture_output=True,
            text=True,
            check=False,
        )
        assert init.returncode == 0, init.stdout + init.stderr
        yield broker
    finally:
        stop_popen(process, 30.0)


def test_the_server_properties_hold_no_secret_in_the_compose_file(broker: ComposeBroker) -> None:
    properties = (broker.tmp / "conf" / "server.properties").read_text()
    assert "org.apache.kafka.metadata.authorizer.StandardAuthorizer" in properties
    assert broker.admin_password in properties  # added by the script, not by compose
    assert oct((broker.tmp / "conf" / "server.properties").stat().st_mode & 0o777) == "0o600"


async def test_services_connect_over_tls_as_their_principals(broker: ComposeBroker) -> None:
    intake = broker.connection("intake")
    topic = str(Topic.INTAKE_SUBMISSIONS)
    await ensure_topics(intake, {topic: {}}, partitions=1, replication=1)
    await write(intake, topic)
    with pytest.raises(TopicAuthorizationFailedError):
        await write(broker.connection("front-channel"), topic)
    with pytest.raises(KafkaConnectionError):
        await write(broker.connection("intake", "wrong"), topic)


async def test_no_plaintext_client_is_served(broker: ComposeBroker) -> None:
    sasl_without_tls = KafkaConnection(
        broker.bootstrap, "SASL_PLAINTEXT", "intake", broker.passwords["intake"]
    )
    with pytest.raises(KafkaConnectionError):
        await write(sasl_without_tls, str(Topic.INTAKE_SUBMISSIONS))
