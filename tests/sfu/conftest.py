"""Test peers for the SFU: stock aiortc clients that publish synthetic media and decode what they receive."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import random
import struct
import time
from collections.abc import AsyncIterator, Callable
from fractions import Fraction
from typing import Any

import pytest
from aiortc import (
    AudioStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtp import is_rtcp
from av import AudioFrame, VideoFrame

from sfu.events import RouterEvent, SubscriberNeedsOffer
from sfu.peer import Peer
from sfu.router import Router
from sfu.settings import SfuSettings
from sfu.sfu import Sfu

WIDTH, HEIGHT = 320, 240
BITS = 16


_GRADIENT = bytes((i % 200) + 28 for i in range(4096))


def draw_counter(
    counter: int, width: int = WIDTH, height: int = HEIGHT, *, moving: bool = False
) -> VideoFrame:
    """A frame with `counter` drawn as 16 black/white blocks along the top (grey, or a moving gradient)."""
    block = width // 20
    frame = VideoFrame(width=width, height=height, format="yuv420p")
    plane = frame.planes[0]
    stride = plane.line_size
    if moving:
        shift = (counter * 2) % 200
        y = bytearray(b"".join(_GRADIENT[r + shift : r + shift + stride] for r in range(height)))
    else:
        y = bytearray(b"\x80" * (stride * height))
    for b in range(BITS):
        value = bytes((235 if (counter >> b) & 1 else 16,)) * block
        for row in range(block):
            start = row * stride + b * block
            y[start : start + block] = value
    plane.update(bytes(y))
    for chroma in frame.planes[1:]:
        chroma.update(b"\x80" * chroma.buffer_size)
    return frame


def read_counter(frame: Any) -> int:
    """The counter drawn by draw_counter, read back from a decoded frame of any size."""
    block = frame.width // 20
    plane = frame.planes[0]
    data = bytes(plane)
    n = 0
    for b in range(BITS):
        center = (block // 2) * plane.line_size + b * block + block // 2
        if data[center] > 128:
            n |= 1 << b
    return n


class CounterVideoTrack(VideoStreamTrack):
    """Synthetic 320x240 video at `fps` whose frames carry a counter starting at `start`."""

    def __init__(self, start: int = 0, fps: int = 15) -> None:
        super().__init__()
        self.counter = start
        self.sent = 0
        self._fps = fps
        self._t0: float | None = None
        self.progress = asyncio.Event()

    async def recv(self) -> VideoFrame:
        if self._t0 is None:
            self._t0 = time.time()
        else:
            wait = self._t0 + self.sent / self._fps - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = draw_counter(self.counter)
        frame.pts = self.sent * (90000 // self._fps)
        frame.time_base = Fraction(1, 90000)
        self.counter += 1
        self.sent += 1
        self.progress.set()
        return frame


class ToneAudioTrack(AudioStreamTrack):
    """A 400 Hz tone at 8 kHz whose amplitude (0..1) can change while it plays; 20 ms frames."""

    def __init__(self, amplitude: float = 0.0) -> None:
        super().__init__()
        self.amplitude = amplitude
        self.sent = 0
        self.progress = asyncio.Event()
        self._burst: tuple[int, float] | None = None
        self._cache: dict[float, bytes] = {}

    def burst(self, frames: int, amplitude: float) -> None:
        """Play `amplitude` for the next `frames` frames, then go back."""
        self._burst = (self.sent + frames, amplitude)

    async def frames_sent(self, count: int) -> None:
        while self.sent < count:
            self.progress.clear()
            await self.progress.wait()

    async def recv(self) -> AudioFrame:
        frame = await super().recv()
        self.sent += 1
        self.progress.set()
        samples = frame.samples
        amplitude = self.amplitude
        if self._burst is not None:
            if self.sent <= self._burst[0]:
                amplitude = self._burst[1]
            else:
                self._burst = None
        tone = self._cache.get(amplitude)
        if tone is None:
            tone = struct.pack(
                f"<{samples}h",
                *(int(amplitude * 32000 * math.sin(2 * math.pi * 400 * i / 8000)) for i in range(samples)),
            )
            self._cache[amplitude] = tone
        frame.planes[0].update(tone)
        return frame


class Client:
    """A test participant: a publish PC that offers, a subscribe PC that answers, decoders on what arrives."""

    def __init__(self, router: Router, participant_id: str) -> None:
        self.router = router
        self.id = participant_id
        self.peer: Peer | None = None
        self.pub_pc: RTCPeerConnection | None = None
        self.sub_pc: RTCPeerConnection | None = None
        self.video: CounterVideoTrack | None = None
        self.audio: ToneAudioTrack | None = None
        # Decoded video counters per subscribe mid, in arrival order, with their arrival time.
        self.frames: dict[str, list[tuple[float, int]]] = {}
        self.audio_frames: dict[str, int] = {}
        self.decoded_sizes: list[tuple[int, int]] = []
        self.changed = asyncio.Event()
        self.answers = 0
        self._renegotiate = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.sub_lossy: Callable[[bytes], bool] | None = None

    async def join(self) -> Peer:
        self.peer = await self.router.add_peer(self.id)
        return self.peer

    async def publish(self, *, video_start: int | None = 0, amplitude: float | None = 0.0) -> None:
        assert self.peer is not None
        pc = self.pub_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        sources: dict[str, str] = {}
        if amplitude is not None:
            self.audio = ToneAudioTrack(amplitude)
            pc.addTrack(self.audio)
        if video_start is not None:
            self.video = CounterVideoTrack(video_start)
            pc.addTrack(self.video)
        await pc.setLocalDescription(await pc.createOffer())
        for t in pc.getTransceivers():
            sources[t.mid] = "mic" if t.kind == "audio" else "camera"
        answer = await self.peer.answer_publish(pc.localDescription.sdp, sources)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    async def subscribe(self) -> None:
        """Negotiate the subscribe PC now and again whenever the router asks."""
        assert self.peer is not None
        # MAX_BUNDLE: with aiortc's default policy, m-sections added by a re-offer can stay on a transport
        # that the BUNDLE step then discards (an aiortc client limitation; browsers are not affected).
        self.sub_pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.sub_pc.on("track", self._on_track)
        self.sub_pc.on("connectionstatechange", self._notify)
        await self._negotiate()
        self._tasks.append(asyncio.create_task(self._renegotiation_loop()))

    def needs_offer(self) -> None:
        self._renegotiate.set()

    async def _renegotiation_loop(self) -> None:
        pc = self.sub_pc
        assert pc is not None
        while True:
            await self._renegotiate.wait()
            # aiortc cannot take a new remote description while its first ICE/DTLS setup is still running
            # (an offer without media sections starts none).
            await self.wait_until(lambda: pc.connectionState == "connected" or not pc.getTransceivers(), 20)
            self._renegotiate.clear()
            await self._negotiate()

    async def _negotiate(self) -> None:
        assert self.peer is not None and self.sub_pc is not None
        offer = await self.peer.create_subscribe_offer()
        await self.sub_pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await self.sub_pc.setLocalDescription(await self.sub_pc.createAnswer())
        if self.sub_pc.connectionState == "connected":
            # A stock aiortc receiver routes an unknown SSRC to any receiver with the same payload type until
            # its own receiver is registered: let it register before the SFU starts sending (browsers demux
            # by MID and do not need this).
            for _ in range(1000):
                receivers = [
                    t.receiver for t in self.sub_pc.getTransceivers() if t.currentDirection == "recvonly"
                ]
                if all(r._RTCRtpReceiver__started for r in receivers):
                    break
                await asyncio.sleep(0)
        await self.peer.accept_subscribe_answer(self.sub_pc.localDescription.sdp)
        self.answers += 1
        self.offer_sdp = offer
        self._notify()
        if self.sub_lossy is not None and self.sub_pc.getTransceivers():
            install_receive_loss(self.sub_pc, self.sub_lossy)

    def _on_track(self, track: Any) -> None:
        assert self.sub_pc is not None
        mid = next(t.mid for t in self.sub_pc.getTransceivers() if t.receiver.track is track)
        self._tasks.append(asyncio.create_task(self._consume(mid, track)))

    async def _consume(self, mid: str, track: Any) -> None:
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            if track.kind == "video":
                self.frames.setdefault(mid, []).append((time.monotonic(), read_counter(frame)))
                self.decoded_sizes.append((frame.width, frame.height))
            else:
                self.audio_frames[mid] = self.audio_frames.get(mid, 0) + 1
            self._notify()

    def _notify(self) -> None:
        self.changed.set()

    def counters_from(self, start: int, span: int = 1000) -> list[int]:
        """Decoded counters (all mids) that belong to the publisher whose counter starts at `start`."""
        result: list[int] = []
        for frames in self.frames.values():
            result += [c for _, c in frames if start <= c < start + span]
        return result

    def describe(self) -> str:
        video = {mid: len(frames) for mid, frames in self.frames.items()}
        states = [pc.connectionState if pc else None for pc in (self.pub_pc, self.sub_pc)]
        return f"video={video} audio={self.audio_frames} answers={self.answers} pub/sub={states}"

    async def wait_until(self, predicate: Callable[[], bool], within: float) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.id}: condition not met within {within} s; {self.describe()}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for pc in (self.pub_pc, self.sub_pc):
            if pc is not None:
                await pc.close()


def dtls_of(pc: RTCPeerConnection) -> Any:
    return pc.getTransceivers()[0].receiver.transport


def install_send_loss(pc: RTCPeerConnection, drop: Callable[[bytes], bool]) -> None:
    """Network loss on a test client's outgoing RTP (RTCP is kept)."""
    dtls = dtls_of(pc)
    original = dtls._send_rtp

    async def send_rtp(data: bytes) -> None:
        if not is_rtcp(data) and drop(data):
            return
        await original(data)

    dtls._send_rtp = send_rtp


def install_receive_loss(pc: RTCPeerConnection, drop: Callable[[bytes], bool]) -> None:
    """Network loss on a test client's incoming RTP (idempotent)."""
    dtls = dtls_of(pc)
    if getattr(dtls, "_test_loss", False):
        return
    dtls._test_loss = True
    original = dtls._handle_rtp_data

    async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
        if drop(data):
            return
        await original(data, arrival_time_ms)

    dtls._handle_rtp_data = handle_rtp_data


def ignore_remb(pc: RTCPeerConnection) -> None:
    """Make a test publisher deaf to REMB: aiortc restarts its VP8 encoder (a keyframe) on bitrate changes."""
    dtls = dtls_of(pc)
    original = dtls._handle_rtcp_data

    async def handle_rtcp_data(data: bytes) -> None:
        if data[1] == 206 and data[0] & 0x1F == 15:
            return
        await original(data)

    dtls._handle_rtcp_data = handle_rtcp_data


def random_loss(rate: float, seed: int, counter: list[int]) -> Callable[[bytes], bool]:
    rng = random.Random(seed)

    def drop(data: bytes) -> bool:
        if rng.random() < rate:
            counter[0] += 1
            return True
        return False

    return drop


def assert_consecutive(counters: list[int], what: str) -> None:
    assert counters, f"{what}: no frames decoded"
    gaps = [(a, b) for a, b in itertools.pairwise(counters) if b != a + 1]
    assert not gaps, f"{what}: counter gaps or reordering {gaps[:5]} in {len(counters)} frames"


class Meeting:
    """An Sfu with one router and test clients; routes SubscriberNeedsOffer to the right client."""

    def __init__(self, settings: SfuSettings | None = None) -> None:
        self.sfu = Sfu(settings or SfuSettings())
        self.router = self.sfu.router("meeting-1")
        self.clients: dict[str, Client] = {}
        self.events: list[RouterEvent] = []
        self.event_changed = asyncio.Event()
        self.router.add_listener(self._on_event)

    def _on_event(self, event: RouterEvent) -> None:
        self.events.append(event)
        self.event_changed.set()
        if isinstance(event, SubscriberNeedsOffer) and event.participant_id in self.clients:
            self.clients[event.participant_id].needs_offer()

    async def client(self, participant_id: str) -> Client:
        client = Client(self.router, participant_id)
        self.clients[participant_id] = client
        await client.join()
        return client

    async def wait_event(self, predicate: Callable[[], bool], within: float = 10) -> None:
        """Until `predicate` holds, re-checked on every router event."""
        deadline = time.monotonic() + within
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"router state not reached within {within} s; events: {self.events[-5:]}")
            self.event_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.event_changed.wait(), remaining)

    async def wait_tracks(self, count: int, within: float = 10) -> None:
        """Until the router has `count` published tracks (published once the publish PC connects)."""
        await self.wait_event(lambda: len(self.router.tracks) >= count, within)

    async def leave(self, participant_id: str) -> None:
        client = self.clients.pop(participant_id)
        await self.router.remove_peer(participant_id)
        await client.close()

    async def close(self) -> None:
        for client in list(self.clients.values()):
            await client.close()
        await self.sfu.close()


@pytest.fixture
async def meeting() -> AsyncIterator[Meeting]:
    m = Meeting()
    try:
        yield m
    finally:
        await m.close()
