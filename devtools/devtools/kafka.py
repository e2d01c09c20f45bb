"""A real single-node Apache Kafka 4.1.1 broker (KRaft) run from Maven Central jars.

No Docker engine is needed: Maven resolves ``kafka_2.13`` and its runtime dependencies into a
per-user cache once, and the broker runs as a plain ``java`` process.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from devtools.proc import (
    DevtoolsError,
    apt_install,
    log_tail,
    pid_alive,
    repo_root,
    stop_popen,
    terminate_pid,
    write_pid_file,
)

KAFKA_VERSION = "4.1.1"
STARTED_LINE = "Kafka Server started"
# Marks the cache dir as complete; written only after Maven copied every jar.
_MARKER = ".complete"
# ``kafka.Kafka`` is the broker's main class; it identifies the process in ``ps``/procfs.
PROCESS_MARKER = "kafka.Kafka"


def kafka_dir() -> Path:
    """``devtools/kafka`` (pom.xml and log4j2.properties)."""
    return repo_root() / "devtools" / "kafka"


def jar_cache_dir() -> Path:
    # Outside the run dir on purpose: ``make clean`` must not force a new Maven download.
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "strategia" / f"kafka-{KAFKA_VERSION}"


def ensure_java() -> str:
    """Path of ``java``, installing a headless JRE first when possible."""
    java = shutil.which("java")
    if java is None:
        apt_install(["openjdk-17-jre-headless"], "Java (needed to run the Kafka broker)")
        java = shutil.which("java")
    if java is None:
        raise DevtoolsError("java is still not on PATH after installing openjdk-17-jre-headless")
    return java


def ensure_maven() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        ensure_java()
        apt_install(["maven"], "Maven (needed to download the Kafka jars)")
        mvn = shutil.which("mvn")
    if mvn is None:
        raise DevtoolsError("mvn is still not on PATH after installing maven")
    return mvn


def ensure_kafka_jars() -> Path:
    """Directory holding every runtime jar of Kafka (KAFKA_VERSION); resolves them on first use.

    Safe to call concurrently (``make up`` next to ``make test``): a file lock serialises the
    Maven run, and the jars land in a temp dir that is renamed into place only when complete.
    """
    target = jar_cache_dir()
    if (target / _MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".kafka-{KAFKA_VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / _MARKER).is_file():  # another process finished while we waited
            return target
        mvn = ensure_maven()
        staging = target.parent / f".kafka-{KAFKA_VERSION}.{os.getpid()}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            mvn,
            "-B",
            "-q",
            "-f",
            str(kafka_dir() / "pom.xml"),
            "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ]
        print(f"devtools: resolving Kafka {KAFKA_VERSION} jars into {target}", flush=True)
        result = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
        if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            shutil.rmtree(staging, ignore_errors=True)
            raise DevtoolsError(
                f"Maven could not resolve the Kafka jars (exit {result.returncode}):\n"
                f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )
        (staging / _MARKER).write_text(f"{KAFKA_VERSION}\n")
        shutil.rmtree(target, ignore_errors=True)  # an incomplete leftover without marker
        staging.rename(target)
    return target


def new_cluster_id() -> str:
    """A KRaft cluster id: a random UUID in Kafka's URL-safe base64 form (22 chars).

    Like Kafka's own ``Uuid.randomUuid``, never one starting with ``-``: the storage tool's
    argument parser would take it for an option (one id in 64 did, and failed ``make up``).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def write_server_properties(
    data_dir: Path, port: int, controller_port: int, host: str = "127.0.0.1"
) -> Path:
    """(Re)write ``server.properties`` for a single combined broker+controller node."""
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        # Static quorum of one voter: no --standalone/dynamic-quorum bookkeeping needed.
        "controller.quorum.voters": f"1@{host}:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data_dir / "logs"),
        # Single node: every internal topic must live with one replica.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "3",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # Consumers in tests must not wait 3 s for a first rebalance.
        "group.initial.rebalance.delay.ms": "0",
        # The default 128 MiB dedupe buffer is wasted memory for local use.
        "log.cleaner.dedupe.buffer.size": "2097152",
        "auto.create.topics.enable": "true",
        "num.partitions": "1",
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "server.properties"
    path.write_text("".join(f"{key}={value}\n" for key, value in props.items()))
    return path


def format_storage(jars: Path, data_dir: Path, properties: Path, log_file: Path) -> None:
    """Format the KRaft metadata log once, so topics and offsets survive restarts."""
    if (data_dir / "logs" / "meta.properties").is_file():
        return  # formatted already (StorageTool would reject a different cluster id)
    java = ensure_java()
    cmd = [
        java,
        "-Xmx256m",
        f"-Dlog4j2.configurationFile={kafka_dir() / 'log4j2.properties'}",
        "-cp",
        f"{jars}/*",
        "kafka.tools.StorageTool",
        "format",
        "-t",
        new_cluster_id(),
        "-c",
        str(properties),
        "--ignore-formatted",
    ]
    result = subprocess.run(
        cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    with open(log_file, "a") as log:
        log.write(result.stdout + result.stderr)
    if result.returncode != 0:
        raise DevtoolsError(
            f"Kafka storage format failed (exit {result.returncode}):\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )


@dataclass
class KafkaProcess:
    """A running broker. ``proc`` is set when this process started it (so it can be reaped)."""

    pid: int
    port: int
    controller_port: int
    log_file: Path
    host: str = "127.0.0.1"
    pid_file: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return pid_alive(self.pid)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (controlled shutdown), SIGKILL after ``timeout``; removes the pid file."""
        if self.proc is not None:
            stop_popen(self.proc, timeout)
        else:
            terminate_pid(self.pid, timeout)
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)


def _wait_started(
    proc: subprocess.Popen[bytes], log_file: Path, offset: int, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log_file, "rb") as log:
            log.seek(offset)
            if STARTED_LINE.encode() in log.read():
                return
        if proc.poll() is not None:
            raise DevtoolsError(
                f"Kafka exited with code {proc.returncode} during startup\n"
                f"--- {log_file} ---\n{log_tail(log_file)}"
            )
        time.sleep(0.2)
    stop_popen(proc, 10.0)
    raise DevtoolsError(
        f"Kafka did not log {STARTED_LINE!r} within {timeout:.0f}s\n"
        f"--- {log_file} ---\n{log_tail(log_file)}"
    )


def start_kafka(
    data_dir: Path,
    port: int,
    controller_port: int,
    log_file: Path,
    pid_file: Path | None = None,
    *,
    host: str = "127.0.0.1",
    timeout: float = 90.0,
) -> KafkaProcess:
    """Start a broker on ``host:port`` (controller on ``controller_port``) and wait until ready.

    Data in ``data_dir`` survives restarts. The broker runs in its own session, so it outlives
    the caller (``make up``) unless stopped; its output goes to ``log_file``.
    """
    data_dir = data_dir.resolve()
    log_file = log_file.resolve()
    jars = ensure_kafka_jars()
    java = ensure_java()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    properties = write_server_properties(data_dir, port, controller_port, host)
    format_storage(jars, data_dir, properties, log_file)
    offset = log_file.stat().st_size if log_file.exists() else 0
    cmd = [
        java,
        "-Xms256m",
        "-Xmx512m",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={kafka_dir() / 'log4j2.properties'}",
        "-cp",
        f"{jars}/*",
        PROCESS_MARKER,
        str(properties),
    ]
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=data_dir,
            start_new_session=True,
        )
    if pid_file is not None:
        write_pid_file(pid_file, proc.pid)
    try:
        _wait_started(proc, log_file, offset, timeout)
    except BaseException:
        stop_popen(proc, 10.0)
        if pid_file is not None:
            with contextlib.suppress(OSError):
                pid_file.unlink()
        raise
    return KafkaProcess(
        pid=proc.pid,
        port=port,
        controller_port=controller_port,
        log_file=log_file,
        host=host,
        pid_file=pid_file,
        proc=proc,
    )
