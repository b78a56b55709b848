"""The daemon's log, as the journal gets it: every line is one logfmt event that parses, with
its fields; no secret ever appears — not in failures of the channels that use them."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import pytest

from tests.peers import free_port

from .test_daemon import write_config

pytestmark = pytest.mark.timeout(60)

SMTP_PASSWORD = "smtp-S3cr3t-value-0042"
TWILIO_TOKEN = "twilio-T0ken-value-9917"
MQTT_PASSWORD = "mqtt-Pa55-value-5531"

# key=value pairs: a bare value, or a double-quoted one with \\ \" \n escapes.
PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_.]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)')


def parse(line: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(line):
        m = PAIR.match(line, pos)
        assert m is not None, f"not logfmt at {pos}: {line!r}"
        fields[m.group(1)] = m.group(2)
        pos = m.end()
        if pos < len(line):
            assert line[pos] == " ", f"junk at {pos}: {line!r}"
            pos += 1
    return fields


async def test_log_lines_are_structured_and_hold_no_secret(tmp_path: Path) -> None:
    (tmp_path / "twilio-token").write_text(TWILIO_TOKEN)
    dead = free_port()
    path = write_config(
        tmp_path / "npsp.yaml",
        {
            "listen": f"127.0.0.1:{free_port()}",
            "state_db": str(tmp_path / "state.db"),
            "defaults": {"interval": "300ms", "timeout": "200ms", "failure_threshold": 1},
            "alerting": {"group_wait": "100ms", "outbox": {"backoff_base": "100ms"}},
            "channels": {
                "email": {
                    "host": "127.0.0.1",
                    "port": dead,
                    "security": "starttls",
                    "username": "npsp",
                    "password": {"env": "NPSP_TEST_SMTP_PASSWORD"},
                    "from_addr": "giamsat@npsp.dvc.example",
                    "timeout": "1s",
                },
                "sms": {
                    "account_sid": "AC" + "1" * 32,
                    "auth_token": {"file": str(tmp_path / "twilio-token")},
                    "from_number": "+84900000001",
                    "api_base_url": f"http://127.0.0.1:{dead}",
                },
                "mqtt": {
                    "host": "127.0.0.1",
                    "port": dead,
                    "username": "npsp",
                    "password": {"env": "NPSP_TEST_MQTT_PASSWORD"},
                    "reconnect_max": "500ms",
                },
            },
            "agencies": [
                {
                    "id": "bo-a",
                    "kind": "ministry",
                    "name_vi": "Bộ A",
                    "name_en": "Ministry A",
                    "code": "BA",
                    "contacts": [
                        {
                            "name": "KT",
                            "role": "technical-admin",
                            "email": "kt@bo-a.dvc.example",
                            "phone": "+84900000002",
                            "channels": ["email", "sms"],
                        }
                    ],
                    "systems": [
                        {
                            "id": "s",
                            "kind": "secure-server",
                            "name": "S",
                            "checks": [
                                {"id": "t", "kind": "tcp", "host": "127.0.0.1", "port": dead}
                            ],
                        }
                    ],
                }
            ],
        },
    )
    env = {
        "NPSP_TEST_SMTP_PASSWORD": SMTP_PASSWORD,
        "NPSP_TEST_MQTT_PASSWORD": MQTT_PASSWORD,
        "PATH": "/usr/bin:/bin",
    }
    daemon = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "run", "-c", str(path), "--log-level", "debug",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    await asyncio.sleep(5)  # the system goes down; e-mail, SMS and MQTT all fail and retry
    if daemon.returncode is not None:
        raise AssertionError((await daemon.communicate())[0].decode())
    daemon.send_signal(signal.SIGTERM)
    out, _ = await asyncio.wait_for(daemon.communicate(), 40)
    assert daemon.returncode == 0
    text = out.decode()
    lines = [line for line in text.splitlines() if line]
    events = [parse(line) for line in lines]
    assert all({"ts", "level", "logger", "msg"} <= set(e) for e in events)
    changes = [e for e in events if e["msg"] == '"state change"']
    assert changes and changes[0]["agency"] == "bo-a" and changes[0]["new"] == "down"
    failures = [e for e in events if e["msg"] == '"notification not sent"']
    assert {e["channel"] for e in failures} >= {"email", "sms"}
    assert all("notification" in e and "reason" in e for e in failures)
    assert any("mqtt" in line for line in lines)  # the broker is unreachable, and says so
    for secret in (SMTP_PASSWORD, TWILIO_TOKEN, MQTT_PASSWORD):
        assert secret not in text
    assert "Traceback" not in text


async def test_control_characters_from_outside_never_reach_the_log_raw(tmp_path: Path) -> None:
    """Issue 10.6: an unauthenticated request path with ESC and CR, and a probed server's
    Location header with C1 controls and bytes 0x80-0xFF, wrote terminal sequences and a
    forged-looking event into the journal. Every control character is escaped now."""

    async def hostile(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 302 Found\r\nLocation: ftp://x\xc2\x9b\x9b\xff.example/\r\n"
            b"Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(hostile, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    listen = free_port()
    path = write_config(
        tmp_path / "npsp.yaml",
        {
            "listen": f"127.0.0.1:{listen}",
            "state_db": str(tmp_path / "state.db"),
            "defaults": {"interval": "300ms", "timeout": "200ms", "failure_threshold": 1},
            "agencies": [
                {
                    "id": "bo-a",
                    "kind": "ministry",
                    "name_vi": "Bộ A",
                    "name_en": "Ministry A",
                    "code": "BA",
                    "systems": [
                        {
                            "id": "s",
                            "kind": "one-stop",
                            "name": "S",
                            "checks": [
                                {
                                    "id": "h",
                                    "kind": "http",
                                    "url": f"http://127.0.0.1:{port}/",
                                }
                            ],
                        }
                    ],
                }
            ],
        },
    )
    daemon = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "run", "-c", str(path), "--log-level", "debug",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        await asyncio.sleep(2.5)  # the system goes down with the hostile reason
        for _ in range(200):  # a loaded machine may take longer to start listening
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", listen)
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("the daemon never listened")
        writer.write(
            b"GET /api/v1/systems/x%1b%5b2J%0dts=2026-01-01T00:00:00Z%20level=info%20msg=ok/y"
            b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer wrong-token\r\n"
            b"Connection: close\r\n\r\n"
        )
        await writer.drain()
        await reader.read()
        writer.close()
        await asyncio.sleep(0.5)
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(daemon.communicate(), 40)
        server.close()
    text = out.decode("utf-8", "replace")
    changes = [line for line in text.splitlines() if "state change" in line]
    assert changes and "HTTP 302 to" in changes[0], changes
    assert "\\x9b" in changes[0]  # escaped, so the reader still sees what the server sent
    # The failed login's path is logged as sent on the wire: percent-encoded, so inert.
    assert any("x%1b%5b2J%0dts=" in line for line in text.splitlines()), text[-2000:]
    for raw in ("\x1b", "\r", "\x9b"):
        assert raw not in text, f"{raw!r} reached the log raw"
    for line in text.splitlines():
        parse(line)  # every line is still one logfmt event


def test_the_formatter_escapes_every_control_character() -> None:
    import logging

    from monitor.logs import LogfmtFormatter

    record = logging.LogRecord("x", logging.INFO, "", 0, "a\x1b[2J\rb", None, None)
    record.path = "/p\x9b\x00\x7f\u2028q\ttab"
    line = LogfmtFormatter().format(record)
    assert not any(c in line for c in "\x1b\r\x9b\x00\x7f\u2028\t\n")
    fields = parse(line)
    assert fields["msg"] == '"a\\x1b[2J\\rb"'
    assert fields["path"] == '"/p\\x9b\\x00\\x7f\\u2028q\\ttab"'
