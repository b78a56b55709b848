"""A path cut seen by one vantage only (issue 13): three gateway hosts as real daemons on one
real PostgreSQL, gw-2 inside a network namespace of its own (tests/netns.py), so that a
``prohibit`` route there takes the targets (or its uplink canaries) away from gw-2 alone while it
keeps the database. Nothing leaves the machine: every address is on a veth pair made here.

* the targets cut from gw-2 only: a path problem, told once to the operations team ("… chỉ từ
  gw-2"), never to the agencies;
* gw-2's canaries cut: it stops voting, and then its targets cut too page nobody (the two
  others, voting, see the systems up).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller

from monitor.cluster.votes import FAIL
from monitor.pglocal import LocalPostgres, find_bindir
from tests.cluster_hosts import Host, Mailbox, cluster_config, leaders, until
from tests.netns import Lab, lab, namespaces, unavailable
from tests.peers import free_port

OPS = "ops@vpcp.dvc.example"
AGENCIES = 2
CHECKS = [f"ag-{a:02d}/s0/tcp" for a in range(AGENCIES)]
PATH_NOTICE_AFTER = 2.0  # cluster_config's default cluster settings


def _on_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _need(reason: str | None) -> None:
    """Skip without ``reason``'s prerequisite, except on CI: there, fail."""
    if reason is None:
        return
    if _on_ci():
        pytest.fail(f"CI: {reason}", pytrace=False)
    pytest.skip(reason)


# --- the harness itself -------------------------------------------------------------------------


async def _connects_from(made: Lab, host: str, port: int) -> bool:
    """Whether a process inside the namespace can open a TCP connection to host:port."""
    code = (
        "import socket, sys\n"
        "try:\n"
        f"    socket.create_connection(({host!r}, {port}), timeout=2).close()\n"
        "except OSError:\n"
        "    sys.exit(1)\n"
    )
    process = await asyncio.create_subprocess_exec(*made.prefix, "python3", "-c", code)
    return await process.wait() == 0


async def _server(host: str) -> asyncio.Server:
    async def handle(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.close()

    return await asyncio.start_server(handle, host, 0)


def _port(server: asyncio.Server) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port


async def test_the_namespace_reaches_the_host_until_cut_and_is_removed() -> None:
    _need(unavailable())
    with lab() as made:
        name, link = made.name, made.host_link
        assert name in namespaces()
        target, canary = await _server(made.target_ip), await _server(made.canary_ip)
        try:
            assert await _connects_from(made, made.target_ip, _port(target))
            assert await _connects_from(made, made.canary_ip, _port(canary))
            # Nothing can leave the machine from inside: no default route, the veth's only.
            routes = made.routes()
            assert routes == [f"10.213.{made.index}.0/24"], routes
            made.cut(made.target_ip)
            assert not await _connects_from(made, made.target_ip, _port(target))
            assert await _connects_from(made, made.canary_ip, _port(canary)), "only what is cut"
            # The host namespace still reaches it (the cut is gw-2's alone).
            with socket.create_connection((made.target_ip, _port(target)), timeout=2):
                pass
            made.mend()
            assert await _connects_from(made, made.target_ip, _port(target))
        finally:
            for server in (target, canary):
                server.close()
                await server.wait_closed()
    assert name not in namespaces()
    assert not Path(f"/sys/class/net/{link}").exists()


def test_a_failed_test_still_removes_the_namespace() -> None:
    _need(unavailable())
    seen: list[str] = []

    def fail_inside() -> None:
        with lab() as made:
            seen.append(made.name)
            assert made.name in namespaces()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    assert seen and seen[0] not in namespaces()


# --- three daemons, gw-2 in the namespace -------------------------------------------------------


class Net:
    """The module's namespace and a PostgreSQL that gw-2 reaches through it."""

    def __init__(self, made: Lab, server: LocalPostgres) -> None:
        self.lab = made
        self.pg = server


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    _need(unavailable())
    if find_bindir() is None:
        _need("PostgreSQL is not installed; scripts/test-services.sh installs it")
    with lab() as made:
        server = LocalPostgres(extra_listen=[made.host_interface])
        server.start_blocking()
        try:
            yield Net(made, server)
        finally:
            server.stop_blocking()


def test_postgres_listens_on_the_veth_as_well_as_loopback(net: Net) -> None:
    password = net.pg.password_file.read_text().strip()
    url = net.pg.url.replace("127.0.0.1", net.lab.host_ip)
    with psycopg.connect(url, password=password, connect_timeout=5) as conn:
        row = conn.execute("SELECT current_setting('listen_addresses')").fetchone()
        hba = conn.execute("SELECT current_user").fetchone()
    assert row == (f"127.0.0.1,{net.lab.host_ip}",)
    assert hba == ("npsp",)


@pytest.fixture
async def mailbox() -> AsyncIterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    await asyncio.to_thread(controller.start)
    yield box, controller.port
    await asyncio.to_thread(controller.stop)


def _agencies(host: str, port: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"ag-{a:02d}",
            "kind": "province",
            "name_vi": f"Tỉnh {a}",
            "name_en": f"Province {a}",
            "code": f"{a:02d}",
            "contacts": [
                {
                    "name": f"KT {a}",
                    "role": "technical-admin",
                    "email": f"kt@ag-{a:02d}.dvc.example",
                    "channels": ["email"],
                }
            ],
            "systems": [
                {
                    "id": "s0",
                    "kind": "other",
                    "name": "Cổng dịch vụ công",
                    "checks": [{"id": "tcp", "kind": "tcp", "host": host, "port": port}],
                }
            ],
        }
        for a in range(AGENCIES)
    ]


class Paths:
    """gw-1 and gw-3 on the host, gw-2 in the namespace; a target server and a canary server
    on the host side of the veth pair."""

    def __init__(self, net: Net, folder: Path, smtp_port: int) -> None:
        self.net = net
        self.folder = folder
        self.smtp_port = smtp_port
        self.hosts: list[Host] = []
        self.servers: list[asyncio.Server] = []
        self.url = ""

    async def start(self) -> None:
        made = self.net.lab
        target, canary = await _server(made.target_ip), await _server(made.canary_ip)
        self.servers = [target, canary]
        name = f"paths_{secrets.token_hex(4)}"
        url = self.url = await self.net.pg.create_database(name)
        for vantage in ("gw-1", "gw-3", "gw-2"):
            inside = vantage == "gw-2"
            port = free_port()
            path = cluster_config(
                self.folder,
                vantage=vantage,
                port=port,
                url=url.replace("127.0.0.1", made.host_ip) if inside else url,
                password_file=self.net.pg.password_file,
                agencies=_agencies(made.target_ip, _port(target)),
                # gw-2 (started last, never the leader here) sends nothing: its 127.0.0.1 is
                # the namespace's own loopback, where no mail server listens.
                channels={
                    "email": {
                        "host": "127.0.0.1",
                        "port": self.smtp_port,
                        "security": "none",
                        "from_addr": "giamsat@npsp.dvc.example",
                    }
                },
                operations=[{"name": "VPCP", "email": OPS, "channels": ["email"]}],
                canaries=[
                    {"id": "canary", "kind": "tcp", "host": made.canary_ip, "port": _port(canary)}
                ],
                listen_host=made.ns_ip if inside else "127.0.0.1",
            )
            host = Host(vantage, port, path, self.folder / f"{vantage}.log")
            if inside:
                host.address, host.prefix = made.ns_ip, made.prefix
            self.hosts.append(host)
        # gw-1 first, so that it leads (gw-2, which the test cuts, must not be the leader).
        await self.hosts[0].start()
        await until(lambda: leaders(self.hosts[:1]), 15, "gw-1 leading")
        await asyncio.gather(*(h.start() for h in self.hosts[1:]))

    async def verdicts(self, vantage: str) -> dict[str, int]:
        """The vantage's verdicts as shared in the store (check → level; a passing check has
        no row once it has never failed)."""
        password = self.net.pg.password_file.read_text().strip()
        async with await psycopg.AsyncConnection.connect(self.url, password=password) as conn:
            cursor = await conn.execute(
                "SELECT check_key, level FROM verdicts WHERE vantage = %s", (vantage,)
            )
            return {str(key): int(level) for key, level in await cursor.fetchall()}

    def host(self, vantage: str) -> Host:
        return next(h for h in self.hosts if h.vantage == vantage)

    async def voting(self, count: int) -> None:
        async def all_see() -> bool:
            values = await asyncio.gather(*(h.metric("npsp_vantages_voting") for h in self.hosts))
            return all(v == count for v in values)

        await until(all_see, 30, f"{count} vantages voting on every host")

    async def stop(self) -> list[int | None]:
        self.net.lab.mend()
        codes = list(await asyncio.gather(*(h.stop() for h in self.hosts)))
        for server in self.servers:
            server.close()
            await server.wait_closed()
        return codes

    def logs(self) -> str:
        return "\n".join(
            f"--- {h.vantage}\n{h.log.read_text()[-4000:]}" for h in self.hosts if h.log.exists()
        )


def _agency_mail(box: Mailbox) -> list[tuple[str, str]]:
    return [(to, text) for to, _, text in box.received if to != OPS]


async def test_targets_cut_from_one_vantage_are_a_path_notice_not_a_page(
    net: Net, tmp_path: Path, mailbox: tuple[Mailbox, int]
) -> None:
    box, smtp_port = mailbox
    paths = Paths(net, tmp_path, smtp_port)
    try:
        await paths.start()
        await paths.voting(3)
        leader = paths.host("gw-1")
        assert await leaders(paths.hosts) == [leader]
        net.lab.cut(net.lab.target_ip)  # gw-2 alone loses the agencies' servers

        async def one_vote_failing() -> bool:
            metrics = await leader.metrics()
            return all(
                metrics.get(f'npsp_system_votes_failing{{agency="ag-{a:02d}",system="s0"}}') == 1
                for a in range(AGENCIES)
            )

        await until(one_vote_failing, 15, "the leader counting gw-2's failing votes")

        async def notices() -> list[str]:
            return [text for to, _, text in box.received if to == OPS]

        told = await until(notices, PATH_NOTICE_AFTER + 10, "the path notice to operations")
        await asyncio.sleep(PATH_NOTICE_AFTER + 3)  # a page would have gone out by now
        assert await paths.host("gw-2").metric("npsp_vantages_voting") == 3, "gw-2 still votes"
    finally:
        codes = await paths.stop()
    assert _agency_mail(box) == [], (_agency_mail(box), paths.logs())
    told = [text for to, _, text in box.received if to == OPS]
    for a in range(AGENCIES):
        about = [t for t in told if f"ag-{a:02d}/s0/tcp" in t]
        assert len(about) == 1, (a, told)  # once, not once per host or per sync
        assert re.search(r"chỉ từ (điểm đo )?gw-2|from (vantage )?gw-2 only", about[0]), about
    assert codes == [0, 0, 0], paths.logs()
    assert "Traceback" not in paths.logs()


async def test_a_vantage_whose_canaries_are_cut_stops_voting_and_pages_nobody(
    net: Net, tmp_path: Path, mailbox: tuple[Mailbox, int]
) -> None:
    box, smtp_port = mailbox
    paths = Paths(net, tmp_path, smtp_port)
    try:
        await paths.start()
        await paths.voting(3)
        gw1 = paths.host("gw-1")
        net.lab.cut(net.lab.canary_ip)  # gw-2's uplink canaries fail: it cannot see

        async def gw2_not_voting() -> bool:
            metrics = await gw1.metrics()
            return (
                metrics.get('npsp_vantage_voting{vantage="gw-2"}') == 0
                and metrics.get("npsp_vantages_voting") == 2
            )

        await until(gw2_not_voting, 15, "gw-1 seeing gw-2 stop voting")
        net.lab.cut(net.lab.target_ip)  # and now its targets too: gw-2 has no vote to give

        async def gw2_sees_them_fail() -> bool:
            return await paths.verdicts("gw-2") == dict.fromkeys(CHECKS, FAIL)

        # Its own verdicts still reach the store; they must not count.
        await until(gw2_sees_them_fail, 15, "gw-2's failing verdicts in the store")
        await asyncio.sleep(PATH_NOTICE_AFTER + 3)
        metrics = await gw1.metrics()
        assert metrics.get('npsp_vantage_voting{vantage="gw-2"}') == 0
        for a in range(AGENCIES):
            key = f'npsp_system_votes_failing{{agency="ag-{a:02d}",system="s0"}}'
            assert metrics.get(key, 0) == 0, (key, metrics.get(key))
    finally:
        codes = await paths.stop()
    assert _agency_mail(box) == [], (_agency_mail(box), paths.logs())
    # Not a path problem either (a vantage that does not vote has no minority to report), nor
    # an alert's copy to operations: nothing about the agencies' systems at all.
    markers = ("ag-0", "Tỉnh ", "Province ", "Cổng dịch vụ công")  # ids and names
    about = [t for _, _, t in box.received if any(m in t for m in markers)]
    assert about == [], about
    assert codes == [0, 0, 0], paths.logs()
    assert "Traceback" not in paths.logs()
