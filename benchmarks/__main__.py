"""`make bench` (`python -m benchmarks`): the speed of the stack, beside its ceilings.

One run measures, on the same machine and the same broker:

1. the broker's ceiling with raw aiokafka: produce+consume of 20,000 records of 1 KiB, and
   the producer alone (idempotent, acks=all, as the services publish), the best of 3 tries
   each (the tries are printed: their spread shows the noise);
2. the outbox relay emptying a backlog of 20,000 rows, beside that raw producer;
3. intake as `python -m intake` (N worker processes) under `wrk`: 64 connections, 20 s,
   one consultation, a fresh Idempotency-Key per request; accepted submissions/s with the
   accept latency p50/p99, as a share of the produce+consume ceiling; then a check that the
   receipt numbers are gap-free and the topic holds one event per accepted submission;
4. the open-loop generator's own ceiling, against `/health/live`;
5. notifications: emails/s into the SMTP sink with 1 and with 2 replicas;
6. receipts within a second: intake and notifications as processes, a steady 200
   submissions/s for 60 s (open loop), accept latency and submission accepted -> receipt
   email accepted by the SMTP sink, p50/p99;
7. resident memory of every service under that load; with `--soak` (`make bench SOAK=1`)
   a 10-minute steady load printing it every 30 s;
8. alerts: the SMTP sink's own ceiling (aiosmtplib, 8 reused connections), then one alert
   event fanned out to 10,000 confirmed subscribers by `python -m notifications`: the time
   from the event to the last email the sink accepted, and emails/s.

`--phases 5,8` runs only those phases (the default is all of them).

Each phase prints which processes used the CPU meanwhile, this run's and everybody
else's: on a shared machine that is what the figures depend on. It measures and prints;
it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import asyncpg

from benchmarks.alerts import add_subscribers, alert_fan_out, smtp_ceiling
from benchmarks.kafka_ceiling import Ceiling, produce_and_consume, producer_only
from benchmarks.machine import CpuShare, RssSampler, cpu_share, load_average
from benchmarks.paced import PacedResult, percentile, run_paced
from benchmarks.receipts import SinkReceipts, delivery_stages
from benchmarks.relay import relay_drain, unique_database_name
from benchmarks.services import Deployment, Infrastructure, deployment, open_consultation
from benchmarks.wrk import run_wrk
from devtools import free_ports
from devtools.kafka import start_kafka
from devtools.kafka_auth import register_admin
from devtools.postgres import acreate_database, start_postgres
from devtools.testing import headers, read_whole_topic

# PostgreSQL backends of this run's databases (all named bench_*), by their command line.
THIS_RUN = {"postgres (this run's databases)": "postgres: bench_"}


@dataclass
class Report:
    """Every figure of the run, printed together at the end."""

    lines: list[str] = field(default_factory=list)

    def add(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)


@dataclass
class Infra:
    infra: Infrastructure
    pids: dict[str, int]  # kafka, postgres, smtp sink (when this run started them)
    postgres_settings: str


@contextlib.contextmanager
def infrastructure(scratch: Path) -> Iterator[tuple[str, str, dict[str, int]]]:
    kafka = os.environ.get("STRATEGIA_TEST_KAFKA_BOOTSTRAP_SERVERS")
    postgres = os.environ.get("STRATEGIA_TEST_POSTGRES_DSN")
    if kafka and postgres:
        yield kafka, postgres, {}
        return
    kafka_port, controller_port, pg_port = free_ports(3)
    broker = start_kafka(
        scratch / "kafka",
        kafka_port,
        controller_port,
        scratch / "kafka.log",
        admin_password=secrets.token_hex(24),
    )
    register_admin(broker.admin())  # raw clients use it; the services their own principals
    # Durable, as in production: fsync and synchronous commit stay on.
    server = start_postgres(scratch / "pg", pg_port, scratch / "pg.log")
    try:
        yield (
            broker.bootstrap_servers,
            server.admin_dsn,
            {
                "kafka": broker.pid,
                "postgres": server.pid,
            },
        )
    finally:
        broker.stop()
        server.stop()


@contextlib.contextmanager
def smtp_sink(mail_dir: Path, log: Path) -> Iterator[tuple[int, int]]:
    port = free_ports(1)[0]
    with open(log, "ab") as output:
        process = subprocess.Popen(  # noqa: S603 - our own module
            [
                sys.executable,
                "-m",
                "devtools.smtp_sink",
                "--port",
                str(port),
                "--dir",
                str(mail_dir),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            time.sleep(0.1)
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(10)


def groups(infra: Infra, services: Deployment, **extra: int) -> dict[str, int | set[int]]:
    found: dict[str, int | set[int]] = {
        name: process.process.pid
        for name, process in services.processes.items()
        if process.process is not None
    }
    found.update(infra.pids)
    found.update(extra)
    found["this benchmark"] = os.getpid()
    return found


def rss_roots(services: Deployment) -> dict[str, int]:
    return {
        name: process.process.pid
        for name, process in services.processes.items()
        if process.process is not None
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def submission_body(index: int, *, email: bool) -> bytes:
    submitter: dict[str, str] = {"kind": "resident", "locality": "Gassy"}
    if email:
        submitter["email"] = f"bench-{index}@example.org"
    return json.dumps(
        {
            "submitter": submitter,
            "theme": "social",
            "title": f"Propozycja {index}",
            "body": "Prosimy o żłobek, chodnik i lepszy autobus do Warszawy. "
            "Treść propozycji mieszkańca, taka jak w prawdziwym formularzu.",
            "consent": {"processing": True, "contact": False},
        }
    ).encode()


async def paced_submissions(
    url: str, path: str, *, rate: float, seconds: float, run: str
) -> PacedResult:
    host, port = url.removeprefix("http://").split(":")

    def request(index: int) -> tuple[str, str, dict[str, str], bytes]:
        headers = {"Content-Type": "application/json", "Idempotency-Key": f"{run}-{index}"}
        return "POST", path, headers, submission_body(index, email=True)

    return await run_paced(host, int(port), request, rate=rate, seconds=seconds)


async def verify_intake(intake_url: str, database_url: str, kafka: str, topic: str) -> str:
    """Gap-free numbers and one event per accepted submission, after the outbox drained.

    The relay publishes at least once (a row whose acknowledgement was lost is published
    again; consumers drop the copy by `event_id`), so the topic is read whole: distinct
    events are what must match the submissions, and copies are counted apart."""
    database = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + 300
        # wrk stops with requests still in flight: wait until they are committed too (the
        # count holds still) and the outbox has published everything.
        previous = -1
        while True:
            stored = await database.fetchval("SELECT count(*) FROM submissions")
            if stored == previous and not await database.fetchval("SELECT count(*) FROM outbox"):
                break
            if time.monotonic() > deadline:
                return "outbox not drained after 300 s"
            previous = stored
            await asyncio.sleep(1.0)
        row = await database.fetchrow(
            "SELECT count(*) AS n, max(receipt_seq) AS last, count(DISTINCT receipt_seq) AS d"
            " FROM submissions"
        )
    finally:
        await database.close()
    assert row is not None
    records = await read_whole_topic(kafka, topic, deadline_s=300)
    distinct = len({headers(record)["event_id"] for record in records})
    copies = len(records) - distinct
    gap_free = row["n"] == row["last"] == row["d"]
    return (
        f"{row['n']:,} submissions stored, receipt numbers 1..{row['last']:,} "
        f"({'gap-free' if gap_free else 'NOT gap-free'}); {distinct:,} distinct events on "
        f"{topic.split('.', 1)[1]} ({'one per submission' if distinct == row['n'] else 'MISMATCH'})"
        f", {copies:,} re-published copies (at-least-once relay, dropped by consumers' inbox)"
    )


def describe_cpu(report: Report, shares: list[CpuShare]) -> None:
    if shares:
        report.add("    " + shares[0].describe(os.cpu_count() or 1))


async def main_async(arguments: argparse.Namespace, scratch: Path) -> None:
    # SIGTERM (or a SIGINT a background shell made us ignore) stops the run like Ctrl-C:
    # the services, Kafka and PostgreSQL it started are stopped on the way out.
    main_task = asyncio.current_task()
    assert main_task is not None
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, main_task.cancel)
    report = Report()
    cores = os.cpu_count() or 1
    mail_dir = scratch / "mail"
    report.add(f"Strategia benchmark, {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    report.add(f"machine: {cores} cores, load average before the run {load_average()}")
    with cpu_share({"this benchmark": os.getpid()}) as idle:
        await asyncio.sleep(3)
    describe_cpu(report, idle)

    with (
        infrastructure(scratch) as (kafka, admin_dsn, infra_pids),
        smtp_sink(mail_dir, scratch / "logs" / "smtp.log") as (smtp_port, smtp_pid),
    ):
        pg = await asyncpg.connect(admin_dsn)
        try:
            fsync = await pg.fetchval("SHOW fsync")
            sync_commit = await pg.fetchval("SHOW synchronous_commit")
        finally:
            await pg.close()
        infra = Infra(
            Infrastructure(kafka, admin_dsn, "127.0.0.1", smtp_port, scratch / "logs"),
            {**infra_pids, "smtp sink": smtp_pid},
            f"fsync={fsync}, synchronous_commit={sync_commit}",
        )
        started_here = "started by this run" if infra_pids else "given (STRATEGIA_TEST_*)"
        report.add(
            f"infrastructure ({started_here}): Kafka {kafka} single node; PostgreSQL "
            f"{infra.postgres_settings}"
        )
        if not infra_pids:
            report.add("    (their CPU is counted as 'not this benchmark')")

        phases = arguments.phases
        both = producer = None
        # --- 1. the broker's ceiling ------------------------------------------------
        if phases & {1, 2, 3}:
            both, producer = await ceiling_phase(report, infra, arguments)
        if 2 in phases:
            assert producer is not None
            await relay_phase(report, infra, arguments, producer.per_second)
        if 3 in phases:
            assert both is not None
            await intake_phase(report, infra, arguments, both.per_second)
        if 4 in phases:
            await generator_phase(report, infra, arguments)

        # --- 5. notifications: emails/s with 1 and 2 replicas -------------------------
        if 5 in phases:
            report.add()
            report.add(
                f"5. notifications: {arguments.emails:,} receipts into the SMTP sink, with 1 "
                f"and with 2 replicas (python -m notifications, one database, "
                f"{arguments.smtp_connections} SMTP connections each)"
            )
            for replicas in (1, 2):
                await emails_phase(report, infra, arguments, mail_dir, replicas=replicas)

        # --- 6. receipts within a second --------------------------------------------
        if 6 in phases:
            report.add()
            report.add(
                f"6. steady load: {arguments.rate}/s for {arguments.steady_seconds} s (open "
                "loop), every submitter leaves an email; intake + notifications as processes "
                f"({arguments.smtp_connections} SMTP connections)"
            )
            await steady_phase(report, infra, arguments, mail_dir, seconds=arguments.steady_seconds)

        if arguments.soak:
            report.add()
            report.add(
                f"7. soak: {arguments.rate}/s for {arguments.soak_minutes} minutes, RSS every 30 s"
            )
            await steady_phase(
                report,
                infra,
                arguments,
                mail_dir,
                seconds=arguments.soak_minutes * 60,
                rss_every=30,
            )

        # --- 8. an alert to many subscribers ------------------------------------------
        if 8 in phases:
            await alerts_phase(report, infra, arguments, mail_dir)

    report.add()
    report.add(f"load average after the run: {load_average()}")
    print()
    print("=" * 100)
    print("\n".join(report.lines))


async def ceiling_phase(
    report: Report, infra: Infra, arguments: argparse.Namespace
) -> tuple[Ceiling, Ceiling]:
    kafka = infra.infra.kafka
    report.add()
    report.add(
        f"1. raw aiokafka, {arguments.records:,} records of 1 KiB, 3 partitions; the best "
        "of 3 tries is the ceiling"
    )
    with cpu_share(groups(infra, Deployment(infra.infra)), by_command=THIS_RUN) as shares:
        both_tries = [await produce_and_consume(kafka, count=arguments.records) for _ in "abc"]
        producer_tries = [await producer_only(kafka, count=arguments.records) for _ in "abc"]
    both = max(both_tries, key=lambda ceiling: ceiling.per_second)
    producer = max(producer_tries, key=lambda ceiling: ceiling.per_second)
    report.add(
        f"   produce+consume ceiling : {both.per_second:10,.0f} records/s "
        f"(tries: {', '.join(f'{t.per_second:,.0f}' for t in both_tries)})"
    )
    report.add(
        f"   producer-only ceiling   : {producer.per_second:10,.0f} records/s "
        f"(tries: {', '.join(f'{t.per_second:,.0f}' for t in producer_tries)})"
    )
    describe_cpu(report, shares)
    return both, producer


async def relay_phase(
    report: Report, infra: Infra, arguments: argparse.Namespace, producer_per_second: float
) -> None:
    kafka, admin_dsn = infra.infra.kafka, infra.infra.admin_dsn
    # --- 2. the outbox relay ----------------------------------------------------
    report.add()
    report.add(f"2. outbox relay emptying {arguments.records:,} rows of 1 KiB")
    with cpu_share(groups(infra, Deployment(infra.infra)), by_command=THIS_RUN) as shares:
        relay = await relay_drain(
            kafka,
            await acreate_database(admin_dsn, unique_database_name()),
            count=arguments.records,
        )
    report.add(
        f"   relay: {relay.per_second:10,.0f} rows/s = "
        f"{100 * relay.per_second / producer_per_second:.0f} % of the raw producer "
        f"({producer_per_second:,.0f}/s), batches of {relay.batch_size}"
    )
    describe_cpu(report, shares)


async def intake_phase(
    report: Report, infra: Infra, arguments: argparse.Namespace, both_per_second: float
) -> None:
    kafka = infra.infra.kafka
    # --- 3. intake under wrk ----------------------------------------------------
    report.add()
    report.add(
        f"3. intake (python -m intake, {arguments.workers} worker processes) under "
        f"wrk: {arguments.connections} connections, {arguments.wrk_seconds} s, one "
        "consultation, a new Idempotency-Key per request, no email"
    )
    with deployment(infra.infra) as services:
        intake = await services.start("intake", workers=arguments.workers, rate_limit_per_minute=0)
        path = open_consultation(intake.url)
        with (
            RssSampler(rss_roots(services)) as rss,
            cpu_share(groups(infra, services), by_command=THIS_RUN) as shares,
        ):
            result = await asyncio.to_thread(
                run_wrk,
                intake.url,
                path,
                connections=arguments.connections,
                seconds=arguments.wrk_seconds,
            )
        report.add(
            f"   accepted: {result.accepted_per_second:10,.0f} submissions/s = "
            f"{100 * result.accepted_per_second / both_per_second:.1f} % of the "
            f"produce+consume ceiling ({both_per_second:,.0f}/s)"
        )
        report.add(
            f"   accept latency (wrk): p50 {result.p50_ms:,.0f} ms, p90 "
            f"{result.p90_ms:,.0f} ms, p99 {result.p99_ms:,.0f} ms, max "
            f"{result.max_ms:,.0f} ms; {result.errors} non-2xx, "
            f"{result.socket_errors} socket errors"
        )
        report.add(f"   intake RSS peak: {rss.peak_mib('intake'):.0f} MiB (all workers)")
        describe_cpu(report, shares)
        topic = services.prefix + "intake.submissions.v1"
        check = await verify_intake(
            intake.url, intake.environment["STRATEGIA_DATABASE_URL"], kafka, topic
        )
        report.add(f"   check: {check}")


async def generator_phase(report: Report, infra: Infra, arguments: argparse.Namespace) -> None:
    # --- 4. the generator's ceiling ---------------------------------------------
    report.add()
    report.add(
        f"4. open-loop generator against /health/live, offered "
        f"{arguments.generator_rate:,}/s for 5 s"
    )
    with deployment(infra.infra) as services:
        intake = await services.start("intake", workers=arguments.workers, rate_limit_per_minute=0)
        host, port = intake.url.removeprefix("http://").split(":")
        probe = await run_paced(
            host,
            int(port),
            lambda _: ("GET", "/health/live", {}, b""),
            rate=arguments.generator_rate,
            seconds=5,
        )
    latencies = probe.latencies(200)
    report.add(
        f"   completed {probe.completed_per_second:,.0f}/s, p50 "
        f"{ms(percentile(latencies, 0.5))}, p99 {ms(percentile(latencies, 0.99))}; "
        f"{probe.late_starts} requests sent > 10 ms late, {probe.failures} failures, "
        f"{probe.connections} connections"
    )


async def alerts_phase(
    report: Report, infra: Infra, arguments: argparse.Namespace, mail_dir: Path
) -> None:
    report.add()
    report.add(
        f"8. an alert to {arguments.subscribers:,} confirmed subscribers (python -m "
        f"notifications, 1 replica, {arguments.smtp_connections} SMTP connections)"
    )
    clear(mail_dir)
    with cpu_share(groups(infra, Deployment(infra.infra)), by_command=THIS_RUN) as shares:
        tries = [
            await smtp_ceiling(
                infra.infra.smtp_host,
                infra.infra.smtp_port,
                count=3000,
                connections=arguments.smtp_connections,
            )
            for _ in "abc"
        ]
    clear(mail_dir)
    report.add(
        f"   SMTP sink ceiling (aiosmtplib, {arguments.smtp_connections} reused connections, "
        f"3,000 messages): {max(tries):8,.0f} emails/s "
        f"(tries: {', '.join(f'{t:,.0f}' for t in tries)})"
    )
    describe_cpu(report, shares)
    with deployment(infra.infra) as services:
        notifications = await services.start(
            "notifications",
            dispatcher_poll_seconds=0.5,
            smtp_connections=arguments.smtp_connections,
        )
        await add_subscribers(
            notifications.environment["STRATEGIA_DATABASE_URL"], arguments.subscribers
        )
        with cpu_share(groups(infra, services), by_command=THIS_RUN) as shares:
            result = await alert_fan_out(
                infra.infra.kafka, services.prefix, mail_dir, subscribers=arguments.subscribers
            )
    report.add(
        f"   alert event -> last of {result.emails:,}/{result.subscribers:,} emails accepted "
        f"by the sink: {result.seconds:,.1f} s = {result.per_second:,.0f} emails/s "
        f"({100 * result.per_second / max(tries):.0f} % of the sink's ceiling)"
    )
    describe_cpu(report, shares)
    clear(mail_dir)


async def steady_phase(
    report: Report,
    infra: Infra,
    arguments: argparse.Namespace,
    mail_dir: Path,
    *,
    seconds: int,
    rss_every: int = 0,
) -> None:
    with deployment(infra.infra) as services:
        intake = await services.start("intake", workers=arguments.workers, rate_limit_per_minute=0)
        notifications = await services.start(
            "notifications",
            dispatcher_poll_seconds=0.5,
            smtp_connections=arguments.smtp_connections,
        )
        path = open_consultation(intake.url)
        run = uuid.uuid4().hex[:8]
        with (
            RssSampler(rss_roots(services), interval=1.0) as rss,
            cpu_share(groups(infra, services), by_command=THIS_RUN) as shares,
        ):
            printer = asyncio.create_task(print_rss(report, rss, rss_every)) if rss_every else None
            result = await paced_submissions(
                intake.url, path, rate=arguments.rate, seconds=seconds, run=run
            )
            accepted = result.json_bodies(202)
            expected = {body["receipt"]["number"]: body for _, body in accepted}
            # The receipts of the last submissions may still be on their way.
            deadline = time.monotonic() + 120
            sink = SinkReceipts(mail_dir)
            arrived = sink.refresh()
            while not set(expected) <= set(arrived) and time.monotonic() < deadline:
                await asyncio.sleep(1)
                arrived = sink.refresh()
            if printer is not None:
                printer.cancel()
            stages = await delivery_stages(notifications.environment["STRATEGIA_DATABASE_URL"])
        accept = result.latencies(202)
        delays = sorted(
            arrived[number] - datetime.fromisoformat(body["receipt"]["received_at"]).timestamp()
            for number, body in expected.items()
            if number in arrived
        )
        report.add(
            f"   offered {arguments.rate}/s: {len(accepted):,} accepted of "
            f"{int(arguments.rate * seconds):,} ({result.completed_per_second:,.0f}/s "
            f"completed), {result.failures} connection failures, {result.connections} "
            f"connections, {result.late_starts} sent > 10 ms late"
        )
        report.add(
            f"   accept latency (from when due): p50 {ms(percentile(accept, 0.5))}, "
            f"p99 {ms(percentile(accept, 0.99))}, max {ms(accept[-1] if accept else 0)}"
        )
        report.add(
            f"   submission accepted -> receipt accepted by the SMTP sink: p50 "
            f"{ms(percentile(delays, 0.5))}, p99 {ms(percentile(delays, 0.99))}, max "
            f"{ms(delays[-1] if delays else 0)}; {len(delays):,} of {len(expected):,} "
            "receipts arrived"
        )
        received = {
            number: datetime.fromisoformat(body["receipt"]["received_at"]).timestamp()
            for number, body in expected.items()
            if number in stages
        }
        consumed = sorted(stages[n][0] - at for n, at in received.items())
        dispatched = sorted(stages[n][1] - stages[n][0] for n in received)
        report.add(
            "   of which: accepted -> receipt queued by notifications' consumer (relay, "
            f"broker, key, batch) p50 {ms(percentile(consumed, 0.5))}, p99 "
            f"{ms(percentile(consumed, 0.99))}; queued -> marked sent by the dispatcher "
            f"p50 {ms(percentile(dispatched, 0.5))}, p99 {ms(percentile(dispatched, 0.99))}"
        )
        for name in rss.samples:
            report.add(
                f"   RSS {name}: peak {rss.peak_mib(name):.0f} MiB, at the end "
                f"{rss.last_mib(name):.0f} MiB"
            )
        describe_cpu(report, shares)
        clear(mail_dir)


def clear(mail_dir: Path) -> None:
    for message in mail_dir.glob("*.eml"):
        message.unlink()


async def emails_phase(
    report: Report, infra: Infra, arguments: argparse.Namespace, mail_dir: Path, *, replicas: int
) -> None:
    """A burst of submissions with emails; emails/s from the first receipt the sink accepted
    to the last."""
    clear(mail_dir)
    with deployment(infra.infra) as services:
        intake = await services.start("intake", workers=arguments.workers, rate_limit_per_minute=0)
        tuning = {
            "dispatcher_poll_seconds": 0.5,
            "smtp_connections": arguments.smtp_connections,
        }
        first = await services.start("notifications", **tuning)
        for _ in range(replicas - 1):
            await services.start("notifications", replica_of=first, **tuning)
        path = open_consultation(intake.url)
        with cpu_share(groups(infra, services), by_command=THIS_RUN) as shares:
            result = await paced_submissions(
                intake.url, path, rate=400, seconds=arguments.emails / 400, run="emails"
            )
            wanted = {body["receipt"]["number"] for _, body in result.json_bodies(202)}
            deadline = time.monotonic() + 600
            sink = SinkReceipts(mail_dir)
            arrived = sink.refresh()
            while not wanted <= set(arrived) and time.monotonic() < deadline:
                await asyncio.sleep(1)
                arrived = sink.refresh()
    times = sorted(arrived[number] for number in wanted if number in arrived)
    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    report.add(
        f"   {replicas} replica{'s' if replicas > 1 else ''}: {rate:8,.0f} emails/s "
        f"({len(times):,} of {len(wanted):,} receipts)"
    )
    describe_cpu(report, shares)
    clear(mail_dir)


async def print_rss(report: Report, rss: RssSampler, every: int) -> None:
    started = time.monotonic()
    while True:
        await asyncio.sleep(every)
        minute = (time.monotonic() - started) / 60
        values = ", ".join(f"{name} {rss.last_mib(name):.0f} MiB" for name in rss.samples)
        report.add(f"   t={minute:4.1f} min: {values}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2, help="intake worker processes")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--wrk-seconds", type=int, default=20)
    parser.add_argument("--rate", type=int, default=200, help="steady submissions/s")
    parser.add_argument("--steady-seconds", type=int, default=60)
    parser.add_argument("--generator-rate", type=int, default=2000)
    parser.add_argument("--emails", type=int, default=3000, help="receipts per replica count")
    parser.add_argument(
        "--smtp-connections",
        type=int,
        default=16,
        help="notifications' STRATEGIA_SMTP_CONNECTIONS (concurrent SMTP sessions) in "
        "phases 5, 6 and 8",
    )
    parser.add_argument("--subscribers", type=int, default=10_000, help="alert subscribers")
    parser.add_argument(
        "--phases",
        type=lambda text: {int(part) for part in text.split(",")},
        default={1, 2, 3, 4, 5, 6, 8},
        help="comma-separated phase numbers to run (default: all)",
    )
    parser.add_argument(
        "--soak",
        action="store_true",
        default=os.environ.get("SOAK", "") not in ("", "0"),
        help="also a steady-load soak run printing RSS (SOAK=1)",
    )
    parser.add_argument("--soak-minutes", type=int, default=10)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="strategia-bench-") as scratch_name:
        scratch = Path(scratch_name)
        scratch.chmod(0o711)  # the PostgreSQL server user must reach its data dir
        (scratch / "logs").mkdir()
        asyncio.run(main_async(arguments, scratch))


if __name__ == "__main__":
    main()
