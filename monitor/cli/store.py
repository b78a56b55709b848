"""The ``store`` subcommands: the state database, for an operator who runs its migrations and
moves a single host's SQLite file to PostgreSQL.

``npsp-monitor store check -c FILE``               the schema's version against this code's
``npsp-monitor store migrate -c FILE``             run the migrations the database has not had
``npsp-monitor store copy --from SQLITE -c FILE``  copy a SQLite database into the config's
                                                   (empty) PostgreSQL database, history included

Exit codes: 0 done (``check``: up to date), 1 ``check``: migrations pending, or a database
error; 2 ``check``: written by a newer npsp-monitor; bad input.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from ..config import load_config
from ..dblocation import describe
from ..sqldialect import Handle, insert
from ..store import Store, StoreError, open_configured, schema_versions
from .common import WithConfig, fail
from .errors import guarded

__all__ = ["add_store_commands"]

_BATCH = 1000


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    found, latest = asyncio.run(schema_versions(config))
    where = describe(config.state_db)
    if found > latest:
        return fail(f"{where} is at schema {found}, newer than this npsp-monitor ({latest})", 2)
    if found < latest:
        print(f"{where}: schema {found} of {latest}: run npsp-monitor store migrate")
        return 1
    print(f"{where}: schema {found} of {latest}: up to date")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    config = load_config(args.config)

    async def run() -> tuple[int, int]:
        before = (await schema_versions(config))[0]
        store = await open_configured(config, create=True)
        await store.close()
        return before, (await schema_versions(config))[0]

    before, after = asyncio.run(run())
    print(f"{describe(config.state_db)}: schema {before} -> {after}")
    return 0


def _tables(db: Handle) -> dict[str, list[str]]:
    names = [
        row[0]
        for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return {name: [c[1] for c in db.execute(f"PRAGMA table_info({name})")] for name in names}


def _pg_columns(db: Handle, table: str) -> list[str]:
    rows = db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
        "AND table_schema = current_schema() ORDER BY ordinal_position",
        (table,),
    )
    return [row[0] for row in rows]


def _copy_into(db: Handle, data: dict[str, tuple[list[str], list[Any]]]) -> dict[str, int]:
    copied: dict[str, int] = {}
    for table, (columns, rows) in data.items():
        present = _pg_columns(db, table)
        if not present:
            continue
        if db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:  # noqa: S608 - our tables
            raise StoreError(f"table {table} of the target is not empty: copy into a new database")
        keep = [i for i, c in enumerate(columns) if c in present]
        names = [columns[i] for i in keep]
        statement = insert(table, names)
        for start in range(0, len(rows), _BATCH):
            chunk = [[row[i] for i in keep] for row in rows[start : start + _BATCH]]
            db.executemany(statement, chunk)
        if "id" in names and rows:
            db.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT max(id) FROM {table}))"
            )
        copied[table] = len(rows)
    return copied


def _copy(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if not config.shared_store:
        return fail("store copy copies into a postgresql:// state_db; the config names a file")
    source_path: Path = args.source

    async def run() -> dict[str, int]:
        source = await Store.open(source_path, create=False)
        try:

            def read(db: Handle) -> dict[str, tuple[list[str], list[Any]]]:
                return {
                    table: (columns, list(db.execute(f"SELECT {', '.join(columns)} FROM {table}")))  # noqa: S608
                    for table, columns in _tables(db).items()
                }

            data = await source.transact(read)
        finally:
            await source.close()
        target = await open_configured(config, create=True)
        try:
            return await target.transact(lambda db: _copy_into(db, data))
        finally:
            await target.close()

    copied = asyncio.run(run())
    for table, count in sorted(copied.items()):
        print(f"{table:<22} {count} row(s)")
    print(f"copied {source_path} into {describe(config.state_db)}")
    return 0


def add_store_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], with_config: WithConfig
) -> None:
    """Register ``store check|migrate|copy`` on ``sub``."""
    p = sub.add_parser("store", help="the state database: schema check, migrations, copy")
    store_sub = p.add_subparsers(dest="store_command", required=True)
    check = store_sub.add_parser("check", help="the schema's version against this code's")
    with_config(check)
    check.set_defaults(func=guarded(_check))
    migrate = store_sub.add_parser("migrate", help="run the migrations not run yet")
    with_config(migrate)
    migrate.set_defaults(func=guarded(_migrate))
    copy = store_sub.add_parser("copy", help="copy a SQLite database into the config's PostgreSQL")
    with_config(copy)
    copy.add_argument("--from", dest="source", type=Path, required=True, metavar="SQLITE")
    copy.set_defaults(func=guarded(_copy))
