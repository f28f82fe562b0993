"""PlainPeer with real UDP sockets on 127.0.0.1: a terminal's H.264 reaches a browser-like subscriber, the
speaker's H.264 goes back with one SSRC and continuous numbers, FIR for FIR-only terminals, SRTP."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from sfu import fanout
from sfu.events import ActiveSpeakerChanged
from sfu.plain import PlainPeer
from sfu.router import Router
from signaling.sip import sdp
from tests.sfu.conftest import Client, CounterVideoTrack, Meeting, ToneAudioTrack
from tests.sip.plain_terminal import H264Sink, H264Source, Line, terminal_offer, wait_for

pytestmark = pytest.mark.timeout(60)


class Terminal:
    """A fake terminal with its audio and video lines, joined to `meeting` through a PlainPeer."""

    def __init__(self, meeting: Meeting, participant_id: str = "sip-1", router: Router | None = None) -> None:
        self.meeting = meeting
        self.router = router or meeting.router
        self.id = participant_id
        self.audio = Line("audio")
        self.video = Line("video")
        self.peer: PlainPeer | None = None
        self.answer: sdp.SdpAnswer | None = None

    async def join(
        self,
        *,
        fir_only: bool = False,
        srtp: bool = False,
        native: bool = True,
        te_pt: int = 101,
        feedback: bool = True,
    ) -> PlainPeer:
        await self.audio.open()
        await self.video.open()
        peer = self.peer = await self.router.add_plain_peer(self.id)
        peer.native = native
        ports = peer.local_ports
        policy = sdp.SdpPolicy(
            "127.0.0.1",
            ports["audio"],
            ports["video"],
            transport="tls" if srtp else "udp",
            srtp="best_effort",
        )
        offer = terminal_offer(self.audio.port, self.video.port, fir_only=fir_only, srtp=srtp, te_pt=te_pt)
        if not feedback:  # a terminal that can only be asked for keyframes by SIP INFO
            offer = "".join(line for line in offer.splitlines(keepends=True) if "rtcp-fb" not in line)
        answer = sdp.answer(offer, policy)
        assert isinstance(answer, sdp.SdpAnswer), answer
        self.answer = answer
        for line, port in ((self.audio, ports["audio"]), (self.video, ports["video"])):
            line.gateway = ("127.0.0.1", port)
        if srtp:
            audio, video = answer.audio, answer.video
            assert audio is not None and video is not None and audio.crypto and video.crypto
            self.audio.keys(audio.crypto.local_key)
            self.video.keys(video.crypto.local_key)
        await peer.start(answer.plain_media("127.0.0.1"))
        return peer

    def close(self) -> None:
        self.audio.close()
        self.video.close()


@pytest.fixture
async def meeting() -> AsyncIterator[Meeting]:
    m = Meeting()
    try:
        yield m
    finally:
        await m.close()


async def _send_video(terminal: Terminal, source: H264Source, frames: int) -> None:
    """The terminal's camera at 15 fps; a keyframe first and after each PLI/FIR it receives."""
    answered = 0
    for i in range(frames):
        requests = len(terminal.video.got.keyframe_requests())
        for packet in source.next_packets(keyframe=i == 0 or requests > answered):
            terminal.video.send(packet)
        answered = requests
        await asyncio.sleep(1 / 15)  # the terminal's frame clock (media pacing, not waiting for an event)


@pytest.mark.parametrize("path", ["native", "python"])
async def test_terminal_h264_reaches_a_subscriber(
    meeting: Meeting, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Poly's 428016 H.264 is forwarded to an aiortc subscriber that negotiated 42e01f (codec_key)."""
    if path == "python":
        monkeypatch.setattr(fanout, "fan_out", fanout.python_fan_out)
    else:
        assert fanout.NATIVE
    alice = await meeting.client("alice")
    await alice.subscribe()
    terminal = Terminal(meeting)
    try:
        await terminal.join(native=path == "native")
        await meeting.wait_event(lambda: "sip-1:video" in meeting.router.tracks)
        source = H264Source(pt=109, start=1000)
        sender = asyncio.create_task(_send_video(terminal, source, 60))
        try:
            await alice.wait_until(lambda: len(alice.counters_from(1000)) >= 10, within=20)
        finally:
            sender.cancel()
        decoded = alice.counters_from(1000)
        assert decoded == sorted(decoded) and decoded[0] < 1000 + 30, decoded
        assert (320, 240) in alice.decoded_sizes
        # The subscriber's offer named the browser profile: the terminal's 4280xx became one key with 42e0.
        assert "42e01f" in alice.offer_sdp
    finally:
        terminal.close()


class H264Client(Client):
    """A browser-like publisher whose camera is H.264 (the SDK's preference in meetings with SIP legs)."""

    async def publish_h264(self, start: int, amplitude: float) -> None:
        assert self.peer is not None
        pc = self.pub_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.audio = ToneAudioTrack(amplitude)
        pc.addTrack(self.audio)
        self.video = CounterVideoTrack(start)
        transceiver = pc.addTransceiver(self.video, "sendonly")
        h264 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"]
        transceiver.setCodecPreferences([c for c in h264 if c.parameters.get("profile-level-id") == "42e01f"])
        await pc.setLocalDescription(await pc.createOffer())
        sources = {t.mid or "": "mic" if t.kind == "audio" else "camera" for t in pc.getTransceivers()}
        answer = await self.peer.answer_publish(pc.localDescription.sdp, sources)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))


async def _h264_client(meeting: Meeting, pid: str, start: int, amplitude: float) -> H264Client:
    client = H264Client(meeting.router, pid)
    meeting.clients[pid] = client
    await client.join()
    await client.publish_h264(start, amplitude)
    return client


def _decode(received: list[tuple[float, int, int, int, int, bool, bytes]]) -> H264Sink:
    sink = H264Sink()
    for _, _, _, ts, _, marker, payload in received:
        sink.feed(ts, marker, payload)
    return sink


def _first_frame_at(received: list[tuple[float, int, int, int, int, bool, bytes]], start: int) -> float:
    """Arrival time of the packet that completed the first decoded frame with a counter >= `start`."""
    sink = H264Sink()
    for t, _, _, ts, _, marker, payload in received:
        sink.feed(ts, marker, payload)
        if any(c >= start for c in sink.counters):
            return t
    raise AssertionError(f"no frame >= {start} decoded")


@pytest.mark.parametrize("fir_only", [False, True])
async def test_speaker_switch_keeps_ssrc_and_sequence(meeting: Meeting, fir_only: bool) -> None:
    """Two H.264 publishers take turns speaking: the terminal's video follows with one SSRC, sequence numbers
    without a gap or repeat, a decodable IDR within 1 s of the switch. The terminal itself is asked for its
    keyframes by FIR when it offers only `ccm fir` (Poly), never PLI."""
    changes: list[tuple[float, str | None]] = []
    meeting.router.add_listener(
        lambda e: (
            changes.append((time.monotonic(), e.participant_id))
            if isinstance(e, ActiveSpeakerChanged)
            else None
        )
    )
    a = await _h264_client(meeting, "a", 10_000, 0.5)
    b = await _h264_client(meeting, "b", 20_000, 0.0)
    alice = await meeting.client("alice")
    terminal = Terminal(meeting)
    try:
        await meeting.wait_tracks(4)
        peer = await terminal.join(fir_only=fir_only)
        await alice.subscribe()  # a subscriber of the terminal's video: its keyframe is asked of the terminal
        await meeting.wait_event(lambda: meeting.router.active_speaker == "a", within=10)
        got = terminal.video.got
        await wait_for(got, lambda: any(c >= 10_000 for c in _decode(got.rtp).counters), 20, "a's video")
        assert peer.forwarding_video
        assert a.audio is not None and b.audio is not None
        a.audio.amplitude, b.audio.amplitude = 0.0, 0.5
        await meeting.wait_event(lambda: meeting.router.active_speaker == "b", within=10)
        switched = next(t for t, pid in changes if pid == "b")
        await wait_for(got, lambda: any(c >= 20_000 for c in _decode(got.rtp).counters), 20, "b's video")
        assert _first_frame_at(got.rtp, 20_000) - switched < 1.0
        assert {ssrc for _, ssrc, *_ in got.rtp} == {got.rtp[0][1]}, [
            (s, q, pt, len(p)) for _, s, q, _, pt, _, p in got.rtp if s != got.rtp[0][1]
        ][:5]
        seqs = [seq for _, _, seq, *_ in got.rtp]
        steps = {(y - x) & 0xFFFF for x, y in itertools.pairwise(seqs)}
        assert steps == {1}, f"sequence steps {steps}"
        stamps = [ts for _, _, _, ts, *_ in got.rtp]
        assert all(((y - x) & 0xFFFFFFFF) < 0x80000000 for x, y in itertools.pairwise(stamps))
        # The terminal publishes nothing here, so the subscriber's wish for its first keyframe is the only
        # request it gets: FIR for a FIR-only terminal, PLI otherwise.
        source = H264Source(pt=109, start=1000)
        source.next_packets()  # the IDR is lost: alice's subscription waits for a keyframe and asks for one
        for packet in source.next_packets():
            terminal.video.send(packet)
        await wait_for(got, lambda: bool(got.keyframe_requests()), 10, "a keyframe request to the terminal")
        assert set(got.keyframe_requests()) == ({4} if fir_only else {1})
    finally:
        terminal.close()


async def test_slate_then_adoption_into_the_meeting(meeting: Meeting) -> None:
    """A call in the IVR's own Router gets the slate (an IDR made with libx264); admitted, its PlainPeer moves
    into the meeting's Router without renegotiation; the speaker's video continues the slate's numbering."""
    ivr = meeting.sfu.router("sip-ivr:1")
    terminal = Terminal(meeting, "ivr", router=ivr)
    try:
        peer = await terminal.join()
        slate = H264Source(pt=109, start=777).access_unit(keyframe=True)
        assert not peer.forwarding_video
        assert peer.send_slate(slate) and peer.send_slate(slate)
        got = terminal.video.got
        await wait_for(got, lambda: _decode(got.rtp).counters == [777, 777], 10, "two slates")
        a = await _h264_client(meeting, "a", 10_000, 0.5)
        await meeting.wait_tracks(2)
        assert "ivr:video" in ivr.tracks
        adopted = await meeting.router.adopt_plain_peer(peer, "sip-9")
        assert adopted is peer and peer.participant_id == "sip-9"
        assert "sip-9:video" in meeting.router.tracks and not ivr.tracks
        await wait_for(got, lambda: any(c >= 10_000 for c in _decode(got.rtp).counters), 20, "a's video")
        assert not peer.send_slate(slate)  # a's video is forwarded now
        assert len({ssrc for _, ssrc, *_ in got.rtp}) == 1
        seqs = [seq for _, _, seq, *_ in got.rtp]
        assert {(y - x) & 0xFFFF for x, y in itertools.pairwise(seqs)} == {1}
        assert a.peer is not None
    finally:
        terminal.close()
        await ivr.close()


@pytest.mark.timeout(300)
def test_without_the_c_module_the_terminal_path_works() -> None:
    """Pure Python all the way (sfu._fanout not importable): a terminal's video to a subscriber, and the
    speaker switch back to the terminal."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.sfu.without_native",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/sip/test_sip_plain.py",
            "-k",
            "(reaches and python) or (speaker and False)",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 passed" in result.stdout
