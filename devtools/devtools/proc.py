"""Process, port and system-package helpers shared by the Kafka/PostgreSQL/SMTP runners."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path


class DevtoolsError(RuntimeError):
    """A local infrastructure component could not be prepared, started or stopped."""


def repo_root() -> Path:
    """The workspace root (devtools is installed editable from ``<repo>/devtools/devtools``)."""
    return Path(__file__).resolve().parents[2]


def is_root() -> bool:
    return os.geteuid() == 0


# --- processes -------------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie.

    Zombies count as dead: our detached children are re-parented to whatever PID 1 is, and in
    containers that is not always a process that reaps them promptly.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user (e.g. postgres when we are not root)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (or it vanished just now): trust kill(0)
    # The state letter follows the parenthesised command name, which may itself contain ")".
    state = stat.rpartition(")")[2].split()[0:1]
    return state != ["Z"]


def pid_cmdline(pid: int) -> list[str] | None:
    """The argv of ``pid`` (None when unknown, e.g. no procfs)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def read_pid_file(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def write_pid_file(pid_file: Path, pid: int) -> None:
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = pid_file.with_name(pid_file.name + ".tmp")
    tmp.write_text(f"{pid}\n")
    tmp.replace(pid_file)


def live_pid_from_file(pid_file: Path, marker: str | None = None) -> int | None:
    """The pid recorded in ``pid_file`` if that process still runs (and its argv has ``marker``).

    Checking the argv guards against pid reuse after a reboot or a crash.
    """
    pid = read_pid_file(pid_file)
    if pid is None or not pid_alive(pid):
        return None
    if marker is not None:
        argv = pid_cmdline(pid)
        if argv is not None and not any(marker in arg for arg in argv):
            return None
    return pid


def wait_pid_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return not pid_alive(pid)


def terminate_pid(pid: int, timeout: float = 20.0, *, group: bool = False) -> None:
    """SIGTERM ``pid`` (or its whole process group), SIGKILL it after ``timeout`` seconds."""

    def send(sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)

    if not pid_alive(pid):
        return
    send(signal.SIGTERM)
    if wait_pid_gone(pid, timeout):
        if group:
            send(signal.SIGKILL)  # stragglers the leader left behind
        return
    send(signal.SIGKILL)
    if not wait_pid_gone(pid, 10.0):
        raise DevtoolsError(f"process {pid} survived SIGKILL")


def stop_popen(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Terminate a child we started (and reap it, so no zombie is left)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10.0)


def log_tail(log_file: Path, lines: int = 40) -> str:
    try:
        text = log_file.read_text(errors="replace")
    except OSError:
        return f"(no log at {log_file})"
    return "\n".join(text.splitlines()[-lines:])


# --- ports -----------------------------------------------------------------------------------


_EPHEMERAL_PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST_PORT_HANDED_OUT = 10_000
_ports_handed_out: set[int] = set()


def _ports_outside_the_ephemeral_range() -> list[int]:
    """Ports the kernel never gives an outgoing connection, or [] when the range leaves none.

    A port found by binding to port 0 comes from the ephemeral range, so a client's outgoing
    connection (a Kafka consumer's, say) can take it as its local port before the server that
    was meant to listen on it binds, and the server fails with "address already in use".
    """
    try:
        low, high = (int(part) for part in _EPHEMERAL_PORT_RANGE.read_text().split())
    except (OSError, ValueError):
        return []
    below = range(_LOWEST_PORT_HANDED_OUT, low)
    above = range(high + 1, 65_536)
    return list(below) + list(above) if len(below) + len(above) >= 1_000 else []


def _bindable(sock: socket.socket, host: str, port: int) -> bool:
    try:
        sock.bind((host, port))
    except OSError:
        return False
    return True


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports free right now, none handed out before by this process.

    They come from outside the kernel's ephemeral range where it leaves room (see
    ``_ports_outside_the_ephemeral_range``), otherwise from a bind to port 0.
    """
    candidates = _ports_outside_the_ephemeral_range()
    random.shuffle(candidates)
    ports: list[int] = []
    with contextlib.ExitStack() as stack:
        for candidate in candidates:
            if len(ports) == count:
                break
            if candidate in _ports_handed_out:
                continue
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            if _bindable(sock, host, candidate):
                ports.append(candidate)
        while len(ports) < count:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
            if port not in _ports_handed_out and port not in ports:
                ports.append(port)
    _ports_handed_out.update(ports)
    return ports


def free_port(host: str = "127.0.0.1") -> int:
    return free_ports(1, host)[0]


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(
    port: int,
    timeout: float,
    *,
    host: str = "127.0.0.1",
    proc: subprocess.Popen[bytes] | None = None,
    what: str = "server",
    log_file: Path | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port, host):
            return
        if proc is not None and proc.poll() is not None:
            raise DevtoolsError(
                f"{what} exited with code {proc.returncode} before listening on {host}:{port}"
                + (f"\n--- {log_file} ---\n{log_tail(log_file)}" if log_file else "")
            )
        time.sleep(0.1)
    raise DevtoolsError(
        f"{what} did not listen on {host}:{port} within {timeout:.0f}s"
        + (f"\n--- {log_file} ---\n{log_tail(log_file)}" if log_file else "")
    )


# --- system packages -------------------------------------------------------------------------

_apt_updated = False


def apt_install(packages: Iterable[str], why: str) -> None:
    """Install Debian packages when we may (root + apt-get), else fail with what to install."""
    pkgs = list(packages)
    if not is_root() or shutil.which("apt-get") is None:
        raise DevtoolsError(
            f"{why} is missing. Install it (Debian/Ubuntu: sudo apt-get install -y "
            f"{' '.join(pkgs)}) or run this as root so it is installed automatically."
        )
    global _apt_updated
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"devtools: installing {' '.join(pkgs)} ({why})", flush=True)
    try:
        if not _apt_updated:
            subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
            _apt_updated = True
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", *pkgs],
            check=True,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.CalledProcessError as exc:
        raise DevtoolsError(f"apt-get failed to install {' '.join(pkgs)}: {exc}") from exc
