"""``npsp-monitor accounts create|list|grant|revoke``: run on the gateway host by whoever may
read its database — this is how the first national-admin is made.

The token of a new account is printed once, on standard output; only its hash is stored.
Exit codes: 0 done; 2 refused (the message says why).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

from . import accounts
from .accounts import AccountError
from .config import Config, load_config
from .store import run_with_store

T = TypeVar("T")
WithConfig = Callable[[argparse.ArgumentParser], None]


def _agencies(config: Config) -> set[str]:
    return {a.id for a in config.agencies}


def cmd_accounts(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    now = time.time()
    try:
        if args.action == "create":
            account, token = run_with_store(
                config.state_db,
                lambda store: accounts.create(
                    store,
                    actor=None,
                    account_id=args.id,
                    name=args.name,
                    role=args.role,
                    agency=args.agency,
                    agencies=_agencies(config),
                    now=now,
                    cert_subject=args.cert_subject,
                    cert_serial=args.cert_serial.upper() if args.cert_serial else None,
                    portal_account=args.portal_account,
                    source="cli",
                ),
            )
            if args.json:
                print(json.dumps({"account": account.as_json(), "token": token}, indent=2))
            else:
                print(f"account {account.id} ({account.role}) created; its token, shown once:")
                print(token)
            return 0
        if args.action == "revoke":
            account = run_with_store(
                config.state_db,
                lambda store: accounts.revoke(
                    store, actor=None, account_id=args.id, now=now, source="cli"
                ),
            )
            print(f"account {account.id} revoked")
            return 0
        rows = run_with_store(config.state_db, accounts.list_accounts)
        listed: list[dict[str, Any]] = [a.as_json() for a in rows]
        if args.json:
            print(json.dumps(listed, ensure_ascii=False, indent=2))
        for a in [] if args.json else listed:
            state = "revoked" if a["revoked_at"] else "active"
            print(f"{a['id']:<24} {a['role']:<15} {a['agency'] or '-':<20} {state}  {a['name']}")
        return 0
    except AccountError as exc:
        print(f"npsp-monitor: {exc}", file=sys.stderr)
        return 2


def add_accounts_commands(sub: Any, with_config: WithConfig) -> None:
    p = sub.add_parser("accounts", help="accounts of the API and pages (bootstrap, list, revoke)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = actions.add_parser("create", help="create an account; prints its token once")
    with_config(c)
    c.add_argument("--id", required=True, help="login name")
    c.add_argument("--name", required=True, help="the person's name")
    c.add_argument("--role", required=True, choices=accounts.ROLES)
    c.add_argument("--agency", help="agency id (every role but national-admin)")
    c.add_argument("--cert-subject", help="client certificate subject, e.g. CN=Nguyen Van A,O=…")
    c.add_argument("--cert-serial", help="client certificate serial number (hex)")
    c.add_argument("--portal-account", help="portal inbox account (default: the login name)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_accounts)
    r = actions.add_parser("revoke", help="revoke an account (refused from its next request)")
    with_config(r)
    r.add_argument("id")
    r.set_defaults(func=cmd_accounts)
    ls = actions.add_parser("list", help="every account")
    with_config(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_accounts)
