"""Several processes serving one port, each on a listening socket of its own.

uvicorn's own supervisor binds one socket and shares it: every worker waits on it, and
the one that wakes first accepts the whole burst of connections waiting (asyncio accepts
up to the backlog per wake-up). Keep-alive clients — a reverse proxy, a load generator —
open their connections at once and keep them, so one worker served them all: under
`wrk` with 64 connections one worker used 78 % of a core and the other 2 %. Here every
worker binds its own socket with SO_REUSEPORT (Linux), and the kernel spreads new
connections across the sockets by their addresses.

The parent only supervises: it starts the workers, starts another when one dies, and on
SIGTERM or SIGINT asks each to stop (SIGTERM: uvicorn's graceful shutdown), killing
those still running after the grace period.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.context import SpawnProcess
from types import FrameType

import uvicorn

log = logging.getLogger(__name__)

# After the graceful shutdown's own timeout, how long a worker gets before it is killed.
_STOP_MARGIN_SECONDS = 5.0
# A worker that dies this soon after its start is started again only after a pause, so
# a service that cannot start (a bad setting) does not spin.
_EARLY_DEATH_SECONDS = 5.0
_RESTART_PAUSE_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1  # prctl(2), Linux


def bound_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host:port`, which other processes may bind as well. It is
    not listening yet: the server listens once the app has started, so the kernel never
    hands a connection to a worker still starting (or restarting) while another serves."""
    family, kind, protocol, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, protocol)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _die_with(parent: int) -> None:
    """Have the kernel stop this process when its parent dies, however it dies: a killed
    supervisor (the OOM killer, SIGKILL) must not leave workers serving its port."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        log.warning("could not tie the worker's life to its supervisor's")
    if os.getppid() != parent:  # it died before the line above
        raise SystemExit("the supervisor is gone")


def _serve_one(config: uvicorn.Config, parent: int) -> None:
    """A worker process: the app on a socket of its own (the config arrives pickled, so
    uvicorn's logging setup, done in `Config.__init__`, is done again here)."""
    _die_with(parent)
    config.configure_logging()
    # uvicorn starts the app (lifespan) first, then serves: asyncio's server calls listen().
    uvicorn.Server(config).run(sockets=[bound_socket(config.host, config.port)])


class _Worker:
    def __init__(self, config: uvicorn.Config) -> None:
        self.process: SpawnProcess = multiprocessing.get_context("spawn").Process(
            target=_serve_one, args=(config, os.getpid()), daemon=False
        )
        self.process.start()
        self.started = time.monotonic()


def serve_in_processes(config: uvicorn.Config, workers: int) -> None:
    """Run `workers` processes serving `config` (its app given as an import string), until
    SIGTERM or SIGINT."""
    # Fails here, once, when the address is taken, instead of in every worker in turn.
    bound_socket(config.host, config.port).close()
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    running = [_Worker(config) for _ in range(workers)]
    log.info(
        "serving on %s:%s with %d worker processes",
        config.host,
        config.port,
        workers,
        extra={"pids": [worker.process.pid for worker in running]},
    )
    try:
        while not stopping.wait(0.5):
            for index, worker in enumerate(running):
                if worker.process.is_alive():
                    continue
                log.warning(
                    "worker process exited; starting another",
                    extra={"pid": worker.process.pid, "exit_code": worker.process.exitcode},
                )
                if time.monotonic() - worker.started < _EARLY_DEATH_SECONDS:
                    stopping.wait(_RESTART_PAUSE_SECONDS)
                if not stopping.is_set():
                    running[index] = _Worker(config)
    finally:
        for worker in running:
            if worker.process.is_alive():
                worker.process.terminate()
        grace = (config.timeout_graceful_shutdown or 0) + _STOP_MARGIN_SECONDS
        deadline = time.monotonic() + grace
        for worker in running:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                log.error(
                    "worker process did not stop; killing it", extra={"pid": worker.process.pid}
                )
                worker.process.kill()
                worker.process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
