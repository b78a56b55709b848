"""Issue 15, items 1 and 2: one person, one record; agencies manage their own contacts.

* the ``contacts`` store on both backends; the merged directory (the registry wins: a stored
  contact naming the same phone, e-mail, portal account or account as a registry contact of its
  agency is shadowed, never paged twice); the router's people and their ids;
* revocation: an account's pending messages dropped in its own transaction (audited with the
  count), the claim refusing what was queued after it, during a storm through a real outbox and
  a slow aiosmtpd server, on both backends;
* the API (/api/v1/agencies/{agency}/contacts, .../routing): the RBAC matrix (own and another
  agency × each role × a revoked account), strict input, read-only registry contacts, masks for
  viewers, audit entries;
* the page /agency/{id}/contacts in headless Chromium: an agency-admin adds and edits a contact
  through the forms; a POST without the CSRF token is refused.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from monitor import accounts
from monitor.accounts import Account
from monitor.alerting.outbox import Outbox, OutboxItem, OutboxWorker
from monitor.alerting.route import Router
from monitor.config import Agency
from monitor.config.alerting import AlertingSettings, OutboxSettings
from monitor.contacts import actions
from monitor.contacts import store as contacts_store
from monitor.contacts.directory import ContactsDesk, Directory
from monitor.contacts.model import StoredContact, masked
from monitor.store import Store
from notifiers.email import EmailNotifier
from notifiers.settings import EmailSettings
from tests.conftest import StateLocation, eventually
from tests.peers import free_port
from tests.test_api import (
    ROLES,
    Caller,
    World,
    world,  # noqa: F401 - the running daemon, a fixture
)
from tests.test_pages import devtools, usable_chromium

pytestmark = pytest.mark.timeout(120)

NOW = 1_780_000_000.0


def agency(aid: str = "ha-noi", contacts: list[dict[str, Any]] | None = None) -> Agency:
    return Agency.model_validate(
        {
            "id": aid,
            "kind": "province",
            "name_vi": f"Tỉnh {aid}",
            "name_en": f"Province {aid}",
            "code": aid.upper(),
            "contacts": contacts
            if contacts is not None
            else [
                {
                    "name": "Nguyễn Văn An",
                    "role": "technical-admin",
                    "phone": "+84912000001",
                    "email": "an@ha-noi.gov.vn",
                    "channels": ["sms", "email"],
                },
                {
                    "id": "lanh-dao",
                    "name": "Trần Thị Bình",
                    "role": "high-level-admin",
                    "email": "binh@ha-noi.gov.vn",
                    "account": "binh",
                    "channels": ["email"],
                },
            ],
        }
    )


def stored(cid: str, aid: str = "ha-noi", **fields: Any) -> StoredContact:
    base: dict[str, Any] = {
        "id": cid,
        "agency": aid,
        "name": f"Người {cid}",
        "role": "technical-admin",
        "phone": None,
        "email": f"{cid}@{aid}.gov.vn",
        "portal_account": None,
        "webhook": None,
        "channels": ("email",),
        "language": "vi",
        "account_id": None,
        "created_at": NOW,
        "updated_at": NOW,
        "confirmed_at": None,
        "removed_at": None,
    }
    base.update(fields)
    return StoredContact(**base)


# ----- the registry's ids, the directory and the router ---------------------------------------


def test_a_registry_contact_keeps_its_id_when_its_phone_changes_and_not_when_renamed() -> None:
    first = agency().contacts[0]
    moved = first.model_copy(update={"phone": "+84912999999"})
    renamed = first.model_copy(update={"name": "Nguyễn Văn Ân"})
    assert first.contact_id("ha-noi").startswith("y-") and len(first.contact_id("ha-noi")) == 12
    assert moved.contact_id("ha-noi") == first.contact_id("ha-noi")
    assert renamed.contact_id("ha-noi") != first.contact_id("ha-noi")
    assert first.contact_id("hue") != first.contact_id("ha-noi")  # the agency is part of it
    assert agency().contacts[1].contact_id("ha-noi") == "lanh-dao"  # an id: is kept


def test_the_config_refuses_two_contacts_with_one_id_and_a_database_id() -> None:
    twice = [{"name": "A", "role": "technical-admin", "email": "a@x.vn"}] * 2
    with pytest.raises(ValueError, match="is used twice"):
        agency(contacts=twice)
    with pytest.raises(ValueError, match="database's"):
        agency(contacts=[{"id": "c-0123456789ab", "name": "A", "role": "technical-admin"}])


def test_the_registry_wins_and_a_shadowed_contact_is_not_paged() -> None:
    registry = [agency(), agency("hue", contacts=[])]
    rows = [
        stored("c-000000000001", phone="+84912000001", email=None, channels=("sms",)),
        stored("c-000000000002", email="AN@ha-noi.gov.vn"),  # the same address, other case
        stored("c-000000000003", account_id="binh", role="high-level-admin"),
        stored("c-000000000004"),  # nobody else's: paged
        stored("c-000000000005", removed_at=NOW + 1),  # removed: not listed
        stored("c-000000000006", aid="hue", phone="+84912000001", channels=("sms",)),
    ]
    d = Directory(registry, rows)
    people = {p.id: p for p in d.people("ha-noi")}
    an = agency().contacts[0].contact_id("ha-noi")
    assert list(people) == [an, "lanh-dao", *(f"c-00000000000{i}" for i in range(1, 5))]
    assert people["c-000000000001"].shadowed_by == an
    assert people["c-000000000002"].shadowed_by == an
    assert people["c-000000000003"].shadowed_by == "lanh-dao"
    assert people["c-000000000004"].active and people["c-000000000004"].source == "store"
    # Another agency's registry does not shadow: the same phone in Huế is Huế's own person.
    assert d.find("hue", "c-000000000006") is not None
    assert d.find("hue", "c-000000000006").active  # type: ignore[union-attr]
    assert [p.id for p in d.active("ha-noi", "technical-admin")] == [an, "c-000000000004"]

    router = Router(AlertingSettings(), registry, lambda: d)
    got = [(r.person, r.channel, r.address) for r in router.people("ha-noi", "technical-admins")]
    assert got == [
        (f"ha-noi/{an}", "sms", "+84912000001"),
        (f"ha-noi/{an}", "email", "an@ha-noi.gov.vn"),
        ("ha-noi/c-000000000004", "email", "c-000000000004@ha-noi.gov.vn"),
    ]
    # Without a store: the registry alone, with the same ids.
    alone = Router(AlertingSettings(), registry)
    assert [r.person for r in alone.people("ha-noi", "high-level-admins")] == ["ha-noi/lanh-dao"]


def test_a_revoked_account_takes_its_person_out_of_the_routes() -> None:
    rows = [stored("c-000000000007", account_id="kt1"), stored("c-000000000008")]
    d = Directory([agency()], rows, revoked=frozenset({"binh", "kt1"}))
    assert not d.find("ha-noi", "lanh-dao").active  # type: ignore[union-attr]
    assert d.find("ha-noi", "lanh-dao").revoked  # type: ignore[union-attr]
    router = Router(AlertingSettings(), [agency()], lambda: d)
    assert router.people("ha-noi", "high-level-admins") == []
    people = {r.person for r in router.people("ha-noi", "technical-admins")}
    assert "ha-noi/c-000000000007" not in people and "ha-noi/c-000000000008" in people


def test_masks_keep_the_last_three_digits_and_the_domain() -> None:
    assert masked("+84912345678") == "*********678"
    assert masked("an@ha-noi.gov.vn") == "***@ha-noi.gov.vn"
    assert masked(None) is None


# ----- the store, on both backends ------------------------------------------------------------


async def _admin(store: Store, account_id: str = "vpcp", **kw: Any) -> Account:
    kw.setdefault("role", "national-admin")
    kw.setdefault("agency", None)
    made, _ = await accounts.create(
        store,
        actor=None,
        account_id=account_id,
        name=account_id,
        agencies={"ha-noi", "hue"},
        now=NOW,
        **kw,
    )
    return made


async def test_the_store_keeps_contacts_and_ties(state_location: StateLocation) -> None:
    store = await state_location.open()
    try:
        me = await _admin(store)
        kt = await _admin(store, "kt1", role="operator", agency="ha-noi")
        registry = [agency()]
        made = await actions.create(
            store,
            actor=me,
            agency="ha-noi",
            fields={"name": "Lê Văn Cường", "role": "technical-admin", "phone": "+84912000009",
                    "channels": ["sms"], "account_id": kt.id},
            agencies=registry,
            now=NOW,
        )  # fmt: skip
        assert made.id.startswith("c-") and len(made.id) == 14 and made.source == "store"
        edited = await actions.update(
            store,
            actor=me,
            agency="ha-noi",
            contact_id=made.id,
            changes={"email": "cuong@ha-noi.gov.vn", "channels": ["email", "sms"]},
            agencies=registry,
            now=NOW + 5,
        )
        assert edited.contact.channels == ["email", "sms"] and edited.stored is not None
        assert edited.stored.updated_at == NOW + 5 and edited.stored.created_at == NOW
        # The registry's ties, for the outbox; the people of an account, both kinds.
        desk = ContactsDesk(store, lambda: registry)
        await desk.refresh()
        assert await store.transact(contacts_store.ties) == {"ha-noi/lanh-dao": "binh"}
        assert desk().find("ha-noi", made.id) is not None
        people = await store.transact(lambda db: contacts_store.people_of_account(db, "kt1"))
        assert people == [f"ha-noi/{made.id}"]
        await actions.remove(
            store, actor=me, agency="ha-noi", contact_id=made.id, agencies=registry, now=NOW + 9
        )
        await desk.refresh()
        assert desk().find("ha-noi", made.id) is None
        row = await store.transact(lambda db: contacts_store.get(db, made.id))
        assert row is not None and row.removed_at == NOW + 9  # kept, for the audit
        with pytest.raises(actions.ContactError) as gone:
            await actions.update(
                store, actor=me, agency="ha-noi", contact_id=made.id,
                changes={"name": "X"}, agencies=registry, now=NOW + 10,
            )  # fmt: skip
        assert gone.value.status == 404
        with pytest.raises(actions.ContactError) as yaml:
            await actions.remove(
                store, actor=me, agency="ha-noi", contact_id="lanh-dao", agencies=registry, now=NOW
            )
        assert yaml.value.status == 409 and "registry" in str(yaml.value)
        trail = await store.transact(
            lambda db: db.execute(
                "SELECT action, target, detail FROM audit WHERE action LIKE 'contact.%' ORDER BY id"
            ).fetchall()
        )
        assert [(a, t) for a, t, _ in trail] == [
            ("contact.create", made.id),
            ("contact.update", made.id),
            ("contact.remove", made.id),
        ]
        assert json.loads(trail[1][2])["email"] == {"from": None, "to": "cuong@ha-noi.gov.vn"}
    finally:
        await store.close()


# ----- revocation -----------------------------------------------------------------------------


def item(n: int, person: str, address: str, channel: str = "email") -> OutboxItem:
    return OutboxItem(
        key=f"storm-{person}-{channel}-{n}",
        channel=channel,  # type: ignore[arg-type]
        address=address,
        person=person,
        subject=f"Sự cố {n}",
        text=f"Hệ thống {n} mất kết nối",
        short=f"Su co {n}",
        html=None,
        thread_key=None,
        language="vi",
    )


async def _tied(store: Store, registry: list[Agency]) -> tuple[Account, Account, str]:
    """A national-admin, an operator of Hà Nội, and the stored contact tied to the operator."""
    me = await _admin(store)
    kt = await _admin(store, "kt1", role="operator", agency="ha-noi")
    made = await actions.create(
        store,
        actor=me,
        agency="ha-noi",
        fields={"name": "Kỹ thuật viên", "role": "technical-admin", "email": "kt1@ha-noi.gov.vn",
                "phone": "+84912000077", "channels": ["email"], "account_id": kt.id},
        agencies=registry,
        now=NOW,
    )  # fmt: skip
    return me, kt, made.person


async def test_the_claim_drops_what_a_stale_directory_queued_after_a_revocation(
    state_location: StateLocation,
) -> None:
    store = await state_location.open()
    try:
        registry = [agency()]
        desk = ContactsDesk(store, lambda: registry)
        await desk.refresh()  # the registry's tie of lanh-dao to "binh"
        me, kt, person = await _tied(store, registry)
        await _admin(store, "binh", role="agency-admin", agency="ha-noi")
        await accounts.revoke(store, actor=me, account_id=kt.id, now=NOW + 1)
        await accounts.revoke(store, actor=me, account_id="binh", now=NOW + 1)
        clock = [NOW + 2]
        outbox = Outbox(store, OutboxSettings(), clock=lambda: clock[0])
        await outbox.enqueue(
            [
                item(1, person, "kt1@ha-noi.gov.vn"),
                item(2, "ha-noi/lanh-dao", "binh@ha-noi.gov.vn"),
                item(3, "operations/0", "ops@vpcp.gov.vn"),
                item(4, person, "+84912000077", "sms"),
                item(5, "ha-noi/c-000000000004", "+84912000077", "sms"),  # the same phone
            ]
        )
        email = await outbox.claim("email", clock[0])
        assert email is not None and email.item.address == "ops@vpcp.gov.vn"
        assert await outbox.claim("email", clock[0]) is None
        sms = await outbox.claim("sms", clock[0])
        assert sms is not None and [i.person for _, i, _ in sms.rows] == ["ha-noi/c-000000000004"]
        rows = await store.transact(
            lambda db: db.execute(
                "SELECT person, channel, status, last_error FROM outbox ORDER BY id"
            ).fetchall()
        )
        dropped = {(p, c) for p, c, s, e in rows if s == "dropped" and e == "account revoked"}
        assert dropped == {(person, "email"), ("ha-noi/lanh-dao", "email"), (person, "sms")}
    finally:
        await store.close()


class SlowMailbox:
    """Accepts every message, 40 ms each, and remembers who got each and when."""

    def __init__(self) -> None:
        self.received: list[tuple[str, float]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        del server, session
        await asyncio.sleep(0.04)
        self.received.append((envelope.rcpt_tos[0], time.monotonic()))
        return "250 OK"


async def test_revocation_during_a_storm_stops_every_message_to_that_person(
    state_location: StateLocation,
) -> None:
    store = await state_location.open()
    mailbox = SlowMailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    await asyncio.to_thread(controller.start)
    try:
        registry = [agency()]
        me, kt, person = await _tied(store, registry)
        others = {"ha-noi/c-000000000004": "b@ha-noi.gov.vn", "operations/0": "ops@vpcp.gov.vn"}
        outbox = Outbox(store, OutboxSettings())
        storm = [
            item(n, who, address)
            for n in range(25)
            for who, address in [(person, "kt1@ha-noi.gov.vn"), *others.items()]
        ]
        assert await outbox.enqueue(storm) == 75
        settings = EmailSettings(
            host="127.0.0.1", port=controller.port, security="none", from_addr="gs@npsp.example"
        )
        worker = OutboxWorker(outbox, EmailNotifier(settings))
        task = asyncio.create_task(worker.run())
        deadline = time.monotonic() + 30
        while sum(to == "kt1@ha-noi.gov.vn" for to, _ in mailbox.received) < 3:
            assert time.monotonic() < deadline, "the storm did not start"
            await asyncio.sleep(0.01)
        await accounts.revoke(store, actor=me, account_id=kt.id, now=time.time())
        committed = time.monotonic()
        # A directory not yet refreshed queues more for the revoked person: never sent either.
        await outbox.enqueue([item(100 + n, person, "kt1@ha-noi.gov.vn") for n in range(5)])
        while sum(to != "kt1@ha-noi.gov.vn" for to, _ in mailbox.received) < 50:
            assert time.monotonic() < deadline, "the others were not all told"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # anything more would arrive now
        worker.finish()
        await asyncio.wait_for(task, 10)
    finally:
        await asyncio.to_thread(controller.stop)
    try:
        to_revoked = [at for to, at in mailbox.received if to == "kt1@ha-noi.gov.vn"]
        # At most the one message on the wire when the revocation committed arrives after it.
        assert len([at for at in to_revoked if at > committed]) <= 1
        assert len(to_revoked) < 25, "the storm was sent whole: the test proves nothing"
        per = {a: sum(to == a for to, _ in mailbox.received) for a in others.values()}
        assert per == {a: 25 for a in others.values()}  # the others are unaffected
        rows = await store.transact(
            lambda db: db.execute(
                "SELECT status, COUNT(*) FROM outbox WHERE person = ? GROUP BY status", (person,)
            ).fetchall()
        )
        statuses = dict(rows)
        assert set(statuses) <= {"sent", "dropped"} and statuses["dropped"] >= 5
        assert statuses.get("sent", 0) == len(to_revoked)
        detail = await store.transact(
            lambda db: db.execute(
                "SELECT detail FROM audit WHERE action = 'account.revoke' AND target = 'kt1'"
            ).fetchone()[0]
        )
        audited = json.loads(detail)
        assert audited["contacts"] == [person]
        # What the revocation dropped itself (the late five were dropped by the claim).
        assert audited["dropped"] == statuses["dropped"] - 5
        assert await outbox.pending() == {}
    finally:
        await store.close()


# ----- the API ----------------------------------------------------------------------------------

CONTACTS = "/api/v1/agencies/{a}/contacts"
NEW = {
    "name": "Phạm Thu Hà",
    "role": "technical-admin",
    "phone": "+84987654321",
    "email": "ha@bo.gov.vn",
    "channels": ["sms", "email"],
    "language": "vi",
}


async def _made(admin: Caller, agency: str, **fields: Any) -> str:
    status, answer = await admin.call("POST", CONTACTS.format(a=agency), {**NEW, **fields})
    assert status == 201, answer
    return str(answer["id"])


async def test_contacts_rbac_matrix(world: World) -> None:  # noqa: F811
    national = await world.caller("national-admin", None)
    ids = {a: await _made(national, a) for a in ("bo-a", "bo-b")}
    failures = []
    # role -> (own, other) per endpoint
    table: list[tuple[str, str, Any, dict[str, tuple[int, int]]]] = [
        ("GET", CONTACTS, None, {"national-admin": (200, 200), "agency-admin": (200, 403),
                                 "operator": (200, 403), "viewer": (200, 403)}),
        ("POST", CONTACTS, NEW, {"national-admin": (201, 201), "agency-admin": (201, 403),
                                 "operator": (403, 403), "viewer": (403, 403)}),
        ("GET", CONTACTS + "/{id}", None, {"national-admin": (200, 200),
                                           "agency-admin": (200, 403), "operator": (200, 403),
                                           "viewer": (200, 403)}),
        ("PATCH", CONTACTS + "/{id}", {"language": "en"}, {"national-admin": (200, 200),
                                                          "agency-admin": (200, 403),
                                                          "operator": (403, 403),
                                                          "viewer": (403, 403)}),
        ("DELETE", CONTACTS + "/{fresh}", None, {"national-admin": (200, 200),
                                                 "agency-admin": (200, 403),
                                                 "operator": (403, 403), "viewer": (403, 403)}),
        ("GET", "/api/v1/agencies/{a}/routing", None, {"national-admin": (200, 200),
                                                      "agency-admin": (200, 403),
                                                      "operator": (200, 403),
                                                      "viewer": (200, 403)}),
    ]  # fmt: skip
    for role in ROLES:
        caller = await world.caller(role, "bo-a")
        for which, agency in (("own", "bo-a"), ("other", "bo-b")):
            for method, path, body, matrix in table:
                fresh = await _made(national, agency) if "{fresh}" in path else ""
                url = path.format(a=agency, id=ids[agency], fresh=fresh)
                status, _answer = await caller.call(method, url, body)
                want = matrix[role][0 if which == "own" else 1]
                if status != want:
                    failures.append(f"{role:<15} {which:<5} {method} {path}: {status} != {want}")
    # A revoked account, an anonymous caller: 401 everywhere.
    _, token = await accounts.create(
        world.store, actor=None, account_id="gone", name="Đã nghỉ", role="agency-admin",
        agency="bo-a", agencies={"bo-a", "bo-b"}, now=time.time(),
    )  # fmt: skip
    await accounts.revoke(world.store, actor=None, account_id="gone", now=time.time())
    for who in (Caller(world.running.base, token), Caller(world.running.base, None)):
        for method, path, body, _ in table:
            url = path.format(a="bo-a", id=ids["bo-a"], fresh=ids["bo-a"])
            status, _answer = await who.call(method, url, body)
            if status != 401:
                failures.append(f"{who.token and 'revoked'} {method} {path}: {status} != 401")
    assert not failures, "\n".join(failures)


async def test_a_contact_through_the_api_is_audited_masked_for_viewers_and_routed(
    world: World,  # noqa: F811
) -> None:
    admin = await world.caller("agency-admin", "bo-a")
    cid = await _made(admin, "bo-a")
    status, one = await admin.call("GET", f"{CONTACTS.format(a='bo-a')}/{cid}")
    assert status == 200 and one["phone"] == "+84987654321" and one["source"] == "store"
    assert one["person"] == f"bo-a/{cid}" and one["active"] and not one["read_only"]
    status, edited = await admin.call(
        "PATCH", f"{CONTACTS.format(a='bo-a')}/{cid}", {"phone": "+84987000111", "email": None,
                                                       "channels": ["sms"]}
    )  # fmt: skip
    assert status == 200, edited
    assert edited["phone"] == "+84987000111" and edited["email"] is None

    viewer = await world.caller("viewer", "bo-a")
    status, listed = await viewer.call("GET", CONTACTS.format(a="bo-a"))
    assert status == 200 and not listed["may_edit"]
    mine = next(c for c in listed["contacts"] if c["id"] == cid)
    assert mine["phone"] == "*********111"
    yaml = next(c for c in listed["contacts"] if c["source"] == "registry")
    assert yaml["read_only"] and yaml["name"] == "KT bo-a" and yaml["id"].startswith("y-")

    status, routing = await viewer.call("GET", "/api/v1/agencies/bo-a/routing")
    assert status == 200
    outage = next(t for t in routing["told"] if t["kind"] == "outage")
    assert {(r["person"], r["channel"], r["address"]) for r in outage["recipients"]} >= {
        (f"bo-a/{cid}", "sms", "*********111"),
        (f"bo-a/{yaml['id']}", "inbox", "kt.bo-a"),
    }
    steps = [(t["after"], t["target"]) for t in routing["told"] if t["kind"] == "escalation"]
    assert steps == [(1800.0, "high-level-admins"), (3600.0, "operations")]

    status, answer = await admin.call("DELETE", f"{CONTACTS.format(a='bo-a')}/{cid}")
    assert status == 200, answer
    status, _ = await admin.call("GET", f"{CONTACTS.format(a='bo-a')}/{cid}")
    assert status == 404
    status, audit = await admin.call("GET", "/api/v1/audit")
    entries = [e for e in audit["audit"] if e["target"] == cid]
    actions_seen = sorted(e["action"] for e in entries)
    assert actions_seen == ["contact.create", "contact.remove", "contact.update"], audit
    assert all(e["actor"] == "agency-admin-bo-a" and e["agency"] == "bo-a" for e in entries)


async def test_registry_contacts_are_read_only_and_bad_input_gets_a_reason(world: World) -> None:  # noqa: F811
    admin = await world.caller("agency-admin", "bo-a")
    status, listed = await admin.call("GET", CONTACTS.format(a="bo-a"))
    yaml_id = listed["contacts"][0]["id"]
    for method, body in (("PATCH", {"name": "Khác"}), ("DELETE", None)):
        status, answer = await admin.call(method, f"{CONTACTS.format(a='bo-a')}/{yaml_id}", body)
        assert status == 409 and "registry" in answer["error"], (method, answer)
    url = CONTACTS.format(a="bo-a")
    bad: list[tuple[Any, str]] = [
        ({**NEW, "phone": "0987654321"}, "phone"),  # not E.164
        ({**NEW, "email": "ha@"}, "email"),
        ({**NEW, "channels": ["sms", "sms"]}, "twice"),
        ({**NEW, "channels": []}, "channels"),
        ({**NEW, "channels": ["fax"]}, "channels"),
        ({**NEW, "phone": None}, "channel sms needs phone"),
        ({**NEW, "language": "fr"}, "language"),
        ({**NEW, "role": "operator"}, "role"),
        ({**NEW, "name": ""}, "name"),
        ({**NEW, "name": "a\x00b"}, "name"),
        ({**NEW, "extra": 1}, "extra"),
        ({**NEW, "channels": "sms"}, "channels"),
        ({**NEW, "account_id": "nobody"}, "no account"),
        ({k: v for k, v in NEW.items() if k != "name"}, "name"),
    ]
    for body, reason in bad:
        status, answer = await admin.call("POST", url, body)
        assert status in (400, 404) and reason in answer["error"], (body, status, answer)
    status, answer = await admin.call("POST", url, raw=b"{not json")
    assert status == 400
    status, answer = await admin.call("PATCH", f"{url}/c-000000000000", {"name": "X"})
    assert status == 404
    status, answer = await admin.call("GET", "/api/v1/agencies/bo-a/contacts/c-000000000000")
    assert status == 404
    national = await world.caller("national-admin", None)
    status, answer = await national.call("GET", CONTACTS.format(a="bo-zz"))
    assert status == 404
    # Tying a person to another agency's account is refused.
    await world.account("operator", "bo-b")
    status, answer = await admin.call("POST", url, {**NEW, "account_id": "operator-bo-b"})
    assert status == 400 and "not bo-a's" in answer["error"]


# ----- the page, in a real browser --------------------------------------------------------------


async def test_chromium_an_agency_admin_adds_and_edits_a_contact(
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    base = await usable_chromium(tmp_path)
    token = await world.account("agency-admin", "bo-a")
    site = world.running.base
    async with devtools(base) as page:
        await page.go(site + "/agency/bo-a/contacts")
        assert await page.js("location.pathname") == "/login"
        await page.loading(
            page.js(
                f"document.getElementById('token').value = {json.dumps(token)};"
                " document.forms[document.forms.length - 1].submit()"
            )
        )
        assert await page.js("location.pathname") == "/agency/bo-a/contacts"
        # The registry's contact is listed read-only: no edit link on its row.
        assert await page.js("document.querySelectorAll('tr[data-source=registry] a').length") == 0
        told = await page.js("document.querySelector('table.told').innerText")
        assert "KT bo-a" in told
        fill = (
            "const f = document.querySelector('form.contact');"
            "f.name.value = 'Đỗ Minh Khoa'; f.phone.value = '+84911222333';"
            "f.email.value = 'khoa@bo-a.gov.vn';"
            "for (const b of f.querySelectorAll('input[name=channels]'))"
            " b.checked = ['sms', 'email'].includes(b.value);"
            "f.submit()"
        )
        await page.loading(page.js(fill))
        assert await page.js("location.pathname") == "/agency/bo-a/contacts"
        row = "document.querySelector('tr[data-source=store]')"
        text = await page.js(f"{row}.innerText")
        assert "Đỗ Minh Khoa" in text and "+84911222333" in text and "sms, email" in text
        assert "Đỗ Minh Khoa" in await page.js("document.querySelector('table.told').innerText")
        await page.loading(page.js(f"{row}.querySelector('a').click()"))
        assert (await page.js("location.pathname")).startswith("/agency/bo-a/contacts/c-")
        await page.loading(
            page.js(
                "const f = document.querySelector('form.contact');"
                "f.phone.value = '+84911000444'; f.submit()"
            )
        )
        text = await page.js(f"{row}.innerText")
        assert "+84911000444" in text and "+84911222333" not in text
        await page.screenshot(tmp_path / "contacts.png")
        # A form without its CSRF token (what another page could make the browser send).
        await page.loading(
            page.js(
                "const g = document.createElement('form'); g.method = 'post';"
                " g.action = '/agency/bo-a/contacts';"
                " const i = document.createElement('input'); i.name = 'name'; i.value = 'Kẻ lạ';"
                " g.appendChild(i); document.body.appendChild(g); g.submit()"
            )
        )
        assert "không hợp lệ" in await page.js("document.body.innerText")
    status, listed = await (await world.caller("agency-admin", "bo-a")).call(
        "GET", CONTACTS.format(a="bo-a")
    )
    assert status == 200
    names = [c["name"] for c in listed["contacts"]]
    assert names == ["KT bo-a", "Đỗ Minh Khoa"]  # the forged form added nobody
    _, audit = await (await world.caller("agency-admin", "bo-a")).call("GET", "/api/v1/audit")
    assert [e["action"] for e in audit["audit"] if e["action"].startswith("contact.")] == [
        "contact.update",
        "contact.create",
    ]
    assert all(e["source"] == "page" for e in audit["audit"] if e["action"].startswith("contact."))


async def test_the_daemons_router_pages_a_contact_added_through_the_api(world: World) -> None:  # noqa: F811
    """The running pipeline's router reads the directory the rules loop keeps fresh: a contact
    added through the API is paged, one the registry overrides is not, a revoked one stops."""
    admin = await world.caller("agency-admin", "bo-a")
    cid = await _made(admin, "bo-a")
    shadow = await _made(admin, "bo-a", portal_account="kt.bo-a", channels=["inbox"])
    parts = world.running.daemon._life.parts
    assert parts is not None
    router = parts.pipeline.router

    def people() -> set[str]:
        return {r.person for r in router.people("bo-a", "technical-admins")}

    await eventually(lambda: f"bo-a/{cid}" in people())
    assert f"bo-a/{shadow}" not in people()  # the registry's kt.bo-a inbox: told once
    status, listed = await admin.call("GET", CONTACTS.format(a="bo-a"))
    shadowed = next(c for c in listed["contacts"] if c["id"] == shadow)
    assert shadowed["overridden_by_registry"] and not shadowed["active"]
    op = await world.account("operator", "bo-a")
    assert op
    status, _ = await admin.call("PATCH", f"{CONTACTS.format(a='bo-a')}/{cid}",
                                 {"account_id": "operator-bo-a"})  # fmt: skip
    assert status == 200
    await accounts.revoke(world.store, actor=None, account_id="operator-bo-a", now=time.time())
    await eventually(lambda: f"bo-a/{cid}" not in people())
