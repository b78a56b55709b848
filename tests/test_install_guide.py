"""docs/install.md works as written: its commands, followed in a scratch root, install a config
that ``npsp-monitor check-config`` accepts, with the secrets the config names.

How the guide's blocks are read (the convention is written in the guide itself):

- ``sh`` blocks start with ``# test: run`` (the system install, run in order as one script),
  ``# test: run-user`` (the install without root, likewise) or ``# test: skip — reason``;
- ``yaml`` blocks marked ``# test: merge`` are added to the installed config and checked;
- the ``nginx`` block (``# test: nginx``) is checked with ``nginx -t``.

The scripts run with ``/bin/sh`` (dash on Debian), from a copy of ``config/`` and ``systemd/``.
``/etc``, ``/opt`` and ``/var`` in the commands are rewritten under a temporary root (a script
still naming a real system path is refused before it runs), ``$HOME`` is a temporary folder, and
the program's virtualenv is the checkout's own (installing it needs the network: those blocks
are ``skip``). What needs root is stood in for by commands put first on ``PATH``:

- ``systemd-sysusers``, ``systemctl``, ``apt-get``, ``loginctl``, ``journalctl``, ``nft``,
  ``nginx``, ``chown``, ``useradd``: not run (they create the system user, start services,
  change the host); each call is logged and the test says which ran;
- ``systemd-tmpfiles --create NAME``: creates the ``d`` lines of the installed
  ``etc/tmpfiles.d/NAME`` under the root, with their modes, without their owners;
- ``install -g``/``-o``, ``runuser -u USER --`` and ``sudo -u USER``/``sudo VAR=value``: run
  as the caller (the ``npsp-monitor`` group and user do not exist here).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from monitor.cli import main
from monitor.config import Config, ConfigError, load_config
from npsp_common.types import SecretSource

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "install.md"
VENV = ROOT / ".venv"
SECRET = "test-smtp-password"

# Commands only root may run: stood in for, each call logged.
ROOT_ONLY = (
    "systemd-sysusers",
    "systemctl",
    "apt-get",
    "loginctl",
    "journalctl",
    "nft",
    "nginx",
    "chown",
    "useradd",
)


# What a fresh Debian 12 host has before the guide starts (under the scratch root).
FRESH_DEBIAN = ("etc/sysusers.d", "etc/tmpfiles.d", "etc/systemd/system", "var/lib", "opt")


@dataclass(frozen=True)
class Block:
    lang: str
    marker: str  # what follows "# test: " on the first line; "" when there is none
    text: str  # the block without its marker line
    line: int


def blocks(text: str) -> list[Block]:
    found = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, flags=re.M | re.S):
        body = match.group(2)
        first, _, rest = body.partition("\n")
        marked = first.startswith("# test:")
        found.append(
            Block(
                lang=match.group(1),
                marker=first.removeprefix("# test:").strip() if marked else "",
                text=rest if marked else body,
                line=text.count("\n", 0, match.start()) + 1,
            )
        )
    return found


def rewrite(text: str, root: Path) -> str:
    """Absolute system paths of a command moved under ``root``."""
    moved = re.sub(r"(?<![\w.~/$%-])/(etc|opt|var)/", f"{root}/\\1/", text)
    left = re.findall(r"(?<![\w.~/$%-])/(?:etc|opt|var|root|home|srv|usr/local)\b\S*", moved)
    assert not left, f"a command still names a system path: {left}"
    return moved


# ---------------------------------------------------------------- the stand-ins


FAKE_LOGGED = """\
import os, sys
with open(os.environ["NPSP_TEST_LOG"], "a", encoding="utf-8") as log:
    log.write(os.path.basename(sys.argv[0]) + " " + " ".join(sys.argv[1:]) + "\\n")
"""

FAKE_INSTALL = """\
import os, sys
args, out = sys.argv[1:], []
while args:
    if args[0] in ("-g", "-o"):
        args = args[2:]
        continue
    if not args[0].startswith(("--group=", "--owner=")):
        out.append(args[0])
    args = args[1:]
os.execv("/usr/bin/install", ["install", *out])
"""

FAKE_SUDO = """\
import os, re, sys
args, env = sys.argv[1:], dict(os.environ)
with open(os.environ["NPSP_TEST_LOG"], "a", encoding="utf-8") as log:
    log.write(os.path.basename(sys.argv[0]) + " " + " ".join(args) + "\\n")
while args:
    if args[0] in ("-u", "-g"):
        args = args[2:]
    elif args[0] == "--":
        args = args[1:]
        break
    elif args[0].startswith("-"):
        args = args[1:]
    elif re.match(r"[A-Za-z_][A-Za-z0-9_]*=", args[0]):
        name, _, value = args[0].partition("=")
        env[name] = value
        args = args[1:]
    else:
        break
os.execvpe(args[0], args, env)
"""

FAKE_TMPFILES = """\
import os, sys
root = os.environ["NPSP_TEST_ROOT"]
with open(os.environ["NPSP_TEST_LOG"], "a", encoding="utf-8") as log:
    log.write("systemd-tmpfiles " + " ".join(sys.argv[1:]) + "\\n")
assert sys.argv[1] == "--create", sys.argv
with open(os.path.join(root, "etc/tmpfiles.d", sys.argv[2]), encoding="utf-8") as conf:
    for line in conf:
        fields = line.split()
        if fields and fields[0] == "d":
            path = root + fields[1]
            os.makedirs(path, exist_ok=True)
            os.chmod(path, int(fields[2], 8))
"""


def fake_bin(folder: Path) -> Path:
    folder.mkdir()
    scripts = {name: FAKE_LOGGED for name in ROOT_ONLY}
    scripts |= {"install": FAKE_INSTALL, "systemd-tmpfiles": FAKE_TMPFILES}
    scripts |= {"sudo": FAKE_SUDO, "runuser": FAKE_SUDO}
    for name, body in scripts.items():
        path = folder / name
        path.write_text(f"#!{sys.executable}\n{body}", encoding="utf-8")
        path.chmod(0o755)
    return folder


@dataclass
class Install:
    scratch: Path
    root: Path
    home: Path
    done: subprocess.CompletedProcess[str]
    calls: list[str]

    @property
    def etc(self) -> Path:
        return self.root / "etc" / "npsp-monitor"


def follow(scratch: Path, marker: str, guide: str | None = None) -> Install:
    """Run the guide's ``marker`` blocks as one script in ``scratch``."""
    text = GUIDE.read_text(encoding="utf-8") if guide is None else guide
    root, home, source = scratch / "root", scratch / "home", scratch / "source"
    for folder in (root / "opt" / "npsp-monitor", home / "npsp-monitor", source):
        folder.mkdir(parents=True)
    for name in FRESH_DEBIAN:
        (root / name).mkdir(parents=True, exist_ok=True)
    # The program's virtualenv: the checkout's own (installing it needs the network).
    (root / "opt" / "npsp-monitor" / ".venv").symlink_to(VENV)
    (home / "npsp-monitor" / ".venv").symlink_to(VENV)
    shutil.copytree(ROOT / "config", source / "config")
    shutil.copytree(ROOT / "systemd", source / "systemd")
    # The listener's certificate and key "in the current folder" (section 5, option A).
    cert = trustme.CA().issue_cert("giamsat.npsp.dvc.example")
    cert.cert_chain_pems[0].write_to_path(str(source / "server.crt"))
    cert.private_key_pem.write_to_path(str(source / "server.key"))

    commands = [rewrite(b.text, root) for b in blocks(text) if b.marker == marker]
    assert commands, f"no '# test: {marker}' block in {GUIDE.name}"
    script = scratch / f"{marker}.sh"
    script.write_text("set -eu\n" + "\n".join(commands), encoding="utf-8")
    log = scratch / "calls.log"
    log.touch()
    env = {
        "PATH": f"{fake_bin(scratch / 'bin')}:/usr/bin:/bin",
        "HOME": str(home),
        "USER": "npsp-test",
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(ROOT),  # this checkout's code, whatever the virtualenv points at
        "NPSP_TEST_ROOT": str(root),
        "NPSP_TEST_LOG": str(log),
    }
    done = subprocess.run(
        ["/bin/sh", str(script)],
        cwd=source,
        env=env,
        input=SECRET + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    calls = log.read_text(encoding="utf-8").splitlines()
    return Install(scratch, root, home, done, calls)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Install:
    return follow(tmp_path_factory.mktemp("system"), "run")


def secrets_of(config: Config) -> Iterator[SecretSource]:
    """Every secret the config names, wherever it sits."""

    def walk(value: Any) -> Iterator[SecretSource]:
        if isinstance(value, SecretSource):
            yield value
        elif hasattr(value, "__pydantic_fields__"):
            for name in type(value).model_fields:
                yield from walk(getattr(value, name))
        elif isinstance(value, list | tuple):
            for item in value:
                yield from walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                yield from walk(item)

    return walk(config)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------- the tests


def test_every_block_says_how_it_is_tested() -> None:
    found = blocks(GUIDE.read_text(encoding="utf-8"))
    assert found
    for block in found:
        where = f"{GUIDE.name}:{block.line}"
        assert block.marker, f"{where}: a block without '# test: …' on its first line"
        if block.marker.startswith("skip"):
            assert len(block.marker) > len("skip — "), f"{where}: a skip must say why"
        else:
            expected = {"sh": ("run", "run-user"), "yaml": ("merge",), "nginx": ("nginx",)}
            assert block.marker in expected.get(block.lang, ()), f"{where}: {block.marker!r}"


def test_following_the_guide_installs_a_config_check_config_accepts(
    system: Install, capsys: pytest.CaptureFixture[str]
) -> None:
    assert system.done.returncode == 0, system.done.stderr
    # The guide's own check-config line ran (set -e) and said so.
    assert "config.yaml: OK — 54 agencies, 162 systems" in system.done.stdout
    config_file = system.etc / "config.yaml"
    assert main(["check-config", "-c", str(config_file)]) == 0
    assert "OK" in capsys.readouterr().out
    assert mode(config_file) == 0o640 and mode(system.etc / "registry.example.yaml") == 0o640
    assert mode(system.etc) == 0o750
    assert mode(system.etc / "credentials") == 0o700
    assert mode(system.etc / "tls" / "server.key") == 0o640
    # Only what needs root was stood in for; the user and the services were not made here.
    stood_in = {call.split()[0] for call in system.calls}
    assert stood_in <= {*ROOT_ONLY, "runuser", "sudo", "systemd-tmpfiles"}, stood_in
    assert {"systemd-sysusers", "systemd-tmpfiles", "runuser"} <= stood_in


def test_every_secret_the_config_names_was_made_and_is_loaded_by_the_unit(
    system: Install, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(system.etc / "config.yaml")
    names = {str(s.file) for s in secrets_of(config) if s.file is not None}
    assert names == {"smtp-password"}  # what the example config names today
    credentials = system.etc / "credentials"
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    for secret in secrets_of(config):
        assert secret.read().get_secret_value() == SECRET
    for name in names:
        assert mode(credentials / name) == 0o600
    # The installed unit loads each of them, and every file it loads exists (a missing one
    # stops the unit: 243/CREDENTIALS).
    unit = (system.root / "etc" / "systemd" / "system" / "npsp-monitor.service").read_text()
    loaded = dict(
        line.removeprefix("LoadCredential=").split(":", 1)
        for line in unit.splitlines()
        if line.startswith("LoadCredential=")
    )
    assert names <= set(loaded), f"secrets without a LoadCredential= line: {names - set(loaded)}"
    for name, path in loaded.items():
        assert rewrite(path, system.root) == str(credentials / name)
        assert (credentials / name).is_file(), f"LoadCredential={name}: no file"


def test_the_guide_fails_if_it_stops_copying_the_registry(tmp_path: Path) -> None:
    text = GUIDE.read_text(encoding="utf-8")
    copy = re.compile(r"^install [^\n]*config/registry\.example\.yaml [^\n]*\n", re.M)
    assert copy.search(text), "the guide no longer copies config/registry.example.yaml"
    broken = follow(tmp_path, "run", copy.sub("", text))
    assert broken.done.returncode != 0
    tried = broken.root / "etc" / "npsp-monitor" / "registry.example.yaml"
    assert f"include[0]: cannot read {tried}: No such file or directory" in broken.done.stderr


@pytest.mark.parametrize("index", [0, 1])
def test_the_config_snippets_of_the_guide_are_valid(
    system: Install, index: int, capsys: pytest.CaptureFixture[str]
) -> None:
    snippets = [b for b in blocks(GUIDE.read_text(encoding="utf-8")) if b.marker == "merge"]
    assert len(snippets) == 2  # option A (the listener's TLS), option B (a reverse proxy)
    snippet = yaml.safe_load(rewrite(snippets[index].text, system.root))
    installed = yaml.safe_load((system.etc / "config.yaml").read_text(encoding="utf-8"))
    merged = system.etc / f"config-snippet-{index}.yaml"  # beside it: the include still works
    merged.write_text(yaml.safe_dump(deep_merge(installed, snippet), allow_unicode=True))
    assert main(["check-config", "-c", str(merged)]) == 0, capsys.readouterr().err
    config = load_config(merged)
    assert config.alerting.web_url == snippet["alerting"]["web_url"]
    if index == 0:
        assert config.http.tls_cert == system.etc / "tls" / "server.crt"
    else:
        assert [str(n) for n in config.http.trusted_proxies] == ["127.0.0.1/32", "::1/128"]


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        out[key] = deep_merge(old, value) if isinstance(old, dict) else value
    return out


@pytest.mark.skipif(shutil.which("nginx", path="/usr/sbin:/usr/bin") is None, reason="no nginx")
def test_the_nginx_example_is_valid(system: Install, tmp_path: Path) -> None:
    (block,) = [b for b in blocks(GUIDE.read_text(encoding="utf-8")) if b.marker == "nginx"]
    site = tmp_path / "npsp-monitor.conf"
    site.write_text(rewrite(block.text, system.root), encoding="utf-8")
    conf = tmp_path / "nginx.conf"
    temp = "\n".join(
        f"    {kind}_temp_path {tmp_path}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf.write_text(
        textwrap.dedent(f"""\
        pid {tmp_path}/nginx.pid;
        error_log {tmp_path}/error.log;
        events {{}}
        http {{
            access_log off;
        {temp}
            include {site};
        }}
        """),
        encoding="utf-8",
    )
    nginx = shutil.which("nginx", path="/usr/sbin:/usr/bin")
    assert nginx is not None
    done = subprocess.run(
        [
            nginx,
            "-t",
            "-q",
            "-e",
            str(tmp_path / "error.log"),
            "-p",
            str(tmp_path),
            "-c",
            str(conf),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_the_user_level_install_needs_no_root(tmp_path: Path) -> None:
    user = follow(tmp_path, "run-user")
    assert user.done.returncode == 0, user.done.stderr
    assert "config.yaml: OK — 54 agencies" in user.done.stdout
    assert user.calls == [], f"the user-level install called root-only commands: {user.calls}"
    written = [f for _, _, files in os.walk(user.root) for f in files]
    assert written == [], f"the user-level install wrote outside $HOME: {written}"
    home = user.home
    config_file = home / ".config" / "npsp-monitor" / "config.yaml"
    config = load_config(config_file)
    assert config.state_db == home / ".local" / "state" / "npsp-monitor" / "state.db"
    # The user unit points at what the guide installed.
    unit = (home / ".config" / "systemd" / "user" / "npsp-monitor.service").read_text()
    unit = unit.replace("%h", str(home))
    (exec_start,) = re.findall(r"^ExecStart=(\S+) run -c (\S+)$", unit, flags=re.M)
    assert Path(exec_start[0]).exists() and Path(exec_start[1]) == config_file
    (credentials,) = re.findall(r"^Environment=CREDENTIALS_DIRECTORY=(\S+)$", unit, flags=re.M)
    assert mode(Path(credentials)) == 0o700
    for secret in secrets_of(config):
        assert secret.file is not None
        assert (Path(credentials) / secret.file).read_text().strip() == SECRET
        assert mode(Path(credentials) / secret.file) == 0o600


def test_an_include_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    main_file = tmp_path / "npsp.yaml"
    main_file.write_text("include: [registry.yaml, folder.yaml]\n", encoding="utf-8")
    (tmp_path / "folder.yaml").mkdir()
    with pytest.raises(ConfigError) as caught:
        load_config(main_file)
    assert [str(issue) for issue in caught.value.issues] == [
        f"{main_file}:1: include[0]: cannot read {tmp_path / 'registry.yaml'}: "
        "No such file or directory",
        f"{main_file}:1: include[1]: {tmp_path / 'folder.yaml'}: is a directory, not a file",
    ]


def test_the_stand_ins_refuse_a_command_that_would_touch_the_real_system(
    tmp_path: Path,
) -> None:
    assert rewrite("install -m 0644 a /etc/b", tmp_path) == f"install -m 0644 a {tmp_path}/etc/b"
    with pytest.raises(AssertionError, match="system path"):
        rewrite("cp a /root/b", tmp_path)
