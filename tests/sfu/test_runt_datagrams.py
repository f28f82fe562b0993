"""Datagrams too short to be anything, sent at a connected PeerConnection by anyone: dropped, counted."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import pytest

from sfu.hooks import MIN_DATAGRAM
from sfu.metrics import METRICS
from tests.sfu.conftest import Meeting

pytestmark = pytest.mark.slow


def _local_port(pc: Any) -> int:
    """The UDP port of the SFU PeerConnection's host candidate (one socket: tests gather on 127.0.0.1)."""
    transport = pc.getTransceivers()[0].receiver.transport.transport
    ports = {c.port for c in transport.iceGatherer.getLocalCandidates()}
    assert len(ports) == 1, ports
    return ports.pop()


async def test_runts_are_dropped_and_media_keeps_flowing(
    meeting: Meeting, caplog: pytest.LogCaptureFixture
) -> None:
    loop_errors: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
    caplog.set_level(logging.WARNING)
    try:
        publisher = await meeting.client("pub")
        await publisher.publish(video_start=500, amplitude=None)
        subscriber = await meeting.client("sub")
        await subscriber.subscribe()
        await subscriber.wait_until(lambda: len(subscriber.counters_from(500)) >= 5, within=20)

        peers = meeting.router.peers
        connections = [peers["pub"].publish_connection, peers["sub"].subscribe_connection]
        ports = [_local_port(c.pc) for c in connections if c is not None]
        assert len(ports) == 2
        runts = [b"", b"\x80", b"\x16", bytes([0x90, 96]), b"\x00" * (MIN_DATAGRAM - 1)]
        before, frames = METRICS.runt_datagrams, len(subscriber.counters_from(500))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _ in range(20):
                for port in ports:
                    for runt in runts:
                        sock.sendto(runt, ("127.0.0.1", port))
        sent = 20 * len(ports) * len(runts)

        # Every decoded frame wakes the check up: runts counted and video still arriving after them.
        await subscriber.wait_until(
            lambda: (
                METRICS.runt_datagrams - before >= sent and len(subscriber.counters_from(500)) >= frames + 10
            ),
            within=20,
        )
    finally:
        loop.set_exception_handler(previous)
    assert METRICS.runt_datagrams - before == sent
    assert loop_errors == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    for connection in connections:
        assert connection is not None
        assert connection.hooks.errors == 0
        assert connection.pc.connectionState == "connected"
        # An empty datagram reaching aiortc's DTLS task (it reads data[0]) would have closed the transport.
        assert connection.pc.getTransceivers()[0].receiver.transport.state == "connected"
