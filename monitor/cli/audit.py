"""The ``audit`` subcommands: the audit log's hash chain (:mod:`monitor.audit_chain`).

``npsp-monitor audit verify -c FILE``
    walk the chain from the first entry to the last, a batch at a time; prints ``audit log
    intact: N entries, last hash H`` (keep H outside the database: a chain rewritten from some
    entry on no longer reaches it), or names the first entry found wrong and what is wrong
    with it: its content changed, an entry missing before it (a gap in the ids and a
    ``prev_hash`` that does not follow), entries reordered, entries missing at the end.
``npsp-monitor audit export -c FILE [--since ID] [--output PATH]``
    the entries after entry ``ID`` (all without it) as JSON lines, each with its ``prev_hash``
    and ``hash``, for an outside party to verify without this code (below).

Exit codes (1 is kept for a broken chain): 0 intact / exported; 1 ``verify``: the chain is
broken; 2 bad usage, an invalid config, no database or one that cannot be read, an output file
that cannot be written.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path
from typing import TextIO

from ..audit_chain import export, verify
from ..config import load_config
from ..store import StoreError, run_with_store
from .common import WithConfig, fail
from .errors import Command, exit_code, guarded

__all__ = ["EXPORT_HELP", "add_audit_commands"]

#: How an outside party checks an export (the command's help).
EXPORT_HELP = """\
Each line is one entry: {"action","actor","agency","detail","hash","id","prev_hash","source",
"target","ts"}; "ts" is the time as a string (Python's repr of the float), "detail" the JSON
text as stored. To check a line: drop "hash", serialise the rest as canonical JSON (RFC 8785:
keys sorted, no spaces, non-ASCII as it is; in Python json.dumps(entry, sort_keys=True,
separators=(",", ":"), ensure_ascii=False)), take the SHA-256 of its UTF-8 in lowercase hex:
it is "hash". Each "prev_hash" is the line before's "hash"; the first entry's is 64 zeros
(with --since ID, the hash of entry ID).
"""


def _guard(command: Command) -> Command:
    """``command``, with its errors told as :mod:`monitor.cli.errors` tells them, except that
    a database or file error is exit code 2, not 1: 1 is a broken chain."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (StoreError, OSError) as exc:
            if isinstance(exc, BrokenPipeError):
                return exit_code(exc) or 0
            if isinstance(exc, OSError) and exc.strerror:
                return fail(f"{exc.strerror}{f': {exc.filename}' if exc.filename else ''}", 2)
            return fail(str(exc), 2)

    return guarded(run)


def _verify(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    verdict = run_with_store(config, verify)
    if verdict.intact:
        print(f"audit log intact: {verdict.entries} entries, last hash {verdict.last_hash}")
        return 0
    print(
        f"audit log broken at entry {verdict.bad_id}: {verdict.problem} "
        f"({verdict.entries} entries intact before it)"
    )
    return 1


def _open_output(path: Path) -> TextIO:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    return open(fd, "w", encoding="utf-8", newline="\n")


def _export(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    out = sys.stdout if args.output is None else _open_output(args.output)
    try:
        count = run_with_store(config, lambda store: export(store, out, since=args.since))
    finally:
        if out is not sys.stdout:
            out.close()
    if args.output is not None:
        print(f"{count} audit entries written to {args.output}")
    return 0


def _since(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an entry id") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"an entry id is 0 or more, not {value}")
    return value


def add_audit_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], with_config: WithConfig
) -> None:
    """Register ``audit verify|export`` on ``sub``."""
    p = sub.add_parser("audit", help="the audit log's hash chain: verify it, export it")
    audit_sub = p.add_subparsers(dest="audit_command", required=True)
    check = audit_sub.add_parser(
        "verify",
        help="verify the chain (exit 0 intact, 1 broken: the first bad entry named)",
        description="Walk the audit log's hash chain; exit 0 intact, 1 broken (the first "
        "entry found wrong is named), 2 usage, config or database errors.",
    )
    with_config(check)
    check.set_defaults(func=_guard(_verify))
    out = audit_sub.add_parser(
        "export",
        help="the entries as JSON lines, with their hashes",
        description="Export the audit log as JSON lines for an outside party to verify.",
        epilog=EXPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    with_config(out)
    out.add_argument(
        "--since",
        type=_since,
        default=0,
        metavar="ID",
        help="only the entries after entry ID (the last one you have)",
    )
    out.add_argument("--output", type=Path, metavar="PATH", help="write here (0600), not stdout")
    out.set_defaults(func=_guard(_export))
