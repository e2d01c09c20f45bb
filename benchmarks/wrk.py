"""Closed-loop load with `wrk` (Debian's package): many connections, each sending its next
request as soon as the previous answer arrived, for a fixed time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("submit.lua")


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int  # non-2xx/3xx answers
    socket_errors: int  # connect, read, write, timeout
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def accepted(self) -> int:
        return self.requests - self.errors

    @property
    def accepted_per_second(self) -> float:
        return self.accepted / self.seconds


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed (make bench installs it: apt-get install wrk)")
    return found


def run_wrk(
    url: str,
    path: str,
    *,
    connections: int = 64,
    seconds: int = 20,
    threads: int = 2,
    with_email: bool = False,
) -> WrkResult:
    """POST submissions to `url` + `path` with `connections` keep-alive connections."""
    with tempfile.TemporaryDirectory(prefix="strategia-wrk-") as scratch:
        result_file = Path(scratch) / "result.json"
        env = {
            **os.environ,
            "BENCH_PATH": path,
            "BENCH_EMAIL": "1" if with_email else "0",
            "BENCH_RESULT": str(result_file),
        }
        completed = subprocess.run(  # noqa: S603 - our own arguments
            [
                wrk_binary(),
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(SCRIPT),
                url,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0 or not result_file.exists():
            raise RuntimeError(f"wrk failed: {completed.stdout}\n{completed.stderr}")
        data = json.loads(result_file.read_text())
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=data["status_errors"],
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
    )
