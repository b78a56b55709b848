"""Generate ``config/registry.example.yaml`` from the shared reference data.

Usage::

    python scripts/gen_registry_example.py PATH/TO/agencies-vn.yaml > config/registry.example.yaml

The reference data (``shared/data/agencies-vn.yaml``) lives outside the repository, so its path
is an argument. The output is deterministic: agencies come in the data's order and nothing in it
depends on the time or the machine, so regenerating from unchanged data changes nothing.

The generator refuses data it cannot turn into a safe sample: a host outside the reserved
``.example`` TLD (RFC 2606), a duplicate id, an unknown kind. It never writes a phone number:
committed fixtures must not carry one, real or not.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

KINDS = ("ministry", "sector-agency", "province")

# Fields of an organization in the data that this generator reads, or knowingly leaves out
# (see the report in the header comment). Anything else is new and is flagged on stderr.
KNOWN_ORG_FIELDS = frozenset(
    {
        "id",
        "kind",
        "legal_status",
        "name_vi",
        "name_en",
        "abbr",
        "note",
        "parent",
        "codes",
        "endpoints",
        "network",
        "contacts",
        "merged_from",
        "working_hours",
    }
)

SECTION_TITLES = {
    "ministry": ["Bộ (ministries)", "NQ 176/2025/QH15, from 1/3/2025"],
    "sector-agency": [
        "Cơ quan ngang bộ và cơ quan khác kết nối Cổng DVC quốc gia (sector agencies)",
        "NQ 176/2025/QH15; QĐ 31/2021/QĐ-TTg Điều 14 khoản 2",
    ],
    "province": [
        "Tỉnh, thành phố trực thuộc trung ương (provinces)",
        "NQ 202/2025/QH15, from 12/6/2025; codes QĐ 19/2025/QĐ-TTg",
    ],
}

HEADER = """\
# Sample registry of npsp-monitor: the {total} bodies connected to the
# National Public Service Portal (Cổng Dịch vụ công quốc gia):
# {ministry} ministries, {sector} sector agencies, {province} provinces.
#
# GENERATED from {source} (as of {as_of}) — do not edit by hand.
# Regenerate from the repository root (the shared folder sits beside the repository):
#   python scripts/gen_registry_example.py ../shared/data/agencies-vn.yaml \\
#       > config/registry.example.yaml
#
# PLACEHOLDERS ONLY. Every host, URL, e-mail address and portal account below is a placeholder
# under the reserved TLD `.example` (RFC 2606 / RFC 6761). Never put real hosts, IP addresses,
# phone numbers or postal addresses in a committed file: a real deployment keeps its own registry
# outside the repository. No contact has a `phone` (an E.164 number such as "+84..."), so these
# contacts are alerted by e-mail and portal inbox only.
#
# Facts (names, kinds, codes) come from the reference data, which cites:
#   NQ 176/2025/QH15   — structure of the Government: 14 ministries, 3 ministerial-level agencies
#   NQ 202/2025/QH15   — the 34 provinces and centrally-run cities, from 12/6/2025
#   QĐ 19/2025/QĐ-TTg  — province codes (mã đơn vị hành chính cấp tỉnh), used as `code`
#   QĐ 31/2021/QĐ-TTg  — Điều 14 khoản 2: the other bodies (cơ quan) that connect to the portal
# `code` is the body's abbreviation for central bodies and its province code for provinces.
# The reference data's notes, parent body and 2025 mergers are kept as comments only: the format
# has no key for them, and an unknown key is a config error.
# The high-level administrator (quản trị cấp cao) contact and the portal accounts are placeholders
# of this sample: the reference data lists one technical administrator e-mail per body.
"""


class DataError(Exception):
    """The reference data cannot be turned into a safe sample registry."""


def _q(text: str) -> str:
    """Quote ``text`` as a YAML double-quoted scalar (a JSON string is one), diacritics kept."""
    return json.dumps(text, ensure_ascii=False)


def _example_host(org_id: str, what: str, host: str | None) -> str:
    if not host or not host.endswith(".example") or host != host.lower():
        raise DataError(f"{org_id}: {what} host {host!r} is not a placeholder under .example")
    return host


def _https_url(org_id: str, what: str, url: object) -> tuple[str, str, int]:
    """Check a placeholder https URL; return it (path at least ``/``), its host and port."""
    if not isinstance(url, str):
        raise DataError(f"{org_id}: endpoints.{what} is not a URL: {url!r}")
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.username or parts.password or parts.query:
        raise DataError(f"{org_id}: endpoints.{what} must be a plain https URL: {url!r}")
    host = _example_host(org_id, f"endpoints.{what}", parts.hostname)
    port = parts.port or 443
    return parts._replace(path=parts.path or "/").geturl(), host, port


def _mailbox(org_id: str, contacts: object) -> str:
    """The technical administrator's e-mail from the data; it sets the contacts' domain."""
    emails = [
        c.get("email")
        for c in contacts or []
        if isinstance(c, dict) and c.get("role") == "technical_admin"
    ]
    if len(emails) != 1 or not isinstance(emails[0], str) or emails[0].count("@") != 1:
        raise DataError(f"{org_id}: expected one technical_admin contact with an e-mail")
    local, domain = emails[0].split("@")
    _example_host(org_id, "contact e-mail", domain)
    if local != "qtkt":
        raise DataError(f"{org_id}: technical_admin e-mail {emails[0]!r} is not qtkt@...")
    return domain


def build_agency(org: dict[str, Any]) -> dict[str, Any]:
    """Turn one organization of the reference data into one agency of the registry."""
    for field in ("id", "kind", "name_vi", "name_en"):
        if not isinstance(org.get(field), str) or not org[field].strip():
            raise DataError(f"{org.get('id', '?')}: {field} missing or not a string")
    org_id = org["id"]
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", org_id):
        raise DataError(f"{org_id!r}: an id is lowercase letters, digits and '-'")
    kind = org["kind"]
    if kind not in KINDS:
        raise DataError(f"{org_id}: unknown kind {kind!r}")
    # central bodies are known by their abbreviation, provinces by their code (QĐ 19/2025/QĐ-TTg)
    code = (org.get("codes") or {}).get("admin_code") if kind == "province" else org.get("abbr")
    if not isinstance(code, str) or not code:
        raise DataError(f"{org_id}: no code (abbr for central bodies, codes.admin_code otherwise)")

    domain = _mailbox(org_id, org.get("contacts"))
    contacts = [
        {
            "name": f"{title} {org['name_vi']}",
            "role": role,
            "email": f"{prefix}@{domain}",
            "portal_account": f"{prefix}.{org_id}",
            "channels": ["email", "inbox"],
            "language": "vi",
        }
        for title, role, prefix in (
            ("Quản trị kỹ thuật", "technical-admin", "qtkt"),
            ("Quản trị cấp cao", "high-level-admin", "qtcc"),
        )
    ]

    endpoints = org.get("endpoints") or {}
    missing = {"secure_server", "tthc_system", "public_service_portal", "status_api"} - set(
        endpoints
    )
    if missing:
        raise DataError(f"{org_id}: endpoints missing: {', '.join(sorted(missing))}")
    _, secure_host, secure_port = _https_url(org_id, "secure_server", endpoints["secure_server"])
    status_url, _, _ = _https_url(org_id, "status_api", endpoints["status_api"])
    one_stop_url, _, _ = _https_url(org_id, "tthc_system", endpoints["tthc_system"])
    portal_url, _, _ = _https_url(
        org_id, "public_service_portal", endpoints["public_service_portal"]
    )
    secure_checks: list[dict[str, Any]] = [
        {"id": "tls", "kind": "tls", "host": secure_host, "port": secure_port},
        {
            "id": "status-api",
            "kind": "http",
            "url": status_url,
            "json": [{"path": "$.last_sync", "younger_than": "24h"}],
        },
    ]
    if org_id == API_EXAMPLE_AGENCY:
        secure_checks.append(_api_example(org_id, secure_host, secure_port))
    systems = [
        {
            "id": "secure-server",
            "kind": "secure-server",
            "name": "Máy chủ bảo mật",
            "checks": secure_checks,
        },
        {
            "id": "one-stop",
            "kind": "one-stop",
            "name": "Hệ thống thông tin một cửa điện tử",
            "depends_on": ["secure-server"],
            "checks": [{"id": "https", "kind": "http", "url": one_stop_url}],
        },
        {
            "id": "public-service-portal",
            "kind": "public-service-portal",
            "name": "Cổng dịch vụ công",
            "depends_on": ["secure-server"],
            "checks": [{"id": "https", "kind": "http", "url": portal_url}],
        },
    ]
    return {
        "id": org_id,
        "kind": kind,
        "name_vi": org["name_vi"],
        "name_en": org["name_en"],
        "code": code,
        "contacts": contacts,
        "systems": systems,
    }


# The one example of an `api` check (a short transaction through the secure server): a token,
# then a lookup of a test dossier the agency keeps for the monitor, then its progress.
API_EXAMPLE_AGENCY = "ha-noi"


def _api_example(org_id: str, host: str, port: int) -> dict[str, Any]:
    base = f"https://{host}" + ("" if port == 443 else f":{port}") + "/lgsp"
    return {
        "id": "dossier-lookup",
        "kind": "api",
        "url": base,
        "interval": "5m",
        "steps": [
            {
                "name": "lấy mã truy cập",
                "token": {
                    "url": "/oauth2/token",
                    "client_id": "npsp-monitor",
                    # a systemd credential (LoadCredential=): never the secret itself
                    "client_secret_file": f"lgsp-{org_id}-client-secret",
                    "scope": "dossier.read",
                },
            },
            {
                "name": "tra cứu hồ sơ",
                "method": "POST",
                "path": "/api/v1/dossiers/lookup",
                "body": {"code": "GIAMSAT-000001"},
                "extract": {"dossier_id": "$.data.id"},
                "expect": {
                    "status": [200],
                    "max_latency": "3s",
                    "json": [{"path": "$.data.status", "op": "==", "value": "OK"}],
                },
            },
            {
                "name": "xem tiến độ",
                "path": "/api/v1/dossiers/${dossier_id}/progress",
                "expect": {"json": [{"path": "$.updated_at", "op": "age <", "value": "24h"}]},
            },
        ],
    }


def _comments(org: dict[str, Any]) -> list[str]:
    """The data's facts that have no key in the format, as comment lines."""
    lines = []
    if org["kind"] == "sector-agency" and org.get("legal_status"):
        lines.append(f"legal status: {org['legal_status']}")
    if org.get("parent"):
        lines.append(f"parent body: {org['parent']}")
    if org.get("note"):
        lines.append(f"note: {org['note']}")
    if org.get("merged_from"):
        lines.append(f"merged from (NQ 202/2025/QH15): {', '.join(org['merged_from'])}")
    working_hours = org.get("working_hours", "default")
    if working_hours != "default":
        lines.append(f"working hours: {json.dumps(working_hours, ensure_ascii=False)}")
    # a comment is one line: a newline in the data must not end it and start YAML
    return [" ".join(line.split()) for line in lines]


class _IndentedDumper(yaml.SafeDumper):
    """Lists indented under their key, as in the rest of the file."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _emit_check(check: dict[str, Any]) -> list[str]:
    out = [f"          - id: {check['id']}", f"            kind: {check['kind']}"]
    if check["kind"] == "api":  # nested steps: written by the YAML library, then indented
        rest = {k: v for k, v in check.items() if k not in ("id", "kind")}
        text = yaml.dump(
            rest, Dumper=_IndentedDumper, allow_unicode=True, sort_keys=False, width=100
        )
        return out + [f"            {line}" for line in text.splitlines()]
    if "host" in check:
        out += [f"            host: {check['host']}", f"            port: {check['port']}"]
    if "url" in check:
        out.append(f"            url: {check['url']}")
    if "json" in check:
        out.append("            json:")
        for rule in check["json"]:
            out.append(f"              - path: {rule['path']}")
            out.append(f"                younger_than: {rule['younger_than']}")
    return out


def _emit_agency(agency: dict[str, Any]) -> list[str]:
    out = [
        f"  - id: {agency['id']}",
        f"    kind: {agency['kind']}",
        f"    name_vi: {_q(agency['name_vi'])}",
        f"    name_en: {_q(agency['name_en'])}",
        f"    code: {_q(agency['code'])}",
        "    contacts:",
    ]
    for contact in agency["contacts"]:
        out += [
            f"      - name: {_q(contact['name'])}",
            f"        role: {contact['role']}",
            f"        email: {contact['email']}",
            f"        portal_account: {contact['portal_account']}",
            f"        channels: [{', '.join(contact['channels'])}]",
            f"        language: {contact['language']}",
        ]
    out.append("    systems:")
    for system in agency["systems"]:
        out += [
            f"      - id: {system['id']}",
            f"        kind: {system['kind']}",
            f"        name: {_q(system['name'])}",
        ]
        if "depends_on" in system:
            out.append(f"        depends_on: [{', '.join(system['depends_on'])}]")
        out.append("        checks:")
        for check in system["checks"]:
            out += _emit_check(check)
    return out


def generate(data: dict[str, Any], source_name: str) -> str:
    """Return the registry text for the reference ``data``."""
    orgs = data.get("organizations")
    if not isinstance(orgs, list) or not orgs:
        raise DataError("no organizations in the reference data")
    seen: set[str] = set()
    agencies = []
    lines = []
    previous_kind = None
    for org in orgs:
        if not isinstance(org, dict):
            raise DataError(f"an organization is not a mapping: {org!r}")
        unknown = sorted(set(org) - KNOWN_ORG_FIELDS)
        if unknown:
            print(f"{org.get('id')}: not mapped: {', '.join(unknown)}", file=sys.stderr)
        agency = build_agency(org)
        if agency["id"] in seen:
            raise DataError(f"duplicate id {agency['id']!r}")
        seen.add(agency["id"])
        agencies.append(agency)
        if agency["kind"] != previous_kind:
            title, source = SECTION_TITLES[agency["kind"]]
            lines += ["", f"  # ======== {title}", f"  # ======== {source}"]
            previous_kind = agency["kind"]
        lines.append("")
        for comment in _comments(org):
            lines += textwrap.wrap(
                comment, width=100, initial_indent="  # ", subsequent_indent="  #   "
            )
        lines += _emit_agency(agency)
    kinds = [agency["kind"] for agency in agencies]
    header = HEADER.format(
        total=len(agencies),
        ministry=kinds.count("ministry"),
        sector=kinds.count("sector-agency"),
        province=kinds.count("province"),
        source=source_name,
        as_of=data.get("as_of", "unknown"),
    )
    text = "\n".join([header, "schema_version: 1", "", "agencies:", *lines[1:]]) + "\n"
    # The emitter writes YAML by hand (to keep comments); prove it says what was built.
    if yaml.safe_load(text) != {"schema_version": 1, "agencies": agencies}:
        raise DataError("internal error: emitted YAML differs from the built registry")
    return text


def main(argv: list[str] | None = None) -> int:
    """Command line entry: print the registry for the data file given as argument."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="path to shared/data/agencies-vn.yaml")
    args = parser.parse_args(argv)
    try:
        data = yaml.safe_load(args.data.read_text(encoding="utf-8"))
        text = generate(data, f"shared/data/{args.data.name}")
    except (OSError, ValueError, yaml.YAMLError, DataError) as exc:  # ValueError: bad URL port
        print(f"{args.data}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.reconfigure(encoding="utf-8")  # type: ignore[union-attr]
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
