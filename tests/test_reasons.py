"""Reasons as codes: the catalogue is whole in both languages, real probe failures read right in
Vietnamese and English, and warning conditions pass with a warning (degraded) by default."""

from __future__ import annotations

import ast
import datetime as dt
import json
import string
import time
from pathlib import Path
from typing import Any

import pytest

from monitor.reasons import SYSTEM, TEMPLATES, duration, say
from npsp_common.types import ProbeResult, Why
from probes import http, tcp, tls
from probes.base import ProbeEnv
from probes.reasons import CATALOGUE, render, why
from tests.probe_servers import (
    Certs,
    Server,
    delayed,
    free_port,
    http_server,
    make_certs,
    response,
)

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def vi_day(epoch: float) -> str:
    return time.strftime("%d/%m/%Y", time.gmtime(epoch))


def en_day(epoch: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


# ----- the catalogue -------------------------------------------------------------------------


def emitted_codes() -> set[str]:
    """Every literal code passed to ``why(...)`` or ``Why(...)`` in the probes and the
    scheduler: what a probe result can carry."""
    files = [*sorted((ROOT / "probes").glob("*.py")), ROOT / "monitor" / "scheduler.py"]
    codes: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            first = node.args[0]
            if name in ("why", "Why") and isinstance(first, ast.Constant):
                codes.add(str(first.value))
    codes.update(_codes_chosen_by_name())
    return codes


def _codes_chosen_by_name() -> set[str]:
    """``what = "connect" if ... else "tls.handshake_os"`` then ``why(what, ...)``; the
    address policy's category codes."""
    found: set[str] = set()
    for path in (ROOT / "probes").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.IfExp):
                found.update(
                    str(side.value)
                    for side in (node.body, node.orelse)
                    if isinstance(side, ast.Constant)
                    and side.value in ("connect", "tls.handshake_os")
                )
            if isinstance(node, ast.Assign) and any(
                getattr(t, "id", "") == "_CATEGORY_CODES" for t in node.targets
            ):
                assert isinstance(node.value, ast.Dict)
                found.update(str(v.value) for v in node.value.values if isinstance(v, ast.Constant))
    return found


def fields(template: str) -> set[tuple[str, str]]:
    return {
        (name, spec or "")
        for _, name, spec, _ in string.Formatter().parse(template)
        if name is not None
    }


def test_every_emitted_code_has_both_templates_with_the_same_placeholders() -> None:
    codes = emitted_codes()
    assert len(codes) > 60  # the scan found the probes' codes, not nothing
    missing = sorted(c for c in codes if c not in CATALOGUE)
    assert not missing, f"codes without templates: {missing}"
    for code, (en, vi) in TEMPLATES.items():
        assert en.strip() and vi.strip(), code
        assert fields(en) == fields(vi), f"{code}: {fields(en)} != {fields(vi)}"


def test_every_probe_result_is_made_from_a_code() -> None:
    """A probe builds its result with fail / passed / warn (probes/reasons.py), never by hand:
    a result without a code could not be read in Vietnamese."""
    for path in [*(ROOT / "probes").glob("*.py"), ROOT / "monitor" / "scheduler.py"]:
        if path.name == "reasons.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                assert name != "ProbeResult", f"{path.name}:{node.lineno} builds a ProbeResult"


def test_every_system_code_the_engine_emits_is_there() -> None:
    for code in (
        "system.ok",
        "system.checks",
        "system.degraded",
        "check",
        "system.parent_down",
        "system.flapping",
        "system.settled",
        "system.maintenance",
        "gateway.cut",
        "gateway.restored",
        "text",
    ):
        assert code in SYSTEM, code


def test_system_reasons_in_both_languages() -> None:
    tcp_check = Why("check", {"id": "tcp", "why": why("connect", error=why("os.refused"))})
    http_check = Why("check", {"id": "http", "why": why("http.status", status=503, expected="2xx")})
    failing = Why("system.checks", {"checks": (tcp_check, http_check)})
    assert say(failing, "en", "?") == (
        "check tcp: connect: refused; check http: HTTP 503 (expected 2xx)"
    )
    assert say(failing, "vi", "?") == (
        "kiểm tra tcp: không kết nối được: bị từ chối; kiểm tra http: HTTP 503 (cần 2xx)"
    )
    flapping = Why("system.flapping", {"count": 4, "window": 600.0, "last": Why("system.ok", {})})
    assert say(flapping, "en", "?") == "4 state changes within 10m; last: all checks pass"
    assert say(flapping, "vi", "?") == (
        "4 lần đổi trạng thái trong 10 phút; lần gần nhất: mọi kiểm tra đều đạt"
    )
    # Stored as JSON, read back: the same words.
    assert say(Why.from_json(json.loads(json.dumps(flapping.to_json()))), "vi", "?") == say(
        flapping, "vi", "?"
    )
    until = dt.datetime(2026, 12, 14, 17, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    window = Why("system.maintenance", {"until": until.timestamp(), "announcement": "mw-7"})
    assert (
        say(window, "vi", "?")
        == "đang bảo trì theo thông báo đến 17:00 14/12/2026 (thông báo mw-7)"
    )
    assert say(Why("system.maintenance", {"until": None, "announcement": None}), "en", "?") == (
        "in an announced maintenance window"
    )
    assert say(Why("text", {"text": "cổng X"}), "vi", "?") == "cổng X"


@pytest.mark.parametrize(
    "broken",
    [
        None,
        Why("no.such.code", {}),
        Why("connect", {}),  # a parameter missing
        Why("connect", {"error": "refused"}),  # text where a reason belongs
        Why("tls.expired", {"day": "yesterday"}),  # text where a date belongs
        Why("http.status", {"status": True, "expected": "2xx"}),
        Why("system.checks", {"checks": ("x",)}),
        Why("timeout", {"timeout": float("nan")}),
    ],
)
def test_what_cannot_be_rendered_falls_back_to_the_stored_text(broken: Why | None) -> None:
    assert say(broken, "vi", "the stored text") == "the stored text"


def test_a_reason_nested_without_end_falls_back() -> None:
    deep = why("os.refused")
    for _ in range(50):
        deep = Why("check", {"id": "x", "why": deep})
    assert say(deep, "vi", "fallback") == "fallback"


def test_durations_in_words() -> None:
    assert duration(32 * 60 + 40, "vi") == "32 phút"
    assert duration(32 * 60 + 40, "en") == "32 min"
    assert duration(2 * 3600 + 5 * 60 + 9, "vi") == "2 giờ 5 phút"
    assert duration(3 * 86400 + 3600, "en") == "3 d 1 h"
    assert duration(45, "vi") == "45 giây"
    assert say(why("timeout", timeout=90.0), "vi", "?") == "quá thời gian chờ 1 phút 30 giây"
    assert say(why("timeout", timeout=90.0), "en", "?") == "timeout after 1m30s"


# ----- real probe failures, read in both languages ---------------------------------------------


def both(result: ProbeResult) -> tuple[str, str]:
    assert result.why is not None, result
    # The English text a result carries is the English rendering of its code.
    assert render(result.why, "en") == result.reason
    return say(result.why, "vi", "?"), say(result.why, "en", "?")


async def test_refused_port() -> None:
    spec = tcp.Spec.model_validate(
        {"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": free_port()}
    )
    result = await tcp.build(spec, ProbeEnv())(2.0)
    assert not result.ok
    assert both(result) == ("không kết nối được: bị từ chối", "connect: refused")


async def test_http_503() -> None:
    server, _ = http_server({"/": response(503)})
    async with server:
        spec = http.Spec.model_validate(
            {"id": "http", "kind": "http", "url": f"http://127.0.0.1:{server.port}/"}
        )
        result = await http.build(spec, ProbeEnv())(2.0)
    assert not result.ok and result.status_code == 503
    assert both(result) == ("HTTP 503 (cần 2xx)", "HTTP 503 (expected 2xx)")


async def test_expired_certificate(certs: Certs) -> None:
    async with Server(_wait, tls=certs.server_context(certs.expired)) as server:
        result = await tls.build(tls_spec(server.port, ca_file=str(certs.ca_file)), ProbeEnv())(2.0)
    assert not result.ok and not result.degraded
    expired = time.time() - 2 * 86400
    assert both(result) == (
        f"chứng thư số hết hạn ngày {vi_day(expired)}",
        f"TLS: certificate expired {en_day(expired)}",
    )


async def _wait(reader: Any, writer: Any) -> None:
    await reader.read()


def tls_spec(port: int, **options: Any) -> tls.Spec:
    return tls.Spec.model_validate(
        {"id": "tls", "kind": "tls", "host": "127.0.0.1", "port": port, "tls": options}
    )


# ----- warning conditions -----------------------------------------------------------------------


async def test_a_slow_answer_is_a_warning_unless_configured_down() -> None:
    server, _ = http_server({"/": delayed(0.3, response(200))})
    async with server:
        url = f"http://127.0.0.1:{server.port}/"
        slow = await probe_http(url, max_latency="100ms")
        down = await probe_http(url, max_latency="100ms", max_latency_severity="down")
    assert slow.ok and slow.degraded
    vi, en = both(slow)
    assert en.startswith("slow: 0.3s > limit 100ms"), en
    assert vi.startswith("chậm: 0,3 giây > giới hạn 100 ms"), vi
    assert not down.ok and not down.degraded and down.reason == slow.reason


async def test_a_certificate_expiring_soon_is_a_warning(certs: Certs) -> None:
    ctx = certs.server_context(certs.expiring)
    async with Server(_wait, tls=ctx) as server:
        soon = await tls.build(
            tls_spec(server.port, ca_file=str(certs.ca_file), min_days_valid=7), ProbeEnv()
        )(2.0)
    assert soon.ok and soon.degraded
    day = time.time() + 3.5 * 86400
    assert both(soon) == (
        f"chứng thư số sẽ hết hạn sau 3 ngày (ngày {vi_day(day)})",
        f"TLS: certificate expires in 3 days ({en_day(day)})",
    )


async def test_https_with_a_certificate_expiring_soon_still_judges_the_answer(
    certs: Certs,
) -> None:
    ctx = certs.server_context(certs.expiring)
    server, _ = http_server({"/ok": response(200), "/err": response(503)}, tls=ctx)
    tls_opts = {"ca_file": str(certs.ca_file), "min_days_valid": 7}
    async with server:
        fine = await probe_http(f"https://127.0.0.1:{server.port}/ok", tls=tls_opts)
        broken = await probe_http(f"https://127.0.0.1:{server.port}/err", tls=tls_opts)
        down = await probe_http(
            f"https://127.0.0.1:{server.port}/ok",
            tls={**tls_opts, "min_days_valid_severity": "down"},
        )
    assert fine.ok and fine.degraded and fine.reason.startswith("TLS: certificate expires in 3")
    # A condition that makes the system down wins over the warning.
    assert not broken.ok and broken.reason == "HTTP 503 (expected 2xx)"
    assert not down.ok and down.reason == fine.reason


async def test_json_conditions_have_a_severity() -> None:
    body = json.dumps({"queue": 900, "state": "ok"})
    server, _ = http_server({"/": response(200, body)})
    soft = {"path": "$.queue", "equals": 0, "severity": "degraded"}
    hard = {"path": "$.state", "equals": "running"}
    async with server:
        url = f"http://127.0.0.1:{server.port}/"
        warned = await probe_http(url, json=[soft])
        failed = await probe_http(url, json=[soft, hard])
        passed = await probe_http(url, json=[{"path": "$.state", "equals": "ok"}])
    assert warned.ok and warned.degraded
    assert both(warned) == ("JSON $.queue là 900 (cần 0)", "JSON $.queue is 900 (expected 0)")
    assert not failed.ok and failed.reason == 'JSON $.state is "ok" (expected "running")'
    assert passed.ok and not passed.degraded


async def probe_http(url: str, **fields: Any) -> ProbeResult:
    spec = http.Spec.model_validate({"id": "http", "kind": "http", "url": url, **fields})
    return await http.build(spec, ProbeEnv())(2.0)
