"""``npsp-monitor accounts create|list|revoke|map-cert``: run on the gateway host by whoever may
read its database — this is how the first national-admin is made.

The token of a new account is printed once, on standard output; only its hash is stored.
A client certificate is mapped by its file (``--cert``: the SHA-256 of its DER and its
issuer's DN are read from it) or by ``--cert-sha256`` with ``--cert-issuer``. Mappings by
subject or serial number from earlier versions no longer log in: ``list`` marks them, and
``map-cert`` re-maps them. No command creates the database unless ``--init`` is given (the
first account may be made before the daemon first ran). Exit codes: 0 done; 1 no database;
2 refused (the message says why: :mod:`monitor.cli.errors`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from .. import accounts
from ..accounts import AccountError, CertIdentity
from ..config import Config, load_config
from .common import WithConfig, print_json, with_init, with_store
from .errors import guarded

__all__ = ["add_accounts_commands"]


def _agencies(config: Config) -> set[str]:
    return {a.id for a in config.agencies}


def _certificate(args: argparse.Namespace) -> CertIdentity | None:
    """The certificate identity the options name, or None."""
    if args.cert is not None:
        if args.cert_sha256 or args.cert_issuer:
            raise AccountError("give --cert, or --cert-sha256 with --cert-issuer, not both")
        try:
            data = Path(args.cert).read_bytes()
        except OSError as exc:
            raise AccountError(f"cannot read {args.cert}: {exc.strerror}") from None
        return accounts.identity_from_file(data)
    if args.cert_sha256 or args.cert_issuer:
        if not (args.cert_sha256 and args.cert_issuer):
            raise AccountError("--cert-sha256 and --cert-issuer go together")
        return accounts.parse_identity(args.cert_sha256, args.cert_issuer)
    return None


def _mapping(a: dict[str, Any]) -> str:
    if a["cert_sha256"]:
        return f"cert sha256:{a['cert_sha256'][:16]}… issuer {a['cert_issuer']}"
    if a["cert_subject"] or a["cert_serial"]:
        return "cert NOT MAPPED: old subject/serial mapping, re-map with map-cert"
    return ""


def _map_cert(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    now = time.time()
    cert = None if args.clear else _certificate(args)
    if cert is None and not args.clear:
        raise AccountError("give --cert FILE, --cert-sha256 with --cert-issuer, or --clear")
    account = with_store(
        args,
        config,
        lambda store: accounts.map_certificate(
            store, actor=None, account_id=args.id, cert=cert, now=now, source="cli"
        ),
    )
    if cert is None:
        print(f"account {account.id}: no client certificate logs in to it now")
    else:
        print(f"account {account.id}: the certificate sha256:{cert.sha256} logs in")
    return 0


def _create(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    now = time.time()
    cert = _certificate(args)
    account, token = with_store(
        args,
        config,
        lambda store: accounts.create(
            store,
            actor=None,
            account_id=args.id,
            name=args.name,
            role=args.role,
            agency=args.agency,
            agencies=_agencies(config),
            now=now,
            cert=cert,
            cert_subject=args.cert_subject,
            cert_serial=args.cert_serial,
            portal_account=args.portal_account,
            source="cli",
        ),
    )
    if args.json:
        print_json({"account": account.as_json(), "token": token}, ensure_ascii=True)
    else:
        print(f"account {account.id} ({account.role}) created; its token, shown once:")
        print(token)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    now = time.time()
    account = with_store(
        args,
        config,
        lambda store: accounts.revoke(store, actor=None, account_id=args.id, now=now, source="cli"),
    )
    print(f"account {account.id} revoked")
    return 0


def _list(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    rows = with_store(args, config, accounts.list_accounts)
    listed: list[dict[str, Any]] = [a.as_json() for a in rows]
    if args.json:
        print_json(listed)
        return 0
    for a in listed:
        state = "revoked" if a["revoked_at"] else "active"
        line = f"{a['id']:<24} {a['role']:<15} {a['agency'] or '-':<20} {state}  {a['name']}"
        mapping = _mapping(a)
        print(f"{line}  [{mapping}]" if mapping else line)
    legacy = [r.id for r in rows if r.legacy_certificate and r.active]
    if legacy:
        print(
            f"{len(legacy)} account(s) mapped only by certificate subject or serial, which no"
            " longer log in: re-map them by certificate fingerprint with"
            " `npsp-monitor accounts map-cert ID --cert FILE`",
            file=sys.stderr,
        )
    return 0


def add_accounts_commands(sub: Any, with_config: WithConfig) -> None:
    """Register ``accounts create|map-cert|revoke|list`` on ``sub``."""
    p = sub.add_parser("accounts", help="accounts of the API and pages (bootstrap, list, revoke)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = actions.add_parser("create", help="create an account; prints its token once")
    with_config(c)
    c.add_argument("--id", required=True, help="login name")
    c.add_argument("--name", required=True, help="the person's name")
    c.add_argument("--role", required=True, choices=accounts.ROLES)
    c.add_argument("--agency", help="agency id (every role but national-admin)")
    _certificate_options(c)
    old = "no longer accepted: certificates are mapped by fingerprint (--cert)"
    c.add_argument("--cert-subject", help=old)
    c.add_argument("--cert-serial", help=old)
    c.add_argument("--portal-account", help="portal inbox account (default: the login name)")
    c.add_argument("--json", action="store_true")
    with_init(c)
    c.set_defaults(func=guarded(_create))
    m = actions.add_parser(
        "map-cert", help="map a client certificate to an account, or unmap it (audited)"
    )
    with_config(m)
    m.add_argument("id")
    _certificate_options(m)
    m.add_argument("--clear", action="store_true", help="no certificate logs in to it any more")
    with_init(m)
    m.set_defaults(func=guarded(_map_cert))
    r = actions.add_parser("revoke", help="revoke an account (refused from its next request)")
    with_config(r)
    r.add_argument("id")
    with_init(r)
    r.set_defaults(func=guarded(_revoke))
    ls = actions.add_parser("list", help="every account")
    with_config(ls)
    ls.add_argument("--json", action="store_true")
    with_init(ls)
    ls.set_defaults(func=guarded(_list))


def _certificate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cert", metavar="FILE", help="the client certificate (PEM or DER)")
    p.add_argument("--cert-sha256", help="or: its SHA-256 fingerprint (hex, colons allowed)")
    p.add_argument("--cert-issuer", help="with --cert-sha256: its issuer's DN (RFC 4514)")
