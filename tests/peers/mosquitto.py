"""A real Mosquitto broker for the tests: started on a free loopback port, stopped, restarted.

``Mosquitto(directory)`` writes a config file into ``directory`` and runs ``/usr/sbin/mosquitto``
on it. Optional: password authentication (``users={"name": "password"}``, through
``mosquitto_passwd``), an ACL file (``acl_file=``, e.g. the shipped ``config/mosquitto/acl``) and a
TLS listener (``tls=(ca_file, cert_file, key_file)``). The broker's log goes to
``directory / "mosquitto.log"`` (shown when it fails to start).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.peers import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def available() -> bool:
    return Path(MOSQUITTO).exists() and Path(MOSQUITTO_PASSWD).exists()


class Mosquitto:
    """One broker instance; ``start``/``stop``/``restart`` keep the same port."""

    def __init__(
        self,
        directory: Path,
        *,
        users: Mapping[str, str] | None = None,
        tls: tuple[Path, Path, Path] | None = None,
        acl_file: Path | None = None,
    ) -> None:
        self.directory = directory
        self.port = free_port()
        self.log_file = directory / "mosquitto.log"
        self.config_file = directory / "mosquitto.conf"
        self._process: asyncio.subprocess.Process | None = None
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # as root, Mosquitto drops to 'mosquitto' unless told
        if users:
            password_file = directory / "passwords"
            for index, (user, password) in enumerate(users.items()):
                subprocess.run(
                    [
                        MOSQUITTO_PASSWD,
                        "-b",
                        *(["-c"] if index == 0 else []),
                        str(password_file),
                        user,
                        password,
                    ],
                    check=True,
                    capture_output=True,
                )
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines.append("allow_anonymous true")
        if acl_file is not None:
            lines.append(f"acl_file {acl_file}")
        if tls is not None:
            ca_file, cert_file, key_file = tls
            lines += [f"cafile {ca_file}", f"certfile {cert_file}", f"keyfile {key_file}"]
        self.config_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self, timeout: float = 10.0) -> None:
        """Start the broker and return once it accepts TCP connections."""
        assert self._process is None, "already running"
        with self.log_file.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                MOSQUITTO,
                "-c",
                str(self.config_file),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._process.returncode is not None:
                await self._reap()
                raise RuntimeError(f"mosquitto exited at start:\n{self.log_text()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if loop.time() > deadline:
                    await self.stop()
                    raise RuntimeError(
                        f"mosquitto not listening within {timeout}s:\n{self.log_text()}"
                    ) from None
                await asyncio.sleep(0.02)
                continue
            writer.close()
            await writer.wait_closed()
            return

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL) and wait until it is gone."""
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(timeout):
                    await process.wait()
            except TimeoutError:
                process.kill()
        await self._reap()

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open, nothing is answered."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    async def kill(self) -> None:
        """SIGKILL (works on a frozen broker too): the kernel resets its connections."""
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
        await self._reap()

    async def _reap(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                await process.wait()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def log_text(self) -> str:
        try:
            return self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
