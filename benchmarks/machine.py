"""What the machine is and who uses it: cores, per-process CPU during a phase, RSS.

Read from /proc, so it sees every process on the machine: ours (the services, Kafka,
PostgreSQL, the load generator, this benchmark) and everybody else's, which on a shared
build machine is the main source of noise in the figures.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    pid: int
    ppid: int
    name: str
    cpu_ticks: int
    rss_bytes: int


def _read(pid: int) -> ProcessInfo | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is the state (field 3); utime, stime are fields 14, 15; rss is field 24.
    return ProcessInfo(
        pid=pid,
        ppid=int(fields[1]),
        name=name,
        cpu_ticks=int(fields[11]) + int(fields[12]),
        rss_bytes=int(fields[21]) * PAGE_SIZE,
    )


def processes() -> dict[int, ProcessInfo]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (info := _read(int(entry))) is not None:
            found[info.pid] = info
    return found


def descendants(root: int, table: Mapping[int, ProcessInfo]) -> set[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info.pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found.add(pid)
        todo.extend(children.get(pid, ()))
    return found


def tree_rss(root: int) -> int:
    """Resident memory of a process and its children (a service and its workers)."""
    table = processes()
    return sum(table[pid].rss_bytes for pid in descendants(root, table) if pid in table)


def command_name(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [part.decode(errors="replace") for part in raw if part]
    if not words:
        return "?"
    if "-m" in words[:-1]:
        return f"{Path(words[0]).name} -m {words[words.index('-m') + 1]}"
    return " ".join(Path(word).name if i == 0 else word for i, word in enumerate(words[:2]))[:60]


@dataclass
class CpuShare:
    """CPU used during a phase, in % of one core, by group of processes."""

    seconds: float
    by_group: dict[str, float]
    others: list[tuple[str, float]]  # processes of nobody in `groups`, busiest first

    def describe(self, cores: int) -> str:
        ours = ", ".join(f"{name} {share:.0f} %" for name, share in self.by_group.items())
        other_total = sum(share for _, share in self.others)
        busiest = ", ".join(f"{name} {share:.0f} %" for name, share in self.others[:4])
        return (
            f"CPU over {self.seconds:.0f} s (100 % = one core, {cores} cores): {ours}; "
            f"not this benchmark: {other_total:.0f} %" + (f" ({busiest})" if busiest else "")
        )


@contextmanager
def cpu_share(
    groups: Mapping[str, int | set[int]], *, by_command: Mapping[str, str] | None = None
) -> Iterator[list[CpuShare]]:
    """Measure CPU by process group over the block; the result is appended to the list.

    `groups` maps a label to a root pid (the process and its descendants count) or a set
    of pids; `by_command` a label to a text its processes' command lines contain (the
    PostgreSQL backends serving this run's databases, when the server is not ours).
    """
    result: list[CpuShare] = []
    before = processes()
    started = time.monotonic()
    yield result
    after = processes()
    elapsed = time.monotonic() - started
    owner: dict[int, str] = {}
    for label, roots in groups.items():
        for root in roots if isinstance(roots, set) else {roots}:
            for pid in descendants(root, after):
                owner.setdefault(pid, label)
    for label, text in (by_command or {}).items():
        for pid in after:
            if pid not in owner and text in command_name(pid):
                owner[pid] = label
    by_group = dict.fromkeys([*groups, *(by_command or {})], 0.0)
    others: dict[str, float] = {}
    for pid, info in after.items():
        used = info.cpu_ticks - (before[pid].cpu_ticks if pid in before else 0)
        share = 100.0 * used / CLOCK_TICKS / elapsed
        if pid in owner:
            by_group[owner[pid]] += share
        elif share >= 0.5:
            name = command_name(pid)
            others[name] = others.get(name, 0.0) + share
    result.append(
        CpuShare(
            seconds=elapsed,
            by_group=by_group,
            others=sorted(others.items(), key=lambda item: -item[1]),
        )
    )


@dataclass
class RssSampler:
    """Samples the resident memory of named process trees every `interval` seconds."""

    roots: dict[str, int]
    interval: float = 1.0
    samples: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while True:
            now = time.monotonic() - self._started
            for name, root in self.roots.items():
                self.samples.setdefault(name, []).append((now, tree_rss(root)))
            if self._stop.wait(self.interval):
                return

    def peak_mib(self, name: str) -> float:
        return max((rss for _, rss in self.samples.get(name, [])), default=0) / 2**20

    def last_mib(self, name: str) -> float:
        series = self.samples.get(name, [])
        return series[-1][1] / 2**20 if series else 0.0


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"
