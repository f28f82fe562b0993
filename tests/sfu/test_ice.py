"""sfu/ice.py: ICE ends when the check list does, not at aioice's next pacing tick."""

from __future__ import annotations

import asyncio
import random
import re
import socket

import aioice.ice
import pytest
from aioice import Connection
from pydantic import ValidationError

from sfu import ice
from sfu.errors import HookSurfaceChanged, Unavailable
from sfu.settings import SfuSettings
from tests.sfu.conftest import Meeting

HOST_PORT = re.compile(r"^a=candidate:\S+ \d+ udp \d+ \S+ (\d+) typ host", re.MULTILINE)


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


async def _pair(*, prompt: bool) -> tuple[Connection, Connection]:
    controlling, controlled = Connection(ice_controlling=True), Connection(ice_controlling=False)
    for connection in (controlling, controlled):
        if prompt:
            ice.prompt_connect(connection)
        await connection.gather_candidates()
    for a, b in ((controlling, controlled), (controlled, controlling)):
        a.remote_username, a.remote_password = b.local_username, b.local_password
        for candidate in b.local_candidates:
            await a.add_remote_candidate(candidate)
        await a.add_remote_candidate(None)
    return controlling, controlled


async def test_connect_returns_on_success_not_on_the_pacing_tick(
    loopback: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With a pacing tick of an hour, only a connect() woken by the outcome can finish.
    monkeypatch.setattr(ice, "PACING_S", 3600.0)
    controlling, controlled = await _pair(prompt=True)
    try:
        await asyncio.wait_for(asyncio.gather(controlling.connect(), controlled.connect()), 10)
        await controlling.send(b"ping")
        assert await asyncio.wait_for(controlled.recv(), 10) == b"ping"
    finally:
        await asyncio.gather(controlling.close(), controlled.close())


async def test_a_failed_check_list_still_fails(loopback: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice.stun, "RETRY_MAX", 0)  # one transmission per check, no retries
    controlling, controlled = await _pair(prompt=True)
    await controlled.close()  # nobody answers: every check times out, then connect() gives up
    try:
        with pytest.raises(ConnectionError, match="ICE negotiation failed"):
            await asyncio.wait_for(controlling.connect(), 20)
    finally:
        await controlling.close()


def test_prompt_connect_is_idempotent_and_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    connection = Connection(ice_controlling=True)
    ice.prompt_connect(connection)
    first = connection.connect
    ice.prompt_connect(connection)
    assert connection.connect is first
    ice.verify_connect_path()
    monkeypatch.setattr(ice, "CONNECT_PATH", (*ice.CONNECT_PATH, "self._no_such_step()"))
    with pytest.raises(HookSurfaceChanged, match="_no_such_step"):
        ice.verify_connect_path()


def test_a_port_range_hands_out_free_ports_and_says_when_it_is_full() -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    base = probe.getsockname()[1]
    probe.close()
    ports = ice.PortRange(base, base + 2)
    socks = [ports.bind("127.0.0.1") for _ in range(3)]
    try:
        assert sorted(s.getsockname()[1] for s in socks) == [base, base + 1, base + 2]
        with pytest.raises(OSError, match=f"no free UDP port in {base}-{base + 2} on 127.0.0.1"):
            ports.bind("127.0.0.1")
    finally:
        for s in socks:
            s.close()


def test_settings_take_both_ends_of_the_range_or_neither() -> None:
    assert SfuSettings(udp_port_min=40000, udp_port_max=40099).udp_port_max == 40099
    with pytest.raises(ValidationError, match="set both or neither"):
        SfuSettings(udp_port_min=40000)
    with pytest.raises(ValidationError, match="above udp_port_max"):
        SfuSettings(udp_port_min=40100, udp_port_max=40000)
    with pytest.raises(ValidationError):
        SfuSettings(udp_port_min=80, udp_port_max=90)  # below 1024


async def test_media_flows_through_sockets_in_the_configured_range() -> None:
    # Below Linux's ephemeral ports (32768-60999), so a socket bound to port 0 cannot land in it by chance.
    low = 20000 + random.randrange(12) * 1000
    meeting = Meeting(SfuSettings(udp_port_min=low, udp_port_max=low + 49))
    try:
        publisher = await meeting.client("pub")
        await publisher.publish(video_start=100, amplitude=None)
        viewer = await meeting.client("viewer")
        await viewer.subscribe()
        await viewer.wait_until(lambda: len(viewer.counters_from(100)) >= 5, within=10)
        # The SFU's candidates: in its publish answer and in its subscribe offer.
        assert publisher.pub_pc is not None and viewer.sub_pc is not None
        sdps = [publisher.pub_pc.remoteDescription.sdp, viewer.sub_pc.remoteDescription.sdp]
        used = {int(port) for sdp in sdps for port in HOST_PORT.findall(sdp)}
        assert len(used) == 2 and all(low <= port <= low + 49 for port in used), used
    finally:
        await meeting.close()


async def test_a_full_port_range_refuses_the_connection_with_a_clear_error() -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    meeting = Meeting(SfuSettings(udp_port_min=port, udp_port_max=port))  # room for one PeerConnection
    try:
        first = await meeting.client("first")
        await first.publish(video_start=None)
        second = await meeting.client("second")
        with pytest.raises(Unavailable, match="no UDP port is free for media"):
            await second.publish(video_start=None)
        # Its subscribe side (an offer with the first one's track) is refused the same way, and again
        # (not "offer already outstanding").
        await meeting.wait_tracks(1)
        assert second.peer is not None
        for _ in range(2):
            with pytest.raises(Unavailable):
                await second.peer.create_subscribe_offer()
        # The first connection is unaffected: its one port is its own.
        assert first.pub_pc is not None
        assert str(port) in first.pub_pc.remoteDescription.sdp
    finally:
        await meeting.close()
