"""The database's schema: every table as a list of forward migrations, for SQLite.

Migration ``n`` (1-based) takes a database of ``PRAGMA user_version`` ``n - 1`` to ``n``;
:meth:`monitor.store.Store.open` runs those a database has not had yet, each in one
transaction, and refuses a database newer than :data:`MIGRATIONS`. A migration is never edited
once released: a change of schema is one more migration at the end. A PostgreSQL backend
mirrors this module (the same tables and columns, in its own types), nothing else.
"""

from __future__ import annotations

import sqlite3

__all__ = ["MIGRATIONS", "statements"]

MIGRATIONS = [
    """
    CREATE TABLE state_changes (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        agency TEXT NOT NULL,
        system TEXT NOT NULL,
        old_state TEXT NOT NULL,
        new_state TEXT NOT NULL,
        reason TEXT NOT NULL,
        vantage TEXT NOT NULL
    );
    CREATE INDEX state_changes_system ON state_changes (agency, system, ts);
    CREATE INDEX state_changes_ts ON state_changes (ts);
    CREATE TABLE system_state (
        agency TEXT NOT NULL,
        system TEXT NOT NULL,
        state TEXT NOT NULL,
        since REAL NOT NULL,
        reason TEXT NOT NULL,
        PRIMARY KEY (agency, system)
    );
    """,
    """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        channel TEXT NOT NULL,
        address TEXT NOT NULL,
        person TEXT NOT NULL,
        subject TEXT NOT NULL,
        text TEXT NOT NULL,
        short TEXT NOT NULL,
        html TEXT,
        thread_key TEXT,
        language TEXT NOT NULL,
        fallbacks TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error TEXT,
        created_at REAL NOT NULL,
        sent_at REAL,
        provider_id TEXT
    );
    CREATE INDEX outbox_due ON outbox (channel, status, next_attempt_at);
    CREATE TABLE inbox (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL,
        key TEXT NOT NULL UNIQUE,
        subject TEXT NOT NULL,
        text TEXT NOT NULL,
        created_at REAL NOT NULL,
        read_at REAL
    );
    CREATE INDEX inbox_account ON inbox (account, created_at);
    """,
    """
    CREATE TABLE alert_notices (
        incident TEXT NOT NULL,
        address_key TEXT NOT NULL,
        PRIMARY KEY (incident, address_key)
    );
    """,
    # The working-day rules: change announcements, what probes observed (for unannounced
    # changes), maintenance windows and incidents. Times are epoch seconds (UTC).
    """
    CREATE TABLE announcements (
        id INTEGER PRIMARY KEY,
        agency TEXT NOT NULL,
        system TEXT NOT NULL,
        ref TEXT,
        announced_at REAL NOT NULL,
        effective_at REAL NOT NULL,
        changes TEXT NOT NULL,
        source TEXT NOT NULL,
        author TEXT NOT NULL,
        working_days INTEGER NOT NULL,
        required INTEGER NOT NULL,
        compliant INTEGER NOT NULL,
        created_at REAL NOT NULL,
        cancelled_at REAL,
        handled_at REAL,
        applied_at REAL,
        UNIQUE (agency, ref)
    );
    CREATE INDEX announcements_system ON announcements (agency, system, effective_at);
    CREATE TABLE observed_values (
        check_key TEXT NOT NULL,
        field TEXT NOT NULL,
        value TEXT NOT NULL,
        since REAL NOT NULL,
        PRIMARY KEY (check_key, field)
    );
    CREATE TABLE unannounced_changes (
        id INTEGER PRIMARY KEY,
        check_key TEXT NOT NULL,
        field TEXT NOT NULL,
        old TEXT NOT NULL,
        new TEXT NOT NULL,
        observed_at REAL NOT NULL
    );
    CREATE TABLE maintenance (
        id INTEGER PRIMARY KEY,
        scope TEXT NOT NULL,
        starts REAL NOT NULL,
        ends REAL NOT NULL,
        reason TEXT NOT NULL,
        announced_at REAL NOT NULL,
        working_days INTEGER NOT NULL,
        required INTEGER NOT NULL,
        compliant INTEGER NOT NULL,
        override_reason TEXT,
        author TEXT NOT NULL,
        created_at REAL NOT NULL,
        cancelled_at REAL,
        cancel_reason TEXT,
        notified_scheduled REAL,
        notified_started REAL,
        notified_ended REAL
    );
    CREATE INDEX maintenance_ends ON maintenance (ends);
    CREATE TABLE incidents (
        id TEXT PRIMARY KEY,
        agency TEXT NOT NULL,
        system TEXT,
        source TEXT NOT NULL,
        summary TEXT NOT NULL,
        opened_at REAL NOT NULL,
        due_at REAL NOT NULL,
        acknowledged_at REAL,
        acknowledged_by TEXT,
        resolved_at REAL,
        resolved_by TEXT,
        resolution TEXT,
        reminded INTEGER NOT NULL DEFAULT 0,
        breached_at REAL
    );
    CREATE INDEX incidents_open ON incidents (resolved_at, opened_at);
    """,
    # Accounts, the audit log, incident comments and silences made through the API.
    """
    CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        agency TEXT,
        token_hash TEXT UNIQUE,
        cert_subject TEXT,
        cert_serial TEXT,
        portal_account TEXT NOT NULL,
        created_at REAL NOT NULL,
        created_by TEXT NOT NULL,
        revoked_at REAL,
        revoked_by TEXT
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        agency TEXT,
        detail TEXT NOT NULL,
        source TEXT NOT NULL
    );
    CREATE INDEX audit_ts ON audit (ts);
    CREATE TABLE incident_comments (
        id INTEGER PRIMARY KEY,
        incident TEXT NOT NULL,
        ts REAL NOT NULL,
        author TEXT NOT NULL,
        text TEXT NOT NULL
    );
    CREATE INDEX incident_comments_incident ON incident_comments (incident, ts);
    CREATE TABLE silences (
        id INTEGER PRIMARY KEY,
        agency TEXT NOT NULL,
        system TEXT,
        starts REAL NOT NULL,
        ends REAL NOT NULL,
        reason TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL,
        cancelled_at REAL
    );
    """,
    # The SMS budget counts from when a message was on the wire (claimed_at: kept when a crash
    # interrupts the send, cleared when the attempt fails) or accepted (sent_at); a channel's
    # time budget before falling back counts from the first failed attempt.
    """
    ALTER TABLE outbox ADD COLUMN claimed_at REAL;
    ALTER TABLE outbox ADD COLUMN first_failed_at REAL;
    CREATE INDEX outbox_address ON outbox (channel, address, status);
    """,
    # Client certificates are mapped by the SHA-256 of their DER together with their issuer's
    # DN (RFC 4514); cert_subject and cert_serial stay readable but no longer log in. A
    # fingerprint belongs to one active account. Page logins get server-side sessions (the
    # cookie holds a random id, stored here as its SHA-256; idle: seconds unused allowed).
    """
    ALTER TABLE accounts ADD COLUMN cert_sha256 TEXT;
    ALTER TABLE accounts ADD COLUMN cert_issuer TEXT;
    CREATE UNIQUE INDEX accounts_cert_sha256 ON accounts (cert_sha256)
        WHERE cert_sha256 IS NOT NULL AND revoked_at IS NULL;
    CREATE TABLE sessions (
        id_hash TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_seen REAL NOT NULL,
        expires_at REAL NOT NULL,
        idle REAL NOT NULL
    );
    CREATE INDEX sessions_account ON sessions (account);
    CREATE INDEX sessions_expires ON sessions (expires_at);
    """,
    # Support requests (QĐ 31/2021, Chương VII, D.1): when a request was received (it may
    # precede its entry; the SLA counts from it), whether it is complex, and the expected
    # completion time published for a complex one. Outages escalate on wall-clock time and
    # have no working-hours due time (9e999 is SQLite's infinity): each escalation step taken
    # is recorded (escalation_step 1, 2…, to whom, when).
    """
    ALTER TABLE incidents ADD COLUMN received_at REAL;
    ALTER TABLE incidents ADD COLUMN complex INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE incidents ADD COLUMN expected_completion REAL;
    ALTER TABLE incidents ADD COLUMN escalation_step INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE incidents ADD COLUMN escalated_to TEXT;
    ALTER TABLE incidents ADD COLUMN escalated_at REAL;
    UPDATE incidents SET received_at = opened_at WHERE source = 'request';
    UPDATE incidents SET due_at = 9e999
        WHERE source = 'outage' AND resolved_at IS NULL AND breached_at IS NULL;
    """,
    # The reason as a code (JSON of npsp_common.types.Why), for the reader's language; NULL in
    # rows written before it: those show their English text.
    """
    ALTER TABLE state_changes ADD COLUMN why TEXT;
    ALTER TABLE system_state ADD COLUMN why TEXT;
    """,
    # Scheduled reports (monitor/reports/schedule.py): one row per report produced, unique per
    # (schedule, period, scope: '' for the national report, else the agency), written in the
    # transaction that queues its messages, so a report is produced and sent once; its
    # renderings are kept for the API and the pages. An outbox row may carry files (a report's
    # CSV): JSON of [name, content type, base64].
    """
    CREATE TABLE report_runs (
        id INTEGER PRIMARY KEY,
        schedule TEXT NOT NULL,
        period TEXT NOT NULL,
        scope TEXT NOT NULL,
        fired_at REAL NOT NULL,
        produced_at REAL NOT NULL,
        starts REAL NOT NULL,
        ends REAL NOT NULL,
        queued INTEGER NOT NULL,
        body_json TEXT NOT NULL,
        body_csv TEXT NOT NULL,
        body_html_vi TEXT NOT NULL,
        body_html_en TEXT NOT NULL,
        UNIQUE (schedule, period, scope)
    );
    CREATE INDEX report_runs_scope ON report_runs (scope, produced_at);
    ALTER TABLE outbox ADD COLUMN attachments TEXT;
    """,
    # The audit log is append-only and hash-chained (monitor/audit_chain.py): each entry keeps
    # the hash of the one before it and its own; audit_head is the chain's last link (one row,
    # written with each entry). Entries written before this migration have no hashes: the
    # first audit write after it chains them in id order (a migration here is SQL only, and
    # SQLite has no SHA-256). The triggers refuse every UPDATE and DELETE but that one: giving
    # an entry without hashes its hashes, its content unchanged.
    """
    ALTER TABLE audit ADD COLUMN prev_hash TEXT;
    ALTER TABLE audit ADD COLUMN hash TEXT;
    CREATE TABLE audit_head (
        one INTEGER PRIMARY KEY CHECK (one = 1),
        last_id INTEGER NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        WHEN OLD.hash IS NOT NULL OR OLD.prev_hash IS NOT NULL
            OR NEW.id IS NOT OLD.id OR NEW.ts IS NOT OLD.ts OR NEW.actor IS NOT OLD.actor
            OR NEW.action IS NOT OLD.action OR NEW.target IS NOT OLD.target
            OR NEW.agency IS NOT OLD.agency OR NEW.detail IS NOT OLD.detail
            OR NEW.source IS NOT OLD.source
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_head_kept BEFORE DELETE ON audit_head
        BEGIN SELECT RAISE(ABORT, 'the audit chain head is kept'); END;
    """,
    # Retention (monitor/retention): each system's report figures of a month, stored
    # before that month's state changes are pruned so that its report stays exact; a month is
    # in report_months once every system of it is stored. Never pruned. The indexes find the
    # old sent/failed notifications and inbox messages without scanning their tables.
    """
    CREATE TABLE monthly_figures (
        month TEXT NOT NULL,
        agency TEXT NOT NULL,
        system TEXT NOT NULL,
        up_seconds REAL NOT NULL,
        down_seconds REAL NOT NULL,
        unreachable_seconds REAL NOT NULL,
        not_monitored_seconds REAL NOT NULL,
        maintenance_seconds REAL NOT NULL,
        degraded_seconds REAL NOT NULL,
        outages INTEGER NOT NULL,
        PRIMARY KEY (month, agency, system)
    );
    CREATE TABLE report_months (
        month TEXT PRIMARY KEY,
        stored_at REAL NOT NULL
    );
    CREATE INDEX outbox_done ON outbox (status, created_at);
    CREATE INDEX inbox_created ON inbox (created_at);
    """,
    # Contacts (monitor/contacts): the people an agency manages itself, beside the registry's
    # (soft-deleted: removed_at; account_id ties one to the account they log in with), and the
    # registry's contacts tied to an account (contact_ties, kept in step by the directory), so
    # the outbox can refuse a revoked person's rows in the claiming transaction.
    """
    CREATE TABLE contacts (
        id TEXT PRIMARY KEY,
        agency TEXT NOT NULL,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        phone TEXT,
        email TEXT,
        portal_account TEXT,
        webhook TEXT,
        channels TEXT NOT NULL,
        language TEXT NOT NULL,
        account_id TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        confirmed_at REAL,
        removed_at REAL
    );
    CREATE INDEX contacts_agency ON contacts (agency);
    CREATE INDEX contacts_account ON contacts (account_id);
    CREATE TABLE contact_ties (
        person TEXT PRIMARY KEY,
        account_id TEXT NOT NULL
    );
    CREATE INDEX contact_ties_account ON contact_ties (account_id);
    CREATE INDEX outbox_person ON outbox (person, status);
    """,
    # Senior rights (monitor/rules/seniorrights): every grant or revocation of an agency's
    # high-level account (agency-admin), written with the account change; the leader tells
    # the Government Office's operations once (notified_at) and the monthly report replays them.
    """
    CREATE TABLE senior_rights_changes (
        id INTEGER PRIMARY KEY,
        agency TEXT NOT NULL,
        account_id TEXT NOT NULL,
        name TEXT NOT NULL,
        change TEXT NOT NULL CHECK (change IN ('granted', 'revoked')),
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        source TEXT NOT NULL,
        notified_at REAL
    );
    CREATE INDEX senior_rights_at ON senior_rights_changes (at);
    CREATE INDEX senior_rights_pending ON senior_rights_changes (notified_at);
    """,
    # Duty rosters (monitor/rosters): an agency's weekly shifts (weekdays as a mask, bit 0 =
    # Monday; HH:MM in the calendar's time zone, the end may be past midnight) and dated
    # overrides (epoch seconds; contact_id NULL: nobody on duty), which win over the shifts.
    """
    CREATE TABLE roster_shifts (
        id INTEGER PRIMARY KEY,
        agency TEXT NOT NULL,
        weekdays INTEGER NOT NULL,
        starts TEXT NOT NULL,
        ends TEXT NOT NULL,
        contact_id TEXT NOT NULL,
        note TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_by TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX roster_shifts_agency ON roster_shifts (agency);
    CREATE TABLE roster_overrides (
        id INTEGER PRIMARY KEY,
        agency TEXT NOT NULL,
        starts REAL NOT NULL,
        ends REAL NOT NULL,
        contact_id TEXT,
        note TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_by TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX roster_overrides_agency ON roster_overrides (agency, ends);
    """,
    # Contact hygiene (monitor/contacts/hygiene.py): an address that failed for good (an SMS
    # number Twilio calls invalid or not a mobile, an e-mail address refused with 5xx), one open
    # flag per channel and address (cleared_at set: closed), and whether the agency's admins
    # were told (reported_at). A stored contact's confirmation reminders: one per contact and
    # period, its link's token stored hashed (SHA-256), single use, with an expiry.
    """
    CREATE TABLE address_flags (
        id INTEGER PRIMARY KEY,
        channel TEXT NOT NULL,
        address TEXT NOT NULL,
        code TEXT NOT NULL,
        reason TEXT NOT NULL,
        person TEXT,
        flagged_at REAL NOT NULL,
        reported_at REAL,
        cleared_at REAL,
        cleared_by TEXT
    );
    CREATE UNIQUE INDEX address_flags_open ON address_flags (channel, address)
        WHERE cleared_at IS NULL;
    CREATE TABLE contact_confirmations (
        id INTEGER PRIMARY KEY,
        contact_id TEXT NOT NULL,
        period_start REAL NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        used_at REAL,
        UNIQUE (contact_id, period_start)
    );
    """,
    # An alert digest as data (monitor/alerting/facts.py), JSON, on rows the webhook may send.
    """
    ALTER TABLE outbox ADD COLUMN facts TEXT;
    """,
]


def statements(script: str) -> list[str]:
    """The statements of one migration, in order: split at each ``;`` that ends a statement
    (a trigger's ``BEGIN … ; END`` is one statement; no other ``;`` is inside one)."""
    found: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending = f"{pending};{piece}" if pending else piece
        if sqlite3.complete_statement(pending + ";"):
            if pending.strip():
                found.append(pending.strip())
            pending = ""
    if pending.strip():
        found.append(pending.strip())
    return found
