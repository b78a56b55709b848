"""Several gateway hosts as real daemon subprocesses on one PostgreSQL database, for the cluster
tests and the cluster bench: each with its own vantage name, HTTP port and log, one config
otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import email
import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.peers import free_port


class Mailbox:
    """Accepts every message (``delay`` seconds each) and keeps who got what."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.received: list[tuple[str, str, str]] = []  # to, Message-ID, text
        self.subjects: dict[str, str] = {}  # Message-ID → subject (decoded)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        del server, session
        if self.delay:
            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.original_content or b"")
        mid = message.get("Message-ID", "")
        self.received.append((envelope.rcpt_tos[0], mid, _text(message)))
        self.subjects[mid] = str(make_header(decode_header(message.get("Subject", ""))))
        return "250 OK"

    def recipients(self) -> set[str]:
        return {to for to, _, _ in self.received}

    def repeats(self, skip: str = "") -> list[tuple[str, str]]:
        """(recipient, Message-ID) of each message naming exactly the systems an earlier one to
        that recipient named, under a new Message-ID: a digest queued again (the same
        Message-ID again is an in-flight duplicate, counted apart; an older digest retried after
        a newer one names fewer). ``skip``: a recipient left out (the operations team, whose
        digest is cut at 200 systems)."""
        seen: dict[str, list[frozenset[str]]] = {}
        ids: set[tuple[str, str]] = set()
        out = []
        for to, mid, text in self.received:
            if to == skip or (to, mid) in ids:
                continue
            ids.add((to, mid))
            named = frozenset(re.findall(r"\(([\w-]+/[\w-]+)\)", text))
            if named and named in seen.setdefault(to, []):
                out.append((to, mid))
            seen[to].append(named)
        return out


def _text(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return ""


@dataclass
class Host:
    """One gateway host: its daemon, when running."""

    vantage: str
    port: int
    config: Path
    log: Path
    process: asyncio.subprocess.Process | None = None
    env: dict[str, str] = field(default_factory=dict)
    address: str = "127.0.0.1"  # where its HTTP listener (/metrics) is reached
    prefix: list[str] = field(default_factory=list)  # e.g. ["ip", "netns", "exec", NAME]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self, timeout: float = 30.0) -> None:
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                *self.prefix,
                sys.executable,
                "-m",
                "monitor",
                "run",
                "-c",
                str(self.config),
                stdout=out,
                stderr=out,
                stdin=asyncio.subprocess.DEVNULL,
                env={**os.environ, **self.env},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                break
            if await self.metric("npsp_leader") is not None:
                return
            await asyncio.sleep(0.1)
        self.kill()
        raise AssertionError(f"{self.vantage} did not start:\n" + self.log.read_text()[-3000:])

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            os.kill(self.process.pid, signal.SIGKILL)

    async def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.kill()
            return await self.process.wait()

    async def wait(self) -> None:
        if self.process is not None:
            await self.process.wait()

    async def metrics(self) -> dict[str, float]:
        """``/metrics`` as name{labels} → value; empty when the daemon does not answer."""
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(
                    f"http://{self.address}:{self.port}/metrics",
                    timeout=aiohttp.ClientTimeout(total=5),
                ) as response,
            ):
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError, OSError):
            return {}
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    out[name] = float(value)
        return out

    async def metric(self, name: str) -> float | None:
        return (await self.metrics()).get(name)


def cluster_config(
    folder: Path,
    *,
    vantage: str,
    port: int,
    url: str,
    password_file: Path,
    agencies: list[dict[str, Any]],
    channels: dict[str, Any],
    operations: list[dict[str, Any]],
    cluster: dict[str, Any] | None = None,
    defaults: dict[str, Any] | None = None,
    alerting: dict[str, Any] | None = None,
    canaries: list[dict[str, Any]] | None = None,
    listen_host: str = "127.0.0.1",
) -> Path:
    data: dict[str, Any] = {
        "vantage": vantage,
        "listen": f"{listen_host}:{port}",
        "state_db": url,
        "state_db_password_file": str(password_file),
        "cluster": cluster
        or {
            "failover_after": "3s",
            "beat_interval": "250ms",
            "vote_stale_after": "1500ms",
            "path_notice_after": "2s",
        },
        "defaults": defaults
        or {
            "interval": "300ms",
            "timeout": "200ms",
            "failure_threshold": 3,
            "recheck_delay": "50ms",
        },
        "alerting": {"operations": operations, "group_wait": "300ms", **(alerting or {})},
        "channels": channels,
        "agencies": agencies,
    }
    if canaries is not None:
        data["uplink"] = {"checks": canaries}
    path = folder / f"{vantage}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def hosts(folder: Path, names: list[str], **config: Any) -> list[Host]:
    """One :class:`Host` per vantage name, their configs written (not started)."""
    out = []
    for name in names:
        port = free_port()
        path = cluster_config(folder, vantage=name, port=port, **config)
        out.append(Host(name, port, path, folder / f"{name}.log"))
    return out


async def leaders(group: list[Host]) -> list[Host]:
    """The hosts whose ``npsp_leader`` is 1 now."""
    values = await asyncio.gather(*(h.metric("npsp_leader") for h in group))
    return [h for h, v in zip(group, values, strict=True) if v == 1.0]


async def until(condition: Any, timeout: float, what: str, every: float = 0.1) -> Any:
    """Await ``condition()`` (a coroutine function) until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)
