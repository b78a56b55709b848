"""What the models cannot say themselves: meanings, examples, names of patterns."""

from __future__ import annotations

from typing import Any

from notifiers.settings import ADDRESS, DOT_ATOM

# Meanings of keys whose model says nothing a reader can use (no ``description=``, no comment
# beside the field, or a comment written for developers). Keyed by the key as this reference
# writes it: dotted, ``[]`` for a list item, check keys as ``check.<kind>.<key>`` (``check.*``
# for the fields every check has, ``tls.*`` for the tls block, ``json[].*`` for a condition).
DESCRIPTIONS: dict[str, str] = {
    # --- top level
    "vantage": "Name of this gateway host; tags every probe result, event and message.",
    "listen": "The HTTP listener (`/metrics`, `/healthz`, `/api/v1`, the pages) as HOST:PORT; "
    "loopback by default; port 0 = any free port.",
    "scheduler": "Limits on probes in flight.",
    "defaults": "Values a check takes when it does not set its own.",
    "uplink": "Canary checks of the gateway's own uplink; when all fail, the gateway is cut "
    "off and agencies are not alerted for it.",
    "include": "Registry files whose `agencies` join this configuration; a relative path is "
    "relative to the including file.",
    "agencies": "The agencies (ministries, provinces, sector agencies), their contacts and "
    "systems: in registry files (`include`), or here in the daemon's config.",
    "alerting": "How state changes become SMS, e-mail and portal-inbox messages.",
    "channels": "How to reach the SMS provider, the mail server and the MQTT broker.",
    "calendar": "Working days and hours, and the deadlines of the regulation.",
    "http": "The listener's TLS, client certificates, limits and sessions.",
    "deadman": "The dead man's switch: this daemon says it is alive.",
    "cluster": "Several gateway hosts on one PostgreSQL state_db: how many vantages must see a "
    "system failing, how fast a leader is replaced, when a vantage stops voting.",
    "security": "What targets that do not come from this config (announced hosts, redirects) "
    "may reach.",
    "reports": "The scheduled availability reports: when each is made (on the working-day "
    "calendar), what it covers and who receives it.",
    # --- scheduler, defaults
    "scheduler.max_concurrency": "Probes in flight at once.",
    "scheduler.max_per_host": "Probes in flight to one host (see `host_key`).",
    "scheduler.stall_after": "`/healthz` fails, and the watchdog is no longer fed, when the "
    "scheduler made no progress for this long.",
    "defaults.interval": "Time between two runs of a check.",
    "defaults.timeout": "A run's total time budget (connect, handshake, answer); must be "
    "shorter than the interval.",
    "defaults.failure_threshold": "Consecutive failures before the confirming recheck (then down).",
    "defaults.success_threshold": "Consecutive successes to be healthy again.",
    "defaults.recheck_delay": "Delay of the confirming recheck.",
    "defaults.flap_window": "Window in which state flips are counted.",
    "defaults.flap_threshold": "Flips within `flap_window` that make a system flapping.",
    "uplink.checks": "The canaries: checks of hosts every working uplink reaches.",
    # --- alerting
    "alerting.operations": "The Government Office operations team (VPCP): told about every "
    "alert of a route that names `operations`, and about the gateway's own uplink.",
    "alerting.routes": "Who is told, in order: the first route that matches wins unless it "
    "says `continue: true`.",
    "alerting.group_wait": "A storm of changes arrives as one digest per person and channel, "
    "sent this long after the first change.",
    "alerting.group_interval": "Later changes: at most one digest per person and channel in "
    "this time.",
    "alerting.repeat_interval": "Reminder while a system stays down.",
    "alerting.status_page_url": "The public status page named in messages.",
    "alerting.hotline": "Telephone number given in messages.",
    "alerting.silences": "Mute alerts of matching systems until a time.",
    "alerting.outbox": "Retries of the durable outbox.",
    "alerting.operations[].name": "Name of the person or desk.",
    "alerting.operations[].phone": "Mobile number in E.164 form (`+84…`); needed for `sms`.",
    "alerting.operations[].email": "E-mail address; needed for `email`.",
    "alerting.operations[].portal_account": "Portal account; needed for `inbox`.",
    "alerting.operations[].channels": "Channels to use, in order of preference.",
    "alerting.operations[].language": "Language of the messages: `vi` or `en`.",
    "alerting.routes[].match": "Which alerts the route takes; an empty list matches everything.",
    "alerting.routes[].notify": "Groups told: `technical-admins` and `high-level-admins` of "
    "the system's agency, `operations` (alerting.operations).",
    "alerting.routes[].continue": "Go on to the next routes after this one matched.",
    "alerting.routes[].match.agency": "Agency ids.",
    "alerting.routes[].match.agency_kind": "Kinds of agency.",
    "alerting.routes[].match.system_kind": "Kinds of system.",
    "alerting.routes[].match.severity": "Severities of the alert.",
    "alerting.silences[].agency": "Agency id.",
    "alerting.silences[].system": "System id within the agency; unset: every system of the agency.",
    "alerting.silences[].starts": "Start, in seconds since the epoch; unset: now.",
    "alerting.silences[].ends": "End, in seconds since the epoch.",
    "alerting.silences[].reason": "Why (shown to the people who look).",
    "alerting.outbox.max_attempts": "Attempts of one notice on one channel before it fails.",
    "alerting.outbox.backoff_base": "First delay between attempts (doubled each time).",
    "alerting.outbox.backoff_max": "Longest delay between attempts.",
    # --- channels
    "channels.sms": "The `sms` channel (Twilio).",
    "channels.email": "The `email` channel (SMTP submission).",
    "channels.mqtt": "The MQTT broker: portal-inbox pushes, retained status topics, "
    "announcements, the dead man's switch.",
    "channels.sms.account_sid": "Twilio account SID (`AC` and 32 hex digits).",
    "channels.sms.auth_token": "Twilio auth token.",
    "channels.sms.from_number": "Sender number in E.164 form; or `messaging_service_sid`.",
    "channels.sms.messaging_service_sid": "Twilio messaging service (`MG` and 32 hex "
    "digits); or `from_number`.",
    "channels.sms.max_segments": "Longest SMS, in segments; a longer text is cut at the end.",
    "channels.sms.timeout": "Bound on one request to the provider.",
    "channels.email.host": "SMTP server.",
    "channels.email.port": "SMTP port (587 submission with STARTTLS, 465 TLS).",
    "channels.email.security": "`starttls`, `tls` (implicit TLS) or `none` (no password "
    "allowed then).",
    "channels.email.username": "SMTP login; with `password`.",
    "channels.email.password": "SMTP password.",
    "channels.email.from_addr": "Sender address.",
    "channels.email.from_name": "Sender name.",
    "channels.email.timeout": "Bound on one SMTP session.",
    "channels.email.message_id_domain": "Domain of the Message-ID header.",
    "channels.mqtt.host": "Broker host.",
    "channels.mqtt.port": "Broker port (8883 with TLS, usually).",
    "channels.mqtt.tls": "Connect with TLS.",
    "channels.mqtt.username": "Broker user (see config/mosquitto/acl).",
    "channels.mqtt.password": "Broker password.",
    "channels.mqtt.topic_prefix": "Prefix of every topic.",
    "channels.mqtt.keepalive": "MQTT keep-alive, in seconds.",
    # --- calendar
    "calendar.timezone": "IANA time zone of working hours and dates.",
    "calendar.working_hours": "Working hours of a working day, as sorted, non-overlapping "
    "[start, end] spans.",
    "calendar.extra_days_off": "Days off beyond the public holidays (swaps); giving the list "
    "replaces the shipped one.",
    "calendar.extra_working_days": "Make-up working days (a Saturday); giving the list "
    "replaces the shipped one.",
    "calendar.agency_working_hours": "Working hours of an agency that differ from "
    "`working_hours`, by agency id.",
    "calendar.rules": "The deadlines the monitor checks, each with its legal source.",
    "calendar.extra_days_off[].date": "The date.",
    "calendar.extra_days_off[].reason": "Where it was decided (the document).",
    "calendar.rules.secure_server_change_notice": "Notice an agency gives before changing its "
    "secure server.",
    "calendar.rules.maintenance_notice": "Notice of a maintenance window.",
    "calendar.rules.incident_sla": "Time to resolve a support request (incident).",
    "calendar.rules.<rule>.value": "How many units.",
    "calendar.rules.<rule>.unit": "`working_days` or `working_hours`.",
    "calendar.rules.<rule>.source": "The legal source (shown beside the deadline).",
    # --- http, deadman
    "http.tls_cert": "PEM certificate (chain) of the listener: with `tls_key`, the listener "
    "speaks HTTPS.",
    "http.tls_key": "PEM private key of `tls_cert` (readable by the service).",
    "http.max_body_bytes": "Largest request body accepted.",
    "http.login_failures_per_minute": "Failed logins allowed per client address and minute.",
    "http.session_idle": "A page login's session ends after this long unused.",
    "http.session_max": "A page login's session ends after this long whatever its use "
    "(logout and revoking the account end it at once).",
    "http.trusted_proxies": "Reverse proxies (networks) whose `X-Forwarded-Proto: https` and "
    "`X-Forwarded-For` are believed; the session cookie is then Secure.",
    "deadman.interval": 'Time between two "alive" messages.',
    "deadman.ping_url": "URL fetched every `interval` (healthchecks-style), while the "
    "scheduler progresses.",
    "deadman.ping_timeout": "Bound on one ping.",
    "security.allow_networks": "Networks that announced hosts and http redirect targets may "
    "reach although internal (loopback, private, link-local, CGNAT, reserved and the "
    "gateway's own addresses are refused for them); registry hosts are not concerned.",
    # --- registry
    "schema_version": "Format of a registry file; this version reads 1.",
    "agencies[].id": "Agency id, unique: lowercase letters, digits and `-`.",
    "agencies[].kind": "Kind of body.",
    "agencies[].name_vi": "Name in Vietnamese.",
    "agencies[].name_en": "Name in English.",
    "agencies[].code": "Abbreviation, or the province's administrative code.",
    "agencies[].contacts": "People told about the agency's systems.",
    "agencies[].systems": "The agency's monitored systems.",
    "agencies[].contacts[].name": "Name of the person or desk.",
    "agencies[].contacts[].role": "`technical-admin` (told first) or `high-level-admin` (told "
    "on escalation).",
    "agencies[].contacts[].phone": "Mobile number in E.164 form (`+84…`); needed for `sms`.",
    "agencies[].contacts[].email": "E-mail address; needed for `email`.",
    "agencies[].contacts[].portal_account": "Portal account; needed for `inbox`.",
    "agencies[].contacts[].channels": "Channels to use, in order of preference.",
    "agencies[].contacts[].language": "Language of the messages: `vi` or `en`.",
    "agencies[].systems[].id": "System id, unique within the agency; referred to as "
    "`agency/system`.",
    "agencies[].systems[].kind": "Kind of system.",
    "agencies[].systems[].name": "Name shown on the pages and in messages.",
    "agencies[].systems[].name_en": "English name; default: `name`.",
    "agencies[].systems[].public": "Shown on the public `/status` page.",
    "agencies[].systems[].depends_on": "Systems this one is reached through: an id of this "
    "agency or `agency/system`; while one is down, this one is unreachable, not down.",
    "agencies[].systems[].checks": "One or more checks (see Checks).",
    # --- checks
    "check.*.id": "Check id, unique within its system.",
    "check.*.kind": "The probe kind: selects the other keys.",
    "check.*.interval": "Time between two runs; default `defaults.interval`.",
    "check.*.timeout": "Time budget of a run; default `defaults.timeout`.",
    "check.*.failure_threshold": "Default `defaults.failure_threshold`.",
    "check.*.success_threshold": "Default `defaults.success_threshold`.",
    "check.tcp.host": "Host name or address.",
    "check.tcp.port": "TCP port.",
    "check.tls.host": "Host name or address.",
    "check.tls.port": "TCP port.",
    "check.tls.tls": "TLS options (see the `tls` block).",
    "check.http.url": "`http://` or `https://` URL.",
    "check.http.method": "Request method.",
    "check.http.headers": "Request headers.",
    "check.http.body": "Request body (POST only).",
    "check.http.expected_status": "Accepted statuses: codes (`200`) or classes (`2xx`).",
    "check.http.body_regex": "The body must match this pattern (RE2 syntax, no "
    "backreferences or lookaround; at most 1,000 characters).",
    "check.http.json": "Conditions on fields of a JSON body (see `json[]`).",
    "check.http.max_latency": "An answer slower than this is a warning (see "
    "`max_latency_severity`).",
    "check.http.follow_redirects": "Redirects followed; 0 judges the 3xx itself.",
    "check.http.max_body_bytes": "Bytes of the body read at most; default 1 MiB.",
    "check.http.tls": "TLS options of an https URL (see the `tls` block).",
    "check.dns.name": "Name to resolve.",
    "check.dns.record_type": "`A` or `AAAA`.",
    "check.heartbeat.interval": "How often the heartbeat is judged (it reads memory only).",
    "check.heartbeat.timeout": "Time budget of a run.",
    "check.heartbeat.failure_threshold": "Down at the first missed deadline.",
    "tls.min_version": "Lowest TLS version accepted.",
    "tls.insecure_skip_verify": "Do not verify the chain or the name (expiry is still "
    "reported); for tests only.",
    "tls.min_days_valid": "Warn (see `min_days_valid_severity`) when the certificate expires "
    "within this many days.",
    "json[].path": "Where the value is: `$.field`, `$.a.b`, `$.list[0]`.",
    "json[].equals": "The value must equal this.",
    "json[].younger_than": "The value is a time (ISO 8601 or epoch seconds) no older than this.",
    "json[].exists": "The field must be there (`true`) or absent (`false`).",
    "json[].severity": "What a failed condition makes the system: `down` or `degraded`.",
    # --- value types
    "secret.file": "A file holding the secret; a relative name is looked up in "
    "`$CREDENTIALS_DIRECTORY` first (systemd `LoadCredential=`).",
    "secret.env": "An environment variable holding the secret.",
}

# Examples of keys the example configs do not show (keys as in DESCRIPTIONS).
EXAMPLES: dict[str, Any] = {
    "channels.sms.account_sid": "AC00000000000000000000000000000000",
    "channels.sms.auth_token": {"file": "twilio-token"},
    "channels.sms.from_number": "+84900000000",
    "channels.sms.api_base_url": "http://127.0.0.1:8080",
    "channels.mqtt.host": "127.0.0.1",
    "channels.mqtt.username": "npsp-monitor",
    "channels.mqtt.password": {"file": "mqtt-password"},
    "channels.mqtt.announcement_tokens": {"ha-noi": {"file": "announce-ha-noi"}},
    "http.tls_cert": "/etc/npsp-monitor/tls/server.crt",
    "http.tls_key": "/etc/npsp-monitor/tls/server.key",
    "http.client_ca": "/etc/npsp-monitor/tls/client-ca.pem",
    "http.trusted_proxies": ["127.0.0.1/32"],
    "security.allow_networks": ["10.20.0.0/16"],
    "deadman.ping_url": "https://hc.dvc.example/ping/gw-1",
    "alerting.web_url": "https://giamsat.npsp.dvc.example",
    "alerting.routes[].match.agency": ["bo-tai-chinh"],
    "alerting.routes[].match.severity": ["critical"],
    "alerting.silences[].agency": "ha-noi",
    "alerting.silences[].ends": 1798761600,
    "calendar.agency_working_hours": {"ha-noi": [["07:30", "11:30"], ["13:00", "17:00"]]},
    "agencies[].contacts[].phone": "+84900000000",
    "agencies[].systems[].depends_on": ["secure-server"],
    "check.http.url": "https://dvc.ha-noi.dvc.example/healthz",
    "check.http.expected_status": ["2xx", 301],
    "check.http.headers": {"Accept": "application/json"},
    "check.http.body_regex": '"status":\\s*"ok"',
    "check.http.max_latency": "1s",
    "check.dns.nameservers": ["127.0.0.1:53"],
    "check.dns.expected_addresses": ["192.0.2.10"],
    "check.heartbeat.period": "5m",
    "check.heartbeat.token": {"file": "heartbeat-ha-noi"},
    "tls.ca_file": "/etc/npsp-monitor/ca/gov-root.pem",
    "tls.server_name": "mcbm.ha-noi.dvc.example",
    "tls.expected_fingerprint_sha256": "AB:12:…",
    "tls.min_days_valid": 14,
    "json[].path": "$.last_sync",
    "json[].younger_than": "24h",
    "secret.file": "smtp-password",
    "secret.env": "NPSP_SMTP_PASSWORD",
}

# Patterns with a name a person reads more easily than the regular expression.
PATTERN_NAMES = {
    r"^[a-z0-9][a-z0-9-]{0,62}$": "id: a-z, 0-9, `-`; up to 63",
    r"^[a-z0-9][a-z0-9_.-]{0,62}$": "id: a-z, 0-9, `_.-`; up to 63",
    r"^\+[1-9][0-9]{6,14}$": "E.164 phone number",
    r"^[^@\s]+@[^@\s]+\.[^@\s]+$": "e-mail address",
    r"^[A-Za-z0-9._-]{1,64}$": "A-Z, a-z, 0-9, `._-`; up to 64",
    r"^https?://[^/?#]+$": "http(s)://host[:port], no path",
    r"^https?://[^\s?#]+$": "http(s) URL",
    r"^https?://": "http(s) URL",
    ADDRESS: "e-mail address",
    DOT_ATOM: "domain name",
}
