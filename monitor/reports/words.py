"""The words of the HTML report in Vietnamese and English, and its stylesheet."""

from __future__ import annotations

from typing import Literal

__all__ = ["KINDS", "STYLE", "WORDS", "Lang"]

#: The report's languages (the pages' too: the web layer imports the reports, not the reverse).
Lang = Literal["vi", "en"]

#: The report's texts by key (``title``, the column heads, the definitions).
WORDS: dict[Lang, dict[str, str]] = {
    "vi": {
        "title": "Báo cáo khả dụng tháng {month} — Cổng Dịch vụ công quốc gia",
        "title_week": "Báo cáo khả dụng tuần {week} ({start} – {end}) — Cổng Dịch vụ công quốc gia",
        "period": "Kỳ báo cáo: {start} – {end} (giờ Việt Nam, UTC+07:00).",
        "partial": "Tháng chưa kết thúc: số liệu tính đến {until}.",
        "generated": "Lập lúc {at}.",
        "summary": "Tổng hợp theo cơ quan",
        "agency": "Cơ quan",
        "system": "Hệ thống",
        "kind": "Loại",
        "availability": "Khả dụng (%)",
        "down": "Mất kết nối (h:mm)",
        "outages": "Số lần mất kết nối",
        "unreachable": "Không truy cập được do hệ thống phụ thuộc (h:mm)",
        "monitored": "Thời gian giám sát (h:mm)",
        "not_monitored": "Không giám sát (h:mm)",
        "maintenance": "Bảo trì (h:mm)",
        "degraded": "Trong đó suy giảm (h:mm)",
        "incidents": "Sự cố",
        "breaches": "Quá hạn xử lý",
        "total": "Cộng",
        "portal": "Toàn Cổng",
        "none": "không đo được",
        "note": (
            "Thời gian bảo trì và thời gian không giám sát (chưa có trạng thái hoặc trạng thái "
            "chưa xác định) không được tính vào tỷ lệ khả dụng."
        ),
        "definitions": "Cách tính",
        "def_availability": (
            "Khả dụng = thời gian hoạt động / thời gian giám sát. Thời gian giám sát gồm thời "
            "gian hoạt động (UP), mất kết nối (DOWN hoặc chập chờn) và không truy cập được do "
            "hệ thống phụ thuộc bị mất kết nối (UNREACHABLE, tính là không khả dụng nhưng ghi "
            "riêng)."
        ),
        "def_maintenance": (
            "Thời gian trong các đợt bảo trì đã thông báo (không bị hủy) áp dụng cho hệ thống "
            "không được tính vào thời gian khả dụng lẫn không khả dụng."
        ),
        "def_not_monitored": (
            "Thời gian chưa có trạng thái hoặc trạng thái chưa xác định (không giám sát) "
            "không được tính."
        ),
        "def_outages": (
            "Số lần mất kết nối: số lần hệ thống chuyển sang DOWN hoặc chập chờn trong tháng, "
            "ngoài thời gian bảo trì."
        ),
        "def_incidents": (
            "Sự cố: số sự cố mở trong tháng (của cơ quan: kể cả yêu cầu hỗ trợ không gắn với "
            "hệ thống); quá hạn xử lý: số sự cố vượt thời hạn xử lý trong tháng."
        ),
        "def_agency": (
            "Số liệu của cơ quan là tổng các hệ thống của cơ quan (thời gian tính theo "
            "hệ thống × giờ)."
        ),
        "senior_title": "Tài khoản quản trị cấp cao",
        "senior_intro": (
            "Người giữ quyền quản trị cấp cao (agency-admin) của mỗi cơ quan lúc {at} và các "
            "lần cấp, thu hồi quyền trong kỳ (QĐ 31/2021/QĐ-TTg, Chương VII, mục A khoản 2)."
        ),
        "senior_holders": "Người giữ quyền cuối kỳ",
        "senior_changes": "Thay đổi trong kỳ",
        "senior_holder": "{name} ({account}), từ {since}",
        "senior_granted": "{at}: cấp cho {name} ({account}), bởi {by}",
        "senior_revoked": "{at}: thu hồi của {name} ({account}), bởi {by}",
        "senior_nobody": "không có",
        "senior_none": "không có",
        "senior_from_creation": (
            "* Tài khoản tạo trước khi hệ thống bắt đầu ghi nhận việc cấp quyền: tính từ lúc "
            "tạo tài khoản."
        ),
    },
    "en": {
        "title": "Availability report {month} — National Public Service Portal",
        "title_week": "Availability report, week {week} ({start} – {end}) — National Public"
        " Service Portal",
        "period": "Period: {start} – {end} (Vietnam time, UTC+07:00).",
        "partial": "The month is not over: figures up to {until}.",
        "generated": "Generated {at}.",
        "summary": "Summary by agency",
        "agency": "Agency",
        "system": "System",
        "kind": "Kind",
        "availability": "Availability (%)",
        "down": "Down (h:mm)",
        "outages": "Outages",
        "unreachable": "Unreachable, parent down (h:mm)",
        "monitored": "Monitored (h:mm)",
        "not_monitored": "Not monitored (h:mm)",
        "maintenance": "Maintenance (h:mm)",
        "degraded": "Of which degraded (h:mm)",
        "incidents": "Incidents",
        "breaches": "SLA breaches",
        "total": "Total",
        "portal": "Whole portal",
        "none": "not measured",
        "note": (
            "Maintenance time and time not monitored (no state yet, or an unknown state) are "
            "left out of the availability."
        ),
        "definitions": "Definitions",
        "def_availability": (
            "Availability = up time / monitored time. Monitored time is the time UP, DOWN or "
            "FLAPPING, and UNREACHABLE (a system it depends on is down: unavailable, but shown "
            "apart)."
        ),
        "def_maintenance": (
            "Time inside announced maintenance windows (not cancelled) covering the system counts "
            "neither as available nor as unavailable."
        ),
        "def_not_monitored": (
            "Time with no state yet or an unknown state (not monitored) is left out."
        ),
        "def_outages": (
            "Outages: changes into DOWN or FLAPPING during the month, outside maintenance."
        ),
        "def_incidents": (
            "Incidents opened during the month (an agency's include support requests about no "
            "particular system); SLA breaches: incidents that went past their due time during "
            "the month."
        ),
        "def_agency": ("An agency's figures add up its systems (times are system-hours)."),
        "senior_title": "Senior administrator accounts",
        "senior_intro": (
            "Who held each agency's senior administrator rights (agency-admin) at {at}, and the "
            "grants and revocations during the period (QĐ 31/2021/QĐ-TTg, Chapter VII, A.2)."
        ),
        "senior_holders": "Holders at the end",
        "senior_changes": "Changes during the period",
        "senior_holder": "{name} ({account}), since {since}",
        "senior_granted": "{at}: granted to {name} ({account}) by {by}",
        "senior_revoked": "{at}: revoked from {name} ({account}) by {by}",
        "senior_nobody": "nobody",
        "senior_none": "none",
        "senior_from_creation": (
            "* An account made before grants were recorded: counted from its creation."
        ),
    },
}

#: The kinds of system, as the report names them (shorter than the pages' names).
KINDS: dict[Lang, dict[str, str]] = {
    "vi": {
        "secure-server": "Máy chủ bảo mật",
        "one-stop": "Một cửa điện tử",
        "public-service-portal": "Cổng dịch vụ công",
        "integration": "Tích hợp",
        "other": "Khác",
    },
    "en": {
        "secure-server": "Secure server",
        "one-stop": "One-stop system",
        "public-service-portal": "Public service portal",
        "integration": "Integration",
        "other": "Other",
    },
}

#: The report's inline stylesheet (the page loads nothing else).
STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:0 0 2em}"
    "th,td{border:1px solid #aaa;padding:.25em .5em;vertical-align:top}"
    "th{background:#eee;text-align:left}td.n{text-align:right;white-space:nowrap}"
    "tr.total td{font-weight:bold;background:#f6f6f6}.bad{color:#a00}"
)
