"""The daemon's own commands: ``run``, ``check-config``, ``probe``, ``notify-test`` and ``demo``.

``npsp-monitor run -c FILE``             run the daemon (until SIGTERM)
``npsp-monitor check-config -c FILE``    validate a config; exit 2 listing every error
``npsp-monitor probe -c FILE A/S``       run one system's checks now (exit 1 if one fails)
``npsp-monitor notify-test -c FILE …``   send one test message on a channel (exit 1 if not sent)
``npsp-monitor demo``                    the daemon against a simulated fleet on loopback
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from npsp_common.types import ProbeResult
from probes import PROBES, ProbeEnv

from ..app import Daemon, StartupError
from ..config import Config, check_config_file, load_config
from ..config_loader import LoaderFailed, load_config_isolated_sync
from ..logs import setup_logging
from ..registry import Registry
from .common import parse_seconds, print_json, print_table, with_config
from .errors import guarded

__all__ = ["add_daemon_commands", "add_trial_commands", "run_async"]

T = TypeVar("T")
LOG_LEVELS = ["debug", "info", "warning", "error"]


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when it is installed (1.3-2.5x less CPU per probe), else asyncio's loop."""
    try:
        import uvloop  # noqa: PLC0415
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(coro)
    runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    try:
        return runner.run(coro)
    finally:
        try:
            runner.close()
        except OSError as exc:
            # uvloop refuses to close a loop with a transport still saying goodbye (a TLS
            # close_notify to the mail server that the command's work no longer waits for):
            # EBUSY. The command is done; that must not turn its outcome into an error.
            if exc.errno != errno.EBUSY:
                raise


def cmd_check_config(args: argparse.Namespace) -> int:
    config, registry_file = check_config_file(args.config)
    registry = Registry.from_config(config)
    counts = (
        (len(config.agencies), "agency", "agencies"),
        (len(registry.systems), "system", "systems"),
        (len(registry.checks), "check", "checks"),
        (len(registry.canaries), "uplink canary", "uplink canaries"),
    )
    print(
        f"{args.config}: OK — "
        + ", ".join(f"{n} {one if n == 1 else many}" for n, one, many in counts)
    )
    if registry_file:
        print(
            "This is a registry file, checked on its own: check the daemon's config that"
            " includes it too (the channels its contacts ask for, systems of other files)."
        )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    # The daemon keeps nothing of the parse but its result (see config_loader).
    try:
        config = load_config_isolated_sync(args.config)
    except LoaderFailed as exc:
        print(f"npsp-monitor: {exc}; loading the config in this process", file=sys.stderr)
        config = load_config(args.config)
    setup_logging(args.log_level)
    run_async(Daemon(args.config, config).run())
    return 0


async def _probe_system(config: Config, ref: str) -> list[tuple[str, str, ProbeResult]]:
    registry = Registry.from_config(config)
    entry = registry.find_system(ref)
    if entry is None:
        known = ", ".join(list(registry.systems)[:5])
        raise LookupError(f"unknown system {ref!r} (give agency/system, e.g. {known})")
    env = ProbeEnv()

    async def one(check: Any) -> tuple[str, str, ProbeResult]:
        if check.kind == "heartbeat":
            # Passive: only the running daemon, which receives the heartbeats, can judge it.
            return (
                check.check_id,
                check.kind,
                ProbeResult(
                    True, "not probed here: heartbeats are judged by the running daemon", 0.0
                ),
            )
        probe = PROBES[check.kind].build(check.spec, env)
        return check.check_id, check.kind, await probe(check.timeout)

    return list(await asyncio.gather(*(one(c) for c in entry.checks)))


def cmd_probe(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    results = run_async(_probe_system(config, args.system))
    if args.json:
        print_json([_probe_json(check, kind, r) for check, kind, r in results], indent=1)
    else:
        rows = [("CHECK", "KIND", "RESULT", "TIME", "REASON")]
        rows += [
            (c, k, "ok" if r.ok else "FAIL", f"{r.duration * 1000:.1f}ms", r.reason)
            for c, k, r in results
        ]
        print_table(rows)
    return 0 if all(r.ok for _, _, r in results) else 1


def _probe_json(check: str, kind: str, r: ProbeResult) -> dict[str, Any]:
    return {
        "check": check,
        "kind": kind,
        "ok": r.ok,
        "reason": r.reason,
        "duration_seconds": round(r.duration, 6),
        "cert_not_after": r.cert_not_after,
        "status_code": r.status_code,
        "observed": dict(r.observed),
    }


async def _notify_test(config: Config, channel: str, to: str, language: str) -> str:
    from notifiers.base import Message, NotifyError  # noqa: PLC0415
    from notifiers.inbox import StoredInbox  # noqa: PLC0415

    from ..alerting.channels import Channels  # noqa: PLC0415

    # Only the channel under test is built: testing SMS must not need the mail server's
    # password (the inbox pushes through MQTT, so it needs the broker and nothing else).
    needed = "mqtt" if channel == "inbox" else channel
    only = config.channels.model_copy(
        update={name: None for name in ("sms", "email", "mqtt", "webhook") if name != needed}
    )
    try:
        # Its own MQTT client id, and no last will: sharing the daemon's would knock the
        # daemon off the broker (which would then announce it dead).
        channels = Channels.build(only, f"{config.vantage}-cli-{os.getpid()}")
    except ValueError as exc:
        raise StartupError(f"channels: {exc}") from None
    try:
        notifier = channels.notifiers.get(channel)  # type: ignore[call-overload]
        if notifier is None:
            raise LookupError(f"channel {channel} is not configured (channels.{channel})")
        if isinstance(notifier, StoredInbox):
            raise LookupError("the inbox pushes through MQTT: configure channels.mqtt to test it")
        await channels.start()
        if channels.publisher is not None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + config.channels.mqtt.timeout if config.channels.mqtt else 0
            while not channels.publisher.connected and loop.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        vi = language == "vi"
        message = Message(
            key=f"notify-test-{config.vantage}-{int(time.time())}",
            channel=channel,  # type: ignore[arg-type]
            to=to,
            subject="[NPSP] Thử kênh thông báo" if vi else "[NPSP] Notification channel test",
            text=(
                f"Tin thử từ npsp-monitor ({config.vantage}). Không cần xử lý."
                if vi
                else f"Test message from npsp-monitor ({config.vantage}). No action needed."
            ),
            language=language,
        )
        try:
            delivery = await notifier.send(message)
        except NotifyError as exc:
            kind = "permanent" if exc.permanent else "temporary, worth a retry"
            return f"FAILED ({kind}): {exc.reason}"
        return f"sent: {delivery.provider_id or '(no id)'}"
    finally:
        await channels.aclose()


def cmd_notify_test(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    outcome = run_async(_notify_test(config, args.channel, args.to, args.language))
    print(f"{args.channel} to {args.to}: {outcome}")
    return 0 if outcome.startswith("sent") else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo  # noqa: PLC0415 - the demo pulls in certificate generation

    setup_logging(args.log_level)
    if args.vantages > 1:
        from ..demo_cluster import run_demo_cluster  # noqa: PLC0415 - as above

        kill = None if args.kill_leader_after <= 0 else args.kill_leader_after
        run_async(run_demo_cluster(args.vantages, args.port or 9477, args.duration, kill))
        return 0
    run_async(run_demo(port=args.port, state_dir=args.state_dir, duration=args.duration))
    return 0


def add_daemon_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``run``, ``check-config`` and ``probe`` on ``sub``."""
    p = sub.add_parser("run", help="run the daemon")
    with_config(p)
    p.add_argument("--log-level", default="info", choices=LOG_LEVELS)
    p.set_defaults(func=guarded(cmd_run))

    p = sub.add_parser("check-config", help="validate a config; exit 2 listing every error")
    with_config(p)
    p.set_defaults(func=guarded(cmd_check_config))

    p = sub.add_parser("probe", help="run one system's checks now and print the results")
    with_config(p)
    p.add_argument("system", metavar="AGENCY/SYSTEM")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=guarded(cmd_probe))


def add_trial_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``notify-test`` and ``demo`` on ``sub``: trying a channel, trying the daemon."""
    p = sub.add_parser("notify-test", help="send one test message on a channel (check credentials)")
    with_config(p)
    p.add_argument("--channel", required=True, choices=["sms", "email", "inbox", "webhook"])
    p.add_argument(
        "--to",
        required=True,
        help="phone (E.164), e-mail address, portal account or webhook endpoint name",
    )
    p.add_argument("--language", default="vi", choices=["vi", "en"])
    p.set_defaults(func=guarded(cmd_notify_test))

    p = sub.add_parser("demo", help="the daemon against a simulated fleet on loopback")
    p.add_argument("--port", type=int, default=9477, help="HTTP port of the daemon (0 = any free)")
    p.add_argument("--state-dir", type=Path, default=None, help="keep the demo's state here")
    p.add_argument(
        "--duration", type=parse_seconds, default=None, help="stop after this many seconds"
    )
    p.add_argument(
        "--vantages",
        type=int,
        choices=range(1, 6),
        default=1,
        metavar="N",
        help="N gateway hosts (2-5) on a local PostgreSQL, ports PORT.. PORT+N-1",
    )
    p.add_argument(
        "--kill-leader-after",
        type=parse_seconds,
        default=90.0,
        help="with --vantages: kill the leader (SIGKILL) after this long; 0: never",
    )
    p.add_argument("--log-level", default="info", choices=LOG_LEVELS)
    p.set_defaults(func=guarded(cmd_demo))
