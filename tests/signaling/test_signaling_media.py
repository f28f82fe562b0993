"""Tier 3, real media: two python-socketio clients with aiortc peers exchange audio and video via the Sfu."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from aiortc import (
    AudioStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.rtcconfiguration import RTCBundlePolicy

from sfu.settings import SfuSettings
from sfu.sfu import Sfu
from tests.signaling.live_server import Client, start_live

MEDIA_WAIT = 30.0


class MediaClient(Client):
    """A meeting client with a publish PeerConnection (it offers) and a subscribe one (the server offers)."""

    def __init__(self) -> None:
        super().__init__()
        self.offers: asyncio.Queue[str] = asyncio.Queue()
        self.pub_pc: RTCPeerConnection | None = None
        self.sub_pc: RTCPeerConnection | None = None
        self.received = {"audio": 0, "video": 0}
        self.progress = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _on_event(self, event: str, data: Any = None) -> None:
        if event == "subscribe_offer":
            self.offers.put_nowait(data["sdp"])
        else:
            await super()._on_event(event, data)

    async def publish(self) -> None:
        pc = self.pub_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTrack(AudioStreamTrack())
        pc.addTrack(VideoStreamTrack())
        await pc.setLocalDescription(await pc.createOffer())
        sources = {t.mid: "mic" if t.kind == "audio" else "camera" for t in pc.getTransceivers()}
        await self.sio.emit("publish_offer", {"sdp": pc.localDescription.sdp, "sources": sources})
        answer = await self.expect("publish_answer")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    async def subscribe(self) -> None:
        # MAX_BUNDLE: m-sections added by a re-offer must share the first transport (an aiortc client need).
        self.sub_pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.sub_pc.on("track", self._on_track)
        self.sub_pc.on("connectionstatechange", self.progress.set)
        self._tasks.append(asyncio.create_task(self._answer_offers()))
        await self.sio.emit("subscribe")

    async def _answer_offers(self) -> None:
        pc = self.sub_pc
        assert pc is not None
        first = True
        while True:
            sdp = await self.offers.get()
            if not first:
                # aiortc cannot take a new remote description while its first ICE/DTLS setup runs.
                await self.until(
                    lambda: self.sub_pc is not None and self.sub_pc.connectionState == "connected"
                )
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            await self.sio.emit("subscribe_answer", {"sdp": pc.localDescription.sdp})
            first = False

    def _on_track(self, track: Any) -> None:
        self._tasks.append(asyncio.create_task(self._consume(track)))

    async def _consume(self, track: Any) -> None:
        with contextlib.suppress(Exception):  # the track ends with MediaStreamError when the PC closes
            while True:
                await track.recv()
                self.received[track.kind] += 1
                self.progress.set()

    async def until(self, predicate: Any) -> None:
        async with asyncio.timeout(MEDIA_WAIT):
            while not predicate():
                self.progress.clear()
                await self.progress.wait()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for pc in (self.pub_pc, self.sub_pc):
            if pc is not None:
                await pc.close()
        await super().close()


async def _tracks_of(client: Client, participant_id: str, count: int) -> None:
    """Until ``participant_id`` is seen with ``count`` tracks (also in events already consumed by expect)."""

    def matches(name: str, data: Any) -> bool:
        info = data["participant"] if name == "participant_changed" else None
        return info is not None and info["participant_id"] == participant_id and len(info["tracks"]) == count

    if any(matches(name, data) for name, data in client.history):
        return
    while not matches("participant_changed", await client.expect("participant_changed")):
        pass


async def test_two_participants_exchange_audio_and_video(tmp_path: Path) -> None:
    sfu = Sfu(SfuSettings())
    try:
        async with start_live(tmp_path, sfu) as live:
            ann, a = await live.join("host", "Ann", MediaClient())
            bob, b = await live.join("participant", "Bob", MediaClient())
            assert isinstance(ann, MediaClient) and isinstance(bob, MediaClient)
            await ann.publish()
            await bob.publish()
            await _tracks_of(ann, b["participant_id"], 2)
            await _tracks_of(bob, a["participant_id"], 2)
            await ann.subscribe()
            await bob.subscribe()
            for client in (ann, bob):
                await client.until(lambda c=client: c.received["audio"] >= 25 and c.received["video"] >= 10)
            video = next(t for t in (await _snapshot(ann, b["participant_id"])) if t["kind"] == "video")
            await ann.sio.emit("video_size", {"track_id": video["track_id"], "width": 320, "height": 180})
            await bob.sio.emit("leave")
            await ann.expect("participant_left")
    finally:
        await sfu.close()


async def _snapshot(client: Client, participant_id: str) -> list[dict[str, Any]]:
    await client.sio.emit("chat_send", {"text": "sync"})
    await client.expect("chat")
    for name, data in reversed(client.history):
        if name == "participant_changed" and data["participant"]["participant_id"] == participant_id:
            tracks: list[dict[str, Any]] = data["participant"]["tracks"]
            return tracks
    raise AssertionError("no participant_changed seen")


async def test_reconnect_renegotiates_media_and_others_see_no_leave(tmp_path: Path) -> None:
    sfu = Sfu(SfuSettings())
    try:
        async with start_live(tmp_path, sfu) as live:
            ann, a = await live.join("host", "Ann", MediaClient())
            bob, b = await live.join("participant", "Bob", MediaClient())
            assert isinstance(ann, MediaClient) and isinstance(bob, MediaClient)
            await bob.publish()
            await _tracks_of(ann, b["participant_id"], 2)
            await ann.subscribe()
            await ann.until(lambda: ann.received["audio"] >= 10 and ann.received["video"] >= 5)

            live.clock.timer_added.clear()
            await bob.close()  # the connection drops: PeerConnections and socket gone
            async with asyncio.timeout(MEDIA_WAIT):
                await live.clock.timer_added.wait()
            again = MediaClient()
            live.clients.append(again)
            await again.connect(live.url, {"reconnect_token": b["reconnect_token"]})
            joined = await again.expect("joined")
            assert (joined["participant_id"], joined["reconnected"]) == (b["participant_id"], True)
            before = dict(ann.received)
            await again.publish()
            audio, video = before["audio"] + 25, before["video"] + 10
            await ann.until(lambda: ann.received["audio"] >= audio and ann.received["video"] >= video)
            assert "participant_left" not in ann.seen
            assert ann.seen.count("participant_joined") == 1  # Bob's first join only
            assert a["participant_id"] != b["participant_id"]
    finally:
        await sfu.close()
