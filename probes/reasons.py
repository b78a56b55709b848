"""Why a probe passed or failed, as a code with parameters, and its words in English and
Vietnamese.

A probe builds a :class:`~npsp_common.types.Why` with :func:`why` and makes its result with
:func:`fail`, :func:`passed` or :func:`warn`: the result carries the code (``why``) and its
English rendering (``reason``), made from the same template, so the two never disagree. The
pages and the messages render the code again in the reader's language
(``monitor.reasons.say``).

:data:`CATALOGUE` holds every code a probe emits, each with an English and a Vietnamese
template (``str.format`` syntax, the same placeholders in both). A placeholder's format spec
says how its value is written in each language:

* ``{x}`` as it is; ``{x:n}`` an integer;
* ``{x:dur}`` a duration in seconds: ``5s``, ``1m30s`` in English (as in the config),
  ``5 giây``, ``1 phút 30 giây`` in Vietnamese;
* ``{x:secs}`` a measured time in seconds: ``1.5s`` / ``1,5 giây``;
* ``{x:date}`` a Unix time as a day (UTC): ``2026-12-02`` / ``02/12/2026``;
* ``{x:days}`` a number of days: ``1 day``, ``3 days`` / ``3 ngày``;
* ``{x:why}`` a nested reason; ``{x:whys}`` a tuple of them, joined by ``; ``;
* ``{x:time}`` a Unix time as a time of day in Vietnam: ``08:05 14/12/2026``.
* ``{x:wh}`` a number of working hours: ``26.5 working hours`` / ``26,5 giờ làm việc``.

A leaf module: it imports only :mod:`npsp_common.types`.
"""

from __future__ import annotations

import datetime as dt
import math
import string
import time
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from npsp_common.types import ProbeResult, Why, format_duration

__all__ = [
    "CATALOGUE",
    "Problem",
    "ReasonError",
    "duration_words",
    "english",
    "fail",
    "passed",
    "render",
    "warn",
    "why",
]

Templates = Mapping[str, tuple[str, str]]  # code -> (English, Vietnamese)

# fmt: off
CATALOGUE: dict[str, tuple[str, str]] = {
    # --- what an operating-system error was (nested in connect / handshake reasons)
    "text": ("{text}", "{text}"),  # free text with no code (shown as it is)
    "os.refused": ("refused", "bị từ chối"),
    "os.reset": ("reset by peer", "bị phía bên kia cắt ngang"),
    "os.host_unreachable": ("host unreachable", "không tới được máy chủ"),
    "os.network_unreachable": ("network unreachable", "không tới được mạng"),
    "os.timed_out": ("timed out", "hết thời gian chờ"),
    "os.closed": ("connection closed by peer", "phía bên kia đóng kết nối"),
    "os.resolve": (
        "cannot resolve host ({detail})", "không phân giải được tên máy chủ ({detail})"
    ),
    "os.no_such_name": (
        "cannot resolve host (name unknown)",
        "không phân giải được tên máy chủ (tên không tồn tại)",
    ),
    "os.resolve_later": (
        "cannot resolve host (temporary failure)",
        "không phân giải được tên máy chủ (lỗi tạm thời)",
    ),
    "os.other": ("{detail}", "lỗi hệ thống: {detail}"),
    # --- connecting
    "connect": ("connect: {error:why}", "không kết nối được: {error:why}"),
    "tcp.connected": ("connected", "kết nối được"),
    "timeout": ("timeout after {timeout:dur}", "quá thời gian chờ {timeout:dur}"),
    "timeout.phase": (
        "timeout after {timeout:dur} ({phase:why})",
        "quá thời gian chờ {timeout:dur} ({phase:why})",
    ),
    "phase.connecting": ("connecting", "đang kết nối"),
    "phase.handshake": ("TLS handshake", "đang bắt tay TLS"),
    "phase.headers": ("waiting for response headers", "đang chờ phần đầu của phản hồi"),
    "phase.body": ("reading body", "đang đọc nội dung phản hồi"),
    "probe.internal": ("internal probe error: {error}", "lỗi nội bộ của phép kiểm tra: {error}"),
    # --- targets the address policy refuses (announced targets, redirects)
    "policy.address": (
        "address {address} not allowed ({category:why}): announced targets and redirects may"
        " not point inside the gateway's networks",
        "không được phép kết nối tới địa chỉ {address} ({category:why}): địa chỉ được thông báo"
        " và địa chỉ chuyển hướng không được trỏ vào mạng nội bộ của cổng kết nối",
    ),
    "net.unspecified": ("unspecified", "địa chỉ không xác định"),
    "net.loopback": ("loopback", "địa chỉ loopback"),
    "net.link_local": ("link-local", "địa chỉ link-local"),
    "net.multicast": ("multicast", "địa chỉ multicast"),
    "net.cgnat": ("carrier-grade NAT", "địa chỉ NAT của nhà mạng"),
    "net.private": ("private", "địa chỉ mạng riêng"),
    "net.reserved": ("reserved", "địa chỉ dành riêng"),
    "net.own": ("the gateway's own address", "địa chỉ của chính cổng kết nối"),
    # --- TLS
    "tls.files": (
        "TLS: cannot load the tls files: {detail}",
        "TLS: không nạp được các tệp tls: {detail}",
    ),
    "tls.handshake_os": (
        "TLS: handshake failed: {error:why}", "TLS: bắt tay thất bại: {error:why}"
    ),
    "tls.verify": (
        "TLS: certificate verify failed: {detail}",
        "TLS: không xác minh được chứng thư số: {detail}",
    ),
    "tls.verify_known": ("TLS: {what:why} ({detail})", "TLS: {what:why} (OpenSSL: {detail})"),
    "cert.not_yet_valid": ("certificate not yet valid", "chứng thư số chưa có hiệu lực"),
    "cert.expired": ("certificate expired", "chứng thư số đã hết hạn"),
    "cert.self_signed": ("self-signed certificate", "chứng thư số tự ký"),
    "cert.unknown_issuer": ("unknown issuer", "không rõ tổ chức cấp chứng thư số"),
    "cert.name_mismatch": ("host name mismatch", "tên máy chủ không khớp với chứng thư số"),
    "tls.closed_in_handshake": (
        "TLS: handshake failed: connection closed by peer",
        "TLS: bắt tay thất bại: phía bên kia đóng kết nối",
    ),
    "tls.protocol_too_old": (
        "TLS: protocol version too old (server and client share no TLS version)",
        "TLS: phiên bản giao thức quá cũ (máy chủ và máy khách không có phiên bản TLS chung)",
    ),
    "tls.not_tls": (
        "TLS: handshake failed: peer does not speak TLS ({detail})",
        "TLS: bắt tay thất bại: phía bên kia không dùng TLS ({detail})",
    ),
    "tls.client_cert_required": (
        "TLS: server requires a client certificate", "TLS: máy chủ yêu cầu chứng thư số máy khách"
    ),
    "tls.client_cert_bad": (
        "TLS: server rejected the client certificate (bad certificate)",
        "TLS: máy chủ từ chối chứng thư số máy khách (chứng thư số không hợp lệ)",
    ),
    "tls.client_cert_unknown_ca": (
        "TLS: server rejected the client certificate (unknown CA)",
        "TLS: máy chủ từ chối chứng thư số máy khách (không rõ tổ chức cấp)",
    ),
    "tls.client_cert_expired": (
        "TLS: server rejected the client certificate (expired)",
        "TLS: máy chủ từ chối chứng thư số máy khách (đã hết hạn)",
    ),
    "tls.access_denied": (
        "TLS: server denied access (alert access denied)",
        "TLS: máy chủ từ chối truy cập (access denied)",
    ),
    "tls.handshake_refused": (
        "TLS: handshake failed: server refused (alert handshake failure: no shared cipher,"
        " or a client certificate required)",
        "TLS: bắt tay thất bại: máy chủ từ chối (không có bộ mã hóa chung,"
        " hoặc cần chứng thư số máy khách)",
    ),
    "tls.handshake": ("TLS: handshake failed: {detail}", "TLS: bắt tay thất bại: {detail}"),
    "tls.not_valid_before": (
        "TLS: certificate not valid before {day:date}",
        "chứng thư số chưa có hiệu lực trước ngày {day:date}",
    ),
    "tls.expired": (
        "TLS: certificate expired {day:date}", "chứng thư số hết hạn ngày {day:date}"
    ),
    "tls.chain_date": (
        "{reason:why} (a certificate in the chain; the leaf is valid)",
        "{reason:why} (một chứng thư số trong chuỗi; chứng thư số của máy chủ vẫn hợp lệ)",
    ),
    "tls.closed_after_handshake": (
        "TLS: server closed the connection right after the handshake",
        "TLS: máy chủ đóng kết nối ngay sau khi bắt tay",
    ),
    "tls.no_certificate": (
        "TLS: server sent no certificate", "TLS: máy chủ không gửi chứng thư số"
    ),
    "tls.fingerprint": (
        "TLS: certificate fingerprint {actual}… differs from expected {expected}…",
        "TLS: dấu vân tay chứng thư số {actual}… khác với giá trị đã khai báo {expected}…",
    ),
    "tls.expires_soon": (
        "TLS: certificate expires in {days:days} ({day:date})",
        "chứng thư số sẽ hết hạn sau {days:days} (ngày {day:date})",
    ),
    "tls.ok": (
        "{version} ok, certificate valid until {day:date}",
        "{version} tốt, chứng thư số còn hiệu lực đến ngày {day:date}",
    ),
    # --- HTTP
    "http.ok": ("HTTP {status:n}", "HTTP {status:n}"),
    "http.status": (
        "HTTP {status:n} (expected {expected})", "HTTP {status:n} (cần {expected})"
    ),
    "http.status_redirect": (
        "HTTP {status:n} to {location} (expected {expected})",
        "HTTP {status:n} chuyển hướng tới {location} (cần {expected})",
    ),
    "http.slow": (
        "slow: {elapsed:secs} > limit {limit:dur}", "chậm: {elapsed:secs} > giới hạn {limit:dur}"
    ),
    "http.headers_too_large": (
        "response headers larger than {size}", "phần đầu của phản hồi lớn hơn {size}"
    ),
    "http.body_too_large": (
        "response body larger than {size} limit", "nội dung phản hồi vượt giới hạn {size}"
    ),
    "http.speaks_tls": (
        "malformed HTTP response: the server speaks TLS (use https://)",
        "phản hồi HTTP sai định dạng: máy chủ dùng TLS (hãy dùng https://)",
    ),
    "http.not_http": (
        "malformed HTTP response: does not start with HTTP/",
        "phản hồi HTTP sai định dạng: không bắt đầu bằng HTTP/",
    ),
    "http.malformed": (
        "malformed HTTP response: {detail}", "phản hồi HTTP sai định dạng: {detail}"
    ),
    "http.lost": (
        "connection lost before response: {detail}", "mất kết nối trước khi có phản hồi: {detail}"
    ),
    "http.error_before_response": (
        "connection {error:why} before response",
        "kết nối thất bại trước khi có phản hồi: {error:why}",
    ),
    "http.closed_in_headers": (
        "connection closed in the middle of the response headers",
        "kết nối bị đóng giữa chừng phần đầu của phản hồi",
    ),
    "http.closed_before_response": (
        "connection closed before response", "kết nối bị đóng trước khi có phản hồi"
    ),
    "http.closed_in_body": (
        "connection closed before the end of the body (after {got:n} bytes)",
        "kết nối bị đóng trước khi đọc hết nội dung (sau {got:n} byte)",
    ),
    "http.too_many_redirects": (
        "too many redirects (>{limit:n})", "chuyển hướng quá nhiều lần (>{limit:n})"
    ),
    "http.redirect_loop": ("redirect loop", "chuyển hướng vòng lặp"),
    "http.redirect_loop_to": (
        "redirect loop: back to {url}", "chuyển hướng vòng lặp: quay lại {url}"
    ),
    "http.bad_redirect": (
        "bad redirect: unusable Location", "chuyển hướng sai: không dùng được địa chỉ Location"
    ),
    "http.bad_redirect_detail": ("bad redirect: {detail}", "chuyển hướng sai: {detail}"),
    # --- response bodies
    "body.regex": ("body does not match /{pattern}/", "nội dung không khớp mẫu /{pattern}/"),
    "body.not_json": ("body is not JSON", "nội dung không phải JSON"),
    "json.missing": ("JSON {path} is missing", "JSON thiếu trường {path}"),
    "json.present": (
        "JSON {path} exists (expected absent)", "JSON có trường {path} (cần không có)"
    ),
    "json.not": ("JSON {path} is not {expected}", "JSON {path} khác {expected}"),
    "json.differs": (
        "JSON {path} is {value} (expected {expected})", "JSON {path} là {value} (cần {expected})"
    ),
    "json.not_timestamp": (
        "JSON {path} is not a timestamp", "JSON {path} không phải một thời điểm"
    ),
    "json.not_timestamp_value": (
        "JSON {path} is not a timestamp: {value}", "JSON {path} không phải một thời điểm: {value}"
    ),
    "json.old": (
        "JSON {path} is {age:dur} old (limit {limit:dur})",
        "JSON {path} đã cũ {age:dur} (giới hạn {limit:dur})",
    ),
    # comparisons of probes/jsonquery.py (the api check): the path, what was seen, the need
    "json.query_failed": ("{path} could not be evaluated", "không tính được {path}"),
    "json.compare_eq": (
        "{path} = {value} (expected {expected})", "{path} = {value} (cần {expected})"
    ),
    "json.compare": (
        "{path} = {value} (expected {op} {expected})", "{path} = {value} (cần {op} {expected})"
    ),
    "json.compare_hidden": (
        "{path} is not {op} {expected}", "{path} không thỏa {op} {expected}"
    ),
    "json.incomparable": (
        "{path} = {value} cannot be compared with {expected}",
        "{path} = {value} không so sánh được với {expected}",
    ),
    "json.incomparable_hidden": (
        "{path} cannot be compared with {expected}", "{path} không so sánh được với {expected}"
    ),
    "json.no_match": (
        "{path} = {value} does not match /{pattern}/",
        "{path} = {value} không khớp mẫu /{pattern}/",
    ),
    "json.no_match_hidden": (
        "{path} does not match /{pattern}/", "{path} không khớp mẫu /{pattern}/"
    ),
    # --- api transactions (probes/api.py): each failure names its step
    "api.ok": ("{count:n} steps ok ({times})", "{count:n} bước đều đạt ({times})"),
    "api.step": ("step {n:n} ({name}): {what:why}", "bước {n:n} ({name}): {what:why}"),
    "api.step_timed": (
        "step {n:n} ({name}, {ms:n} ms): {what:why}", "bước {n:n} ({name}, {ms:n} ms): {what:why}"
    ),
    "api.secret": ("cannot read {field}: {detail}", "không đọc được {field}: {detail}"),
    "api.token_missing": (
        "the token answer has no usable access_token",
        "phản hồi cấp mã truy cập không có access_token dùng được",
    ),
    "api.token_refused": (
        "the token endpoint refused: HTTP {status:n} {error}",
        "máy chủ cấp mã truy cập từ chối: HTTP {status:n} {error}",
    ),
    "api.extract_missing": (
        "nothing to extract into {var}: {path} selects nothing",
        "không lấy được {var}: {path} không có giá trị",
    ),
    "api.unusable_value": (
        "the value of {var} cannot go in {where}",
        "giá trị của {var} không dùng được trong {where}",
    ),
    # --- data freshness (judged by the daemon, in the agency's working hours)
    "data.stale": (
        "JSON {path}: data {age:wh} old (limit {limit:wh}), last new {at:time}",
        "JSON {path}: dữ liệu cũ {age:wh} (giới hạn {limit:wh}), mới nhất lúc {at:time}",
    ),
    "data.stale_push": (
        "no push for {age:wh} (limit {limit:wh}), the last at {at:time}",
        "không nhận dữ liệu đẩy trong {age:wh} (giới hạn {limit:wh}), lần cuối lúc {at:time}",
    ),
    "data.stale_since_start": (
        "no push for {age:wh} since the monitor started at {at:time} (limit {limit:wh})",
        "không nhận dữ liệu đẩy trong {age:wh} kể từ khi giám sát khởi động lúc {at:time}"
        " (giới hạn {limit:wh})",
    ),
    # --- DNS
    "dns.no_server": (
        "DNS: no name server to ask ({detail})", "DNS: không có máy chủ tên miền để hỏi ({detail})"
    ),
    "dns.timeout": ("DNS: timeout after {timeout:dur}", "DNS: quá thời gian chờ {timeout:dur}"),
    "dns.nxdomain": ("DNS: NXDOMAIN", "DNS: tên miền không tồn tại (NXDOMAIN)"),
    "dns.no_record": ("DNS: no {rdtype} record", "DNS: không có bản ghi {rdtype}"),
    "dns.server_failure": ("DNS: server failure", "DNS: máy chủ tên miền bị lỗi"),
    "dns.server_failure_from": (
        "DNS: server failure ({answers})", "DNS: máy chủ tên miền bị lỗi ({answers})"
    ),
    "dns.error": ("DNS: {detail}", "DNS: lỗi {detail}"),
    "dns.mismatch": (
        "DNS: got {got}, expected {expected}", "DNS: nhận được {got}, cần {expected}"
    ),
    "dns.nothing": (
        "DNS: got nothing, expected {expected}", "DNS: không nhận được địa chỉ nào, cần {expected}"
    ),
    "dns.ok": ("DNS: {rdtype} {got}", "DNS: {rdtype} {got}"),
    # --- heartbeats
    "heartbeat.token": (
        "heartbeat token cannot be used: {detail}", "không dùng được mã heartbeat: {detail}"
    ),
    "heartbeat.shared": (
        "one heartbeat check id and token serve {systems}: give each system its own token",
        "một mã kiểm tra và mã heartbeat dùng chung cho {systems}: mỗi hệ thống cần mã riêng",
    ),
    "heartbeat.none_before_restart": (
        "no heartbeat received yet (none before the restart either;"
        " period {period:dur}, grace {grace:dur})",
        "chưa nhận được heartbeat (trước khi khởi động lại cũng không có;"
        " chu kỳ {period:dur}, cho phép trễ {grace:dur})",
    ),
    "heartbeat.waiting": (
        "no heartbeat received yet (waiting up to {limit:dur})",
        "chưa nhận được heartbeat (chờ tối đa {limit:dur})",
    ),
    "heartbeat.none": (
        "no heartbeat received yet (none in {waited:dur}; period {period:dur}, grace {grace:dur})",
        "chưa nhận được heartbeat (không có trong {waited:dur}; chu kỳ {period:dur},"
        " cho phép trễ {grace:dur})",
    ),
    "heartbeat.ok": ("heartbeat {age:dur} ago", "heartbeat cách đây {age:dur}"),
    "heartbeat.late": (
        "no heartbeat for {age:dur} (period {period:dur}, grace {grace:dur})",
        "không có heartbeat trong {age:dur} (chu kỳ {period:dur}, cho phép trễ {grace:dur})",
    ),
}
# fmt: on


class ReasonError(Exception):
    """A reason that cannot be rendered: unknown code, missing or ill-typed parameter."""


def why(code: str, **params: Any) -> Why:
    """The reason ``code`` with ``params`` (a code of :data:`CATALOGUE`)."""
    return Why(code, params)


# ----- rendering -------------------------------------------------------------------------------

_HANOI = ZoneInfo("Asia/Ho_Chi_Minh")  # times of day are read in Vietnam
_MAX_DEPTH = 6  # nested reasons (a stored one is read from JSON: no unbounded recursion)
_VI_UNITS = (("ngày", 86400), ("giờ", 3600), ("phút", 60), ("giây", 1))
_EN_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def duration_words(seconds: float, lang: str, *, precise: bool = False) -> str:
    """A duration as words: ``32 phút`` / ``32 min``, ``2 giờ 5 phút`` / ``2 h 5 min``.

    By default the largest unit and, from an hour up, the next one (what "since when" needs);
    ``precise`` writes every unit (``1 phút 30 giây``). Under a second: ``250 ms``.
    """
    if not math.isfinite(seconds):
        raise ReasonError("not a duration")
    seconds = max(0.0, float(seconds))
    if 0 < seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if precise and seconds < 60 and seconds != round(seconds):
        if lang == "vi":
            return f"{seconds:g}".replace(".", ",") + " giây"
        return f"{seconds:g} s"
    units = _VI_UNITS if lang == "vi" else _EN_UNITS
    whole = round(seconds) if precise else int(seconds)
    amounts: list[tuple[int, str]] = []
    for name, size in units:
        if whole >= size:
            amounts.append((whole // size, name))
            whole %= size
        elif amounts:
            amounts.append((0, name))
    if not precise:
        amounts = amounts[: 2 if seconds >= 3600 else 1]
    parts = [f"{n} {name}" for n, name in amounts if n]
    return " ".join(parts) or ("0 giây" if lang == "vi" else "0 s")


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReasonError(f"not a number: {value!r}")
    return float(value)


Variant = Callable[[Why], str]
"""Which template renders a reason (for codes whose wording depends on which optional
parameters are given): the code of the template to use."""


def _same_code(w: Why) -> str:
    return w.code


class _Formatter(string.Formatter):
    def __init__(self, lang: str, templates: Templates, depth: int, variant: Variant) -> None:
        super().__init__()
        self.lang = lang
        self.templates = templates
        self.depth = depth
        self.variant = variant

    def nested(self, value: Why) -> str:
        return render(value, self.lang, self.templates, variant=self.variant, _depth=self.depth + 1)

    def get_value(self, key: int | str, args: Any, kwargs: Mapping[str, Any]) -> Any:
        if not isinstance(key, str) or key not in kwargs:
            raise ReasonError(f"missing parameter {key!r}")
        return kwargs[key]

    def format_field(self, value: Any, format_spec: str) -> str:
        vi = self.lang == "vi"
        if format_spec == "":
            if isinstance(value, Why | tuple | list | dict):
                raise ReasonError("a nested reason needs :why")
            return str(value)
        if format_spec == "why":
            if not isinstance(value, Why):
                raise ReasonError("not a reason")
            return self.nested(value)
        if format_spec == "whys":
            if not isinstance(value, tuple | list) or not all(isinstance(v, Why) for v in value):
                raise ReasonError("not a list of reasons")
            return "; ".join(self.nested(v) for v in value)
        number = _number(value)
        if format_spec == "n":
            return str(int(number))
        if format_spec == "dur":
            return duration_words(number, "vi", precise=True) if vi else format_duration(number)
        if format_spec == "secs":
            return f"{number:.1f}".replace(".", ",") + " giây" if vi else f"{number:.1f}s"
        if format_spec == "date":
            day = time.gmtime(number)
            return time.strftime("%d/%m/%Y" if vi else "%Y-%m-%d", day)
        if format_spec == "time":
            moment = dt.datetime.fromtimestamp(number, _HANOI)
            return moment.strftime("%H:%M %d/%m/%Y")
        if format_spec == "wh":  # working hours, to a tenth
            text = f"{round(number, 1):g}"
            return text.replace(".", ",") + " giờ làm việc" if vi else f"{text} working hours"
        if format_spec == "days":
            days = int(number)
            return f"{days} ngày" if vi else f"{days} day" + ("" if days == 1 else "s")
        raise ReasonError(f"unknown format {format_spec!r}")


def render(
    w: Why,
    lang: str,
    templates: Templates = CATALOGUE,
    *,
    variant: Variant = _same_code,
    _depth: int = 0,
) -> str:
    """``w`` in ``lang`` (``vi``, else English) from ``templates``; :class:`ReasonError` (or
    another ``ValueError``/``TypeError``...) when it cannot be rendered."""
    if _depth > _MAX_DEPTH:
        raise ReasonError("reasons nested too deep")
    if not isinstance(w, Why) or not isinstance(w.params, Mapping):
        raise ReasonError("not a reason")
    pair = templates.get(variant(w))
    if pair is None:
        raise ReasonError(f"unknown reason code {w.code!r}")
    template = pair[1] if lang == "vi" else pair[0]
    return _Formatter(lang, templates, _depth, variant).vformat(template, (), w.params)


def english(w: Why) -> str:
    """The English text of a probe's reason (``ProbeResult.reason``); never raises."""
    try:
        return render(w, "en")
    except Exception:  # noqa: BLE001 - a probe never raises; a test keeps the catalogue whole
        return w.code


# ----- results -----------------------------------------------------------------------------------


def fail(w: Why, duration: float, **fields: Any) -> ProbeResult:
    """A failed probe run, for the reason ``w``."""
    return ProbeResult(False, english(w), duration, why=w, **fields)


def passed(w: Why, duration: float, **fields: Any) -> ProbeResult:
    """A passed probe run; ``w`` says what was seen (``HTTP 200``, ``connected``)."""
    return ProbeResult(True, english(w), duration, why=w, **fields)


def warn(w: Why, duration: float, **fields: Any) -> ProbeResult:
    """A passed run with a warning condition (slow, certificate expiring soon): ``w`` is it."""
    return ProbeResult(True, english(w), duration, why=w, degraded=True, **fields)


class Problem:
    """A condition a response or a certificate did not meet, and what it makes the system:
    down (``down`` true: the check fails) or degraded (it passes with a warning)."""

    __slots__ = ("down", "why")

    def __init__(self, w: Why, *, down: bool = True) -> None:
        self.why = w
        self.down = down

    def __repr__(self) -> str:
        return f"Problem({self.why.code}, down={self.down})"


def worst(problems: list[Problem]) -> Problem | None:
    """The problem that decides: the first that makes the system down, else the first."""
    return next((p for p in problems if p.down), problems[0] if problems else None)
