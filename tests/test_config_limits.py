"""Hostile config files (issue 9, items 7 and 8): each is refused within limits, exit 2 with
``file:line: path: message`` lines, never a traceback, and a running daemon survives it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config
from monitor.config_loader import (
    LoaderFailed,
    load_config_isolated,
    load_config_isolated_sync,
)

ROOT = Path(__file__).resolve().parent.parent
EXE = [sys.executable, "-m", "monitor"]

AGENCY = """\
agencies:
  - id: a
    kind: ministry
    name_vi: A
    name_en: A
    code: A
    systems:
      - id: s
        kind: other
        name: S
        checks:
          - {{id: c, kind: {kind}}}
"""


def merge_bomb() -> str:
    """Nine levels, each merging nine copies of the one before (a few hundred bytes)."""
    lines = ["l0: &l0 {a: [x, x, x, x, x, x, x, x, x]}"]
    for i in range(1, 10):
        refs = ", ".join([f"*l{i - 1}"] * 9)
        lines.append(f"l{i}: &l{i} {{<<: [{refs}], k: [{refs}]}}")
    return "\n".join(lines) + "\nagencies: [*l9]\n"


def http_check(regex: str) -> str:
    check = f'{{id: c, kind: http, url: "http://a.example/", body_regex: "{regex}"}}'
    return AGENCY.replace("{{id: c, kind: {kind}}}", check)


def write_hostile(tmp_path: Path, name: str) -> Path:
    """The files of the issue, by name; returns the config to give to ``-c``."""
    path = tmp_path / f"{name}.yaml"
    if name == "int-4300-digits":
        path.write_text("scheduler:\n  max_concurrency: " + "1" * 4300 + "\n")
    elif name == "flow-list-300-deep":
        path.write_text("agencies: " + "[" * 300 + "]" * 300 + "\n")
    elif name == "include-nul-byte":
        path.write_text('include: ["registry\\0.yaml"]\n')
    elif name == "flow-mapping-30000-deep":
        path.write_text("agencies: " + "{a: " * 30_000 + "1" + "}" * 30_000 + "\n")
    elif name == "merge-bomb":
        path.write_text(merge_bomb())
    elif name == "file-10-mib":
        with path.open("w") as out:
            out.write("agencies:\n")
            out.write("  # padding padding padding padding padding padding padding\n" * 180_000)
    elif name == "include-dev-zero":
        path.write_text("include: [/dev/zero]\n")
    elif name == "include-fifo":
        os.mkfifo(tmp_path / "fifo.yaml")
        path.write_text("include: [fifo.yaml]\n")
    elif name == "include-symlink-loop":
        os.symlink("loop-b.yaml", tmp_path / "loop-a.yaml")
        os.symlink("loop-a.yaml", tmp_path / "loop-b.yaml")
        path.write_text("include: [loop-a.yaml]\n")
    elif name == "body-regex-5-mb":
        path.write_text(http_check("x" * 5_000_000))
    elif name == "body-regex-backreference":
        path.write_text(http_check("(a)\\\\1"))
    else:
        raise AssertionError(name)
    return path


# name -> (line, dotted path, words of the message)
HOSTILE = {
    "int-4300-digits": (2, "scheduler.max_concurrency", "a number of 4,300 characters"),
    "flow-list-300-deep": (1, "agencies[0]", "nested more than 64 levels deep"),
    "include-nul-byte": (1, "include[0]", "NUL byte"),
    "flow-mapping-30000-deep": (1, "agencies.a.a", "nested more than 64 levels deep"),
    "merge-bomb": (0, "l", "more than 1,000,000 values"),
    "file-10-mib": (0, "", "larger than 8,388,608"),
    "include-dev-zero": (1, "include[0]", "not a regular file"),
    "include-fifo": (1, "include[0]", "not a regular file"),
    "include-symlink-loop": (1, "include[0]", "symbolic links"),
    "body-regex-5-mb": (12, "checks[0].body_regex", "at most 1000 characters"),
    "body-regex-backreference": (12, "checks[0].body_regex", "RE2 syntax"),
}


def cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EXE, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def assert_refused(done: subprocess.CompletedProcess[str], path: Path, name: str) -> None:
    line, dotted, words = HOSTILE[name]
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    first = done.stderr.splitlines()[0]
    prefix = f"{path}:{line}: " if line else f"{path}:"
    assert first.startswith(prefix), first[:300]
    assert dotted in first and words in first, first[:300]
    assert len(done.stderr) < 5000  # a few lines, not millions


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", list(HOSTILE))
def test_check_config_refuses_a_hostile_file_quickly(tmp_path: Path, name: str) -> None:
    path = write_hostile(tmp_path, name)
    started = time.monotonic()
    done = cli("check-config", "-c", str(path))
    assert_refused(done, path, name)
    assert time.monotonic() - started < 10


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", ["int-4300-digits", "flow-list-300-deep", "include-nul-byte"])
def test_run_exits_2_on_a_hostile_file(tmp_path: Path, name: str) -> None:
    path = write_hostile(tmp_path, name)
    assert_refused(cli("run", "-c", str(path)), path, name)


@pytest.mark.timeout(30)
def test_a_million_errors_are_cut_to_the_first_hundred(tmp_path: Path) -> None:
    path = tmp_path / "garbage.yaml"
    path.write_text("agencies: [" + ",".join(["x"] * 900_000) + "]\n")
    done = cli("check-config", "-c", str(path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 102, lines[-3:]
    assert (
        lines[0]
        == f"{path}:1: agencies[0]: Input should be a valid dictionary or instance of Agency"
    )
    assert "… and more" in lines[-2]
    assert lines[-1] == "at least 100 error(s) in the configuration"


def test_many_errors_of_a_small_file_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "dups.yaml"
    path.write_text("agencies: [" + ",".join(["{}"] * 300) + "]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert len(info.value.issues) == 101 and info.value.total > 300
    assert str(info.value.issues[-1]).endswith("more errors not shown")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a: !!python/object:os.system x\n", "unsupported tag"),
        ("? [a]\n: 1\n", "a key must be a plain value"),
        ("--- {}\n--- {}\n", "more than one YAML document"),
        ("a: &x [*x]\n", "refers to a value that contains it"),
        ("a: *nope\n", "has no anchor"),
        ("a: \x01\n", "control characters"),
        ("a: 1\na: 2\n", "duplicate key"),
        ("a: [1\n", "YAML syntax"),
        ("[1, 2]\n", "the file must hold a mapping"),
        (
            "agencies: 1:2:3:4:5:6:7:8:9:10:11:12:13:14:15:16:17:18:19:20:21:22:23:24:25:26\n",
            "a number of",
        ),
    ],
)
def test_odd_documents_raise_config_error_only(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert words in str(info.value)


def test_non_utf8_and_binary_files_raise_config_error(tmp_path: Path) -> None:
    for data in (b"\xff\xfe\x00a", os.urandom(4096), b"a: b\n" + b"\x00" * 10):
        path = tmp_path / "bin.yaml"
        path.write_bytes(data)
        with pytest.raises(ConfigError):
            load_config(path)


def test_merge_keys_follow_yaml(tmp_path: Path) -> None:
    """Explicit keys win over merged ones, earlier merged mappings over later ones."""
    path = tmp_path / "merge.yaml"
    path.write_text(
        "d: &d {interval: 60s, timeout: 5s}\n"
        "e: &e {timeout: 9s, recheck_delay: 2s}\n"
        "defaults: {<<: [*d, *e], interval: 30s}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [i.path for i in info.value.issues] == ["d", "e"]  # unknown keys, nothing else
    path.write_text("defaults: &d {interval: 60s, timeout: 5s}\nuplink: null\n")
    assert load_config(path).defaults.timeout == 5.0


# ----- the child-process loader -------------------------------------------------------------

GOOD = (ROOT / "config" / "npsp-monitor.example.yaml").read_text()


def good_config(tmp_path: Path) -> Path:
    registry = (ROOT / "config" / "registry.example.yaml").read_text()
    (tmp_path / "registry.example.yaml").write_text(registry.replace("[email, inbox]", "[inbox]"))
    text = GOOD.split("\nalerting:")[0] + "\n"
    path = tmp_path / "npsp.yaml"
    path.write_text(text.replace("/var/lib/npsp-monitor/state.db", str(tmp_path / "s.db")))
    return path


@pytest.mark.timeout(30)
def test_isolated_load_gives_the_same_config(tmp_path: Path) -> None:
    path = good_config(tmp_path)
    assert load_config_isolated_sync(path) == load_config(path)


@pytest.mark.timeout(30)
async def test_isolated_load_refuses_hostile_files_and_keeps_the_loop_running(
    tmp_path: Path,
) -> None:
    lags: list[float] = []

    async def tick() -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.005)
            lags.append(loop.time() - before - 0.005)

    ticker = asyncio.create_task(tick())
    try:
        for name in ("merge-bomb", "flow-mapping-30000-deep", "include-fifo"):
            with pytest.raises(ConfigError) as info:
                await load_config_isolated(write_hostile(tmp_path, name))
            assert HOSTILE[name][2] in str(info.value)
        config = await load_config_isolated(good_config(tmp_path))
        assert len(config.agencies) == 54
    finally:
        ticker.cancel()
    assert max(lags) < 0.1


@pytest.mark.timeout(30)
def test_isolated_load_is_bounded_in_time_and_memory(tmp_path: Path) -> None:
    path = good_config(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config_isolated_sync(path, time_limit=0.05)
    assert "longer than 0.05s" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_config_isolated_sync(path, memory_limit=16 << 20)  # RLIMIT_AS: no room at all
    message = str(info.value)
    assert "out of memory" in message or "the config loader failed" in message, message


def test_a_failed_loader_is_not_an_invalid_config(tmp_path: Path) -> None:
    """A child that ran out of time or memory says nothing about the file: at start-up the
    daemon must not exit 2 ("invalid config", never restarted by systemd) for it."""
    path = good_config(tmp_path)
    with pytest.raises(LoaderFailed):
        load_config_isolated_sync(path, time_limit=0.05)  # a slow, loaded host
    bad = tmp_path / "bad.yaml"
    bad.write_text("listen: nowhere\n")
    with pytest.raises(ConfigError) as info:
        load_config_isolated_sync(bad)
    assert not isinstance(info.value, LoaderFailed)  # this one is the file's fault


# ----- a running daemon survives every hostile file on SIGHUP --------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
        return body.decode()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.timeout(90)
def test_the_daemon_survives_hostile_files_on_sighup(tmp_path: Path) -> None:
    port = free_port()
    good = f"listen: 127.0.0.1:{port}\nstate_db: {tmp_path / 'state.db'}\n" + AGENCY.replace(
        "{{id: c, kind: {kind}}}", "{id: c, kind: tcp, host: 127.0.0.1, port: 9}"
    )
    config = tmp_path / "npsp.yaml"
    config.write_text(good)
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            [*EXE, "run", "-c", str(config)], cwd=ROOT, stdout=out, stderr=out
        )
    try:
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert daemon.poll() is None, log.read_text()[-3000:]
            try:
                fetch(base + "/healthz")
            except OSError:
                return False
            return True

        wait_for(up, 30, "the daemon's listener")
        names = [n for n in HOSTILE if n != "include-fifo"] + ["include-fifo"]
        for count, name in enumerate(names, start=1):
            config.write_text(write_hostile(tmp_path, name).read_text())
            daemon.send_signal(signal.SIGHUP)
            wait_for(
                lambda c=count: log.read_text().count("config reload rejected") >= c,  # type: ignore[misc]
                20,
                f"the rejection of {name}",
            )
            assert daemon.poll() is None, log.read_text()[-3000:]
            started = time.monotonic()
            fetch(base + "/healthz")
            assert time.monotonic() - started < 1
        assert "npsp_config_last_reload_successful 0" in fetch(base + "/metrics")
        assert "Traceback" not in log.read_text()
        assert log.stat().st_size < 1 << 20  # the merge bomb wrote 431 MB of log
    finally:
        daemon.terminate()
        daemon.wait(30)
