"""monitor/pglocal.py: the throwaway PostgreSQL the tests and the demo run on (issue 13)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from monitor.pglocal import LocalPostgres, LocalPostgresError, find_bindir

# The tests that start servers of their own: skipped or failed (on CI) as local_postgres is.
needs_postgres = pytest.mark.usefixtures("local_postgres")


def _password(local_postgres: LocalPostgres) -> str:
    return local_postgres.password_file.read_text().strip()


def _listening(port: int) -> list[str]:
    """The local addresses of the sockets listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                if len(address) == 8:
                    found.append(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1]))
                else:
                    words = [bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, 32, 8)]
                    found.append(socket.inet_ntop(socket.AF_INET6, b"".join(words)))
    return found


def test_a_password_is_needed_over_tcp(local_postgres: LocalPostgres) -> None:
    with psycopg.connect(local_postgres.url, password=_password(local_postgres)) as conn:
        row = conn.execute("SELECT current_user, current_database()").fetchone()
    assert row == ("npsp", "npsp")
    for wrong in ("", "not-the-password"):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(local_postgres.url, password=wrong, connect_timeout=5).close()
    assert stat.S_IMODE(local_postgres.password_file.stat().st_mode) == 0o600
    assert local_postgres.url == f"postgresql://npsp@127.0.0.1:{local_postgres.port}/npsp"


def test_it_listens_on_loopback_only(local_postgres: LocalPostgres) -> None:
    assert _listening(local_postgres.port) == ["127.0.0.1"]
    with psycopg.connect(local_postgres.url, password=_password(local_postgres)) as conn:
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN ('listen_addresses',"
                " 'tcp_keepalives_idle', 'tcp_keepalives_interval', 'tcp_keepalives_count',"
                " 'tcp_user_timeout', 'client_connection_check_interval', 'fsync')"
            ).fetchall()
        )
    assert settings == {
        "listen_addresses": "127.0.0.1",
        "tcp_keepalives_idle": "10",
        "tcp_keepalives_interval": "5",
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": "10000",
        "client_connection_check_interval": "5000",
        "fsync": "off",
    }


def test_each_test_gets_a_fresh_empty_database(
    pg_url: tuple[str, Path], local_postgres: LocalPostgres
) -> None:
    url, password_file = pg_url
    password = password_file.read_text().strip()
    user_tables = (
        "SELECT count(*) FROM information_schema.tables"
        " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
    )
    with psycopg.connect(url, password=password) as conn:
        assert conn.execute(user_tables).fetchone() == (0,)
        owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        ).fetchone()
        assert owner == ("npsp",)
        conn.execute("CREATE TABLE t (x int)")
    other = local_postgres.create_database_blocking(url.rsplit("/", 1)[1] + "_other")
    with psycopg.connect(other, password=password) as conn:
        assert conn.execute(user_tables).fetchone() == (0,)
    with pytest.raises(ValueError, match="lowercase"):
        local_postgres.create_database_blocking('x"; DROP DATABASE npsp; --')


@needs_postgres
async def test_data_survives_a_stop_and_a_crash() -> None:
    # A server of its own: stopping the shared one would disturb the other tests.
    server = LocalPostgres()
    await server.start()
    try:
        password = _password(server)
        with psycopg.connect(server.url, password=password, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (x int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        await server.stop_server()
        assert not server.is_running()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(server.url, password=password, connect_timeout=2).close()
        await server.start_server()
        with psycopg.connect(server.url, password=password) as conn:
            assert conn.execute("SELECT x FROM kept").fetchall() == [(42,)]
        assert server.is_running()
        await server.kill()
        assert not server.is_running()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(server.url, password=password, connect_timeout=2).close()
        await server.start_server()
        with psycopg.connect(server.url, password=password) as conn:
            assert conn.execute("SELECT x FROM kept").fetchall() == [(42,)]
    finally:
        await server.stop()
    assert not server.base.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only as root")
def test_as_root_the_server_runs_as_another_user(local_postgres: LocalPostgres) -> None:
    assert local_postgres.run_as not in (None, "root")
    assert local_postgres.datadir.stat().st_uid != 0
    pid = (local_postgres.datadir / "postmaster.pid").read_text().split("\n", 1)[0]
    uids = next(
        line.split()[1:]
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("Uid:")
    )
    assert "0" not in uids
    # The socket's folder is closed to other users: trust on the socket reaches no one else.
    assert stat.S_IMODE(local_postgres.socket_dir.stat().st_mode) == 0o700


@needs_postgres
def test_a_failed_start_says_why() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = LocalPostgres(port=taken.getsockname()[1])
        with pytest.raises(LocalPostgresError, match="pg_ctl start") as failed:
            server.start_blocking()
    assert "could not" in str(failed.value)  # the server log's tail: could not bind/create ...
    assert not server.base.exists()


def test_without_postgresql_it_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PG_BINDIR", str(tmp_path))
    assert find_bindir() is None
    with pytest.raises(LocalPostgresError, match="apt-get install postgresql"):
        LocalPostgres()


@needs_postgres
@pytest.mark.skipif(os.geteuid() != 0, reason="only as root")
def test_as_root_a_folder_the_server_user_cannot_reach_is_refused(tmp_path: Path) -> None:
    # pytest's tmp_path lies under a 0700 folder of root's.
    server = LocalPostgres(tmp_path / "pg")
    with pytest.raises(LocalPostgresError, match="cannot reach"):
        server.start_blocking()


@needs_postgres
def test_a_killed_owner_leaves_no_server_behind() -> None:
    # Its owner dies without stop() (SIGKILL, a CI timeout): its guard stops it and cleans up.
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from monitor.pglocal import LocalPostgres\n"
            "pg = LocalPostgres()\n"
            "pg.start_blocking()\n"
            "print(pg.base, pg.port, flush=True)\n"
            "time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    ) as owner:
        try:
            assert owner.stdout is not None
            base, port = owner.stdout.readline().split()
            assert _listening(int(port)) == ["127.0.0.1"]
        finally:
            owner.kill()
    deadline = time.monotonic() + 20
    while Path(base).exists() or _listening(int(port)):
        assert time.monotonic() < deadline, "the server outlived its owner"
        time.sleep(0.05)
