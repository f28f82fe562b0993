"""Dead media are noticed: real aiortc clients in a live meeting, one of whose UDP is cut mid-meeting.

The cut is real: every aioice socket of the client drops what it would send and what it receives, so the
SFU's ICE consent checks (RFC 7675) go unanswered and aiortc declares the connection failed. aioice checks
consent every CONSENT_INTERVAL (5 s) and gives up after CONSENT_FAILURES (6) misses, about 30 s; the tests
shrink both (module globals, read on each check) so a failure is declared in about a second. The
media_failed timeout runs on the injected clock.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtcconfiguration import RTCBundlePolicy
from sqlalchemy import select

from rooms.models import Attendance
from sfu.events import ConnectionStateChanged
from sfu.metrics import METRICS
from sfu.settings import SfuSettings
from sfu.sfu import Sfu
from tests.signaling.live_server import Live, start_live
from tests.signaling.signaling_fakes import FakeClient, Harness
from tests.signaling.test_signaling_media import MEDIA_WAIT, MediaClient, _tracks_of

TIMEOUT = 30.0  # SignalingSettings.media_failed_timeout_seconds, the default


@pytest.fixture(autouse=True)
def fast_consent(monkeypatch: pytest.MonkeyPatch) -> None:
    # A missed check costs the STUN transaction's timeout (0.5 s) on top of the interval.
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.05)
    monkeypatch.setattr(aioice.ice, "CONSENT_FAILURES", 2)


def cut_udp(pc: RTCPeerConnection) -> None:
    """Drop every datagram this PeerConnection's ICE sockets send or receive, from now on."""
    connections = {id(t.receiver.transport): t.receiver.transport for t in pc.getTransceivers()}
    for dtls in connections.values():
        for protocol in dtls.transport._connection._protocols:
            protocol.datagram_received = lambda data, addr: None
            protocol.transport.sendto = lambda data, addr=None: None


class RecoveringClient(MediaClient):
    """A MediaClient that can replace both PeerConnections as the SDK does after media_failed."""

    async def restart(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for pc in (self.pub_pc, self.sub_pc):
            if pc is not None:
                await pc.close()
        while not self.offers.empty():
            self.offers.get_nowait()  # offers for the dead subscribe connection
        await self.sio.emit("restart_media", {"pc": "publish"})
        await self.publish()
        self.sub_pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.sub_pc.on("track", self._on_track)
        self.sub_pc.on("connectionstatechange", self.progress.set)
        self._tasks.append(asyncio.create_task(self._answer_offers()))
        await self.sio.emit("restart_media", {"pc": "subscribe"})


async def _meeting(live: Live) -> tuple[RecoveringClient, RecoveringClient, Any, Any]:
    ann, a = await live.join("host", "Ann", RecoveringClient())
    bob, b = await live.join("participant", "Bob", RecoveringClient())
    assert isinstance(ann, RecoveringClient) and isinstance(bob, RecoveringClient)
    await ann.publish()
    await bob.publish()
    await _tracks_of(ann, b["participant_id"], 2)
    await _tracks_of(bob, a["participant_id"], 2)
    await ann.subscribe()
    await bob.subscribe()
    for client in (ann, bob):
        await client.until(lambda c=client: c.received["audio"] >= 10 and c.received["video"] >= 5)
    return ann, bob, a, b


async def _both_failed(client: MediaClient) -> None:
    """The server tells the client about each of its two PeerConnections."""
    told = set()
    async with asyncio.timeout(MEDIA_WAIT):
        while told != {"publish", "subscribe"}:
            failed = await client.expect("media_failed")
            assert failed["seconds_left"] == TIMEOUT
            told.add(failed["pc"])


async def _attendance(live: Live, participant_id: str) -> Attendance:
    async with live.db.session() as session:
        row = await session.scalar(select(Attendance).where(Attendance.participant_id == participant_id))
    assert row is not None
    return row


async def test_dead_media_leave_with_media_failed_after_the_timeout(tmp_path: Path) -> None:
    sfu = Sfu(SfuSettings())
    try:
        async with start_live(tmp_path, sfu) as live:
            ann, bob, _, b = await _meeting(live)
            counted = METRICS.media_failed
            assert bob.pub_pc is not None and bob.sub_pc is not None
            cut_udp(bob.pub_pc)
            cut_udp(bob.sub_pc)
            await _both_failed(bob)  # the server noticed both connections fail

            live.clock.advance(TIMEOUT - 1)
            await ann.sio.emit("chat_send", {"text": "still here?"})
            await ann.expect("chat")
            assert "participant_left" not in ann.seen  # not before the timeout

            live.clock.advance(1)
            left = await ann.expect("participant_left")
            assert left == {"participant_id": b["participant_id"], "reason": "media_failed"}
            assert (await bob.expect("removed")) == {"reason": "media_failed"}
            row = await _attendance(live, b["participant_id"])
            assert row.left_at is not None and row.leave_reason == "media_failed"
            assert METRICS.media_failed == counted + 1
    finally:
        await sfu.close()


async def test_media_restarted_on_new_connections_before_the_timeout_keep_the_seat(tmp_path: Path) -> None:
    sfu = Sfu(SfuSettings())
    try:
        async with start_live(tmp_path, sfu) as live:
            ann, bob, a, b = await _meeting(live)
            assert bob.pub_pc is not None and bob.sub_pc is not None
            cut_udp(bob.pub_pc)
            cut_udp(bob.sub_pc)
            await _both_failed(bob)

            heard, seen = dict(ann.received), dict(bob.received)
            await bob.restart()
            await ann.until(
                lambda: (
                    ann.received["audio"] >= heard["audio"] + 25
                    and ann.received["video"] >= heard["video"] + 10
                )
            )
            await bob.until(
                lambda: (
                    bob.received["audio"] >= seen["audio"] + 25
                    and bob.received["video"] >= seen["video"] + 10
                )
            )
            # Bob's inbox is serial: once his chat is answered, the SFU's "connected" reports are handled.
            await bob.sio.emit("chat_send", {"text": "back"})
            await bob.expect("chat")

            live.clock.advance(TIMEOUT * 2)
            await ann.sio.emit("chat_send", {"text": "sync"})
            await ann.expect("chat")
            await ann.expect("chat")
            assert "participant_left" not in ann.seen
            assert ann.seen.count("participant_joined") == 1  # Bob's first join only
            assert "removed" not in bob.seen
            row = await _attendance(live, b["participant_id"])
            assert row.left_at is None
            conference = live.server.conference_by_meeting(int(a["meeting"]["meeting_id"]))
            assert conference is not None
            participant = conference.participant(b["participant_id"])
            assert participant is not None and participant.media_timer is None
    finally:
        await sfu.close()


# --- the rules, on fakes (no media): which states start, keep and stop the media_failed timer ---------------


async def _seated(harness: Harness) -> tuple[FakeClient, FakeClient, str]:
    room = harness.store.add_room()
    ann, _ = await harness.join(room, "host", "Ann")
    bob, b = await harness.join(room, "participant", "Bob")
    await ann.expect("participant_joined")
    return ann, bob, b["participant_id"]


async def _sync(client: FakeClient) -> None:
    """Everything posted to the client's inbox before this is handled once its chat comes back."""
    await client.emit("chat_send", {"text": "sync"})
    await client.expect("chat")


async def test_a_restart_that_never_connects_keeps_no_seat(harness: Harness) -> None:
    ann, bob, pid = await _seated(harness)
    router = harness.router()
    router.emit(ConnectionStateChanged(pid, "subscribe", "failed"))
    assert await bob.expect("media_failed") == {"pc": "subscribe", "seconds_left": 30}
    router.emit(ConnectionStateChanged(pid, "subscribe", "closed"))  # aiortc shuts it after the failure
    await bob.emit("restart_media", {"pc": "subscribe"})
    await _sync(bob)
    assert router.peers[pid].restarts == ["subscribe"]
    assert [e for e, _ in bob.seen].count("media_failed") == 1  # "closed" after "failed" is not news
    router.emit(ConnectionStateChanged(pid, "subscribe", "connecting"))  # the new one, not connected yet
    harness.clock.advance(30)
    assert await ann.expect("participant_left") == {"participant_id": pid, "reason": "media_failed"}
    assert harness.store.attendance[1].leave_reason == "media_failed"


async def test_a_connection_back_to_connected_stops_the_timer(harness: Harness) -> None:
    ann, bob, pid = await _seated(harness)
    router = harness.router()
    router.emit(ConnectionStateChanged(pid, "publish", "failed"))
    router.emit(ConnectionStateChanged(pid, "subscribe", "failed"))
    await bob.expect("media_failed")
    await bob.emit("restart_media", {"pc": "publish"})
    await bob.emit("restart_media", {"pc": "subscribe"})
    router.emit(ConnectionStateChanged(pid, "publish", "connected"))
    await _sync(bob)
    harness.clock.advance(29)
    router.emit(ConnectionStateChanged(pid, "subscribe", "connected"))  # the last dead one: timer stops
    await _sync(bob)
    harness.clock.advance(60)
    await _sync(ann)
    assert "participant_left" not in [e for e, _ in ann.seen]
    assert all(a.left_at is None for a in harness.store.attendance)


async def test_restarting_a_healthy_connection_starts_no_timer_and_viewers_do_not_publish(
    harness: Harness,
) -> None:
    ann, bob, _pid = await _seated(harness)
    await bob.emit("restart_media", {"pc": "publish"})
    await _sync(bob)
    harness.clock.advance(60)
    await _sync(ann)
    assert "participant_left" not in [e for e, _ in ann.seen]
    viewer, _ = await harness.join(_room_of(harness), "viewer", "Vic")
    await viewer.emit("restart_media", {"pc": "publish"})
    assert (await viewer.expect("error"))["code"] == "not_allowed"
    await bob.emit("restart_media", {"pc": "both"})
    assert (await bob.expect("error"))["code"] == "bad_payload"


def _room_of(harness: Harness) -> Any:
    (room,) = harness.store.rooms.values()
    return room


async def test_a_reconnect_replaces_the_dead_connections(harness: Harness) -> None:
    ann, bob, pid = await _seated(harness)
    harness.router().emit(ConnectionStateChanged(pid, "publish", "failed"))
    await bob.expect("media_failed")
    joined = next(d for e, d in bob.seen if e == "joined")
    await bob.drop()
    again = await harness.sio.connect({"reconnect_token": joined["reconnect_token"]})
    await again.expect("joined")
    harness.clock.advance(60)
    await _sync(ann)
    assert "participant_left" not in [e for e, _ in ann.seen]
