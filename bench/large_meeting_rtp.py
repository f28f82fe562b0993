"""A large meeting driven at the packet level: a real Router, real publish and subscribe connections, and
synthetic RTP pushed into the publishers' ingress (no ICE, no DTLS, no codecs).

Used by tests/sfu/test_large_meeting.py (40 participants within the suite's budget) and by the
``large-meeting`` bench scenario (its in-process part). Every participant publishes a microphone (Opus with
the RFC 6464 level) and a camera (VP8, one packet a frame; a keyframe when the SFU asks for one, as a
browser answers a PLI); every participant subscribes to everybody else. Subscriptions send into counters
instead of a socket, so what the SFU decides to forward is counted exactly, per subscription.

Time is simulated: ``clock`` is the Router's injected clock, advanced by ``run`` in 20 ms steps, and the
router's tick (speaker, last-N, allocation) is called every 100 ms of it.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from aiortc.rtcrtpparameters import (
    RTCRtcpFeedback,
    RTCRtcpParameters,
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)

from sfu.events import SubscriberNeedsOffer
from sfu.metrics import METRICS
from sfu.publish import PublishConnection
from sfu.router import Router
from sfu.rtp import URI_AUDIO_LEVEL, URI_MID, build_extensions
from sfu.settings import SfuSettings
from sfu.subscription import Subscription

OPUS_PT, VP8_PT = 111, 96
MID_ID, LEVEL_ID = 1, 2
STEP_S = 0.02  # one Opus frame
FEEDBACK = [RTCRtcpFeedback(type="nack"), RTCRtcpFeedback(type="nack", parameter="pli")]
SPEECH, SILENCE = 20, 127  # RFC 6464 levels (-dBov)


def _opus() -> RTCRtpCodecParameters:
    return RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=OPUS_PT)


def _vp8() -> RTCRtpCodecParameters:
    return RTCRtpCodecParameters(
        mimeType="video/VP8", clockRate=90000, payloadType=VP8_PT, rtcpFeedback=FEEDBACK
    )


def vp8_payload(picture_id: int, *, key: bool, size: int) -> bytes:
    descriptor = bytes((0x90, 0x80, 0x80 | ((picture_id >> 8) & 0x7F), picture_id & 0xFF))
    body = b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", 640, 360) if key else b"\x01\x00\x00"
    return descriptor + body + bytes(max(0, size - len(body)))


@dataclass
class Participant:
    pid: str
    index: int
    publish: PublishConnection
    speaking: bool = False
    muted: bool = True  # as the SDK mutes: replaceTrack(null), nothing is sent
    audio_seq: int = 0
    video_seq: int = 0
    picture_id: int = 0
    audio_ssrc: int = 0
    video_ssrc: int = 0


@dataclass
class Counters:
    """What the SFU forwarded, by (subscriber, track id)."""

    packets: dict[tuple[str, str], int] = field(default_factory=dict)


class SyntheticMeeting:
    def __init__(self, size: int, settings: SfuSettings, *, video_bytes: int = 1000) -> None:
        self.now = 1000.0
        self.router = Router("synthetic", settings, clock=lambda: self.now)
        self.settings = settings
        self.size = size
        self.video_bytes = video_bytes
        self.participants: dict[str, Participant] = {}
        # By (subscriber, track id): packets sent, and (simulated time, packet) of each first packet after a
        # pause of more than 200 ms. Keyed by track: an audio slot carries whichever microphone is selected.
        self.sent: dict[tuple[str, str], int] = {}
        self.octets = 0  # bytes of every packet sent
        self.starts: dict[tuple[str, str], list[tuple[float, bytes]]] = {}
        self._last_sent: dict[tuple[str, str], float] = {}
        self._instrumented: set[int] = set()
        self._offers: list[str] = []
        self.renegotiations: dict[str, int] = {}  # subscriber -> offers after its first
        self._ticks = 0
        self.cpu_s = 0.0

    async def start(self, *, subscribe: bool = True) -> None:
        self.router.add_listener(self._event)
        for i in range(self.size):
            await self.join(f"p{i:02d}", subscribe=False)
        if subscribe:
            for pid in self.router.peers:
                self._negotiate(pid)
        self._offers.clear()
        self.renegotiations = dict.fromkeys(self.router.peers, 0)

    async def join(self, pid: str, *, subscribe: bool = True) -> None:
        """One more participant: a microphone and a camera published, then its first subscribe offer."""
        router = self.router
        peer = await router.add_peer(pid)
        publish = PublishConnection(
            pid,
            self.settings,
            on_track=router._track_published,
            on_track_ended=router._track_unpublished,
            on_audio_level=router._audio_level,
        )
        peer._publish = publish
        i = len(self.participants)
        p = Participant(pid, i, publish, audio_ssrc=0x10000 + i, video_ssrc=0x20000 + i)
        self.participants[pid] = p
        publish._on_receive(SimpleNamespace(kind="audio"), self._receive_params("0", _opus(), p.audio_ssrc))
        publish._on_receive(SimpleNamespace(kind="video"), self._receive_params("1", _vp8(), p.video_ssrc))
        if subscribe:
            self._negotiate(pid)
            self.renegotiations[pid] = 0

    def _event(self, event: object) -> None:
        if isinstance(event, SubscriberNeedsOffer):
            self._offers.append(event.participant_id)

    def _negotiate(self, pid: str) -> None:
        """What an offer and its answer do, without SDP: place the wanted tracks, apply the parameters."""
        connection = self.router.peers[pid]._subscriber()
        connection._dirty = False
        connection._plan()
        for n, subscription in enumerate(connection.subscriptions):
            if id(subscription) not in self._instrumented:
                self._instrument(pid, subscription)
            if subscription.params is None or subscription.pending is not None:
                codec = _opus() if subscription.kind == "audio" else _vp8()
                connection._on_send(subscription.transceiver, self._send_params(str(n), codec))

    async def renegotiate(self) -> None:
        """Answer every SubscriberNeedsOffer so far (the meeting server would send an offer)."""
        while self._offers:
            pid = self._offers.pop(0)
            if pid in self.router.peers and pid in self.renegotiations:
                self.renegotiations[pid] += 1
                self._negotiate(pid)

    @staticmethod
    def _receive_params(mid: str, codec: RTCRtpCodecParameters, ssrc: int) -> RTCRtpReceiveParameters:
        return RTCRtpReceiveParameters(
            codecs=[codec],
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=MID_ID, uri=URI_MID),
                RTCRtpHeaderExtensionParameters(id=LEVEL_ID, uri=URI_AUDIO_LEVEL),
            ],
            muxId=mid,
            encodings=[RTCRtpDecodingParameters(ssrc=ssrc, payloadType=codec.payloadType or 0)],
        )

    @staticmethod
    def _send_params(mid: str, codec: RTCRtpCodecParameters) -> RTCRtpSendParameters:
        return RTCRtpSendParameters(
            codecs=[codec],
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=MID_ID, uri=URI_MID),
                RTCRtpHeaderExtensionParameters(id=LEVEL_ID, uri=URI_AUDIO_LEVEL),
            ],
            muxId=mid,
            rtcp=RTCRtcpParameters(cname="sfu"),
        )

    def _instrument(self, pid: str, subscription: Subscription) -> None:
        self._instrumented.add(id(subscription))

        def send_now(data: bytes) -> bool:
            track = subscription.track
            key = (pid, track.id if track is not None else "")
            self.sent[key] = self.sent.get(key, 0) + 1
            self.octets += len(data)
            if self.now - self._last_sent.get(key, -1e9) > 0.2:
                self.starts.setdefault(key, []).append((self.now, data))
            self._last_sent[key] = self.now
            return True

        async def send(data: bytes) -> bool:
            return send_now(data)

        subscription.route = None  # the Python copy path, into the counter
        subscription._send_now = send_now
        subscription._send = send
        subscription._connected = lambda: True

    # ------------------------------------------------------------------------------------- driving
    async def run(self, seconds: float) -> None:
        """Advance simulated time: audio of unmuted microphones every 20 ms, video at 25 fps, ticks."""
        steps = round(seconds / STEP_S)
        started = time.process_time()
        for _ in range(steps):
            self.now += STEP_S
            step = round((self.now - 1000.0) / STEP_S)
            for p in self.participants.values():
                if not p.muted:
                    await self._audio(p)
                if step % 2 == 0:
                    await self._video(p)
            if step % 5 == 0:
                self._ticks += 1
                await self.router.tick(self.now)
            await self.renegotiate()
        self.cpu_s += time.process_time() - started

    async def _audio(self, p: Participant) -> None:
        p.audio_seq = (p.audio_seq + 1) & 0xFFFF
        level = SPEECH if p.speaking else SILENCE
        ext = build_extensions([(MID_ID, b"0"), (LEVEL_ID, bytes((0x80 | level,)))])
        header = struct.pack("!BBHII", 0x90, OPUS_PT, p.audio_seq, p.audio_seq * 960, p.audio_ssrc)
        await p.publish._on_rtp(header + ext + bytes(80), int(self.now * 1000))

    async def _video(self, p: Participant) -> None:
        layer = p.publish.tracks["1"].layers[""]
        key = layer.awaiting_keyframe or p.video_seq == 0  # a browser answers a PLI with a keyframe
        p.video_seq = (p.video_seq + 1) & 0xFFFF
        p.picture_id = (p.picture_id + 1) & 0x7FFF
        ext = build_extensions([(MID_ID, b"1")])
        header = struct.pack("!BBHII", 0x90, 0x80 | VP8_PT, p.video_seq, p.video_seq * 3600, p.video_ssrc)
        payload = vp8_payload(p.picture_id, key=key, size=self.video_bytes)
        await p.publish._on_rtp(header + ext + payload, int(self.now * 1000))

    # ------------------------------------------------------------------------------------- reading
    def counts(self) -> dict[tuple[str, str], int]:
        """Packets forwarded so far by (subscriber, track id)."""
        return dict(self.sent)

    def m_sections(self, subscriber: str) -> tuple[int, int]:
        """(audio, video) m-sections of the subscriber's connection."""
        connection = self.router.peers[subscriber].subscribe_connection
        assert connection is not None
        kinds = [s.kind for s in connection.subscriptions]
        return kinds.count("audio"), kinds.count("video")

    @staticmethod
    def forwarded() -> int:
        return METRICS.forwarded_packets

    async def close(self) -> None:
        await self.router.close()


def describe(meeting: SyntheticMeeting, seconds: float) -> dict[str, Any]:
    """The figures a run leaves: CPU per participant, forwarded packets per second per participant."""
    n = meeting.size
    total = sum(meeting.sent.values())
    return {
        "participants": n,
        "simulated_s": seconds,
        "cpu_s": round(meeting.cpu_s, 3),
        "cpu_ms_per_participant_per_simulated_s": round(1000 * meeting.cpu_s / n / seconds, 3),
        "forwarded_pkt_per_s_per_participant": round(total / n / seconds, 1),
    }
