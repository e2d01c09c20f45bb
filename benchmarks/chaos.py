"""`make chaos`: faults injected into a running stack under a steady stream of submissions.

Throw-away Kafka, PostgreSQL (durable: fsync on) and SMTP sink processes, every service as
`python -m <service>`, and a resident-like client sending submissions at a steady rate (each
with its own Idempotency-Key, retried with the same key after a 503, a timeout or a refused
connection, as the web front does). Then, one at a time:

- `kill -9` of each service, started again a few seconds later (as a process supervisor
  would: same command, same port);
- `kill -9` of the Kafka broker, restarted;
- PostgreSQL stopped in `immediate` mode (a crash: recovery on restart), restarted;
- the SMTP relay down for two minutes.

After each fault the tool waits until every submission accepted so far has its receipt
email (or a deadline passes) and prints, per fault: submissions accepted, receipts sent,
lost, duplicated (a second copy with the same Message-ID is the documented window between
the SMTP server's acceptance and our commit; any other copy would be a bug), the answers
clients got meanwhile (a 5xx other than 503, or an error that is not JSON, would be a
defect), whether each service that stayed up reported `/health/ready` 503 during the
outage and 200 again by itself (none is ever restarted by the tool), and the time from the
fault until every service was ready and a new submission was accepted.

It measures and prints; `tests/test_faults.py` runs the same engine on a shorter plan and
asserts what must hold.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

import asyncpg
import httpx

from benchmarks.receipts import HEAD_BYTES, RECEIPT_NUMBER
from benchmarks.services import Deployment, Infrastructure, open_consultation
from devtools import free_ports
from devtools.kafka import KafkaProcess, start_kafka
from devtools.kafka_auth import register_admin
from devtools.postgres import PostgresProcess, start_postgres, stop_postgres
from devtools.testing import ServiceProcess, submission_payload

SERVICES = ("intake", "notifications", "groups", "news")
FAULTS = (*SERVICES, "kafka", "postgres", "smtp")
SUPERVISOR_DELAY_SECONDS = 3.0  # a supervisor's restart delay (systemd's RestartSec)


# --- the stack ------------------------------------------------------------------------------


@dataclass
class Stack:
    """Everything the faults act on; each piece can be crashed and started again in place."""

    scratch: Path
    kafka: KafkaProcess
    postgres: PostgresProcess
    smtp_port: int
    mail_dir: Path
    deployment: Deployment
    smtp: subprocess.Popen[bytes] | None = None

    # Infrastructure restarts keep data directories and ports, so clients find them again.
    def start_smtp(self) -> None:
        log = open(self.scratch / "smtp.log", "ab")  # noqa: SIM115 - the child keeps it
        self.smtp = subprocess.Popen(  # noqa: S603 - our own module
            [
                *(sys.executable, "-m", "devtools.smtp_sink"),
                *("--port", str(self.smtp_port), "--dir", str(self.mail_dir)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.smtp_port), timeout=1).close()
                return
            time.sleep(0.1)
        raise RuntimeError("the SMTP sink did not start")

    def stop_smtp(self) -> None:
        if self.smtp is not None:
            self.smtp.terminate()
            self.smtp.wait(30)
            self.smtp = None

    def kill_kafka(self) -> None:
        os.kill(self.kafka.pid, signal.SIGKILL)
        if self.kafka.proc is not None:
            self.kafka.proc.wait(30)

    def start_kafka(self) -> None:
        self.kafka = start_kafka(
            self.scratch / "kafka",
            self.kafka.port,
            self.kafka.controller_port,
            self.scratch / "kafka.log",
            admin_password=self.kafka.admin_password,
        )

    def crash_postgres(self) -> None:
        stop_postgres(self.postgres.data_dir, self.postgres.bindir, mode="immediate")
        if self.postgres.proc is not None:
            self.postgres.proc.wait(30)

    def start_postgres(self) -> None:
        self.postgres = start_postgres(
            self.scratch / "pg", self.postgres.port, self.scratch / "pg.log"
        )

    def service(self, name: str) -> ServiceProcess:
        return self.deployment.processes[name]

    def close(self) -> None:
        self.deployment.stop()
        self.stop_smtp()
        with contextlib.suppress(Exception):
            self.kafka.stop()
        with contextlib.suppress(Exception):
            self.postgres.stop()


@contextlib.asynccontextmanager
async def running_stack(scratch: Path, services: Sequence[str]) -> AsyncIterator[Stack]:
    kafka_port, controller_port, pg_port, smtp_port = free_ports(4)
    kafka = await asyncio.to_thread(
        functools.partial(
            start_kafka,
            scratch / "kafka",
            kafka_port,
            controller_port,
            scratch / "kafka.log",
            admin_password=secrets.token_hex(24),
        )
    )
    register_admin(kafka.admin())  # raw clients use it; the services their own principals
    postgres = await asyncio.to_thread(start_postgres, scratch / "pg", pg_port, scratch / "pg.log")
    mail_dir = scratch / "mail"
    mail_dir.mkdir()
    (scratch / "logs").mkdir()
    infra = Infrastructure(
        kafka=kafka.bootstrap_servers,
        admin_dsn=postgres.admin_dsn,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        logs=scratch / "logs",
    )
    stack = Stack(scratch, kafka, postgres, smtp_port, mail_dir, Deployment(infra, prefix="chaos."))
    try:
        await asyncio.to_thread(stack.start_smtp)
        for name in services:
            # Production defaults, except that the clients below must see an outage quickly.
            await stack.deployment.start(name)
        yield stack
    finally:
        await asyncio.to_thread(stack.close)


# --- residents ------------------------------------------------------------------------------


@dataclass
class Submission:
    key: str
    sent_at: float
    receipt_number: str | None = None
    accepted_at: float | None = None
    gave_up: bool = False


@dataclass
class Answers:
    """What clients were answered, by kind, while faults came and went."""

    counts: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str) -> None:
        self.counts[kind] += 1

    def defects(self) -> int:
        return sum(n for kind, n in self.counts.items() if kind.startswith("DEFECT"))


class Residents:
    """A steady stream of submissions; each retried with its key until accepted."""

    def __init__(self, intake_url: str, path: str, rate: float) -> None:
        self.url = intake_url + path
        self.rate = rate
        self.submissions: list[Submission] = []
        self.answers = Answers()
        self._tasks: set[asyncio.Task[None]] = set()
        self._client = httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=64))

    async def run(self, stop: asyncio.Event) -> None:
        interval = 1 / self.rate
        due = time.monotonic()
        while not stop.is_set():
            task = asyncio.create_task(self._submit(len(self.submissions)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            due += interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))

    async def _submit(self, index: int) -> None:
        submission = Submission(key=str(uuid.uuid4()), sent_at=time.time())
        self.submissions.append(submission)
        payload = submission_payload(
            submitter={"kind": "resident", "email": f"chaos{index}@example.org"},
            title=f"Zgłoszenie {index}",
        )
        give_up_at = time.monotonic() + 600
        while time.monotonic() < give_up_at:
            wait = 1.0
            try:
                response = await self._client.post(
                    self.url, json=payload, headers={"Idempotency-Key": submission.key}
                )
            except httpx.TransportError as error:
                self.answers.add(f"no answer ({type(error).__name__})")
            else:
                status = response.status_code
                if status in (200, 202):
                    self.answers.add(str(status))
                    submission.receipt_number = response.json()["receipt"]["number"]
                    submission.accepted_at = time.time()
                    return
                is_json = response.headers.get("content-type", "").startswith("application/json")
                if status == 503 and is_json and "Retry-After" in response.headers:
                    self.answers.add("503 + Retry-After (JSON)")
                    wait = min(5.0, float(response.headers["Retry-After"]))
                else:
                    self.answers.add(f"DEFECT {status} {'JSON' if is_json else 'not JSON'}")
            await asyncio.sleep(wait)
        submission.gave_up = True

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self._client.aclose()


# --- the sink -------------------------------------------------------------------------------


def receipt_emails(mail_dir: Path) -> dict[str, list[str]]:
    """Receipt number -> the Message-IDs of every copy the sink accepted."""
    parser = BytesHeaderParser(policy=compat32)
    found: dict[str, list[str]] = {}
    for path in mail_dir.glob("*.eml"):
        with path.open("rb") as message:
            head = parser.parsebytes(message.read(HEAD_BYTES).split(b"\r\n\r\n", 1)[0])
        subject = str(make_header(decode_header(str(head.get("Subject", "")))))
        number = RECEIPT_NUMBER.search(subject)
        if number:
            found.setdefault(number.group(0), []).append(str(head.get("Message-ID", "")))
    return found


# --- faults ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    fault: str
    accepted: int = 0
    receipts: int = 0
    lost: int = 0
    duplicated_same_message: int = 0
    duplicated_other: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    saw_not_ready: dict[str, bool] = field(default_factory=dict)
    recovered_seconds: float | None = None
    settled_seconds: float | None = None


async def readiness(url: str) -> int | None:
    """The readiness status, None when nothing answers (the service's own Kafka check
    takes up to 2 s while the broker is away: wait longer than that)."""
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            return (await client.get(f"{url}/health/ready")).status_code
    except httpx.HTTPError:
        return None


async def watch_readiness(
    stack: Stack, services: Sequence[str], seen: dict[str, set[int | None]], stop: asyncio.Event
) -> None:
    while not stop.is_set():
        answers = await asyncio.gather(*(readiness(stack.service(n).url) for n in services))
        for name, answer in zip(services, answers, strict=True):
            seen.setdefault(name, set()).add(answer)
        await asyncio.sleep(0.5)


async def inject(stack: Stack, fault: str, outage: float) -> None:
    """Crash `fault`, leave it down for `outage` seconds, start it again."""
    if fault in SERVICES:
        process = stack.service(fault)
        process.kill()
        await asyncio.sleep(outage)
        process.start()
        await asyncio.to_thread(process.ready, 180)
    elif fault == "kafka":
        stack.kill_kafka()
        await asyncio.sleep(outage)
        await asyncio.to_thread(stack.start_kafka)
    elif fault == "postgres":
        await asyncio.to_thread(stack.crash_postgres)
        await asyncio.sleep(outage)
        await asyncio.to_thread(stack.start_postgres)
    elif fault == "smtp":
        stack.stop_smtp()
        await asyncio.sleep(outage)
        await asyncio.to_thread(stack.start_smtp)
    else:
        raise ValueError(f"unknown fault {fault!r}")


def outage_of(fault: str, smtp_outage: float) -> float:
    if fault == "smtp":
        return smtp_outage
    if fault in SERVICES:
        return SUPERVISOR_DELAY_SECONDS
    return 10.0


async def all_ready(stack: Stack, services: Sequence[str]) -> bool:
    answers = await asyncio.gather(*(readiness(stack.service(n).url) for n in services))
    return all(status == 200 for status in answers)


async def run_fault(
    stack: Stack,
    residents: Residents,
    services: Sequence[str],
    fault: str,
    *,
    smtp_outage: float,
    settle_timeout: float,
    calm_seconds: float,
) -> Outcome:
    outcome = Outcome(fault)
    first = len(residents.submissions)
    answers_before = Counter(residents.answers.counts)
    await asyncio.sleep(calm_seconds)  # traffic before the fault
    seen: dict[str, set[int | None]] = {}
    watching = asyncio.Event()
    stayed_up = [name for name in services if name != fault]
    watcher = asyncio.create_task(watch_readiness(stack, stayed_up, seen, watching))
    started = time.monotonic()
    await inject(stack, fault, outage_of(fault, smtp_outage))
    # Recovered: every service ready and a submission sent after that accepted.
    while not await all_ready(stack, services):  # noqa: ASYNC110 - other processes' state
        await asyncio.sleep(0.5)
    probe_from = len(residents.submissions)
    while not any(s.accepted_at for s in residents.submissions[probe_from:]):  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    outcome.recovered_seconds = time.monotonic() - started
    watching.set()
    await watcher
    outcome.saw_not_ready = {name: 503 in seen.get(name, set()) for name in stayed_up}
    await asyncio.sleep(calm_seconds)  # traffic after recovery
    last = len(residents.submissions)
    # Settle: every submission of the phase answered and every accepted one mailed.
    deadline = time.monotonic() + settle_timeout
    phase = residents.submissions[first:last]
    while time.monotonic() < deadline:
        emails = receipt_emails(stack.mail_dir)
        answered = all(s.accepted_at or s.gave_up for s in phase)
        if answered and all(s.receipt_number in emails for s in phase if s.receipt_number):
            break
        await asyncio.sleep(1)
    outcome.settled_seconds = time.monotonic() - started
    emails = receipt_emails(stack.mail_dir)
    accepted = [s for s in phase if s.receipt_number]
    outcome.accepted = len(accepted)
    for submission in accepted:
        copies = emails.get(submission.receipt_number or "", [])
        if not copies:
            outcome.lost += 1
            continue
        outcome.receipts += 1
        distinct = len(set(copies))
        outcome.duplicated_same_message += len(copies) - distinct
        outcome.duplicated_other += distinct - 1
    outcome.answers = residents.answers.counts - answers_before
    return outcome


@dataclass
class Totals:
    accepted: int
    stored: int
    projected_by_groups: int | None
    emailed: int
    gave_up: int


async def count_rows(dsn: str, query: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return int(await connection.fetchval(query))
    finally:
        await connection.close()


async def totals(stack: Stack, residents: Residents) -> Totals:
    accepted = {s.receipt_number for s in residents.submissions if s.receipt_number}
    intake_dsn = stack.service("intake").environment["STRATEGIA_DATABASE_URL"]
    stored = await count_rows(intake_dsn, "SELECT count(*) FROM submissions")
    projected = None
    if "groups" in stack.deployment.processes:
        groups_dsn = stack.service("groups").environment["STRATEGIA_DATABASE_URL"]
        deadline = time.monotonic() + 120
        while True:  # groups consumes on its own schedule
            projected = await count_rows(groups_dsn, "SELECT count(*) FROM submissions")
            if projected >= stored or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
    emails = receipt_emails(stack.mail_dir)
    return Totals(
        accepted=len(accepted),
        stored=stored,
        projected_by_groups=projected,
        emailed=sum(1 for number in accepted if number in emails),
        gave_up=sum(1 for s in residents.submissions if s.gave_up),
    )


@dataclass
class ChaosRun:
    outcomes: list[Outcome]
    totals: Totals


async def run_chaos(
    faults: Sequence[str],
    *,
    services: Sequence[str] = SERVICES,
    rate: float = 10.0,
    smtp_outage: float = 120.0,
    settle_timeout: float = 600.0,
    calm_seconds: float = 5.0,
    scratch: Path | None = None,
    report: bool = True,
) -> ChaosRun:
    with contextlib.ExitStack() as cleanup:
        if scratch is None:
            scratch = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="chaos-")))
        async with running_stack(scratch, services) as stack:
            path = await asyncio.to_thread(open_consultation, stack.service("intake").url)
            residents = Residents(stack.service("intake").url, path, rate)
            stop = asyncio.Event()
            load = asyncio.create_task(residents.run(stop))
            outcomes = []
            try:
                for fault in faults:
                    if report:
                        print(f"… {fault}: crashing it under load", flush=True)
                    outcome = await run_fault(
                        stack,
                        residents,
                        services,
                        fault,
                        smtp_outage=smtp_outage,
                        settle_timeout=settle_timeout,
                        calm_seconds=calm_seconds,
                    )
                    outcomes.append(outcome)
                    if report:
                        print_outcome(outcome)
            finally:
                stop.set()
                await load
                await residents.drain()
            return ChaosRun(outcomes, await totals(stack, residents))


# --- report ---------------------------------------------------------------------------------


def print_outcome(outcome: Outcome) -> None:
    ready = ", ".join(
        f"{name} {'503 then 200' if saw else 'stayed 200'}"
        for name, saw in outcome.saw_not_ready.items()
    )
    answers = ", ".join(f"{kind}: {n}" for kind, n in sorted(outcome.answers.items()))
    print(
        f"  {outcome.fault:13} accepted {outcome.accepted:5}  receipts {outcome.receipts:5}  "
        f"lost {outcome.lost}  duplicated {outcome.duplicated_other}"
        f" (+{outcome.duplicated_same_message} same Message-ID)  "
        f"recovered in {outcome.recovered_seconds or 0:.1f} s, "
        f"all mailed {outcome.settled_seconds or 0:.1f} s after the fault\n"
        f"                clients were answered: {answers}\n"
        f"                readiness of the others: {ready}",
        flush=True,
    )


def print_run(run: ChaosRun, *, rate: float) -> None:
    print()
    print(f"make chaos: {len(run.outcomes)} faults, {rate:g} submissions/s, {os.cpu_count()} cores")
    print(
        "| fault | accepted | receipts | lost | duplicated | same Message-ID | "
        "non-503 errors | ready 503 → 200 | recovered |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for o in run.outcomes:
        defects = sum(n for kind, n in o.answers.items() if kind.startswith("DEFECT"))
        flipped = [name for name, saw in o.saw_not_ready.items() if saw]
        print(
            f"| {o.fault} | {o.accepted} | {o.receipts} | {o.lost} | {o.duplicated_other} | "
            f"{o.duplicated_same_message} | {defects} | {', '.join(flipped) or '—'} | "
            f"{o.recovered_seconds or 0:.1f} s |"
        )
    t = run.totals
    print(
        f"\nwhole run: {t.accepted} accepted, {t.stored} stored by intake, "
        f"{t.projected_by_groups if t.projected_by_groups is not None else '—'} projected by "
        f"groups, {t.emailed} with a receipt email, {t.gave_up} clients gave up"
    )


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # asyncio.run cancels the run: every process is stopped


def main(argv: Sequence[str] | None = None) -> None:
    signal.signal(signal.SIGTERM, interrupt)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated, in order")
    parser.add_argument("--rate", type=float, default=10.0, help="submissions per second")
    parser.add_argument("--smtp-outage", type=float, default=120.0, help="seconds")
    parser.add_argument("--settle-timeout", type=float, default=900.0, help="seconds")
    arguments = parser.parse_args(argv)
    faults = [f for f in arguments.faults.split(",") if f]
    unknown = set(faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}; choose from {', '.join(FAULTS)}")
    run = asyncio.run(
        run_chaos(
            faults,
            rate=arguments.rate,
            smtp_outage=arguments.smtp_outage,
            settle_timeout=arguments.settle_timeout,
        )
    )
    print_run(run, rate=arguments.rate)


if __name__ == "__main__":
    main()
