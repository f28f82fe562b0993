"""Mixer: N−1 mixes through the Router (taps), PyAV encodes that decode, the terminal's voice published as
Opus with its audio level, CPU per leg."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import av
import numpy as np
import pytest

from sfu.plain import PlainPeer
from sfu.plain_media import PlainCodec, PlainMedia, PlainStream
from signaling.sip.mixer import CODECS, LegCodec, Mixer, audio_level, codec_of
from tests.sfu.conftest import Meeting

pytestmark = pytest.mark.timeout(60)

PT = {"pcmu": 0, "pcma": 8, "g722": 9, "opus": 111}
NAME = {"pcmu": "PCMU", "pcma": "PCMA", "g722": "G722", "opus": "opus"}


class Terminal:
    """A leg as the mixer sees it: what it is sent, and a tone it speaks (encoded like a terminal would)."""

    def __init__(self, leg_id: str, codec: LegCodec, tone_hz: float) -> None:
        self.id = leg_id
        self.codec = codec
        self.tone_hz = tone_hz
        self.info = CODECS[codec]
        self.sent: list[tuple[bytes, int]] = []
        self.encoder = av.CodecContext.create(self.info.encoder, "w")
        assert isinstance(self.encoder, av.AudioCodecContext)
        self.encoder.sample_rate = self.info.rate
        self.encoder.layout = "mono"
        self.encoder.format = "s16"
        self.n = 0
        self.peer: PlainPeer | None = None

    def send(self, payload: bytes, samples: int) -> None:
        self.sent.append((payload, samples))

    def speak(self) -> list[bytes]:
        """20 ms of the tone in the terminal's codec."""
        count = self.info.rate // 50
        t = (self.n + np.arange(count)) / self.info.rate
        self.n += count
        pcm = (8000 * np.sin(2 * np.pi * self.tone_hz * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.info.rate
        frame.pts = self.n
        return [bytes(p) for p in self.encoder.encode(frame)]

    def heard(self) -> np.ndarray:
        """What the leg was sent, decoded with PyAV at the codec's own rate."""
        decoder = av.CodecContext.create(self.info.decoder, "r")
        assert isinstance(decoder, av.AudioCodecContext)
        decoder.sample_rate = self.info.rate
        decoder.layout = "mono"
        out = []
        for payload, _ in self.sent:
            for frame in decoder.decode(av.Packet(payload)):
                out.append(frame.to_ndarray().reshape(-1).astype(np.float64))
        return np.concatenate(out) if out else np.zeros(0)


def peaks(pcm: np.ndarray, rate: int) -> dict[int, float]:
    """Spectrum magnitude near each multiple of 250 Hz, relative to the strongest one."""
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    freqs = np.fft.rfftfreq(len(pcm), 1 / rate)
    bands = {
        f: float(spectrum[(freqs > f - 40) & (freqs < f + 40)].max()) for f in range(250, rate // 2, 250)
    }
    top = max(bands.values()) or 1.0
    return {f: v / top for f, v in bands.items()}


async def _leg_peer(meeting: Meeting, terminal: Terminal) -> PlainPeer:
    peer = await meeting.router.add_plain_peer(terminal.id, ("audio",))
    codec = PlainCodec(PT[terminal.codec], NAME[terminal.codec], 48000 if terminal.codec == "opus" else 8000)
    await peer.start(PlainMedia((PlainStream("audio", "127.0.0.1", 9, (codec,)),), latch_any=True))
    terminal.peer = peer
    return peer


@pytest.fixture
async def meeting() -> AsyncIterator[Meeting]:
    m = Meeting()
    try:
        yield m
    finally:
        await m.close()


async def test_each_leg_hears_the_others_but_never_itself(meeting: Meeting) -> None:
    terminals = [
        Terminal("sip-a", "pcmu", 500),
        Terminal("sip-b", "g722", 1000),
        Terminal("sip-c", "opus", 1500),
        Terminal("sip-d", "pcma", 2000),
    ]
    mixer = Mixer(meeting.router, run=False, loudest=4)
    try:
        for terminal in terminals:
            peer = await _leg_peer(meeting, terminal)
            mixer.add_leg(terminal.id, terminal.codec, terminal.send, peer.publish_audio)
        assert len(mixer._sources) == 4  # the legs' published Opus, tapped
        for i in range(100):  # 2 s of audio, driven frame by frame: the mixer's clock is ours here
            for terminal in terminals:
                for payload in terminal.speak():
                    mixer.receive(terminal.id, payload, PT[terminal.codec], i * terminal.info.rtp_samples)
            mixer.tick()
        assert meeting.router.tracks["sip-a:audio"].layers[""].packets >= 99
        for terminal in terminals:
            assert len(terminal.sent) == 100, terminal.id
            assert {s for _, s in terminal.sent} == {terminal.info.rtp_samples}
            pcm = terminal.heard()[terminal.info.rate // 2 :]  # after the codecs' start-up
            assert len(pcm) > terminal.info.rate
            spectrum = peaks(pcm, terminal.info.rate)
            others = [
                t.tone_hz for t in terminals if t is not terminal and t.tone_hz < terminal.info.rate / 2
            ]
            for hz in others:
                assert spectrum[int(hz)] > 0.3, (terminal.id, hz, spectrum)
            own = spectrum[int(terminal.tone_hz)] if terminal.tone_hz < terminal.info.rate / 2 else 0.0
            assert own < 0.05, (terminal.id, "hears itself", own)
    finally:
        await mixer.close()


async def test_only_the_loudest_three_are_decoded_and_a_quiet_room_gets_silence(meeting: Meeting) -> None:
    terminals = [Terminal(f"sip-{i}", "pcmu", 500 + 250 * i) for i in range(5)]
    listener = Terminal("sip-listener", "g722", 0)
    mixer = Mixer(meeting.router, run=False)
    try:
        for terminal in [*terminals, listener]:
            peer = await _leg_peer(meeting, terminal)
            mixer.add_leg(terminal.id, terminal.codec, terminal.send, peer.publish_audio)
        warm = 0
        for i in range(15):
            if i == 5:  # past the Opus encoders' start-up: every talker has a frame queued per tick
                warm = sum(source.decoded for source in mixer._sources.values())
            for terminal in terminals:
                for payload in terminal.speak():
                    mixer.receive(terminal.id, payload, 0, i * 160)
            mixer.tick()
        decoded = sum(source.decoded for source in mixer._sources.values()) - warm
        assert decoded == 10 * 3  # K = 3 of the 5 talking, each once per frame whatever the number of legs
        # Nobody talks: every leg still gets a frame every 20 ms, and it is silence.
        before = len(listener.sent)
        for _ in range(50):
            mixer.tick()
        assert len(listener.sent) == before + 50
        tail = listener.heard()[-8000:]
        assert np.abs(tail).max() < 50
    finally:
        await mixer.close()


async def test_the_terminal_voice_is_published_with_its_level(meeting: Meeting) -> None:
    levels: list[int] = []
    loud = Terminal("sip-loud", "pcma", 700)
    mixer = Mixer(meeting.router, run=False)
    try:
        peer = await _leg_peer(meeting, loud)

        def publish(opus: bytes, level: int) -> None:
            levels.append(level)
            peer.publish_audio(opus, level)

        mixer.add_leg(loud.id, loud.codec, loud.send, publish)
        for i in range(25):
            for payload in loud.speak():
                mixer.receive(loud.id, payload, 8, i * 160)
        assert len(levels) >= 24
        # A sine of amplitude 8000 is -15 dBov RMS (8000/sqrt(2) against 32768).
        assert all(13 <= level <= 17 for level in levels[2:]), levels
        assert audio_level(np.zeros(160, np.int16)) == 127
        with pytest.raises(ValueError):
            codec_of("G729")
        assert codec_of("PCMU") == "pcmu"
    finally:
        await mixer.close()


async def test_a_browser_tone_reaches_a_leg_on_the_mixer_clock(meeting: Meeting) -> None:
    """Real time: an aiortc publisher's Opus tone, the mixer's own 20 ms task, a PCMU leg."""
    alice = await meeting.client("alice")
    await alice.publish(video_start=None, amplitude=0.5)  # 400 Hz
    await meeting.wait_tracks(1)
    leg = Terminal("sip-1", "pcmu", 0)
    mixer = Mixer(meeting.router)
    try:
        mixer.add_leg(leg.id, leg.codec, leg.send)
        deadline = time.monotonic() + 20
        while len(leg.sent) < 100 or mixer._sources["alice:" + _audio_mid(meeting)].decoded < 50:
            assert time.monotonic() < deadline, f"{len(leg.sent)} frames sent"
            await asyncio.sleep(0.05)  # the mixer's clock runs; this only polls its output
        tail = leg.heard()[-8000:]
        spectrum = np.abs(np.fft.rfft(tail * np.hanning(len(tail))))
        assert abs(float(np.fft.rfftfreq(len(tail), 1 / 8000)[spectrum.argmax()]) - 400) < 5  # alice's tone
    finally:
        await mixer.close()


def _audio_mid(meeting: Meeting) -> str:
    track = next(t for t in meeting.router.tracks.values() if t.kind == "audio")
    return track.mid


async def test_cpu_per_leg(meeting: Meeting) -> None:
    """Reported, and bounded loosely: 12 legs of mixed codecs, 3 talking, 5 s of frames."""
    codecs: list[LegCodec] = ["pcmu", "pcma", "g722", "opus"]
    terminals = [Terminal(f"sip-{i}", codecs[i % 4], 300 + 100 * i) for i in range(12)]
    mixer = Mixer(meeting.router, run=False)
    try:
        for terminal in terminals:
            peer = await _leg_peer(meeting, terminal)
            mixer.add_leg(terminal.id, terminal.codec, terminal.send, peer.publish_audio)
        talking = terminals[:3]
        frames = {t.id: [t.speak() for _ in range(250)] for t in talking}
        start = time.process_time()
        for i in range(250):
            for terminal in talking:
                for payload in frames[terminal.id][i]:
                    mixer.receive(terminal.id, payload, PT[terminal.codec], i * terminal.info.rtp_samples)
            mixer.tick()
        cpu = time.process_time() - start
        per_leg = cpu / 5.0 / len(terminals)  # CPU seconds per second of audio, per leg
        print(f"mixer: {per_leg * 100:.2f} % of a core per leg ({len(terminals)} legs, 3 talking)")
        assert per_leg < 0.05
    finally:
        await mixer.close()
