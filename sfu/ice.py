"""aioice, adjusted for a server: ICE that ends when it succeeds, host sockets in a UDP port range.

**Prompt connect.** aioice's ``Connection.connect()`` paces its checks (RFC 8445's Ta timer) with
``await asyncio.sleep(0.02)`` between them and only looks at the check list's outcome after that sleep. With
one candidate pair (the usual case for a server: the browser's host or server-reflexive candidate against our
one address) the check succeeds within a millisecond and the connection then idles for the rest of the tick
before DTLS may start: up to 20 ms added to every join. ``prompt_connect`` gives one Connection a
``connect()`` that paces the checks the same way but wakes as soon as the check list completes or fails.

The replacement is aioice 0.13.0's ``connect()`` with the pacing wait changed; ``CONNECT_PATH`` pins every
line it repeats, and ``sfu.hooks.verify_hook_points`` checks them against the installed aioice.

**Port range.** aioice binds each host socket to port 0 (any ephemeral port), so a firewall in front of the
SFU would have to open all of UDP. ``use_port_range`` gives one Connection a ``get_component_candidates``
that binds its host sockets to a free port of the configured range (``sfu.udp_port_min``/``_max``) and asks
the STUN server about them as aioice does; TURN relays are left to aioice (``GATHER_PATH`` pins what is
repeated).
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import ipaddress
import logging
import random
import socket
from dataclasses import dataclass
from typing import Any

from aioice import turn
from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aioice.ice import ICE_COMPLETED, ICE_FAILED, StunProtocol, server_reflexive_candidate
from aioice.ice import Connection as IceConnection

from sfu.errors import HookSurfaceChanged

log = logging.getLogger(__name__)

PACING_S = 0.02  # aioice's Ta
STUN_WAIT_S = 5  # aioice's default wait for server-reflexive candidates

# Lines of aioice's Connection.connect() that prompt_connect repeats (the pacing loop is what differs).
CONNECT_PATH: tuple[str, ...] = (
    "if not self._local_candidates_end:",
    'raise ConnectionError("Local candidates gathering was not performed")',
    "if self.remote_username is None or self.remote_password is None:",
    'raise ConnectionError("Remote username or password is missing")',
    "for remote_candidate in self._remote_candidates:",
    "self._pair_remote_candidate(remote_candidate)",
    "self.sort_check_list()",
    "self._unfreeze_initial()",
    "for early_check in self._early_checks:",
    "self.check_incoming(*early_check)",
    "self._early_checks.clear()",
    "self._early_checks_done = True",
    "if not self._check_periodic():",
    "await asyncio.sleep(0.02)",
    "if self._check_list:",
    "res = await self._check_list_state.get()",
    "res = ICE_FAILED",
    "for check in self._check_list:",
    "if check.task:",
    "check.task.cancel()",
    "if res != ICE_COMPLETED:",
    'raise ConnectionError("ICE negotiation failed")',
    "self._query_consent_task = asyncio.create_task(self.query_consent())",
)


# Lines of aioice's Connection.get_component_candidates that the port-range version repeats.
GATHER_PATH: tuple[str, ...] = (
    "lambda: StunProtocol(self), local_addr=(address, 0)",
    "socket.SOL_SOCKET, socket.SO_RCVBUF, turn.UDP_SOCKET_BUFFER_SIZE",
    'candidate_address = protocol.transport.get_extra_info("sockname")',
    'foundation=candidate_foundation("host", "udp", candidate_address[0]),',
    'priority=candidate_priority(component, "host"),',
    "candidates.append(protocol.local_candidate)",
    "self._protocols += host_protocols",
    "self, component: int, addresses: list[str], timeout: int = 5",
    "if ipaddress.ip_address(protocol.local_candidate.host).version == 4:",
    "server_reflexive_candidate(protocol, self.stun_server)",
    "done, pending = await asyncio.wait(tasks, timeout=timeout)",
    "# Connect to TURN server.",
)


def verify_connect_path() -> None:
    for method, lines in (
        (IceConnection.connect, CONNECT_PATH),
        (IceConnection.get_component_candidates, GATHER_PATH),
    ):
        source = inspect.getsource(method)
        for line in lines:
            if line not in source:
                raise HookSurfaceChanged(f"aioice Connection.{method.__name__} no longer does {line!r}")


@dataclass(frozen=True)
class PortRange:
    """Inclusive UDP port range for the SFU's host sockets."""

    low: int
    high: int

    def bind(self, address: str) -> socket.socket:
        """A UDP socket bound to `address` and a free port of the range, tried from a random start."""
        family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
        size = self.high - self.low + 1
        start = random.randrange(size)
        for i in range(size):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((address, self.low + (start + i) % size))
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
            sock.setblocking(False)
            return sock
        raise OSError(errno.EADDRINUSE, f"no free UDP port in {self.low}-{self.high} on {address}")


def use_port_range(connection: Any, ports: PortRange) -> None:
    """Bind this aioice Connection's host sockets within `ports` (idempotent; call before gathering)."""
    if getattr(connection, "_yunhui_ports", None) == ports:
        return
    connection._yunhui_ports = ports
    original = IceConnection.get_component_candidates.__get__(connection)

    async def get_component_candidates(component: int, addresses: list[str]) -> list[Any]:
        candidates = await _host_candidates(connection, ports, component, addresses)
        # aioice's own code, without host addresses, for what is left: the TURN relay.
        relayed: list[Any] = await original(component, [])
        return candidates + relayed

    connection.get_component_candidates = get_component_candidates


async def _host_candidates(self: Any, ports: PortRange, component: int, addresses: list[str]) -> list[Any]:
    loop = asyncio.get_running_loop()
    candidates = []
    host_protocols = []
    for address in addresses:
        try:
            sock = ports.bind(address)
        except OSError as exc:
            log.warning("no host candidate on %s: %s", address, exc)
            continue
        try:
            _transport, protocol = await loop.create_datagram_endpoint(lambda: StunProtocol(self), sock=sock)
        except OSError as exc:
            sock.close()
            log.warning("no host candidate on %s: %s", address, exc)
            continue
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, turn.UDP_SOCKET_BUFFER_SIZE)
        host_protocols.append(protocol)
        candidate_address = protocol.transport.get_extra_info("sockname")
        protocol.local_candidate = Candidate(
            foundation=candidate_foundation("host", "udp", candidate_address[0]),
            component=component,
            transport="udp",
            priority=candidate_priority(component, "host"),
            host=candidate_address[0],
            port=candidate_address[1],
            type="host",
        )
        candidates.append(protocol.local_candidate)
    self._protocols += host_protocols

    # Server-reflexive candidates of these sockets (IPv4 only), as aioice asks for its own.
    if self.stun_server:
        tasks = [
            asyncio.create_task(server_reflexive_candidate(protocol, self.stun_server))
            for protocol in host_protocols
            if ipaddress.ip_address(protocol.local_candidate.host).version == 4
        ]
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=STUN_WAIT_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for task in done:
                if task.exception() is None:
                    candidates.append(task.result()[0])
    return candidates


def prompt_connect(connection: Any) -> None:
    """Give this aioice Connection the prompt ``connect()`` (idempotent; call before ICE starts)."""
    if getattr(connection, "_yunhui_prompt", False):
        return
    connection._yunhui_prompt = True

    async def connect() -> None:
        await _connect(connection)

    connection.connect = connect


async def _connect(self: Any) -> None:
    if not self._local_candidates_end:
        raise ConnectionError("Local candidates gathering was not performed")
    if self.remote_username is None or self.remote_password is None:
        raise ConnectionError("Remote username or password is missing")

    # Forming candidate pairs (RFC 8445 section 6.1.2.2).
    for remote_candidate in self._remote_candidates:
        self._pair_remote_candidate(remote_candidate)
    self.sort_check_list()
    self._unfreeze_initial()

    # Handle the checks received before connect().
    for early_check in self._early_checks:
        self.check_incoming(*early_check)
    self._early_checks.clear()
    self._early_checks_done = True

    # Perform the checks one per tick, as aioice does, but stop waiting the moment the check list is done.
    outcome: asyncio.Task[int] = asyncio.ensure_future(self._check_list_state.get())
    try:
        while self._check_periodic():
            done, _ = await asyncio.wait((outcome,), timeout=PACING_S)
            if done:
                break
        res = await outcome if self._check_list else ICE_FAILED
    finally:
        outcome.cancel()

    # Cancel the remaining checks.
    for check in self._check_list:
        if check.task:
            check.task.cancel()

    if res != ICE_COMPLETED:
        raise ConnectionError("ICE negotiation failed")

    # Start consent freshness tests (RFC 7675).
    self._query_consent_task = asyncio.create_task(self.query_consent())
