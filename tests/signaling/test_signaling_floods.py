"""Tier 3, floods against a real server: every client event is rate-limited, a burst of one participant's
changes reaches the others coalesced, a client that stops reading is cut off (slow_client) without anyone
else noticing, and malformed frames are counted rather than logged with a traceback each."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from signaling.metrics import SIGNALING_METRICS
from signaling.server import MeetingServer
from signaling.socketio_server import SocketIOServer
from tests.signaling.live_server import start_live
from tests.signaling.raw_socket import RawSocket, raw_socket
from tests.signaling.signaling_fakes import WAIT

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def guest(name: str) -> dict[str, Any]:
    return {"meeting_number": "888000111", "passcode": "2468", "display_name": name}


def sio_of(server: MeetingServer) -> SocketIOServer:
    sio = server._sio
    assert isinstance(sio, SocketIOServer)
    return sio


def changes_of(history: list[tuple[str, Any]], participant_id: str) -> list[dict[str, Any]]:
    return [
        data["participant"]
        for name, data in history
        if name == "participant_changed" and data["participant"]["participant_id"] == participant_id
    ]


async def chat_seen(client: Any, text: str) -> None:
    while (await client.expect("chat"))["entry"]["text"] != text:
        pass


async def test_a_hand_flood_is_refused_as_rate_limited_and_ends_in_a_disconnect(tmp_path: Any) -> None:
    async with start_live(tmp_path) as live:
        ann, _ = await live.join("host", "Ann")
        async with raw_socket(live.url) as raw:
            await raw.connect(guest("Flood"))
            me = await raw.expect("joined")
            for i in range(300):
                await raw.send("42" + json.dumps(["hand", {"raised": i % 2 == 0}]))
            await raw.closed()
        refused = [d for e, d in raw.events if e == "error"]
        burst = live.server.settings.event_rates.state.burst
        message = "too many hand events; slow down"
        assert refused[0] == {"code": "rate_limited", "message": message, "event": "hand"}
        assert len(refused) == live.server.settings.max_protocol_errors
        left = await ann.expect("participant_left")
        assert left == {"participant_id": me["participant_id"], "reason": "protocol_errors"}
        # Without the bucket, all 300 toggles reached Ann (coalescing is off in this test).
        assert len(changes_of(ann.history, me["participant_id"])) == burst
        assert SIGNALING_METRICS.rate_limited["hand"] >= len(refused)


async def test_a_burst_of_changes_reaches_the_others_as_one_per_interval(tmp_path: Any) -> None:
    rates = {"state": {"burst": 1000, "per_second": 1.0}, "chat": {"burst": 1000, "per_second": 1.0}}
    async with start_live(
        tmp_path, participant_changed_interval_seconds=0.1, event_rates=rates, chat_rate_count=100
    ) as live:
        ann, _ = await live.join("host", "Ann")
        bob, b = await live.join("participant", "Bob")
        for i in range(300):
            await bob.sio.emit("hand", {"raised": i % 2 == 0})  # 300 toggles, ending lowered
        await bob.sio.emit("chat_send", {"text": "done"})
        await chat_seen(ann, "done")  # the same inbox: every toggle is handled
        live.clock.advance(0.1)  # the interval the first change started ends: the latest state goes out
        await ann.expect("participant_changed")
        await bob.sio.emit("chat_send", {"text": "after"})
        await chat_seen(ann, "after")
        changes = changes_of(ann.history, b["participant_id"])
        assert 1 < len(changes) <= 3, len(changes)
        assert changes[0]["hand_raised"] is True  # the first went out at once
        assert changes[-1]["hand_raised"] is False  # the last has the final state
        live.clock.advance(1)
        await bob.sio.emit("hand", {"raised": True})  # a change after a quiet interval goes out at once
        assert (await ann.expect("participant_changed"))["participant"]["hand_raised"] is True


def _small_receive_buffer(addr_info: Any) -> socket.socket:
    family, kind, proto, _, _ = addr_info
    sock = socket.socket(family=family, type=kind, proto=proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window stays small
    return sock


@asynccontextmanager
async def unread_socket(url: str) -> AsyncIterator[RawSocket]:
    connector = aiohttp.TCPConnector(socket_factory=_small_receive_buffer)
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.ws_connect(f"{url}/socket.io/?EIO=4&transport=websocket") as ws,
    ):
        await ws.receive(timeout=WAIT)
        yield RawSocket(ws)


async def test_a_client_that_stops_reading_is_cut_off_as_slow_client(tmp_path: Any) -> None:
    limit = 64 * 1024
    async with start_live(
        tmp_path,
        unsent_bytes_limit=limit,
        chat_rate_count=100_000,
        chat_max_length=2000,
        event_rates={"chat": {"burst": 100_000, "per_second": 1.0}},
    ) as live:
        ann, _ = await live.join("host", "Ann")
        bob, _ = await live.join("participant", "Bob")  # keeps reading
        sio = sio_of(live.server)
        async with unread_socket(live.url) as slow:
            await slow.connect(guest("Slow"))
            me = await slow.expect("joined")
            (conference,) = live.server.conferences()
            participant = conference.participant(me["participant_id"])
            assert participant is not None and participant.sid is not None
            sid = participant.sid
            # From here the slow client reads nothing: its receive buffer fills, then the server's send
            # buffer, then Engine.IO's queue.
            text = "x" * 2000
            peak = sent = 0
            while not participant.closed:
                await ann.sio.emit("chat_send", {"text": text})
                sent += 1
                await chat_seen(bob, text)  # Bob keeps up: every message reaches him
                peak = max(peak, sio.unsent_bytes(sid))
                assert sent < 20_000, "never disconnected"
            left = await bob.expect("participant_left")
            assert left == {"participant_id": me["participant_id"], "reason": "slow_client"}
            # Bounded: what Engine.IO held for it never passed the limit by more than one message.
            assert peak <= limit + 2100, peak
            assert sio.unsent_bytes(sid) == 0
            async with asyncio.timeout(WAIT):
                await slow.closed()  # the connection was cut (reads what the kernel still held)
        await ann.sio.emit("chat_send", {"text": "still here"})
        await chat_seen(bob, "still here")
        assert not bob.gone.is_set() and not ann.gone.is_set()
        assert SIGNALING_METRICS.slow_clients >= 1


async def test_malformed_frames_are_counted_and_logged_once(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with start_live(tmp_path) as live:
        ann, _ = await live.join("host", "Ann")
        before = SIGNALING_METRICS.malformed_packets
        async with raw_socket(live.url) as raw:
            await raw.connect(guest("Junk"))
            await raw.expect("joined")
            frames = ['42["chat_send",', "4x", '42{"a":1', "44{}", "45-[]", '451-["a",{"_placeholder":true}]']
            for i in range(2000):
                await raw.send(frames[i % len(frames)])
            await raw.ws.send_bytes(b"\x04binary")
            await raw.emit("chat_send", {"text": "after the junk"})
            await chat_seen(ann, "after the junk")
        assert SIGNALING_METRICS.malformed_packets - before >= 2000
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
        assert errors == []
        warnings = [r for r in caplog.records if "malformed" in r.getMessage()]
        assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
