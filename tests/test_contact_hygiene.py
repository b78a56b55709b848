"""Issue 15, item 5: contact hygiene.

* an SMS Twilio refuses with 21211 (the real outbox, the real SMS channel, the tests' Twilio
  API) flags the number in the failure's transaction; the directory sees it on its next tick and
  the router sends the person's next alert by e-mail; the agency's admins are told once (a
  second tick: nothing), the address masked; editing the phone clears the flag;
* an e-mail refused with 550 on RCPT (aiosmtpd) flags the address; a retryable failure (Twilio
  500, SMTP 450) flags nothing;
* the API: each contact's flags (masked for a viewer), ``POST …/flags/clear`` (agency-admin and
  national-admin; operator, viewer and another agency refused), audited.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from monitor.alerting.notices import NoticeSender
from monitor.alerting.outbox import Outbox, OutboxItem, OutboxWorker
from monitor.alerting.route import Router, recipients_of
from monitor.config.alerting import AlertingSettings, OutboxSettings
from monitor.config.contacts import ContactsSettings
from monitor.contacts import actions, confirm, confirm_store, hygiene_store
from monitor.contacts.directory import ContactsDesk
from monitor.contacts.flags import masked_address
from monitor.rules.confirmations import ConfirmationDesk
from monitor.rules.hygiene import HygieneDesk
from monitor.store import Store
from notifiers.email import EmailNotifier
from notifiers.settings import EmailSettings
from notifiers.sms import Settings as SmsSettings
from notifiers.sms import SmsNotifier
from tests.conftest import StateLocation
from tests.peers import free_port
from tests.peers.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio, Reply
from tests.test_api import (
    Caller,
    World,
    world,  # noqa: F401 - the running daemon, a fixture
)
from tests.test_contacts import NOW, _admin, agency
from tests.test_pages import devtools, usable_chromium

pytestmark = pytest.mark.timeout(120)

PHONE = "+84912000345"
EMAIL = "ha@ha-noi.gov.vn"


@pytest.fixture
def twilio_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_TWILIO_TOKEN", AUTH_TOKEN)


def sms_notifier(api: FakeTwilio) -> SmsNotifier:
    return SmsNotifier(
        SmsSettings.model_validate(
            {
                "account_sid": ACCOUNT_SID,
                "auth_token": {"env": "TEST_TWILIO_TOKEN"},
                "from_number": FROM_NUMBER,
                "api_base_url": api.base_url,
                "timeout": "2s",
            }
        )
    )


def alert_item(key: str, recipient: Any) -> OutboxItem:
    return OutboxItem(
        key=key,
        channel=recipient.channel,
        address=recipient.address,
        person=recipient.person,
        subject="Mất kết nối",
        text="Máy chủ bảo mật mất kết nối",
        short="Mat ket noi",
        html=None,
        thread_key=None,
        language="vi",
        fallbacks=recipient.fallbacks,
    )


async def _rows(store: Store, query: str, *args: Any) -> list[tuple[Any, ...]]:
    return await store.transact(lambda db: [tuple(r) for r in db.execute(query, args).fetchall()])


class Hanoi:
    """A store, the Hà Nội registry (a high-level admin), a stored technical admin reached by
    [sms, email], the contacts desk, a router over it, an outbox and a notice sender."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.registry = [
            agency(
                contacts=[
                    {
                        "id": "lanh-dao",
                        "name": "Trần Thị Bình",
                        "role": "high-level-admin",
                        "email": "binh@ha-noi.gov.vn",
                        "channels": ["email"],
                    }
                ]
            )
        ]
        self.desk = ContactsDesk(store, lambda: self.registry)
        self.router = Router(AlertingSettings(), self.registry, self.desk)
        self.clock = [NOW]
        self.outbox = Outbox(store, OutboxSettings(), clock=lambda: self.clock[0])
        sender = NoticeSender(self.outbox, lambda: self.router, AlertingSettings)
        self.hygiene = HygieneDesk(store, sender, self.desk)
        self.person = ""

    async def start(self) -> None:
        self.me = await _admin(self.store)
        made = await actions.create(
            self.store,
            actor=self.me,
            agency="ha-noi",
            fields={"name": "Nguyễn Văn A", "role": "technical-admin", "phone": PHONE,
                    "email": EMAIL, "channels": ["sms", "email"]},
            agencies=self.registry,
            now=NOW,
        )  # fmt: skip
        self.contact_id, self.person = made.id, made.person
        await self.desk.refresh()

    def channels(self) -> list[tuple[str, str]]:
        return [(r.channel, r.address) for r in self.router.people("ha-noi", "technical-admins")]


@pytest.fixture
async def hanoi(state_location: StateLocation, twilio_token: None) -> AsyncIterator[Hanoi]:
    del twilio_token
    store = await state_location.open()
    town = Hanoi(store)
    await town.start()
    try:
        yield town
    finally:
        await store.close()


async def test_an_invalid_number_is_flagged_skipped_told_once_and_cleared_by_an_edit(
    hanoi: Hanoi,
) -> None:
    assert hanoi.channels() == [("sms", PHONE), ("email", EMAIL)]
    sms = hanoi.router.people("ha-noi", "technical-admins")[0]
    await hanoi.outbox.enqueue([alert_item("alert-1", sms)])
    async with FakeTwilio() as api:
        api.script.append(Reply.invalid_number(PHONE))
        notifier = sms_notifier(api)
        try:
            assert await OutboxWorker(hanoi.outbox, notifier).run_once()
        finally:
            await notifier.aclose()
    flags = await _rows(
        hanoi.store,
        "SELECT channel, address, code, person, reported_at, cleared_at FROM address_flags",
    )
    assert flags == [("sms", PHONE, "21211", hanoi.person, None, None)]
    # The failed SMS went on to the e-mail (the outbox's fallback, as before).
    rows = await _rows(hanoi.store, "SELECT channel, status FROM outbox ORDER BY id")
    assert rows == [("sms", "failed"), ("email", "pending")]

    # The desk's tick sees the outbox's write: the next alert goes by e-mail alone.
    await hanoi.desk.tick(NOW + 1)
    assert hanoi.channels() == [("email", EMAIL)]
    # Failing again adds no second flag.
    again = await hanoi.store.transact(
        lambda db: hygiene_store.flag(db, "sms", PHONE, "21211", "again", hanoi.person, NOW + 2)
    )
    assert again is False

    # The admins (technical and high-level) are told once.
    await hanoi.hygiene.tick(NOW + 3)
    notices = await _rows(
        hanoi.store, "SELECT channel, address, text FROM outbox WHERE key NOT LIKE 'alert-%'"
    )
    assert sorted((c, a) for c, a, _ in notices) == [
        ("email", "binh@ha-noi.gov.vn"),
        ("email", EMAIL),
    ]
    text = notices[0][2]
    assert "Số điện thoại +84…345 của Nguyễn Văn A không nhận được tin nhắn" in text
    assert "21211: số không hợp lệ" in text and PHONE not in text
    reported = await _rows(hanoi.store, "SELECT reported_at FROM address_flags")
    assert reported == [(NOW + 3,)]
    await hanoi.hygiene.tick(NOW + 4)
    count = await _rows(hanoi.store, "SELECT COUNT(*) FROM outbox")
    assert count == [(4,)]  # nothing more

    # Editing the phone clears the old number's flag (audited with the edit).
    await actions.update(
        hanoi.store,
        actor=hanoi.me,
        agency="ha-noi",
        contact_id=hanoi.contact_id,
        changes={"phone": "+84912000999"},
        agencies=hanoi.registry,
        now=NOW + 5,
    )
    cleared = await _rows(hanoi.store, "SELECT cleared_at, cleared_by FROM address_flags")
    assert cleared == [(NOW + 5, hanoi.me.id)]
    detail = await _rows(
        hanoi.store, "SELECT detail FROM audit WHERE action = 'contact.update' ORDER BY id"
    )
    assert json.loads(detail[-1][0])["flags_cleared"] == ["sms"]
    await hanoi.desk.tick(NOW + 6)
    assert hanoi.channels() == [("sms", "+84912000999"), ("email", EMAIL)]


async def test_a_retryable_sms_failure_flags_nothing(hanoi: Hanoi) -> None:
    sms = hanoi.router.people("ha-noi", "technical-admins")[0]
    await hanoi.outbox.enqueue([alert_item("alert-1", sms)])
    async with FakeTwilio() as api:
        api.script.append(Reply.server_error())
        api.script.append(Reply.error(21610, "The recipient unsubscribed"))  # STOP: not flagged
        notifier = sms_notifier(api)
        try:
            assert await OutboxWorker(hanoi.outbox, notifier).run_once()
            rows = await _rows(hanoi.store, "SELECT status FROM outbox")
            assert rows == [("pending",)]
            hanoi.clock[0] += 3600
            assert await OutboxWorker(hanoi.outbox, notifier).run_once()
        finally:
            await notifier.aclose()
    rows = await _rows(hanoi.store, "SELECT channel, status FROM outbox ORDER BY id")
    assert rows == [("sms", "failed"), ("email", "pending")]
    assert await _rows(hanoi.store, "SELECT * FROM address_flags") == []
    await hanoi.desk.tick(NOW + 1)
    assert hanoi.channels() == [("sms", PHONE), ("email", EMAIL)]


class Mailbox:
    """Refuses gone@ for good (550) and later@ for now (450), accepts the rest."""

    def __init__(self) -> None:
        self.received: list[str] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        del server, session, options
        if address.lower().startswith("gone@"):
            return "550 5.1.1 <gone@ha-noi.gov.vn>: no such user"
        if address.startswith("later@"):
            return "450 4.2.1 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        del server, session
        self.received.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield box, controller.port
    finally:
        controller.stop()


async def test_a_mailbox_refused_for_good_is_flagged_and_one_refused_for_now_is_not(
    state_location: StateLocation, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    store = await state_location.open()
    try:
        outbox = Outbox(store, OutboxSettings(), clock=lambda: NOW)
        items = [
            OutboxItem(f"m-{who}", "email", f"{who}@ha-noi.gov.vn", f"ha-noi/c-{who}", "s", "t",
                       "t", None, None, "vi")
            for who in ("Gone", "later", "ok")
        ]  # fmt: skip
        await outbox.enqueue(items)
        settings = EmailSettings(
            host="127.0.0.1", port=port, security="none", from_addr="gs@npsp.example"
        )
        worker = OutboxWorker(outbox, EmailNotifier(settings))
        for _ in items:
            assert await worker.run_once()
        assert box.received == ["ok@ha-noi.gov.vn"]
        flags = await _rows(store, "SELECT channel, address, code, person FROM address_flags")
        # E-mail addresses are flagged without case.
        assert flags == [("email", "gone@ha-noi.gov.vn", "550", "ha-noi/c-Gone")]
        statuses = await _rows(store, "SELECT key, status FROM outbox ORDER BY key")
        assert statuses == [("m-Gone", "failed"), ("m-later", "pending"), ("m-ok", "sent")]
    finally:
        await store.close()


def test_masks_keep_the_country_code_and_last_three_digits_or_the_domain() -> None:
    assert masked_address("sms", "+84912000345") == "+84…345"
    assert masked_address("email", "gone@ha-noi.gov.vn") == "***@ha-noi.gov.vn"


# ----- the API ----------------------------------------------------------------------------------

ONE = "/api/v1/agencies/{a}/contacts/{id}"


async def test_flags_through_the_api_rbac_masks_and_audit(world: World) -> None:  # noqa: F811
    national = await world.caller("national-admin", None)
    body = {"name": "Phạm Thu Hà", "role": "technical-admin", "phone": "+84987654321",
            "email": "ha@bo.gov.vn", "channels": ["sms", "email"]}  # fmt: skip
    status, made = await national.call("POST", "/api/v1/agencies/bo-a/contacts", body)
    assert status == 201, made
    cid = made["id"]
    assert made["flags"] == []
    await world.store.transact(
        lambda db: hygiene_store.flag(
            db, "sms", "+84987654321", "21614", "not a mobile", made["person"], NOW
        )
    )
    admin = await world.caller("agency-admin", "bo-a")
    status, seen = await admin.call("GET", ONE.format(a="bo-a", id=cid))
    assert status == 200
    assert [(f["channel"], f["address"], f["code"]) for f in seen["flags"]] == [
        ("sms", "+84987654321", "21614")
    ]
    viewer = await world.caller("viewer", "bo-a")
    status, listed = await viewer.call("GET", "/api/v1/agencies/bo-a/contacts")
    shown = next(c for c in listed["contacts"] if c["id"] == cid)
    assert shown["flags"][0]["address"] == "+84…321" and shown["flags"][0]["reason"] is None

    clear = ONE.format(a="bo-a", id=cid) + "/flags/clear"
    refused: list[Caller] = [
        viewer,
        await world.caller("operator", "bo-a"),
        await world.caller("agency-admin", "bo-b"),
        await world.caller(None),
    ]
    for caller in refused:
        status, _ = await caller.call("POST", clear)
        assert status in (401, 403), status
    assert len(await _rows(world.store, "SELECT 1 FROM address_flags WHERE cleared_at IS NULL"))
    status, answer = await admin.call("POST", clear)
    assert (status, answer) == (200, {"contact": cid, "cleared": ["sms"]})
    status, answer = await national.call("POST", clear)
    assert (status, answer["cleared"]) == (200, [])
    status, _ = await admin.call("POST", ONE.format(a="bo-a", id="c-000000000000") + "/flags/clear")
    assert status == 404
    audit = await _rows(
        world.store, "SELECT actor, target, detail FROM audit WHERE action = 'contact.flags.clear'"
    )
    assert audit == [("agency-admin-bo-a", cid, json.dumps({"channels": ["sms"]}))]
    status, seen = await admin.call("GET", ONE.format(a="bo-a", id=cid))
    assert seen["flags"] == []
    await asyncio.sleep(0)


async def test_chromium_the_contacts_page_shows_a_flag_and_its_button_clears_it(
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    base = await usable_chromium(tmp_path)
    national = await world.caller("national-admin", None)
    body = {"name": "Đỗ Minh Khoa", "role": "technical-admin", "phone": "+84911222333",
            "email": "khoa@bo-a.gov.vn", "channels": ["sms", "email"]}  # fmt: skip
    status, made = await national.call("POST", "/api/v1/agencies/bo-a/contacts", body)
    assert status == 201
    await world.store.transact(
        lambda db: hygiene_store.flag(
            db, "sms", "+84911222333", "21211", "bad", made["person"], NOW
        )
    )
    # A viewer sees the flag, and no button (its page, fetched with its token).
    viewer = await world.account("viewer", "bo-a")
    headers = {"Authorization": f"Bearer {viewer}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(world.running.base + "/agency/bo-a/contacts", headers=headers) as seen,
    ):
        text = await seen.text()
    assert seen.status == 200
    assert "Không nhận được: SMS (21211)" in text and "clear-flags" not in text
    row = f"document.querySelector('tr[data-id={made['id']}]')"
    token = await world.account("agency-admin", "bo-a")
    async with devtools(base) as page:
        await page.go(world.running.base + "/agency/bo-a/contacts")
        await page.loading(
            page.js(
                f"document.getElementById('token').value = {json.dumps(token)};"
                " document.forms[document.forms.length - 1].submit()"
            )
        )
        assert "Không nhận được: SMS (21211)" in await page.js(f"{row}.innerText")
        assert await page.js(f"{row}.querySelectorAll('form.clear-flags').length") == 1
        await page.loading(page.js(f"{row}.querySelector('form.clear-flags').submit()"))
        assert await page.js("location.pathname") == "/agency/bo-a/contacts"
        assert "Không nhận được" not in await page.js(f"{row}.innerText")
    audit = await _rows(
        world.store, "SELECT actor, source FROM audit WHERE action = 'contact.flags.clear'"
    )
    assert audit == [("agency-admin-bo-a", "page")]


# ----- confirmation reminders -------------------------------------------------------------------

DAY = 86400.0
YEAR = 365 * DAY
WEB = "https://giamsat.example"


def confirmations(store: Store, period: float = YEAR) -> ConfirmationDesk:
    return ConfirmationDesk(
        store, lambda: ContactsSettings(confirm_after=f"{int(period)}s"), lambda: WEB
    )


async def _reminders(store: Store) -> list[tuple[Any, ...]]:
    return await _rows(
        store,
        "SELECT channel, address, text FROM outbox WHERE key LIKE 'contact-confirm/%' ORDER BY id",
    )


def _token(text: str) -> str:
    found = re.search(re.escape(WEB) + r"/contacts/confirm/([A-Za-z0-9_-]{43})\b", text)
    assert found is not None, text
    return found.group(1)


async def test_a_reminder_once_per_period_and_its_link_confirms_once(
    state_location: StateLocation,
) -> None:
    store = await state_location.open()
    try:
        me = await _admin(store)
        registry = [agency()]  # its two registry contacts are never reminded
        made = await actions.create(
            store,
            actor=me,
            agency="ha-noi",
            fields={"name": "Lê Văn Cường", "role": "technical-admin", "email": "cuong@hn.vn",
                    "portal_account": "cuong.hn", "channels": ["email", "inbox"]},
            agencies=registry,
            now=NOW,
        )  # fmt: skip
        desk = confirmations(store)
        await desk.tick(NOW + YEAR - 1)  # not due yet
        assert await _reminders(store) == []
        await desk.tick(NOW + YEAR + 300)  # due, but the desk looked less than EVERY ago
        assert await _reminders(store) == []
        desk = confirmations(store)
        await desk.tick(NOW + YEAR + 1000)
        sent = await _reminders(store)
        assert [(c, a) for c, a, _ in sent] == [("email", "cuong@hn.vn"), ("inbox", "cuong.hn")]
        token = _token(sent[0][2])
        assert _token(sent[1][2]) == token
        # The database keeps the token's hash only.
        kept = await _rows(store, "SELECT token_hash, expires_at FROM contact_confirmations")
        assert kept == [(confirm.hashed(token), NOW + YEAR + 1000 + confirm.LINK_VALID)]
        assert token not in json.dumps(kept)
        # Later in the same period (a restart: a new desk): nothing more.
        await confirmations(store).tick(NOW + YEAR + 40 * DAY)
        assert len(await _reminders(store)) == 2

        assert await confirm.open_token(store, "x" * 43, NOW + YEAR + 2000) is None
        opened = await confirm.open_token(store, token, NOW + YEAR + 2000)
        assert opened is not None and opened.contact.id == made.id
        done = await confirm.confirm_by_token(store, token, NOW + YEAR + 2000)
        assert done is not None and done.id == made.id
        row = await _rows(store, "SELECT confirmed_at FROM contacts WHERE id = ?", made.id)
        assert row == [(NOW + YEAR + 2000,)]
        audit = await _rows(
            store, "SELECT actor, target, source FROM audit WHERE action = 'contact.confirm'"
        )
        assert audit == [(f"contact:{made.id}", made.id, "page")]
        # Single use.
        assert await confirm.open_token(store, token, NOW + YEAR + 2001) is None
        assert await confirm.confirm_by_token(store, token, NOW + YEAR + 2001) is None

        # Confirmed: the next reminder comes a period after the confirmation, not before.
        await confirmations(store).tick(NOW + 2 * YEAR + 1000)
        assert len(await _reminders(store)) == 2
        await confirmations(store).tick(NOW + 2 * YEAR + 3000)
        sent = await _reminders(store)
        assert len(sent) == 4
        late = _token(sent[2][2])
        # Expired after 30 days.
        expired_at = NOW + 2 * YEAR + 3000 + confirm.LINK_VALID
        assert await confirm.open_token(store, late, expired_at - 1) is not None
        assert await confirm.confirm_by_token(store, late, expired_at) is None
    finally:
        await store.close()


async def test_the_confirm_page_works_once_and_says_nothing_of_a_wrong_link(
    world: World,  # noqa: F811
) -> None:
    national = await world.caller("national-admin", None)
    body = {"name": "Vũ Thị Dung", "role": "technical-admin", "email": "dung@bo-a.gov.vn",
            "channels": ["email"]}  # fmt: skip
    status, made = await national.call("POST", "/api/v1/agencies/bo-a/contacts", body)
    assert status == 201
    token = confirm.new_token()
    now = time.time()
    await world.store.transact(
        lambda db: confirm_store.add(
            db, made["id"], now, confirm.hashed(token), now, now + confirm.LINK_VALID
        )
    )
    site = world.running.base
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{site}/contacts/confirm/{token}") as page:
            assert page.status == 200
            text = await page.text()
        assert "Vũ Thị Dung" in text and "dung@bo-a.gov.vn" in text
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', text)
        assert csrf is not None
        url = f"{site}/contacts/confirm/{token}"
        # A forged form (no token of the page), and one posted from another site.
        async with http.post(url, data={"csrf": "0" * 64}) as refused:
            assert refused.status == 403
        headers = {"Origin": "https://evil.example"}
        async with http.post(url, data={"csrf": csrf.group(1)}, headers=headers) as refused:
            assert refused.status == 403
        async with http.post(url, data={"csrf": csrf.group(1)}) as done:
            assert done.status == 200
            assert "đã được xác nhận" in await done.text()
        async with http.post(url, data={"csrf": csrf.group(1)}) as again:
            assert again.status == 404
        async with http.get(url) as used:
            used_text = await used.text()
            assert used.status == 404
        other = confirm.new_token()
        async with http.get(f"{site}/contacts/confirm/{other}") as wrong:
            assert wrong.status == 404
            # Nothing tells one from the other (but the path itself, in the language link).
            assert (await wrong.text()).replace(other, "T") == used_text.replace(token, "T")
            assert "Vũ Thị Dung" not in used_text
        # Guessing is throttled like the login page: 10 wrong links a minute, then 429.
        statuses = []
        for _ in range(8):
            async with http.get(f"{site}/contacts/confirm/{confirm.new_token()}") as guess:
                statuses.append(guess.status)
        assert statuses[:7] == [404] * 7 and statuses[7] == 429
    status, seen = await national.call("GET", f"/api/v1/agencies/bo-a/contacts/{made['id']}")
    assert seen["confirmed_at"] is not None
    audit = await _rows(world.store, "SELECT source FROM audit WHERE action = 'contact.confirm'")
    assert audit == [("page",)]


async def test_chromium_a_contact_confirms_from_the_reminders_link(
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    base = await usable_chromium(tmp_path)
    national = await world.caller("national-admin", None)
    body = {"name": "Hoàng Văn Em", "role": "high-level-admin", "email": "em@bo-b.gov.vn",
            "channels": ["email"]}  # fmt: skip
    status, made = await national.call("POST", "/api/v1/agencies/bo-b/contacts", body)
    assert status == 201
    token, now = confirm.new_token(), time.time()
    await world.store.transact(
        lambda db: confirm_store.add(
            db, made["id"], now, confirm.hashed(token), now, now + confirm.LINK_VALID
        )
    )
    async with devtools(base) as page:  # nobody logged in: the link is the credential
        await page.go(f"{world.running.base}/contacts/confirm/{token}")
        details = await page.js("document.querySelector('table.confirm').innerText")
        assert "Hoàng Văn Em" in details and "em@bo-b.gov.vn" in details
        await page.loading(page.js("document.querySelector('form.confirm').submit()"))
        assert "đã được xác nhận" in await page.js("document.body.innerText")
        await page.go(f"{world.running.base}/contacts/confirm/{token}")
        assert "không hợp lệ hoặc đã hết hạn" in await page.js("document.body.innerText")
    row = await _rows(world.store, "SELECT confirmed_at FROM contacts WHERE id = ?", made["id"])
    assert row[0][0] is not None


def test_the_router_leaves_a_flagged_address_out_but_never_everyone() -> None:
    person = agency(
        contacts=[
            {
                "name": "A",
                "role": "technical-admin",
                "phone": PHONE,
                "email": EMAIL,
                "channels": ["sms"],
            }
        ]
    ).contacts[0]
    sms_only = recipients_of("ha-noi/a", person)
    assert [(r.channel, r.fallbacks) for r in sms_only] == [("sms", (("email", EMAIL),))]
    # Its only listed channel flagged: the unlisted e-mail takes its place.
    flagged = frozenset({("sms", PHONE)})
    assert [(r.channel, r.fallbacks) for r in recipients_of("ha-noi/a", person, flagged)] == [
        ("email", ())
    ]
    # E-mail flags compare without case; every address flagged: tried rather than nobody told.
    both = frozenset({("sms", PHONE), ("email", EMAIL.lower())})
    assert [r.channel for r in recipients_of("ha-noi/a", person, both)] == ["sms"]


async def test_an_operations_address_is_skipped_too_and_operations_are_told(
    state_location: StateLocation,
) -> None:
    store = await state_location.open()
    try:
        registry = [agency()]
        desk = ContactsDesk(store, lambda: registry)
        settings = AlertingSettings.model_validate(
            {
                "operations": [
                    {"name": "VPCP trực", "phone": "+84900000111", "email": "ops@vpcp.gov.vn",
                     "channels": ["sms", "email"]}
                ]
            }
        )  # fmt: skip
        router = Router(settings, registry, desk)
        await desk.refresh()
        assert [r.channel for r in router.people("", "operations")] == ["sms", "email"]
        await store.transact(
            lambda db: hygiene_store.flag(
                db, "sms", "+84900000111", "21614", "landline", "operations/0", NOW
            )
        )
        await desk.tick(NOW)
        assert [r.channel for r in router.people("", "operations")] == ["email"]
        outbox = Outbox(store, OutboxSettings(), clock=lambda: NOW)
        await HygieneDesk(store, NoticeSender(outbox, lambda: router, lambda: settings), desk).tick(
            NOW
        )
        told = await _rows(store, "SELECT channel, address, text FROM outbox")
        assert [(c, a) for c, a, _ in told] == [("email", "ops@vpcp.gov.vn")]
        assert "+84…111" in told[0][2] and "21614: không phải số di động" in told[0][2]
    finally:
        await store.close()
