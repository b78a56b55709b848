"""A network namespace joined to this machine by a veth pair, so that one daemon of a cluster test
sees the network differently from the others (issue 13: a path cut seen by one vantage only).

:class:`Lab` (root and ``ip`` from iproute2 needed; :func:`unavailable` says why not) claims a
free ``10.213.N.0/24``:

* ``10.213.N.1`` (:attr:`Lab.host_ip`) on the host side: PostgreSQL listens there too
  (``LocalPostgres(extra_listen=[lab.host_interface])``);
* ``10.213.N.3`` (:attr:`Lab.target_ip`) and ``10.213.N.4`` (:attr:`Lab.canary_ip`), two more
  host-side addresses for servers the daemons probe: processes of the host namespace reach them
  locally, a process in the namespace through the veth;
* ``10.213.N.2`` (:attr:`Lab.ns_ip`) on the namespace side, with ``lo`` up.

:meth:`Lab.cut` adds ``prohibit`` routes inside the namespace only, so the process there loses
those addresses at once (connect fails) while keeping the others; :meth:`Lab.mend` removes them.
Nothing leaves the machine: every address is on the veth pair. :meth:`Lab.close` (also on a
failed test) deletes the veth pair and the namespace.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator

__all__ = ["Lab", "LabError", "lab", "namespaces", "unavailable"]

_PREFIX = "10.213"


class LabError(RuntimeError):
    """An ``ip`` command failed."""


def unavailable() -> str | None:
    """Why a :class:`Lab` cannot be made here (None: it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "no `ip` (iproute2) to make network namespaces"
    return None


def _ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False, timeout=30)
    if check and done.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {(done.stdout + done.stderr).strip()}")
    return done.stdout


def namespaces() -> list[str]:
    """The names of the network namespaces that exist now."""
    return [line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()]


def _taken_subnets() -> set[int]:
    taken = set()
    for line in _ip("-4", "-o", "addr").splitlines():
        for word in line.split():
            if word.startswith(_PREFIX + "."):
                taken.add(int(word.split(".")[2]))
    return taken


def _remove_orphans() -> None:
    """Remove the namespaces of test processes that died without closing their lab (their veth
    pairs go with them)."""
    for name in namespaces():
        parts = name.split("-")
        mine = len(parts) == 4 and name.startswith("npsp-test-") and parts[2].isdigit()
        if mine and not os.path.exists(f"/proc/{parts[2]}"):
            _ip("netns", "del", name, check=False)


class Lab:
    """One namespace and its veth pair; :meth:`open` makes them, :meth:`close` removes them."""

    def __init__(self) -> None:
        self.index = -1
        self.name = ""
        self._made_namespace = False
        self._made_link = False
        self.cuts: set[str] = set()

    # --- addresses ------------------------------------------------------------------------------

    def _address(self, last: int) -> str:
        return f"{_PREFIX}.{self.index}.{last}"

    @property
    def host_ip(self) -> str:
        return self._address(1)

    @property
    def host_interface(self) -> str:
        """:attr:`host_ip` with the subnet whose clients it serves, for ``extra_listen``."""
        return f"{self.host_ip}/24"

    @property
    def ns_ip(self) -> str:
        return self._address(2)

    @property
    def target_ip(self) -> str:
        return self._address(3)

    @property
    def canary_ip(self) -> str:
        return self._address(4)

    @property
    def host_link(self) -> str:
        return f"npsp{self.index}h"

    @property
    def ns_link(self) -> str:
        return f"npsp{self.index}n"

    @property
    def prefix(self) -> list[str]:
        """The argv that runs a command inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    # --- lifecycle ------------------------------------------------------------------------------

    def open(self) -> Lab:
        _remove_orphans()
        taken = _taken_subnets()
        error: LabError | None = None
        for index in range(10, 250):
            if index in taken:
                continue
            self.index = index
            # Creating the link claims the index: another test process picking the same one
            # fails here and tries the next.
            try:
                _ip("link", "add", self.host_link, "type", "veth", "peer", "name", self.ns_link)
            except LabError as exc:
                error = exc
                continue
            self._made_link = True
            break
        else:
            raise LabError(f"no free {_PREFIX}.N.0/24 for a network namespace: {error}")
        try:
            self.name = f"npsp-test-{os.getpid()}-{self.index}"
            _ip("netns", "add", self.name)
            self._made_namespace = True
            _ip("link", "set", self.ns_link, "netns", self.name)
            for last in (1, 3, 4):
                plen = 24 if last == 1 else 32
                _ip("addr", "add", f"{self._address(last)}/{plen}", "dev", self.host_link)
            _ip("link", "set", self.host_link, "up")
            _ip("-n", self.name, "link", "set", "lo", "up")
            _ip("-n", self.name, "addr", "add", f"{self.ns_ip}/24", "dev", self.ns_link)
            _ip("-n", self.name, "link", "set", self.ns_link, "up")
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Remove the veth pair and the namespace (what of them was made); never raises."""
        if self._made_link:
            # Deleting one end deletes both, at once (a namespace's deletion is asynchronous).
            with contextlib.suppress(LabError, OSError, subprocess.SubprocessError):
                _ip("link", "del", self.host_link, check=False)
            self._made_link = False
        if self._made_namespace:
            with contextlib.suppress(LabError, OSError, subprocess.SubprocessError):
                _ip("netns", "del", self.name, check=False)
            self._made_namespace = False
        self.cuts.clear()

    def routes(self) -> list[str]:
        """The destinations of the namespace's IPv4 routes (main table)."""
        out = _ip("-n", self.name, "-4", "route")
        return [line.split()[0] for line in out.splitlines() if line.strip()]

    # --- the cut --------------------------------------------------------------------------------

    def cut(self, *addresses: str) -> None:
        """The namespace can no longer reach ``addresses`` (connect fails at once)."""
        for address in addresses:
            if address not in self.cuts:
                _ip("-n", self.name, "route", "add", "prohibit", f"{address}/32")
                self.cuts.add(address)

    def mend(self, *addresses: str) -> None:
        """Undo :meth:`cut` for ``addresses`` (all cut ones when none given)."""
        for address in addresses or tuple(self.cuts):
            if address in self.cuts:
                _ip("-n", self.name, "route", "del", "prohibit", f"{address}/32")
                self.cuts.discard(address)


@contextlib.contextmanager
def lab() -> Iterator[Lab]:
    """A :class:`Lab`, removed on the way out (a failure too)."""
    made = Lab()
    try:
        yield made.open()
    finally:
        made.close()
