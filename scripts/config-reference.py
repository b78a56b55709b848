#!/usr/bin/env python3
"""Write docs/config-reference.md: every configuration key, generated from the pydantic models.

    .venv/bin/python scripts/config-reference.py           # rewrite docs/config-reference.md
    .venv/bin/python scripts/config-reference.py --check   # exit 1 if it is out of date

Every key of the daemon's config (``monitor.config.Config`` and the models it embeds: alerting,
channels, calendar, http, deadman, security...), of a registry file and of each probe kind,
with its type, default, an example where one is known, and what it means. The meaning is the
field's ``description=``, else an entry of ``DESCRIPTIONS`` (scripts/configdoc/texts.py), else
the comment written beside or right above the field in its model; the example comes from
``config/*.example.yaml``, else ``EXAMPLES`` (beside ``DESCRIPTIONS``). A key with no meaning
from any of them is listed by ``--check`` and by tests/test_config_reference.py: describe it
(best: a ``description=`` on the field).

A script rather than an ``npsp-monitor`` subcommand: the reference is a document of this
repository (it is reviewed with the change that alters a model), the installed daemon has no
use for it, and the command line stays what an operator needs.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic.fields import FieldInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))  # its parts, configdoc/ (runpy adds nothing)

from configdoc.texts import DESCRIPTIONS  # noqa: E402
from configdoc.walk import Builder, Row, Section, first_paragraph  # noqa: E402

from monitor.config import Config  # noqa: E402
from npsp_common.types import CheckCommon, SecretSource  # noqa: E402
from probes import PROBES  # noqa: E402

OUTPUT = ROOT / "docs" / "config-reference.md"
COMMAND = ".venv/bin/python scripts/config-reference.py"
EXAMPLE_FILES = (ROOT / "config" / "npsp-monitor.example.yaml",)
REGISTRY_EXAMPLE = ROOT / "config" / "registry.example.yaml"

# Where a check sits in the daemon's config; its keys are listed relative to it.
CHECK_PATHS = ("agencies[].systems[].checks[]", "uplink.checks[]")


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    """Dotted keys of an example document (``[]`` for list items), first value seen."""
    if prefix and prefix not in out:
        out[prefix] = value
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list):
        for item in value:
            _flatten(item, f"{prefix}[]", out)


def collect_examples() -> dict[str, Any]:
    """Examples from the shipped config files; checks under ``check.<kind>.``."""
    found: dict[str, Any] = {}
    documents = [yaml.safe_load(path.read_text(encoding="utf-8")) for path in EXAMPLE_FILES]
    documents.append(yaml.safe_load(REGISTRY_EXAMPLE.read_text(encoding="utf-8")))
    checks: list[dict[str, Any]] = []
    for document in documents:
        _flatten(document, "", found)
        checks += (document.get("uplink") or {}).get("checks") or []
        for agency in document.get("agencies") or []:
            for system in agency.get("systems") or []:
                checks += system.get("checks") or []
    for check in checks:
        kind = check.get("kind")
        for key, value in check.items():
            if key == "tls" and isinstance(value, dict):
                for sub, item in value.items():
                    found.setdefault(f"tls.{sub}", item)
            elif key == "json" and isinstance(value, list):
                for condition in value:
                    for sub, item in condition.items():
                        found.setdefault(f"json[].{sub}", item)
            found.setdefault(f"check.{kind}.{key}", value)
            if key in CheckCommon.model_fields:
                found.setdefault(f"check.*.{key}", value)
    # Examples of a daemon key are not those of the inline agencies' checks.
    return {k: v for k, v in found.items() if "checks[]" not in k}


# ---------------------------------------------------------------------------- the document


def build() -> tuple[list[Section], list[str]]:
    builder = Builder(collect_examples())
    daemon = builder.model_section(
        Config,
        "Daemon config: top level",
        "",
        "",
        intro="The file given to `npsp-monitor run -c FILE` "
        "(`/etc/npsp-monitor/config.yaml`; example: `config/npsp-monitor.example.yaml`).",
    )
    registry_first = Section(
        title="Registry files",
        anchor="registry-files",
        model="",
        intro="Files named by `include` (example: `config/registry.example.yaml`). They hold "
        "`schema_version` and `agencies`, nothing else; `agencies` may also be written in the "
        "daemon's config itself. `npsp-monitor check-config -c FILE` checks a registry file "
        "on its own.",
    )
    builder.sections.append(registry_first)
    registry_first.rows.append(
        Row("`schema_version`", "schema_version", "integer", "`1`", "`1`", "")
    )
    registry_first.rows[0].description = DESCRIPTIONS["schema_version"]
    registry_first.rows += [row for row in daemon.rows if row.lookup == "agencies"]
    # The agencies' sections follow the registry's, where a reader looks for them.
    moved = [s for s in builder.sections if s.title.startswith("`agencies[]")]
    builder.sections = [s for s in builder.sections if s not in moved] + moved
    check_sections(builder)
    value_sections(builder)
    return builder.sections, builder.missing


def check_sections(builder: Builder) -> None:
    common = builder.model_section(
        CheckCommon,
        "Checks",
        "",
        "check.*.",
        intro="Every check, whatever its kind, has these keys. A check sits at "
        + " and ".join(f"`{p}`" for p in CHECK_PATHS)
        + "; its keys are written relative to it. Unset values take `defaults`.",
    )
    common_fields = CheckCommon.model_fields
    for kind, probe in PROBES.items():
        spec = probe.spec
        inherited = frozenset(
            name
            for name, info in spec.model_fields.items()
            if name in common_fields and name != "kind" and _same_default(info, common_fields[name])
        ) | {"kind"}
        builder.model_section(
            spec,
            f"Check kind `{kind}`",
            "",
            f"check.{kind}.",
            skip=inherited,
            intro=f"`kind: {kind}` — {first_paragraph(spec)}",
        )
    (kind_row,) = [row for row in common.rows if row.lookup == "check.*.kind"]
    kind_row.type = " \\| ".join(f"`{name}`" for name in PROBES)


def _same_default(a: FieldInfo, b: FieldInfo) -> bool:
    if a.is_required() or b.is_required():
        return a.is_required() == b.is_required()
    return bool(
        a.get_default(call_default_factory=True) == b.get_default(call_default_factory=True)
    )


def value_sections(builder: Builder) -> None:
    builder.model_section(
        SecretSource,
        "Secrets",
        "",
        "secret.",
        intro="Wherever a key's type is `secret`, the value is never in the YAML: it is "
        "`{file: NAME}` or `{env: NAME}`, exactly one of them.",
    )


HEADER = f"""\
# Configuration reference

<!-- GENERATED by scripts/config-reference.py from the pydantic models: do not edit by hand.
     After changing a model, run: {COMMAND} -->

Every key of the daemon's configuration file, of a registry file and of each check kind, with
its type, default, an example and its meaning. It is generated from the models that validate the
file (each section names its model), so it lists exactly what `npsp-monitor check-config`
accepts; tests/test_config_reference.py fails when it is out of date. Regenerate it with:

    {COMMAND}

The README's "Configuration reference" explains the file as a whole: includes, limits, secrets.

How to read it:

- A key is written with dots for nesting and `[]` for an item of a list:
  `alerting.outbox.max_attempts`, `alerting.operations[].email`.
- **duration**: a number with a unit, `500ms`, `30s`, `5m`, `1h30m`, `2d` (a bare number is
  refused).
  **secret**: `{{file: NAME}}` or `{{env: NAME}}`, never the value itself (see [Secrets](#secrets)).
  **file path**: an absolute path, or relative to the directory the daemon runs in.
- Default **required**: the key must be given; **none**: unset, the feature is off or another key
  decides; **see below**: a block whose own keys have defaults.
- Unknown keys are errors.
"""


def _cell(text: str) -> str:
    """A table cell: one line, every ``|`` escaped (in code spans too, as GFM wants)."""
    return re.sub(r"(?<!\\)\|", r"\\|", text.replace("\n", " "))


def render() -> str:
    sections, _missing = build()
    out = [HEADER, "## Contents\n"]
    for section in sections:
        title = section.title
        out.append(f"- [{title}](#{section.anchor})")
    out.append("")
    for section in sections:
        out.append(f"## {section.title}\n")
        if section.intro:
            out.append(section.intro + "\n")
        if section.model:
            out.append(f"Model: `{section.model}`.\n")
        if not section.rows:
            continue
        out.append("| key | type | default | example | meaning |")
        out.append("|---|---|---|---|---|")
        for row in section.rows:
            cells = (row.key, row.type, row.default, row.example, row.description or "—")
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def undescribed() -> list[str]:
    return build()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = render()
    missing = undescribed()
    for key in missing:
        print(f"config-reference: no description for {key}", file=sys.stderr)
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run {COMMAND}", file=sys.stderr)
            return 1
        return 1 if missing else 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
