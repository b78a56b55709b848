"""The texts of the topic's notices (Vietnamese and English) and who hears them: an
announcement's confirmation (or, when it was recorded already in effect, the request to verify
it), the late-notice alert, the cancellation, and the unannounced-change alarm of
:mod:`.changewatch`."""

from __future__ import annotations

from notifiers.settings import site_base

from ...alerting.messages import local_time
from ...alerting.notices import Audience, Notice, everyone
from ...registry import Registry
from .model import CLOCK_SKEW, Announcement, Finding


def dependents(registry: Registry, key: str) -> list[str]:
    """Agencies (other than the owner) with a system that depends on system ``key``."""
    owner = key.partition("/")[0]
    return sorted({e.agency.id for e in registry.systems.values() if key in e.parents} - {owner})


def concerned(a: Announcement, registry: Registry) -> list[Audience]:
    """Who hears of a late notice, or is asked to verify a change in effect at once:
    operations, the agency's technical and high-level admins, and the technical admins of
    every agency whose systems depend on the server."""
    return [
        ("", "operations"),
        *everyone([a.agency], "technical-admins", "high-level-admins"),
        *everyone(dependents(registry, a.key), "technical-admins"),
    ]


def _names(a: Announcement, registry: Registry) -> tuple[str, str, str]:
    """The system's name and its agency's in Vietnamese and English (ids when unknown)."""
    entry = registry.systems.get(a.key)
    name = entry.system.name if entry else a.system
    vi_agency = entry.agency.name_vi if entry else a.agency
    en_agency = entry.agency.name_en if entry else a.agency
    return name, vi_agency, en_agency


def cancel_links(a: Announcement, status_page_url: str | None) -> tuple[str, str]:
    """Where ``a`` is withdrawn: the system's page (it lists the announcement) and the API
    call, on the site of the configured status page (relative paths when there is none)."""
    base = site_base(status_page_url)
    return (
        f"{base}/system/{a.agency}/{a.system}",
        f"POST {base}/api/v1/announcements/{a.id}/cancel",
    )


def late_notice(a: Announcement, registry: Registry, source: str) -> Notice:
    name, vi_agency, en_agency = _names(a, registry)
    when = local_time(a.effective_at)
    announced = local_time(a.announced_at)
    changes = a.changes.summary()
    return Notice(
        key=f"change-late/{a.agency}/{a.id}",
        subject={
            "vi": f"[NPSP] Thông báo thay đổi máy chủ bảo mật không đủ thời hạn: {name} "
            f"của {vi_agency}",
            "en": f"[NPSP] Late notice of a secure-server change: {name} of {en_agency}",
        },
        text={
            "vi": (
                f"{vi_agency} thông báo thay đổi thông tin {name} ({a.key}) lúc {announced}, "
                f"có hiệu lực lúc {when}: chỉ {a.working_days} ngày làm việc, "
                f"trong khi quy định yêu cầu ít nhất {a.required} ngày làm việc ({source}).\n"
                f"Thay đổi: {changes}\n"
                "Các đơn vị kết nối qua máy chủ này cần cập nhật cấu hình trước thời điểm hiệu lực."
            ),
            "en": (
                f"{en_agency} announced a change of {name} ({a.key}) at {announced}, "
                f"effective {when}: {a.working_days} working days' notice where the rule "
                f"requires at least {a.required} ({source}).\n"
                f"Changes: {changes}\n"
                "Agencies connecting through this server must update their configuration "
                "before it takes effect."
            ),
        },
        sms={
            "vi": f"NPSP: {a.key} thay doi luc {when}, bao truoc {a.working_days}/{a.required} "
            "ngay lam viec (tre han).",
            "en": f"NPSP: {a.key} changes at {when} with {a.working_days}/{a.required} "
            "working days' notice (late).",
        },
        thread_key=f"announcement/{a.agency}/{a.id}",
    )


def in_effect_notice(a: Announcement, registry: Registry, status_page_url: str | None) -> Notice:
    """The confirmation of a change whose values the monitor accepts the moment it is recorded
    (its effective time had passed): nobody had a chance to object first, so everyone
    concerned, dependents too, is asked to verify it with the agency — a backdated notice must
    not whitelist an intercepting certificate quietly."""
    page, call = cancel_links(a, status_page_url)
    name, vi_agency, en_agency = _names(a, registry)
    when, announced = local_time(a.effective_at), local_time(a.announced_at)
    recorded, changes = local_time(a.created_at), a.changes.summary()
    return Notice(
        key=f"change-in-effect/{a.agency}/{a.id}",
        subject={
            "vi": f"[NPSP] CẦN XÁC MINH: thay đổi {name} của {vi_agency} có hiệu lực ngay khi "
            "ghi nhận",
            "en": f"[NPSP] VERIFY: a change to {name} of {en_agency} took effect as it was "
            "recorded",
        },
        text={
            "vi": (
                f"Thông báo số {a.id} (ref {a.ref or '-'}) về thay đổi {name} ({a.key}) của "
                f"{vi_agency} được {a.author} ghi nhận lúc {recorded} qua {a.source}, sau thời "
                f"điểm hiệu lực {when} (ngày thông báo ghi trên đó: {announced}).\n"
                f"Thay đổi: {changes}\n"
                f"Báo trước {a.working_days} ngày làm việc tính từ ngày thông báo đó, "
                f"{'đủ' if a.compliant else 'KHÔNG đủ'} {a.required} ngày theo quy định.\n"
                "Hệ thống giám sát đã chấp nhận các giá trị mới này ngay, không có thời gian để "
                "phản đối trước. Hãy xác minh trực tiếp với đơn vị (qua điện thoại, không qua "
                "thông tin trong thông báo); nếu không đúng, hủy thông báo ngay (tại trang "
                f"{page}, hoặc {call} bằng tài khoản của đơn vị): cảnh báo thay đổi không được "
                "thông báo sẽ được gửi nếu giá trị đó vẫn đang được dùng."
            ),
            "en": (
                f"Announcement #{a.id} (ref {a.ref or '-'}) of a change to {name} ({a.key}) of "
                f"{en_agency} was recorded by {a.author} at {recorded} via {a.source}, after "
                f"its effective time {when} (the notice date it gives: {announced}).\n"
                f"Changes: {changes}\n"
                f"{a.working_days} working days' notice counted from that date, which "
                f"{'meets' if a.compliant else 'does NOT meet'} the {a.required} required.\n"
                "The monitor accepted these values at once, with no time to object beforehand. "
                "Verify it with the agency directly (by phone, not through details in the "
                f"announcement); if it is wrong, cancel it now ({page}, or {call} with the "
                "agency's account): the unannounced-change alarm follows if the value is still "
                "being served."
            ),
        },
        sms={
            "vi": f"NPSP: CAN XAC MINH thay doi {a.key} (so {a.id}) co hieu luc ngay khi ghi nhan "
            f"luc {recorded}.",
            "en": f"NPSP: VERIFY change {a.key} (#{a.id}), in effect as recorded at {recorded}.",
        },
        thread_key=f"announcement/{a.agency}/{a.id}",
    )


def cancellation(a: Announcement, registry: Registry) -> Notice:
    """Told to the same people as the confirmation: a withdrawn announcement (perhaps a
    legitimate renewal withdrawn by someone else) must not go unnoticed either."""
    name = _names(a, registry)[0]
    cancelled = local_time(a.cancelled_at if a.cancelled_at is not None else a.created_at)
    changes = a.changes.summary()
    return Notice(
        key=f"change-cancelled/{a.agency}/{a.id}",
        subject={
            "vi": f"[NPSP] Đã hủy thông báo thay đổi {name} ({a.key}), số {a.id}",
            "en": f"[NPSP] Cancelled: the announced change to {name} ({a.key}), #{a.id}",
        },
        text={
            "vi": (
                f"Thông báo thay đổi số {a.id} (ref {a.ref or '-'}) của {a.key} đã bị hủy lúc "
                f"{cancelled}.\nThay đổi đã thông báo: {changes}\n"
                "Các giá trị này không còn được chấp nhận; nếu máy chủ vẫn dùng chúng, hệ thống "
                "sẽ cảnh báo thay đổi chưa được thông báo. Ai đã hủy: xem nhật ký kiểm tra."
            ),
            "en": (
                f"Announcement #{a.id} (ref {a.ref or '-'}) of {a.key} was cancelled at "
                f"{cancelled}.\nChanges it announced: {changes}\n"
                "These values are no longer expected; a server still using them raises the "
                "unannounced-change alarm. Who cancelled it: see the audit log."
            ),
        },
        sms={
            "vi": f"NPSP: thong bao thay doi #{a.id} cua {a.key} da bi huy luc {cancelled}.",
            "en": f"NPSP: announcement #{a.id} of {a.key} was cancelled at {cancelled}.",
        },
    )


def confirmation(a: Announcement, registry: Registry, status_page_url: str | None) -> Notice:
    """Told to the agency's admins and operations for every accepted announcement: nobody can
    whitelist a new certificate, host or address in the agency's name without its knowing."""
    name, vi_agency, en_agency = _names(a, registry)
    when = local_time(a.effective_at)
    page, call = cancel_links(a, status_page_url)
    return Notice(
        key=f"change-confirm/{a.agency}/{a.id}",
        subject={
            "vi": f"[NPSP] Xác nhận thông báo thay đổi {name} của {vi_agency} (hiệu lực {when})",
            "en": f"[NPSP] Confirm: a change to {name} of {en_agency} was announced for {when}",
        },
        text=_confirmation_text(a, (name, vi_agency, en_agency), page, call),
        sms={
            "vi": f"NPSP: da nhan thong bao thay doi {a.key} hieu luc {when} (#{a.id}). "
            f"Khong phai quy vi? Huy tai {page}",
            "en": f"NPSP: a change of {a.key} was announced for {when} (#{a.id}). "
            f"Not you? Cancel at {page}",
        },
        thread_key=f"announcement/{a.agency}/{a.id}",
    )


def _recorded(a: Announcement) -> tuple[str, str]:
    """The confirmation's line on when the notice was recorded, in Vietnamese and English: after
    it took effect, or later than it was given; none when recorded as it was given."""
    announced = local_time(a.announced_at)
    recorded = local_time(a.created_at)
    if a.recorded_in_effect:
        return (
            f"Thông báo được ghi nhận lúc {recorded}, sau thời điểm hiệu lực: thay đổi được coi "
            "là đã có hiệu lực; không gửi cảnh báo báo trước không đủ thời hạn.\n",
            f"It was recorded at {recorded}, after it took effect: the change is taken as in "
            "effect; no late-notice alert is sent.\n",
        )
    if a.created_at - a.announced_at > CLOCK_SKEW:
        return (
            f"Thông báo (ngày {announced}) được ghi nhận lúc {recorded}.\n",
            f"The notice (given {announced}) was recorded at {recorded}.\n",
        )
    return "", ""


def _confirmation_text(
    a: Announcement, names: tuple[str, str, str], page: str, call: str
) -> dict[str, str]:
    name, vi_agency, en_agency = names
    when = local_time(a.effective_at)
    announced = local_time(a.announced_at)
    changes = a.changes.summary()
    ref = a.ref or "-"
    vi_notice = "đủ" if a.compliant else "KHÔNG đủ"
    en_notice = "meets" if a.compliant else "does NOT meet"
    vi_when, en_when = _recorded(a)
    return {
        "vi": (
            f"Một thay đổi {name} ({a.key}) của {vi_agency} đã được thông báo, "
            f"có hiệu lực lúc {when}.\n"
            f"Thay đổi: {changes}\n"
            f"Thông báo số {a.id} (ref {ref}), do {a.author} gửi qua {a.source} "
            f"lúc {announced}; báo trước {a.working_days} ngày làm việc, "
            f"{vi_notice} {a.required} ngày theo quy định.\n"
            f"{vi_when}"
            "Từ thời điểm hiệu lực, hệ thống giám sát chấp nhận các giá trị mới này "
            "(chứng chỉ, tên máy, địa chỉ) mà không cảnh báo.\n"
            "NẾU KHÔNG PHẢI ĐƠN VỊ CỦA QUÝ VỊ THÔNG BÁO, hãy hủy ngay (kể cả khi đã có "
            f"hiệu lực): tại trang {page}, hoặc {call} bằng tài khoản của đơn vị, "
            "hoặc gọi Tổ trực vận hành."
        ),
        "en": (
            f"A change to your secure server {name} ({a.key}) of {en_agency} was "
            f"announced for {when}.\n"
            f"Changes: {changes}\n"
            f"Announcement #{a.id} (ref {ref}), by {a.author} via {a.source} at "
            f"{announced}; {a.working_days} working days' notice, which {en_notice} the "
            f"{a.required} the rule requires.\n"
            f"{en_when}"
            "From then on the monitor accepts these values (certificate, host, addresses) "
            "without an alarm.\n"
            "IF THIS WAS NOT YOU, cancel it at once (also once in effect): on the page "
            f"{page}, or {call} with an account of your agency, or call operations."
        ),
    }


# ----- the unannounced-change watch (:mod:`.changewatch`)

_FIELD_NAMES = {
    "vi": {
        "fingerprint_sha256": "dấu vân tay chứng chỉ",
        "issuer": "đơn vị cấp chứng chỉ",
        "addresses": "địa chỉ IP",
    },
    "en": {
        "fingerprint_sha256": "certificate fingerprint",
        "issuer": "certificate issuer",
        "addresses": "IP addresses",
    },
}


def unannounced_notice(group: list[Finding], registry: Registry) -> Notice:
    """One notice for everything one probe saw change at once (a new certificate is a new
    fingerprint *and* often a new issuer: one message, not two)."""
    f = group[0]
    entry = registry.systems.get(f.system_key)
    name = entry.system.name if entry else f.system_key
    agency_vi = entry.agency.name_vi if entry else f.system_key
    agency_en = entry.agency.name_en if entry else f.system_key
    when = local_time(f.time)
    vi = ", ".join(_FIELD_NAMES["vi"][x.field] for x in group)
    en = ", ".join(_FIELD_NAMES["en"][x.field] for x in group)
    before_vi = "".join(
        f"\n{_FIELD_NAMES['vi'][x.field]}: trước {x.old}; nay {x.new}" for x in group
    )
    before_en = "".join(
        f"\n{_FIELD_NAMES['en'][x.field]}: before {x.old}; now {x.new}" for x in group
    )
    # The key of a single-field finding is what it always was (a restart re-queues the
    # same key, a no-op); several fields at once get all their names in it.
    fields = "+".join(x.field for x in group)
    news = "+".join(x.new for x in group)
    return Notice(
        key=f"unannounced/{f.check_key}/{fields}/{news}@{int(f.time)}",
        subject={
            "vi": f"[NPSP] Thay đổi chưa được thông báo: {vi} của {name} ({agency_vi})",
            "en": f"[NPSP] Unannounced change: {en} of {name} ({agency_en})",
        },
        text={
            "vi": (
                f"Lúc {when}, kiểm tra {f.check_key} thấy {vi} thay đổi mà không có thông "
                f"báo thay đổi nào tương ứng.{before_vi}\n"
                "Đây có thể là lỗi cấu hình hoặc dấu hiệu bị can thiệp (tấn công xen giữa). "
                "Đề nghị đơn vị xác minh; nếu là thay đổi hợp lệ, hãy đăng ký thông báo thay "
                "đổi."
            ),
            "en": (
                f"At {when}, check {f.check_key} observed a new {en} that no announcement "
                f"covers.{before_en}\n"
                "This may be a misconfiguration or an interception. Please verify; if the "
                "change is legitimate, announce it."
            ),
        },
        sms={
            "vi": f"NPSP: {f.system_key} doi {vi} khong thong bao luc {when}. Kiem tra ngay.",
            "en": f"NPSP: {f.system_key} {en} changed unannounced at {when}. Please verify.",
        },
    )
