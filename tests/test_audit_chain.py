"""The audit log is append-only and hash-chained (issue 14, item 4), on both backends: the
chain after writes through audit() and audit_write(), the database refusing changes, tampering
done around the triggers found and named by ``npsp-monitor audit verify``, concurrent writers
kept on one line, entries written before the chain chained, and an export an outside party
verifies with a few lines of its own."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from monitor import accounts, audit, audit_chain
from monitor.cli import main
from monitor.dblocation import PostgresUrl
from monitor.schema import MIGRATIONS as SQLITE_MIGRATIONS
from monitor.schema import statements
from monitor.schema_pg import MIGRATIONS as PG_MIGRATIONS
from monitor.sqldialect import Handle
from monitor.store import Store

from .conftest import StateLocation

AGENCY = "bo-tai-chinh"


async def _write(store: Store, count: int, *, start: int = 0, actor: str = "an") -> None:
    """``count`` entries through audit(), Vietnamese detail, with and without an agency."""
    for i in range(start, start + count):
        await audit.audit(
            store,
            ts=1_767_225_600.0 + i / 3,
            actor=actor,
            action="silence.create",
            target=f"im-lặng-{i}",
            agency=AGENCY if i % 2 else None,
            detail={"lý do": f"bảo trì {i}", "n": i},
            source="api",
        )


def _run(statement: str) -> Callable[[Handle], object]:
    def run(db: Handle) -> object:
        return db.execute(statement)

    return run


def _rows(db: Handle) -> list[tuple[Any, ...]]:
    return db.execute("SELECT id, prev_hash, hash FROM audit ORDER BY id").fetchall()


def _tamper(location: StateLocation, *sql: str) -> None:
    """Run ``sql`` as someone who may write the database and turns the triggers off first."""
    if isinstance(location.location, Path):
        db = sqlite3.connect(location.location, isolation_level=None)
        try:
            for name in ("audit_no_update", "audit_no_delete", "audit_head_kept"):
                db.execute(f"DROP TRIGGER IF EXISTS {name}")
            for statement in sql:
                db.execute(statement)
        finally:
            db.close()
        return
    with psycopg.connect(str(location.location), password=location.password) as conn:
        conn.execute("ALTER TABLE audit DISABLE TRIGGER USER")
        conn.execute("ALTER TABLE audit_head DISABLE TRIGGER USER")
        for statement in sql:
            conn.execute(statement)


def _config(tmp_path: Path, location: StateLocation, name: str = "npsp") -> Path:
    path = tmp_path / f"{name}.yaml"
    if isinstance(location.location, Path):
        path.write_text(f"listen: 127.0.0.1:0\nstate_db: {location.location}\n")
        return path
    secret = tmp_path / f"{name}-pg-password"
    secret.write_text(location.password or "")
    secret.chmod(0o600)
    path.write_text(
        f"listen: 127.0.0.1:0\nstate_db: {location.location}\nstate_db_password_file: {secret}\n"
    )
    return path


async def _cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


def _independent_verifier(lines: list[str], first_prev: str = "0" * 64) -> int:
    """What an outside party writes from the export's help, without our code."""
    prev = first_prev
    for line in lines:
        entry = json.loads(line)
        claimed = entry.pop("hash")
        body = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(body.encode("utf-8")).hexdigest() == claimed, line
        assert entry["prev_hash"] == prev, line
        prev = claimed
    return len(lines)


# ----- the chain ---------------------------------------------------------------------------------


async def test_each_entry_carries_the_hash_of_the_one_before(state_location: StateLocation) -> None:
    store = await state_location.open()
    try:
        await _write(store, 3)
        # audit_write inside the transaction of the act it records
        await accounts.create(
            store, actor=None, account_id="vpcp", name="Văn phòng Chính phủ",
            role="national-admin", agency=None, agencies={AGENCY}, now=1_767_300_000.25, source="cli",
        )  # fmt: skip
        await _write(store, 2, start=3)
        rows = await store.transact(_rows)
        assert [r[0] for r in rows] == [1, 2, 3, 4, 5, 6]
        assert rows[0][1] == audit_chain.GENESIS
        assert [r[1] for r in rows[1:]] == [r[2] for r in rows[:-1]]
        # each hash is the SHA-256 of the canonical encoding of what the entry holds
        log = {e["id"]: e for e in await audit.audit_log(store)}
        assert log[4]["action"] == "account.create" and log[4]["actor"] == "bootstrap"
        fields = {
            "id": 4, "ts": repr(1_767_300_000.25), "actor": "bootstrap",
            "action": "account.create", "target": "vpcp", "agency": None,
            "detail": json.dumps({"role": "national-admin"}, ensure_ascii=False),
            "source": "cli", "prev_hash": rows[2][2],
        }  # fmt: skip
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert rows[3][2] == hashlib.sha256(canonical.encode()).hexdigest()
        verdict = await audit_chain.verify(store)
        assert verdict.intact and verdict.entries == 6 and verdict.last_hash == rows[-1][2]
    finally:
        await store.close()


async def test_the_database_refuses_to_change_or_remove_an_entry(
    state_location: StateLocation,
) -> None:
    store = await state_location.open()
    try:
        await _write(store, 2)
        refused = (sqlite3.Error, psycopg.Error)
        for statement in (
            "UPDATE audit SET detail = '{}' WHERE id = 1",
            "UPDATE audit SET hash = NULL, prev_hash = NULL WHERE id = 2",
            "DELETE FROM audit WHERE id = 2",
            "DELETE FROM audit_head",
        ):
            with pytest.raises(refused, match=r"append-only|is kept"):
                await store.transact(_run(statement))
        if store.shared:
            for table in ("audit", "audit_head"):
                with pytest.raises(psycopg.Error, match="append-only"):
                    await store.transact(_run(f"TRUNCATE {table}"))
        assert (await audit_chain.verify(store)).entries == 2
    finally:
        await store.close()


# ----- tampering around the triggers, found by `audit verify` -----------------------------------


@pytest.mark.parametrize(
    ("tamper", "bad_id", "what"),
    [
        # a DBA edits a detail with the triggers off
        (["UPDATE audit SET detail = '{\"n\": 99}' WHERE id = 5"], 5, "content changed"),
        (["UPDATE audit SET ts = ts + 1 WHERE id = 9"], 9, "content changed"),
        # a middle entry deleted: a gap in the ids that prev_hash does not bridge
        (["DELETE FROM audit WHERE id = 6"], 7, "entry missing: ids jump from 5 to 7"),
        (["DELETE FROM audit WHERE id IN (3, 4)"], 5, "ids jump from 2 to 5 (gone: 3-4)"),
        (["DELETE FROM audit WHERE id = 1"], 2, "ids jump from 0 to 2"),
        # the last entries deleted: the chain head still says where the log ended
        (["DELETE FROM audit WHERE id >= 11"], 11, "missing at the end"),
        # two entries' content swapped (their hashes left in place)
        (
            [
                "UPDATE audit SET target = (SELECT target FROM audit WHERE id = 8) WHERE id = 4",
                "UPDATE audit SET target = 'im-lặng-3' WHERE id = 8",
            ],
            4,
            "content changed",
        ),
        # two whole entries swapped, hashes and all: each fits the other's place
        (
            [
                "UPDATE audit SET id = -4 WHERE id = 4",
                "UPDATE audit SET id = 4 WHERE id = 8",
                "UPDATE audit SET id = 8 WHERE id = -4",
            ],
            4,
            "reordered: it holds entry 8's content and hash",
        ),
        # an entry written around the chain (no hashes), and one whose hashes were erased
        (
            [
                "INSERT INTO audit (id, ts, actor, action, target, detail, source) "
                "VALUES (13, 1.0, 'x', 'y', 'z', '{}', 'cli')",
                "UPDATE audit_head SET last_id = 13",
            ],
            13,
            "not chained",
        ),
        (["UPDATE audit SET hash = NULL WHERE id = 2"], 2, "not chained"),
        # an entry re-hashed to fit its new content: the next one no longer follows it
        (["UPDATE audit SET prev_hash = '" + "1" * 64 + "' WHERE id = 10"], 10, "content"),
    ],
)
async def test_verify_names_the_first_entry_tampered_with(
    state_location: StateLocation,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tamper: list[str],
    bad_id: int,
    what: str,
) -> None:
    store = await state_location.open()
    try:
        await _write(store, 12)
    finally:
        await store.close()
    config = _config(tmp_path, state_location)
    assert await _cli("audit", "verify", "-c", str(config)) == 0
    assert "audit log intact: 12 entries, last hash " in capsys.readouterr().out
    _tamper(state_location, *tamper)
    assert await _cli("audit", "verify", "-c", str(config)) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"audit log broken at entry {bad_id}: "), out
    assert what in out, out
    # the same at every batch size: batches end anywhere, the walk is one
    store = await state_location.open(create=False)
    try:
        for batch in (1, 2, 5):
            verdict = await audit_chain.verify(store, batch=batch)
            assert (verdict.bad_id, what in (verdict.problem or "")) == (bad_id, True)
    finally:
        await store.close()


async def test_an_entry_rehashed_to_fit_is_found_at_the_next_entry(
    state_location: StateLocation,
) -> None:
    """Someone who recomputes the changed entry's hash breaks the link to the next one."""
    store = await state_location.open()
    try:
        await _write(store, 6)
        rows = await store.transact(
            lambda db: db.execute(
                "SELECT id, ts, actor, action, target, agency, detail, source, prev_hash, hash "
                "FROM audit WHERE id = 3"
            ).fetchone()
        )
    finally:
        await store.close()
    entry = audit_chain.Entry(*rows)
    forged = dataclasses.replace(entry, detail='{"n": 0}')
    digest = audit_chain.entry_hash(forged.fields())
    assert digest != entry.hash
    _tamper(
        state_location, f"UPDATE audit SET detail = '{{\"n\": 0}}', hash = '{digest}' WHERE id = 3"
    )
    store = await state_location.open(create=False)
    try:
        verdict = await audit_chain.verify(store)
        assert verdict.bad_id == 4
        assert "reordered or replaced: its prev_hash is not the hash of entry 3" in (
            verdict.problem or ""
        )
    finally:
        await store.close()


# ----- several writers at once ------------------------------------------------------------------


async def test_two_writers_at_once_keep_one_chain_in_id_order(
    state_location: StateLocation,
) -> None:
    """Two stores on one database (two hosts on PostgreSQL) writing 200 entries each at the
    same time: one chain, ids 1-400 with no gap, in chain order."""
    first = await state_location.open()
    second = await state_location.open()
    try:
        await asyncio.gather(
            _write(first, 200, actor="host-1"), _write(second, 200, start=200, actor="host-2")
        )
        rows = await first.transact(_rows)
        assert [r[0] for r in rows] == list(range(1, 401))
        assert [r[1] for r in rows] == [audit_chain.GENESIS] + [r[2] for r in rows[:-1]]
        actors = await first.transact(
            lambda db: [r[0] for r in db.execute("SELECT actor FROM audit ORDER BY id")]
        )
        assert actors.count("host-1") == actors.count("host-2") == 200
        if first.shared:  # they did interleave: the turns were taken, not one after the other
            assert actors[:200] != ["host-1"] * 200 and actors[:200] != ["host-2"] * 200
        verdict = await audit_chain.verify(second, batch=64)
        assert verdict.intact and verdict.entries == 400
    finally:
        await first.close()
        await second.close()


async def test_verify_while_others_write_sees_the_chain_it_began_with(
    state_location: StateLocation,
) -> None:
    writer = await state_location.open()
    reader = await state_location.open()
    try:
        await _write(writer, 50)
        verdicts, _ = await asyncio.gather(
            audit_chain.verify(reader, batch=3), _write(writer, 50, start=50)
        )
        assert verdicts.intact and 50 <= verdicts.entries <= 100
        assert (await audit_chain.verify(reader)).entries == 100
    finally:
        await writer.close()
        await reader.close()


# ----- entries written before the chain ----------------------------------------------------------


def _chain_migration(migrations: list[str]) -> int:
    """How many migrations come before the one that adds the chain."""
    return next(i for i, m in enumerate(migrations) if "CREATE TABLE audit_head" in m)


def _legacy_database(location: StateLocation) -> None:
    """A database at the schema before the chain, with three audit entries (one id skipped, as
    a rolled-back PostgreSQL sequence leaves)."""
    rows = [
        (1, 1000.0, "an", "login", "an", None, "{}", "web"),
        (2, 1001.5, "bình", "account.create", "bình", AGENCY, '{"role": "operator"}', "cli"),
        (4, 1002.0, "an", "silence.create", "1", AGENCY, '{"lý do": "bảo trì"}', "api"),
    ]
    insert = "INSERT INTO audit (id, ts, actor, action, target, agency, detail, source) VALUES "
    if isinstance(location.location, Path):
        before = _chain_migration(SQLITE_MIGRATIONS)
        db = sqlite3.connect(location.location, isolation_level=None)
        for script in SQLITE_MIGRATIONS[:before]:
            for statement in statements(script):
                db.execute(statement)
        db.execute(f"PRAGMA user_version={before}")
        db.executemany(insert + "(?, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.close()
        return
    before = _chain_migration(PG_MIGRATIONS)
    with psycopg.connect(str(location.location), password=location.password) as conn:
        conn.execute("CREATE TABLE npsp_schema (version BIGINT NOT NULL)")
        for script in PG_MIGRATIONS[:before]:
            conn.execute(script.encode())
        conn.execute("INSERT INTO npsp_schema (version) VALUES (%s)", (before,))
        conn.cursor().executemany(insert + "(%s, %s, %s, %s, %s, %s, %s, %s)", rows)


@pytest.mark.parametrize("first", ["write", "verify"])
async def test_entries_written_before_the_chain_are_chained_once(
    state_location: StateLocation, first: str
) -> None:
    _legacy_database(state_location)
    store = await state_location.open(create=False)  # migrates forward
    try:
        before = await store.transact(_rows)
        assert [(r[0], r[1], r[2]) for r in before] == [(1, None, None), (2, None, None),
                                                        (4, None, None)]  # fmt: skip
        if first == "write":
            await _write(store, 1)
        verdict = await audit_chain.verify(store)
        assert verdict.intact and verdict.entries == (4 if first == "write" else 3)
        await _write(store, 1, start=1)
        rows = await store.transact(_rows)
        assert [r[0] for r in rows] == ([1, 2, 4, 5, 6] if first == "write" else [1, 2, 4, 5])
        assert rows[0][1] == audit_chain.GENESIS
        assert [r[1] for r in rows[1:]] == [r[2] for r in rows[:-1]]
        assert (await audit_chain.verify(store)).entries == len(rows)
        # chained once: the legacy entries now refuse every change, hashes included
        with pytest.raises((sqlite3.Error, psycopg.Error), match="append-only"):
            await store.transact(
                lambda db: db.execute("UPDATE audit SET hash = NULL, prev_hash = NULL WHERE id = 1")
            )
    finally:
        await store.close()


# ----- the command line --------------------------------------------------------------------------


async def test_export_is_verified_by_an_outsider_and_since_continues_it(
    state_location: StateLocation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = await state_location.open()
    try:
        await _write(store, 25)
    finally:
        await store.close()
    config = _config(tmp_path, state_location)
    assert await _cli("audit", "export", "-c", str(config)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert _independent_verifier(lines) == 25
    assert json.loads(lines[3])["detail"] == json.dumps({"lý do": "bảo trì 3", "n": 3},
                                                        ensure_ascii=False)  # fmt: skip
    # the outsider's verifier is not vacuous: one changed character is caught
    forged = lines[:]
    forged[7] = forged[7].replace("bảo trì 7", "bảo trì 8")
    with pytest.raises(AssertionError):
        _independent_verifier(forged)

    out = tmp_path / "after-10.jsonl"
    assert (
        await _cli("audit", "export", "-c", str(config), "--since", "10", "--output", str(out)) == 0
    )
    assert "15 audit entries written to" in capsys.readouterr().out
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    later = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in later] == list(range(11, 26))
    first_prev = json.loads(lines[9])["hash"]
    assert _independent_verifier(later, first_prev) == 15
    # the last hash verify prints is the last line's
    assert await _cli("audit", "verify", "-c", str(config)) == 0
    assert capsys.readouterr().out.strip().endswith(json.loads(lines[-1])["hash"])


async def test_an_empty_log_is_intact(
    state_location: StateLocation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await (await state_location.open()).close()
    config = _config(tmp_path, state_location)
    assert await _cli("audit", "verify", "-c", str(config)) == 0
    assert capsys.readouterr().out == f"audit log intact: 0 entries, last hash {'0' * 64}\n"
    assert await _cli("audit", "export", "-c", str(config)) == 0
    assert capsys.readouterr().out == ""


async def test_usage_config_and_database_errors_are_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pg_url: tuple[str, Path]
) -> None:
    missing = tmp_path / "none.yaml"
    assert await _cli("audit", "verify", "-c", str(missing)) == 2
    capsys.readouterr()
    no_db = _config(tmp_path, StateLocation(tmp_path / "absent" / "state.db", None), "no-db")
    assert await _cli("audit", "verify", "-c", str(no_db)) == 2
    assert "no state database" in capsys.readouterr().err
    assert not (tmp_path / "absent" / "state.db").exists()
    assert await _cli("audit", "export", "-c", str(no_db)) == 2
    capsys.readouterr()
    bad = tmp_path / "bad.yaml"
    bad.write_text("listen: 127.0.0.1:0\nstate_db: 5: [\n")
    assert await _cli("audit", "verify", "-c", str(bad)) == 2
    capsys.readouterr()
    for argv in (["audit"], ["audit", "export", "-c", str(no_db), "--since", "-1"],
                 ["audit", "export", "-c", str(no_db), "--since", "x"]):  # fmt: skip
        with pytest.raises(SystemExit) as stopped:
            await _cli(*argv)
        assert stopped.value.code == 2
    capsys.readouterr()
    # PostgreSQL: a wrong password is a database error, 2, and the password is not echoed
    url, _ = pg_url
    wrong = _config(tmp_path, StateLocation(PostgresUrl(url), "not-the-password-xyz"), "wrong")
    assert await _cli("audit", "verify", "-c", str(wrong)) == 2
    err = capsys.readouterr().err
    assert err.startswith("npsp-monitor: ") and "not-the-password-xyz" not in err
    # an output file that cannot be written
    store = await Store.open(tmp_path / "s.db")
    await store.close()
    ok = _config(tmp_path, StateLocation(tmp_path / "s.db", None), "ok")
    target = tmp_path / "no-such-folder" / "out.jsonl"
    assert await _cli("audit", "export", "-c", str(ok), "--output", str(target)) == 2
    assert "no-such-folder" in capsys.readouterr().err


async def test_a_copy_from_sqlite_to_postgres_keeps_the_chain(
    tmp_path: Path, pg_url: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite_path = tmp_path / "old.db"
    old = await Store.open(sqlite_path)
    try:
        await _write(old, 30)
        kept = await audit_chain.verify(old)
    finally:
        await old.close()
    url, password_file = pg_url
    target = StateLocation(PostgresUrl(url), password_file.read_text().strip())
    config = _config(tmp_path, target)
    assert await _cli("store", "copy", "--from", str(sqlite_path), "-c", str(config)) == 0
    assert await _cli("audit", "verify", "-c", str(config)) == 0
    assert capsys.readouterr().out.endswith(f"30 entries, last hash {kept.last_hash}\n")
    store = await target.open(create=False)
    try:
        await _write(store, 2, start=30)
        verdict = await audit_chain.verify(store)
        assert verdict.intact and (verdict.entries, verdict.last_id) == (32, 32)
    finally:
        await store.close()
