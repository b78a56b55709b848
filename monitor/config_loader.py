"""Load the configuration in a child process and get the validated :class:`Config` back.

Why a child: parsing and validating hold the GIL (pydantic's validation is one long call into
Rust), so a reload in a thread stalled the event loop for its whole duration (a rejected merge
bomb: ``/healthz`` stalled 22 s); and the parse's peak stayed in Python's allocator for good
(the daemon's RSS at 10,000 checks). The child runs :func:`monitor.config.load_config` under
``RLIMIT_AS``/``RLIMIT_CPU`` and a wall-clock timeout, so no file can take the host down, and
sends back the Config pickled in slices of agencies that the parent unpickles between turns of
its event loop.

    config = await load_config_isolated(path)   # in the daemon (start-up, SIGHUP)
    config = load_config_isolated_sync(path)    # before the event loop exists

Both return a Config or raise :class:`ConfigError` — nothing else, whatever the file holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import pickle
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .config import Config, ConfigError, ConfigIssue, load_config

__all__ = [
    "LOAD_TIMEOUT",
    "MEMORY_LIMIT",
    "LoaderFailed",
    "load_config_isolated",
    "load_config_isolated_sync",
]

LOAD_TIMEOUT = 60.0  # seconds of wall-clock time for the child (a 10,000-system load: ~1.5 s)
MEMORY_LIMIT = 1 << 30  # RLIMIT_AS of the child; a 10,000-system load fits in 256 MiB
_CPU_SECONDS = 120  # RLIMIT_CPU: a backstop should the wall-clock timeout be missed
_SLICE = 50  # agencies per pickled slice (150 systems): each unpickles in ~10 ms
_STDERR_TAIL = 2000


def _command(path: Path, memory_limit: int) -> list[str]:
    return [sys.executable, "-m", "monitor.config_loader", str(memory_limit), os.fspath(path)]


def _environment() -> dict[str, str]:
    """The parent's environment, with this package importable even from a source checkout."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


async def load_config_isolated(
    path: Path, *, time_limit: float = LOAD_TIMEOUT, memory_limit: int = MEMORY_LIMIT
) -> Config:
    """:func:`load_config` in a child process, without blocking the event loop."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *_command(path, memory_limit),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_environment(),
        )
    except OSError as exc:
        raise _whole_file(path, f"cannot start the config loader: {exc.strerror or exc}") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), time_limit)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise _whole_file(path, f"loading took longer than {time_limit:g}s: refused") from None
    finally:
        if proc.returncode is None:  # cancelled: do not leave the child behind
            proc.kill()
    payload = _payload(path, out, err, proc.returncode)
    # Unpickling creates ~50,000 models at 10,000 systems (0.6 s in all): in slices, with the
    # collector paused, as each of its passes over a new slice re-walks the daemon's heap.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        header = _unpickle(payload[1])
        agencies: list[Any] = []
        for piece in payload[2]:
            agencies.extend(_unpickle(piece))
            await asyncio.sleep(0)  # let probes and /healthz run between slices
    finally:
        if was_enabled:
            gc.enable()
    return _assemble(header, agencies)


def load_config_isolated_sync(
    path: Path, *, time_limit: float = LOAD_TIMEOUT, memory_limit: int = MEMORY_LIMIT
) -> Config:
    """:func:`load_config_isolated` for callers without an event loop (start-up)."""
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and module
            _command(path, memory_limit),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=time_limit,
            env=_environment(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise _whole_file(path, f"loading took longer than {time_limit:g}s: refused") from None
    except OSError as exc:
        raise _whole_file(path, f"cannot start the config loader: {exc.strerror or exc}") from None
    payload = _payload(path, done.stdout, done.stderr, done.returncode)
    agencies = [a for piece in payload[2] for a in _unpickle(piece)]
    return _assemble(_unpickle(payload[1]), agencies)


def _unpickle(data: bytes) -> Any:
    # Only ever the answer of our own child (same interpreter and code), never outside data.
    return pickle.loads(data)  # noqa: S301


def _assemble(header: Config, agencies: list[Any]) -> Config:
    return header.model_copy(update={"agencies": agencies})


def _payload(path: Path, out: bytes, err: bytes, returncode: int | None) -> tuple[Any, ...]:
    """The child's answer; its ConfigError raised here, or one saying how it died."""
    if returncode == 0:
        try:
            payload = _unpickle(out)
        except Exception:  # noqa: BLE001 - a truncated answer is a failed load, nothing more
            payload = None
        if isinstance(payload, tuple) and payload and payload[0] == "ok":
            return payload
        if isinstance(payload, tuple) and payload and payload[0] == "error":
            raise ConfigError(payload[1], payload[2], payload[3])
    raise _whole_file(path, f"the config loader failed ({_describe_exit(returncode)}){_tail(err)}")


def _describe_exit(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def _tail(err: bytes) -> str:
    lines = err.decode("utf-8", "replace").strip().splitlines()
    return f": {lines[-1][-_STDERR_TAIL:]}" if lines else ""


class LoaderFailed(ConfigError):
    """The child process could not say whether the file is valid (it could not start, died,
    or ran out of time or memory): not necessarily the file's fault. At start-up the daemon
    then loads in its own process (bounded all the same) rather than exit with "invalid
    config", which systemd would not restart; a reload keeps the running config."""


def _whole_file(path: Path, message: str) -> ConfigError:
    return LoaderFailed([ConfigIssue(str(path), 0, "", message)])


# ---------------------------------------------------------------------------- the child


def _slices(items: list[Any]) -> Iterator[bytes]:
    for start in range(0, len(items), _SLICE):
        yield pickle.dumps(items[start : start + _SLICE], pickle.HIGHEST_PROTOCOL)


def _child(memory_limit: int, path: Path) -> int:
    for limit, value in ((resource.RLIMIT_AS, memory_limit), (resource.RLIMIT_CPU, _CPU_SECONDS)):
        # The unit's SystemCallFilter (~@resources) refuses setrlimit with EPERM: there the
        # service's own limits and the parent's wall-clock timeout bound the child.
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(limit, (value, value))
    try:
        config = load_config(path)
    except ConfigError as exc:
        answer: tuple[Any, ...] = ("error", exc.issues, exc.total, exc.complete)
    else:
        header = config.model_copy(update={"agencies": []})
        answer = (
            "ok",
            pickle.dumps(header, pickle.HIGHEST_PROTOCOL),
            list(_slices(list(config.agencies))),
        )
    sys.stdout.buffer.write(pickle.dumps(answer, pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_child(int(sys.argv[1]), Path(sys.argv[2])))
