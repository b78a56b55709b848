"""The state database on both backends: SQLite (a path) and PostgreSQL (a URL), the latter a
real server started by tests/conftest.py (monitor/pglocal.py)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from monitor.config import ConfigError, load_config
from monitor.dblocation import PostgresUrl, parse_location
from monitor.sqldialect import Handle
from monitor.state import Event, State
from monitor.store import MissingDatabase, Store, StoreError


def _location(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> tuple[object, str | None]:
    if kind == "sqlite":
        return tmp_path / "state.db", None
    url, password_file = request.getfixturevalue("pg_url")
    return PostgresUrl(url), Path(password_file).read_text().strip()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_state_changes_survive_a_reopen(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    location, password = _location(kind, tmp_path, request)
    store = await Store.open(location, password=password)  # type: ignore[arg-type]
    try:
        down = Event(1000.0, "bo-a", "cong", State.UP, State.DOWN, "connection refused", "gw-1")
        up = Event(1060.5, "bo-a", "cong", State.DOWN, State.UP, "ok", "gw-1")
        await store.record([down])
        await store.record([up])
        version = await store.data_version()
    finally:
        await store.close()
    store = await Store.open(location, create=False, password=password)  # type: ignore[arg-type]
    try:
        states = await store.states()
        assert states["bo-a/cong"].state == State.UP
        assert [e.new for e in await store.changes()] == [State.UP, State.DOWN]
        assert isinstance(version, int)
        assert store.shared is (kind == "postgresql")
    finally:
        await store.close()


async def test_postgres_refuses_a_newer_schema_and_an_empty_database_without_create(
    pg_url: tuple[str, Path],
) -> None:
    url, password_file = pg_url
    password = password_file.read_text().strip()
    with pytest.raises(MissingDatabase, match="no npsp-monitor schema"):
        await Store.open(PostgresUrl(url), create=False, password=password)
    store = await Store.open(PostgresUrl(url), password=password)
    await store.close()
    with psycopg.connect(url, password=password, autocommit=True) as conn:
        conn.execute("UPDATE npsp_schema SET version = version + 1")
    with pytest.raises(StoreError, match="newer npsp-monitor"):
        await Store.open(PostgresUrl(url), password=password)


async def test_a_wrong_password_is_a_store_error_without_the_password(
    pg_url: tuple[str, Path],
) -> None:
    url, _ = pg_url
    with pytest.raises(StoreError) as caught:
        await Store.open(PostgresUrl(url), password="not-the-password-xyz")
    assert "not-the-password-xyz" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("postgresql://npsp:secret@127.0.0.1/npsp", "holds a password"),
        ("postgresql://127.0.0.1/npsp", "names a user and a host"),
        ("postgresql://npsp@127.0.0.1/", "names one database"),
        ("postgresql://npsp@127.0.0.1/npsp?sslmode=sometimes", "sslmode"),
        ("postgresql://npsp@127.0.0.1/npsp?options=-c%20x", "unknown option"),
        ("mysql://npsp@127.0.0.1/npsp", "not a database this daemon speaks"),
    ],
)
def test_bad_database_urls_are_refused(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_location(value)


def test_the_config_names_the_line_of_a_url_with_a_password(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("listen: 127.0.0.1:0\nstate_db: postgresql://npsp:pw@db.example/npsp\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert "state_db" in text and ":2:" in text
    assert "npsp:pw" not in text  # the secret is not echoed back


def test_a_password_file_needs_a_postgres_state_db(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("listen: 127.0.0.1:0\nstate_db: s.db\nstate_db_password_file: pw\n")
    with pytest.raises(ConfigError, match="postgresql"):
        load_config(path)


def _pg_config(tmp_path: Path, url: str, password_file: Path) -> Path:
    path = tmp_path / "pg.yaml"
    path.write_text(
        f"listen: 127.0.0.1:0\nstate_db: {url}\nstate_db_password_file: {password_file}\n"
    )
    return path


async def test_store_check_migrate_and_copy_from_sqlite(
    pg_url: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from monitor.cli import main

    url, password_file = pg_url
    config = _pg_config(tmp_path, url, password_file)
    sqlite_path = tmp_path / "old.db"
    old = await Store.open(sqlite_path)
    history = [
        Event(1000.0 + i, "bo-a", f"s{i % 3}", State.UP, State.DOWN, "refused", "gw-1")
        for i in range(2500)
    ]
    await old.record(history)
    await old.close()

    def cli(*argv: str) -> int:
        return main(list(argv))

    assert await asyncio.to_thread(cli, "store", "check", "-c", str(config)) == 1
    assert "store migrate" in capsys.readouterr().out
    assert await asyncio.to_thread(cli, "store", "migrate", "-c", str(config)) == 0
    assert await asyncio.to_thread(cli, "store", "check", "-c", str(config)) == 0
    assert "up to date" in capsys.readouterr().out
    copy = ("store", "copy", "--from", str(sqlite_path), "-c", str(config))
    assert await asyncio.to_thread(cli, *copy) == 0
    assert "state_changes" in capsys.readouterr().out
    assert await asyncio.to_thread(cli, *copy) == 1  # never into a database with rows
    assert "not empty" in capsys.readouterr().err

    password = password_file.read_text().strip()
    new = await Store.open(PostgresUrl(url), create=False, password=password)
    try:
        assert len(await new.changes(limit=5000)) == 2500
        assert set(await new.states()) == {"bo-a/s0", "bo-a/s1", "bo-a/s2"}
        # the ids go on after the copied ones
        await new.record([Event(9999.0, "bo-a", "s0", State.DOWN, State.UP, "ok", "gw-1")])
        assert (await new.changes(limit=1))[0].time == 9999.0
    finally:
        await new.close()

    sqlite_config = tmp_path / "s.yaml"
    sqlite_config.write_text(f"listen: 127.0.0.1:0\nstate_db: {sqlite_path}\n")
    assert (
        await asyncio.to_thread(
            cli, "store", "copy", "--from", str(sqlite_path), "-c", str(sqlite_config)
        )
        == 2
    )


async def test_statements_with_a_literal_percent_run_on_postgres(pg_url: tuple[str, Path]) -> None:
    url, password_file = pg_url
    store = await Store.open(PostgresUrl(url), password=password_file.read_text().strip())
    try:

        def run(db: Handle) -> list[object]:
            without = db.execute("SELECT 'a%b' WHERE 'ab' LIKE 'a%'").fetchall()
            with_one = db.execute("SELECT ? WHERE 'ab' LIKE 'a%'", ("x?",)).fetchall()
            return [without, with_one]

        assert await store.transact(run) == [[("a%b",)], [("x?",)]]
    finally:
        await store.close()
