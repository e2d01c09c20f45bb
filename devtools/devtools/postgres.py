"""A real PostgreSQL server in a private cluster, plus helpers to create roles and databases.

The cluster listens on 127.0.0.1 only and has no Unix socket (so nothing is needed in
/var/run). PostgreSQL refuses to run as root, so when we are root the server runs as the
``postgres`` system user (created as ``strategia-pg`` when absent).

Authentication is ``trust``: acceptable ONLY because the server listens on loopback alone and
exists for local development and tests. Roles made by :func:`create_database` still get a
password, so the same DSNs also work against password-protected servers (testcontainers, CI
services given via ``STRATEGIA_TEST_POSTGRES_DSN``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import os
import pwd
import re
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from devtools.proc import (
    DevtoolsError,
    apt_install,
    is_root,
    log_tail,
    pid_alive,
    wait_pid_gone,
    write_pid_file,
)

SERVICE_DATABASES: tuple[str, ...] = ("intake", "groups", "notifications", "news")
SUPERUSER = "postgres"
# Identifies the postmaster in procfs (argv[0] is ``.../bin/postgres``).
PROCESS_MARKER = "postgres"
# Where a cluster goes when the requested data dir is unreachable for the server user
# (e.g. a clone under root's 0700 home): see _prepare_data_dir.
RELOCATED_ROOT = Path("/var/lib/strategia")

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_T = TypeVar("_T")


# --- binaries --------------------------------------------------------------------------------


def find_postgres_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<ver>/bin`` (Debian layout), else ``pg_ctl`` on PATH."""
    candidates: list[tuple[int, Path]] = []
    for bindir in Path("/usr/lib/postgresql").glob("*/bin"):
        with contextlib.suppress(ValueError):
            if (bindir / "postgres").is_file() and (bindir / "initdb").is_file():
                candidates.append((int(bindir.parent.name), bindir))
    if candidates:
        return max(candidates)[1]
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is not None:
        bindir = Path(pg_ctl).resolve().parent
        if (bindir / "postgres").is_file() and (bindir / "initdb").is_file():
            return bindir
    return None


def ensure_postgres_binaries() -> Path:
    """Directory with ``initdb``/``postgres``/``pg_ctl``; installs PostgreSQL when possible."""
    bindir = find_postgres_bindir()
    if bindir is None:
        apt_install(["postgresql"], "PostgreSQL server binaries (initdb, postgres, pg_ctl)")
        bindir = find_postgres_bindir()
    if bindir is None:
        raise DevtoolsError("PostgreSQL binaries not found in /usr/lib/postgresql/*/bin")
    return bindir


# --- the unprivileged server account ---------------------------------------------------------


@dataclass(frozen=True)
class _Account:
    name: str
    uid: int
    gid: int

    def popen_kwargs(self) -> dict[str, Any]:
        # setgid/setgroups/setuid in the child: the pid we get is the server's own.
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def _server_account() -> _Account | None:
    """Who runs the server: None = ourselves (not root), else an unprivileged system user."""
    if not is_root():
        return None
    for name in ("postgres", "strategia-pg"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid)
    subprocess.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "strategia-pg",
        ],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    entry = pwd.getpwnam("strategia-pg")
    return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _can_traverse(account: _Account, directory: Path) -> bool:
    result = subprocess.run(
        ["test", "-x", str(directory)],
        cwd="/",
        stdin=subprocess.DEVNULL,
        check=False,
        **account.popen_kwargs(),
    )
    return result.returncode == 0


def _prepare_data_dir(data_dir: Path, account: _Account | None) -> Path:
    """Create the data dir for the server user; returns the real path the server must use.

    When root runs this for a data dir the server user cannot reach (a parent such as
    ``/root`` or pytest's ``/tmp/pytest-of-root`` is 0700), the cluster goes to
    ``/var/lib/strategia/postgres-<hash>`` and ``data_dir`` becomes a symlink to it. We do not
    loosen permissions of directories we do not own; :func:`remove_data_dir` cleans both.
    """
    data_dir = data_dir.absolute()
    if data_dir.is_symlink():
        real = data_dir.resolve()
    else:
        real = data_dir
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        if account is not None and not _can_traverse(account, data_dir.parent):
            digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
            real = RELOCATED_ROOT / f"postgres-{digest}"
            RELOCATED_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
            if data_dir.exists():
                raise DevtoolsError(
                    f"{data_dir} exists but user {account.name!r} cannot reach it; "
                    "remove it (make clean) so the cluster can be relocated"
                )
            data_dir.symlink_to(real, target_is_directory=True)
    real.mkdir(parents=True, exist_ok=True)
    if account is not None:
        os.chown(real, account.uid, account.gid)
    real.chmod(0o700)  # postgres refuses group/world-accessible data dirs
    return real


def remove_data_dir(data_dir: Path) -> None:
    """Delete a cluster made by :func:`start_postgres`, following a relocation symlink."""
    if data_dir.is_symlink():
        shutil.rmtree(data_dir.resolve(), ignore_errors=True)
        data_dir.unlink()
    else:
        shutil.rmtree(data_dir, ignore_errors=True)


# --- the server ------------------------------------------------------------------------------


def _run_as(
    account: _Account | None, cmd: Sequence[str], *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    extra = account.popen_kwargs() if account is not None else {}
    # cwd=/ : initdb/pg_ctl complain when the caller's cwd is unreadable for the server user.
    result = subprocess.run(
        list(cmd),
        cwd="/",
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        env=_server_env(),
        **extra,
    )
    if check and result.returncode != 0:
        raise DevtoolsError(
            f"{' '.join(cmd)} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return result


def _server_env() -> dict[str, str]:
    # Drop PG* variables of the caller (PGPORT, PGDATA...) so they cannot redirect the tools.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


@dataclass
class PostgresProcess:
    """A running postmaster. ``proc`` is set when this process started it (to reap it)."""

    pid: int
    port: int
    data_dir: Path
    log_file: Path
    bindir: Path
    host: str = "127.0.0.1"
    pid_file: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/postgres"

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return pid_alive(self.pid)

    def stop(self, timeout: float = 30.0) -> None:
        """``pg_ctl stop -m fast`` (rolls back open transactions, then a clean shutdown)."""
        stop_postgres(self.data_dir, self.bindir, timeout=timeout, pid=self.pid)
        if self.proc is not None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10.0)
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)


def _postmaster_pid(real_data_dir: Path) -> int | None:
    try:
        return int((real_data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def stop_postgres(
    data_dir: Path,
    bindir: Path | None = None,
    *,
    timeout: float = 30.0,
    pid: int | None = None,
    mode: str = "fast",
) -> None:
    """Stop the cluster in ``data_dir`` (a relocation symlink is followed) if it runs.

    ``mode`` is pg_ctl's: ``fast`` (clean), or ``immediate`` (a crash: recovery on restart).
    """
    real = data_dir.resolve()
    if not (real / "postmaster.pid").exists():
        return
    bindir = bindir or ensure_postgres_binaries()
    account = _server_account()
    result = _run_as(
        account,
        [
            str(bindir / "pg_ctl"),
            "stop",
            "-D",
            str(real),
            *("-m", mode, "-w", "-t", str(int(timeout))),
        ],
        check=False,
    )
    if result.returncode != 0 and (real / "postmaster.pid").exists():
        pid = pid if pid is not None else _postmaster_pid(real)
        if pid is None or not pid_alive(pid):
            return  # stale postmaster.pid left by a crash: nothing runs
        # Fast shutdown timed out: immediate shutdown (crash-safe, recovers on next start).
        _run_as(
            account,
            [str(bindir / "pg_ctl"), "stop", "-D", str(real), "-m", "immediate"],
            check=False,
        )
    if pid is not None and not wait_pid_gone(pid, timeout):
        raise DevtoolsError(f"postgres (pid {pid}) did not stop within {timeout:.0f}s")


def _wait_ready(
    proc: subprocess.Popen[bytes],
    bindir: Path,
    host: str,
    port: int,
    log_file: Path,
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DevtoolsError(
                f"postgres exited with code {proc.returncode} during startup\n"
                f"--- {log_file} ---\n{log_tail(log_file)}"
            )
        ready = subprocess.run(
            [
                str(bindir / "pg_isready"),
                *("-q", "-h", host, "-p", str(port), "-t", "1", "-U", SUPERUSER, "-d", "postgres"),
            ],
            stdin=subprocess.DEVNULL,
            env=_server_env(),
            check=False,
        )
        if ready.returncode == 0:
            return
        time.sleep(0.2)
    raise DevtoolsError(
        f"postgres did not accept connections on {host}:{port} within {timeout:.0f}s\n"
        f"--- {log_file} ---\n{log_tail(log_file)}"
    )


def start_postgres(
    data_dir: Path,
    port: int,
    log_file: Path,
    pid_file: Path | None = None,
    *,
    host: str = "127.0.0.1",
    fast_unsafe: bool = False,
    timeout: float = 60.0,
) -> PostgresProcess:
    """Start (creating on first use) a cluster in ``data_dir`` on ``host:port``; wait until ready.

    ``fast_unsafe`` turns off fsync & co: fine for throw-away test clusters, never for data you
    want to keep across an OS crash. The server runs in its own session and outlives the caller.
    """
    bindir = ensure_postgres_binaries()
    account = _server_account()
    real = _prepare_data_dir(data_dir, account)
    log_file = log_file.absolute()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    if not (real / "PG_VERSION").is_file():
        result = _run_as(
            account,
            [
                str(bindir / "initdb"),
                "-D",
                str(real),
                f"--username={SUPERUSER}",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ],
        )
        with open(log_file, "a") as log:
            log.write(result.stdout + result.stderr)
    settings = {
        "listen_addresses": host,
        "port": str(port),
        "unix_socket_directories": "",  # TCP only: no socket dir to create or secure
        "max_connections": "300",  # four services + many per-test databases with pools
        "log_line_prefix": "%m [%p] %q%u@%d ",
    }
    if fast_unsafe:
        settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
    cmd = [str(bindir / "postgres"), "-D", str(real)]
    for key, value in settings.items():
        cmd += ["-c", f"{key}={value}"]
    extra = account.popen_kwargs() if account is not None else {}
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            cwd="/",
            env=_server_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **extra,
        )
    if pid_file is not None:
        write_pid_file(pid_file, proc.pid)
    pg = PostgresProcess(
        pid=proc.pid,
        port=port,
        data_dir=real,
        log_file=log_file,
        bindir=bindir,
        host=host,
        pid_file=pid_file,
        proc=proc,
    )
    try:
        _wait_ready(proc, bindir, host, port, log_file, timeout)
    except BaseException:
        with contextlib.suppress(Exception):
            pg.stop(10.0)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    return pg


# --- roles and databases ---------------------------------------------------------------------


def _run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to completion from sync code, even if this thread already runs a loop.

    A private thread with its own loop keeps us clear of pytest-asyncio's session loop.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _check_ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a safe lowercase SQL identifier: {name!r}")
    return name


def dsn_for(admin_dsn: str, user: str, database: str, password: str | None = None) -> str:
    """``admin_dsn`` with its credentials and database replaced (host, port, query kept)."""
    parts = urlsplit(admin_dsn)
    if parts.hostname is None:
        raise ValueError(f"DSN without host: {admin_dsn!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = f":{parts.port}" if parts.port else ""
    auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    return urlunsplit(
        (parts.scheme, f"{auth}@{host}{port}", f"/{quote(database)}", parts.query, "")
    )


async def _ensure_role_and_db(conn: asyncpg.Connection, name: str, password: str | None) -> None:
    _check_ident(name)
    if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name):
        await conn.execute(f'CREATE ROLE "{name}" LOGIN')
    if password is not None:
        # Literal, not a bind parameter: utility statements take no parameters. Safe: the
        # password comes from secrets.token_hex (hex digits only), checked below.
        if not re.fullmatch(r"[0-9a-f]+", password):
            raise ValueError("password must be hex (generated by devtools)")
        await conn.execute(f"ALTER ROLE \"{name}\" PASSWORD '{password}'")
    if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
        await conn.execute(f'CREATE DATABASE "{name}" OWNER "{name}" ENCODING \'UTF8\'')


async def aensure_service_databases(
    admin_dsn: str, names: Iterable[str] = SERVICE_DATABASES
) -> dict[str, str]:
    """Async :func:`ensure_service_databases`."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        dsns = {}
        for name in names:
            await _ensure_role_and_db(conn, name, None)
            dsns[name] = dsn_for(admin_dsn, name, name)
        return dsns
    finally:
        await conn.close()


def ensure_service_databases(
    admin_dsn: str, names: Iterable[str] = SERVICE_DATABASES
) -> dict[str, str]:
    """For each name: a LOGIN role and a database it owns (idempotent). Returns name -> DSN.

    The roles have no password: the dev cluster trusts loopback connections.
    """
    return _run_sync(aensure_service_databases(admin_dsn, list(names)))


async def acreate_database(admin_dsn: str, name: str | None = None) -> str:
    """Async :func:`create_database`."""
    name = _check_ident(name or f"test_{uuid.uuid4().hex[:16]}")
    password = secrets.token_hex(16)
    conn = await asyncpg.connect(admin_dsn)
    try:
        await _ensure_role_and_db(conn, name, password)
    finally:
        await conn.close()
    return dsn_for(admin_dsn, name, name, password)


def create_database(admin_dsn: str, name: str | None = None) -> str:
    """A role and a database it owns (both ``name``, random when omitted); returns its DSN.

    The role gets a fresh random password, included in the DSN.
    """
    return _run_sync(acreate_database(admin_dsn, name))


async def adrop_database(admin_dsn: str, name: str) -> None:
    """Drop database ``name`` (disconnecting its clients) and role ``name``, if they exist."""
    _check_ident(name)
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'DROP ROLE IF EXISTS "{name}"')
    finally:
        await conn.close()


def drop_database(admin_dsn: str, name: str) -> None:
    _run_sync(adrop_database(admin_dsn, name))
