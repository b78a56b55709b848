"""A throwaway PostgreSQL server on loopback, from the distribution's binaries.

The tests and ``npsp-monitor demo --vantages 3`` need a real PostgreSQL that nobody installed for
them. :class:`LocalPostgres` runs ``initdb`` in a temporary folder, starts ``postgres`` on
127.0.0.1 and a port of its own, and creates the role ``npsp`` (a random password, written to a
0600 file) and its database ``npsp``. TCP logins need that password (``scram-sha-256``); the
unix socket, in a folder only the server's user (and root) may enter, is trusted: it is how the
bootstrap creates the role and per-test databases.

PostgreSQL refuses to run as root. As root the server runs as an unprivileged system user
(``npsp-pgtest``, created when missing; ``nobody`` when it cannot be), through ``runuser``.

Settings favour speed over durability (``fsync=off``: a crash of the machine loses the data,
which is thrown away anyway) and find half-open sessions within about 25 s (TCP keepalives
10/5/3, ``tcp_user_timeout``, ``client_connection_check_interval``), as a leader's session lock
must not outlive its holder for hours.

``extra_listen`` adds addresses to listen on besides 127.0.0.1, each in interface notation
(``10.213.5.1/24``: listen on 10.213.5.1, accept password logins from 10.213.5.0/24): the
cluster tests reach it from a network namespace of their own through a veth pair. The address
must exist on the machine before the server starts.

The work is blocking (subprocesses, a synchronous psycopg connection); each ``…_blocking``
method has an ``async`` twin that runs it in a thread, for asyncio code.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg
from psycopg import sql

__all__ = ["LocalPostgres", "LocalPostgresError", "find_bindir"]

BINDIR_ENV = "PG_BINDIR"
DEBIAN_ROOT = Path("/usr/lib/postgresql")
SERVICE_USER = "npsp-pgtest"
FALLBACK_USER = "nobody"
ROLE = "npsp"
_SUPERUSER = "postgres"
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Written to postgresql.conf after initdb, so that a restart (start_server) keeps them.
SETTINGS: dict[str, str] = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    # Half-open sessions (a pulled cable, a frozen host): found in about 10 + 3 x 5 = 25 s.
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "10000",
    "client_connection_check_interval": "'5s'",
    "logging_collector": "off",
}

HBA = (
    "# Written by monitor/pglocal.py: the socket (its folder closed to others) for the bootstrap,\n"
    "# loopback TCP with a password for everyone else.\n"
    "local all all trust\n"
    "host all all 127.0.0.1/32 scram-sha-256\n"
)


# The guard: a child process that outlives us only to clean up. It reads one end of a pipe whose
# other end only we hold; a byte means "stopped properly, nothing to do", end of file means we
# died (SIGKILL, a crash): it stops the server and removes the folder we made.
_GUARD = """
import os, shutil, subprocess, sys
if not os.read(int(sys.argv[1]), 1):
    subprocess.run(sys.argv[3:], capture_output=True, check=False, timeout=120)
    if sys.argv[2]:
        shutil.rmtree(sys.argv[2], ignore_errors=True)
"""


class LocalPostgresError(RuntimeError):
    """Starting, stopping or using the local server failed; the message holds the log's tail."""


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: ``$PG_BINDIR``, else Debian's newest."""
    given = os.environ.get(BINDIR_ENV)
    if given:
        path = Path(given)
        return path if (path / "initdb").is_file() else None

    def version(bindir: Path) -> tuple[int, ...]:
        digits = re.findall(r"\d+", bindir.parent.name)
        return tuple(int(d) for d in digits)

    found = [b for b in DEBIAN_ROOT.glob("*/bin") if (b / "initdb").is_file()]
    return max(found, key=version) if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _service_user() -> str:
    """An unprivileged user to run the server as when we are root (created when missing)."""
    with contextlib.suppress(KeyError):
        pwd.getpwnam(SERVICE_USER)
        return SERVICE_USER
    useradd = shutil.which("useradd")
    if useradd is not None:
        done = subprocess.run(  # noqa: S603 - fixed argv, our own folders
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
            capture_output=True,
            text=True,
            check=False,
        )
        # 9: the user appeared meanwhile (another test process created it).
        if done.returncode in (0, 9):
            return SERVICE_USER
    return FALLBACK_USER


class LocalPostgres:
    """One PostgreSQL server in a temporary folder, listening on 127.0.0.1 only.

    ``base`` is the folder to use (it must be empty or absent, and when we are root, reachable by
    an unprivileged user: not under a 0700 folder such as pytest's ``tmp_path``); without it a
    fresh ``mkdtemp`` folder is made and removed again by :meth:`stop`.
    """

    def __init__(
        self,
        base: Path | None = None,
        *,
        bindir: Path | None = None,
        port: int | None = None,
        extra_listen: Sequence[str] = (),
    ) -> None:
        found = bindir or find_bindir()
        if found is None:
            raise LocalPostgresError(
                "PostgreSQL is not installed: no /usr/lib/postgresql/*/bin/initdb "
                f"and no ${BINDIR_ENV} (Debian: apt-get install postgresql)"
            )
        self.bindir = found
        self.extra_listen = [ipaddress.ip_interface(a) for a in extra_listen]
        self._given_base = base
        self.base = base or Path("/nonexistent")
        self.port = port or 0
        self.password = secrets.token_urlsafe(24)
        self._user: str | None = None
        self._started = False
        self._base_made = False
        self._guard: subprocess.Popen[bytes] | None = None
        self._guard_pipe: int | None = None

    # --- where things are -----------------------------------------------------------------------

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "run"

    @property
    def logfile(self) -> Path:
        return self.base / "run" / "postgres.log"

    @property
    def password_file(self) -> Path:
        return self.base / "password"

    @property
    def url(self) -> str:
        """The ``npsp`` role's database over TCP; the password is in :attr:`password_file`."""
        return self.database_url(ROLE)

    def database_url(self, name: str) -> str:
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{name}"

    @property
    def run_as(self) -> str | None:
        """The user the server runs as (None: ourselves)."""
        return self._user

    # --- the lifecycle --------------------------------------------------------------------------

    def start_blocking(self) -> None:
        """initdb, configure, start, create the role ``npsp`` and its database."""
        if self._started:
            return
        if os.geteuid() == 0:
            self._user = _service_user()
        if self._given_base is None:
            self.base = Path(tempfile.mkdtemp(prefix="npsp-pg-"))
            self._base_made = True
        else:
            self.base.mkdir(parents=True, exist_ok=True)
        if self.port == 0:
            self.port = _free_port()
        try:
            self._prepare_folders()
            self._start_guard()
            self._initdb()
            self._configure()
            self._pg_ctl_start()
            self._started = True
            self._bootstrap()
        except BaseException:
            self.stop_blocking()
            raise

    def stop_blocking(self) -> None:
        """Stop the server (fast) and remove the folder if we made it."""
        if (self.datadir / "postmaster.pid").exists():
            self._run_pg_ctl("stop", "-m", "immediate", check=False)
        self._started = False
        if self._base_made:
            shutil.rmtree(self.base, ignore_errors=True)
            self._base_made = False
        self._stop_guard()

    def _start_guard(self) -> None:
        """Stop the server and remove our folder even if this process dies without stop()."""
        read_end, self._guard_pipe = os.pipe()
        stop = self._command(
            "pg_ctl", "stop", "-D", str(self.datadir), "-m", "immediate", "-w", "-t", "60"
        )
        remove = str(self.base) if self._base_made else ""
        try:
            self._guard = subprocess.Popen(  # noqa: S603 - our own interpreter and code
                [sys.executable, "-c", _GUARD, str(read_end), remove, *stop],
                pass_fds=(read_end,),
                cwd=self.base,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C for us does not reach it
            )
        finally:
            os.close(read_end)

    def _stop_guard(self) -> None:
        if self._guard_pipe is not None:
            with contextlib.suppress(OSError):
                os.write(self._guard_pipe, b"q")
            os.close(self._guard_pipe)
            self._guard_pipe = None
        if self._guard is not None:
            self._guard.wait(timeout=10)
            self._guard = None

    def stop_server_blocking(self) -> None:
        """``pg_ctl stop -m fast``: sessions are ended, the data stays for :meth:`start_server`."""
        self._run_pg_ctl("stop", "-m", "fast")

    def start_server_blocking(self) -> None:
        """Start the server again: same folder, same port, same data."""
        self._pg_ctl_start()

    def kill_blocking(self) -> None:
        """SIGKILL the postmaster (a crash); waits until its backends are gone too."""
        pid = self._postmaster_pid()
        if pid is None:
            raise LocalPostgresError(f"kill: no running postmaster in {self.datadir}")
        children = self._children(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        # Backends notice the postmaster's death and leave; until they have, the shared memory is
        # attached and a new postmaster would refuse to start.
        while any(Path(f"/proc/{p}").exists() for p in (pid, *children)):
            if time.monotonic() > deadline:
                raise LocalPostgresError(f"kill: postmaster {pid} or its backends still running")
            time.sleep(0.02)

    def is_running(self) -> bool:
        """Whether the postmaster of :attr:`datadir` is alive (after kill, its pid file stays)."""
        pid = self._postmaster_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def create_database_blocking(self, name: str) -> str:
        """A fresh empty database owned by ``npsp``; returns its URL."""
        if not _DB_NAME.fullmatch(name):
            raise ValueError(f"database name {name!r}: lowercase letters, digits and _ only")
        with self._superuser() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(ROLE)
                )
            )
        return self.database_url(name)

    # --- async twins ----------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self.start_blocking)

    async def stop(self) -> None:
        await asyncio.to_thread(self.stop_blocking)

    async def stop_server(self) -> None:
        await asyncio.to_thread(self.stop_server_blocking)

    async def start_server(self) -> None:
        await asyncio.to_thread(self.start_server_blocking)

    async def kill(self) -> None:
        await asyncio.to_thread(self.kill_blocking)

    async def create_database(self, name: str) -> str:
        return await asyncio.to_thread(self.create_database_blocking, name)

    # --- the parts ------------------------------------------------------------------------------

    def _prepare_folders(self) -> None:
        if self.datadir.exists() and any(self.datadir.iterdir()):
            raise LocalPostgresError(f"{self.datadir} is not empty")
        for folder in (self.datadir, self.socket_dir):
            folder.mkdir(mode=0o700, exist_ok=True)
            folder.chmod(0o700)
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            # The server's user passes through base (0711) into its own two folders.
            self.base.chmod(0o711)
            for folder in (self.datadir, self.socket_dir):
                os.chown(folder, entry.pw_uid, entry.pw_gid)
            if not self._reachable(entry.pw_uid):
                raise LocalPostgresError(
                    f"{self.base}: user {self._user} cannot reach it (a parent folder is closed)"
                )

    def _reachable(self, uid: int) -> bool:
        """Whether every parent of base lets ``uid`` through (others' x bit, or owned by it)."""
        for folder in (self.base, *self.base.parents):
            st = folder.stat()
            if st.st_uid != uid and not st.st_mode & 0o001:
                return False
        return True

    def _command(self, tool: str, *args: str) -> list[str]:
        command = [str(self.bindir / tool), *args]
        if self._user is None:
            return command
        runuser = shutil.which("runuser")
        if runuser is not None:
            return [runuser, "-u", self._user, "--", *command]
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise LocalPostgresError("as root, runuser or setpriv (util-linux) must drop to a user")
        entry = pwd.getpwnam(self._user)
        ids = [f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups"]
        return [setpriv, *ids, "--", *command]

    def _run(self, tool: str, *args: str, log: Path | None = None) -> None:
        done = subprocess.run(  # noqa: S603 - fixed argv, our own folders
            self._command(tool, *args),
            cwd=self.base,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env={**os.environ, "LC_ALL": "C", "TZ": "UTC"},
        )
        if done.returncode != 0:
            out = (done.stdout + done.stderr).strip()
            extra = f"\n--- {log} ---\n{_tail(log)}" if log is not None else ""
            raise LocalPostgresError(
                f"{tool} {' '.join(args)} failed (exit {done.returncode}):\n{out}{extra}"
            )

    def _initdb(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.datadir),
            "-U",
            _SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
            "--no-instructions",
        )

    def _configure(self) -> None:
        settings = dict(SETTINGS)
        hba = HBA
        if self.extra_listen:
            addresses = ["127.0.0.1", *(str(a.ip) for a in self.extra_listen)]
            settings["listen_addresses"] = "'" + ",".join(addresses) + "'"
            hba += "".join(f"host all all {a.network} scram-sha-256\n" for a in self.extra_listen)
        lines = [f"{key} = {value}" for key, value in settings.items()]
        lines.append(f"port = {self.port}")
        lines.append(f"unix_socket_directories = '{self.socket_dir}'")
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write("\n# monitor/pglocal.py\n" + "\n".join(lines) + "\n")
        (self.datadir / "pg_hba.conf").write_text(hba)

    def _run_pg_ctl(self, action: str, *args: str, check: bool = True) -> None:
        try:
            self._run(
                "pg_ctl", action, "-D", str(self.datadir), "-w", "-t", "60", *args, log=self.logfile
            )
        except LocalPostgresError:
            if check:
                raise

    def _pg_ctl_start(self) -> None:
        self._run_pg_ctl("start", "-l", str(self.logfile))

    def _postmaster_pid(self) -> int | None:
        try:
            first = (self.datadir / "postmaster.pid").read_text().split("\n", 1)[0]
        except OSError:
            return None
        return int(first) if first.strip().isdigit() else None

    @staticmethod
    def _children(pid: int) -> list[int]:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                # "pid (comm) state ppid ...": comm may hold spaces, so split after the ")".
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(stat.parent.name))
        return found

    def _superuser(self) -> psycopg.Connection[tuple[object, ...]]:
        try:
            return psycopg.connect(
                host=str(self.socket_dir),
                port=self.port,
                user=_SUPERUSER,
                dbname="postgres",
                autocommit=True,
                connect_timeout=10,
            )
        except psycopg.Error as exc:
            raise LocalPostgresError(
                f"cannot connect over {self.socket_dir}: {exc}\n--- {self.logfile} ---\n"
                f"{_tail(self.logfile)}"
            ) from exc

    def _bootstrap(self) -> None:
        with self._superuser() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(ROLE), sql.Literal(self.password)
                )
            )
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(ROLE), sql.Identifier(ROLE)
                )
            )
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(self.password + "\n")
