"""The C copy loop (sfu/_fanout.c) against the Python rewrite it repeats: byte for byte, real SRTP and UDP."""

from __future__ import annotations

import os
import random
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiortc.rtcdtlstransport import State
from aiortc.rtcrtpparameters import (
    RTCRtcpParameters,
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)
from pylibsrtp import Policy, Session

import sfu.subscription
from sfu import fanout
from sfu.errors import HookSurfaceChanged
from sfu.fanout import Route
from sfu.rtp import URI_AUDIO_LEVEL, URI_MID, RtpHeader, parse_rtp, split_payload
from sfu.subscription import Subscription
from sfu.track import Layer, Track
from tests.sfu.test_subscription import VP8_IN, VP8_OUT, make_subscription, make_track

OPUS_IN, OPUS_OUT = 111, 109


def test_the_c_module_is_built() -> None:
    # The product runs without it (pure Python, more CPU), but the suite must exercise it: .ci/run installs
    # gcc and the Python headers so that `pip install -e .` builds sfu/_fanout.c.
    assert fanout.NATIVE, "sfu._fanout is not built: install gcc and python3-dev, then pip install -e ."
    assert fanout.SubscriptionBase is not fanout.PythonSubscriptionBase


class Wire:
    """A real UDP socket pair on 127.0.0.1 and a real SRTP session pair: what a Route sends, decrypted."""

    def __init__(self, profile: int = Policy.SRTP_PROFILE_AEAD_AES_128_GCM) -> None:
        key = os.urandom(28 if profile == Policy.SRTP_PROFILE_AEAD_AES_128_GCM else 30)
        tx = Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile)
        tx.allow_repeat_tx = True
        self.tx = Session(tx)
        self.rx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=profile))
        self.sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sender.bind(("127.0.0.1", 0))
        self.receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.receiver.bind(("127.0.0.1", 0))
        self.receiver.setblocking(False)
        self.dtls = SimpleNamespace(_state=State.CONNECTED, _tx_srtp=self.tx)
        self.pair = object()
        self.nominated: dict[int, Any] = {1: self.pair}
        self.refreshes = 0
        self.answer: bool | None = True
        self.route = Route(self.refresh)

    def refresh(self) -> bool | None:
        self.refreshes += 1
        if self.answer is not True:
            return self.answer
        if self.dtls._state is not State.CONNECTED:  # as PeerHooks._refresh_route
            self.route.clear()
            return False
        host, port = self.receiver.getsockname()
        self.route.set(
            dtls=self.dtls,
            nominated=self.nominated,
            connected=State.CONNECTED,
            pair=self.nominated[1],
            session=self.dtls._tx_srtp,
            srtp=fanout.srtp_context_address(self.dtls._tx_srtp),
            fd=self.sender.fileno(),
            host=host,
            port=port,
        )
        return True

    def received(self) -> list[bytes]:
        """Every datagram that arrived (loopback delivers within sendto: no waiting), unprotected."""
        packets = []
        while True:
            try:
                packets.append(self.rx.unprotect(self.receiver.recv(4096)))
            except BlockingIOError:
                return packets

    def close(self) -> None:
        self.route.close()
        self.sender.close()
        self.receiver.close()


@pytest.fixture
def wire() -> Iterator[Wire]:
    w = Wire()
    yield w
    w.close()


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    # A layer switch reads the clock for the timestamp gap: both subscriptions must see the same time.
    monkeypatch.setattr(sfu.subscription.time, "monotonic", lambda: 1000.0)


STATE = [
    "switch_seq",
    "seq_offset",
    "ts_offset",
    "last_seq",
    "last_ts",
    "last_sent_at",
    "vp8_resync",
    "pid_offset",
    "tl0_offset",
    "last_pid",
    "last_tl0",
    "packets",
    "octets",
    "switches",
    "dropped_before_keyframe",
]


def state(subscription: Subscription) -> dict[str, Any]:
    return {name: getattr(subscription, name) for name in STATE}


def twin(python: Subscription, native: Subscription) -> None:
    """Start both from the same random numbering; the native one's Python path sends as PeerHooks.send_now
    does, through the same route."""
    native._send_now = lambda data: bool(native.route.send(data)) if native.route else False
    for name in ("last_seq", "last_ts", "last_pid", "last_tl0", "rtx_seq"):
        setattr(native, name, getattr(python, name))


def deliver(
    subscription: Subscription,
    fan: Any,
    layer: Layer,
    data: bytes,
    arrival: float,
    *,
    level: bytes | None = None,
) -> None:
    """What PublishConnection._on_rtp does with one packet for one subscription."""
    h = RtpHeader()
    assert parse_rtp(data, h)
    h.arrival = arrival
    split_payload(data, h, layer.track.codec_name)
    abs3 = bytes((int(arrival * 1000) & 0xFF, 1, 2))
    value = abs3 if layer.track.kind == "video" else level
    for slow in fan((subscription,), layer, data, h, value) or ():
        slow.forward_now(layer, data, h, level, abs3)


def vp8_packet(
    seq: int, ts: int, ssrc: int, picture_id: int, *, key: bool, tl0: int | None, pt: int
) -> bytes:
    """VP8 with a 15- or 7-bit picture id, optionally TL0PICIDX (L bit), a mid extension and odd lengths."""
    long_pid = picture_id > 0x7F or tl0 is not None
    x = 0x80 | (0x40 if tl0 is not None else 0)
    pid = bytes((0x80 | (picture_id >> 8), picture_id & 0xFF)) if long_pid else bytes((picture_id,))
    descriptor = bytes((0x90, x)) + pid + (bytes((tl0,)) if tl0 is not None else b"")
    frame = b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", 320, 240) if key else b"\x01\x00\x00"
    body = frame + os.urandom(random.randrange(0, 1100))
    ext = struct.pack("!HH", 0xBEDE, 1) + bytes(((4 << 4) | 0,)) + b"1\x00\x00"
    return (
        struct.pack("!BBHII", 0x90, (random.randrange(2) << 7) | pt, seq, ts, ssrc) + ext + descriptor + body
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_c_copies_are_the_python_rewrite_byte_for_byte(wire: Wire, frozen_clock: None, seed: int) -> None:
    """A simulcast VP8 stream with switches both ways, reordering, keyframe gating and foreign payload types:
    every packet the C loop sends is the packet the Python path builds, and both end in the same state."""
    random.seed(seed)
    track = make_track(SimpleNamespace(), ["q", "f"])  # type: ignore[arg-type]
    low, high = track.layers["q"], track.layers["f"]
    low.ssrc, high.ssrc = 10, 20
    low.width, low.height, high.width, high.height = 80, 60, 320, 240
    sent: list[bytes] = []

    def capture(data: bytes) -> bool:
        sent.append(data)
        return True

    python = make_subscription(SimpleNamespace())  # type: ignore[arg-type]
    python._send_now = capture
    native = make_subscription(SimpleNamespace())  # type: ignore[arg-type]
    native.route = wire.route
    twin(python, native)
    for s in (python, native):
        s.configure(s.params)
        s.max_width, s.max_height = 80, 60
        s.bind(track)

    seqs = {low: 60000, high: 100}
    pids = {low: 120, high: 32700}
    tl0s = {low: 250, high: None}
    forwarded = 0
    held: list[tuple[int, Layer, bytes]] = []
    for step in range(400):
        if step % 50 == 25:  # the tile grows or shrinks: switch on the next keyframe of the other layer
            size = (320, 240) if python.max_width == 80 else (80, 60)
            for s in (python, native):
                s.max_width, s.max_height = size
                s.reselect_layer(now=1000.0)
        layer = low if random.random() < 0.5 else high
        seq = seqs[layer] = (seqs[layer] + 1) & 0xFFFF
        key = random.random() < 0.08
        if not key or random.random() < 0.5:
            pids[layer] = (pids[layer] + 1) & 0x7FFF
        if layer is low and random.random() < 0.3:
            tl0s[low] = ((tl0s[low] or 0) + 1) & 0xFF
        pt = VP8_IN if random.random() < 0.97 else 35  # 35: not negotiated, never forwarded
        data = vp8_packet(seq, seq * 3000, layer.ssrc, pids[layer], key=key, tl0=tl0s[layer], pt=pt)
        arrival = 1000.0 + step / 300
        if random.random() < 0.05:
            held.append((step + 3, layer, data))  # arrives three packets late: maybe from before a switch
            continue
        for due, late_layer, late in [x for x in held if x[0] <= step]:
            held.remove((due, late_layer, late))
            deliver(python, fanout.python_fan_out, late_layer, late, arrival)
            deliver(native, fanout.fan_out, late_layer, late, arrival)
        deliver(python, fanout.python_fan_out, layer, data, arrival)
        deliver(native, fanout.fan_out, layer, data, arrival)
        got = wire.received()
        assert got == sent, f"step {step}"
        forwarded += len(got)
        sent.clear()
        assert state(native) == state(python), f"step {step}"
    assert forwarded > 150 and native.switches >= 4
    assert wire.route.sent == forwarded and wire.route.errors == 0 and wire.refreshes == 1


def audio_track() -> Track:
    params = RTCRtpReceiveParameters(
        codecs=[
            RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=OPUS_IN)
        ],
        muxId="0",
    )
    return Track(
        track_id="p:0",
        participant_id="p",
        kind="audio",
        source="mic",
        mid="0",
        params=params,
        rtcp_ssrc=42,
        send_rtcp=SimpleNamespace(),  # type: ignore[arg-type]
        rids=[],
        keyframe_min_interval=0.1,
        keyframe_retry=0.3,
    )


def audio_subscription(*, level_id: int) -> Subscription:
    transceiver: Any = SimpleNamespace(kind="audio", sender=SimpleNamespace(_ssrc=3333, _rtx_ssrc=4444))
    subscription = Subscription(transceiver, SimpleNamespace())  # type: ignore[arg-type]
    extensions = [RTCRtpHeaderExtensionParameters(id=9, uri=URI_MID)]
    if level_id:
        extensions.append(RTCRtpHeaderExtensionParameters(id=level_id, uri=URI_AUDIO_LEVEL))
    subscription.configure(
        RTCRtpSendParameters(
            codecs=[
                RTCRtpCodecParameters(
                    mimeType="audio/opus", clockRate=48000, channels=2, payloadType=OPUS_OUT
                )
            ],
            headerExtensions=extensions,
            muxId="audio-7",
            rtcp=RTCRtcpParameters(cname="sfu"),
        )
    )
    return subscription


@pytest.mark.parametrize("level_id", [0, 6])
def test_audio_levels_with_and_without_the_extension(wire: Wire, frozen_clock: None, level_id: int) -> None:
    """Audio copies carry the publisher's level when both sides negotiated it, the bare block otherwise."""
    track = audio_track()
    layer = track.layers[""]
    layer.ssrc = 77
    sent: list[bytes] = []
    python = audio_subscription(level_id=level_id)
    python._send_now = lambda data: sent.append(data) is None
    native = audio_subscription(level_id=level_id)
    native.route = wire.route
    twin(python, native)
    python.bind(track)
    native.bind(track)
    for i in range(40):
        level = None if i % 3 == 0 else bytes((0x80 | i,))
        if i % 7 == 0:
            level = b"\x01\x02"  # a malformed level: the copy goes out without one
        data = struct.pack("!BBHII", 0x80, OPUS_IN, 5000 + i, 960 * i, 77) + os.urandom(60 + i)
        deliver(python, fanout.python_fan_out, layer, data, 2000.0 + i / 50, level=level)
        deliver(native, fanout.fan_out, layer, data, 2000.0 + i / 50, level=level)
        assert wire.received() == sent
        sent.clear()
    assert wire.route.sent == 40
    assert state(native) == state(python)


def current_subscription(wire: Wire) -> tuple[Subscription, Layer, Track]:
    track = make_track(SimpleNamespace(), [])  # type: ignore[arg-type]
    layer = track.layers[""]
    layer.ssrc = 10
    subscription = make_subscription(SimpleNamespace())  # type: ignore[arg-type]
    subscription.route = wire.route
    subscription.configure(subscription.params)
    subscription.bind(track)
    subscription._switch(layer, parsed_seq(1))
    return subscription, layer, track


def parsed_seq(seq: int) -> RtpHeader:
    h = RtpHeader()
    h.seq = seq
    return h


def send_one(subscription: Subscription, layer: Layer, seq: int) -> list[Subscription] | None:
    data = vp8_packet(seq, seq * 3000, 10, seq & 0x7FFF, key=False, tl0=None, pt=VP8_IN)
    h = RtpHeader()
    assert parse_rtp(data, h)
    split_payload(data, h, "vp8")
    return fanout.fan_out((subscription,), layer, data, h, b"\x00\x00\x01")


def test_route_follows_the_connection(wire: Wire) -> None:
    """Not connected: counted as forwarded, nothing sent. A new nominated pair or SRTP session: refreshed
    once. A connection the C loop cannot send on (refresh answers None): handed back to Python."""
    subscription, layer, _ = current_subscription(wire)
    assert send_one(subscription, layer, 2) is None
    assert len(wire.received()) == 1 and wire.refreshes == 1

    wire.dtls._state = State.CLOSED
    assert send_one(subscription, layer, 3) is None
    assert wire.received() == [] and subscription.packets == 2  # the numbering moved on, as in Python
    wire.dtls._state = State.CONNECTED

    wire.nominated[1] = object()  # ICE moved to another pair
    send_one(subscription, layer, 4)
    assert len(wire.received()) == 1 and wire.refreshes == 3
    send_one(subscription, layer, 5)
    assert len(wire.received()) == 1 and wire.refreshes == 3  # cached again

    wire.answer = None
    wire.nominated[1] = object()
    assert send_one(subscription, layer, 6) == [subscription]
    assert subscription.packets == 4 and not wire.route.routed  # untouched: Python will forward it
    assert wire.route.send(b"\x80" * 20) is None


def test_route_keeps_its_own_socket_and_closes_it(wire: Wire) -> None:
    subscription, layer, _ = current_subscription(wire)
    send_one(subscription, layer, 2)
    assert wire.route.routed
    wire.sender.close()  # the transport closed its socket first: our duplicate still sends on the same port
    send_one(subscription, layer, 3)
    assert len(wire.received()) == 2
    wire.route.close()
    wire.route.close()
    assert not wire.route.routed


def test_bad_input_is_refused_with_a_clear_error(wire: Wire) -> None:
    subscription, layer, _ = current_subscription(wire)
    h = RtpHeader()
    data = vp8_packet(2, 3000, 10, 300, key=False, tl0=None, pt=VP8_IN)
    assert parse_rtp(data, h)
    split_payload(data, h, "vp8")
    with pytest.raises(TypeError):
        fanout.fan_out([subscription], layer, data, h, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fanout.fan_out((subscription,), layer, bytearray(data), h, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fanout.fan_out((object(),), layer, data, h, None)
    h.vp8.pid_offset = h.split  # outside the descriptor
    with pytest.raises(ValueError, match="VP8 descriptor"):
        fanout.fan_out((subscription,), layer, data, h, None)
    with pytest.raises(ValueError, match="too long"):
        wire.route.send(bytes(4000))
    with pytest.raises(ValueError, match="not an IP address"):
        wire.route.set(
            dtls=wire.dtls,
            nominated=wire.nominated,
            connected=State.CONNECTED,
            pair=wire.pair,
            session=wire.tx,
            srtp=fanout.srtp_context_address(wire.tx),
            fd=wire.sender.fileno(),
            host="example.org",
            port=5000,
        )
    assert subscription.packets == 0 and wire.received() == []


def test_python_sends_share_the_route_and_its_srtp_session(wire: Wire) -> None:
    """Retransmissions (PeerHooks.send_now -> Route.send) use the session the C loop protects with."""
    subscription, layer, _ = current_subscription(wire)
    for seq in range(2, 6):
        send_one(subscription, layer, seq)
    assert len(wire.received()) == 4
    assert wire.route.send(bytes((0x80, VP8_OUT)) + b"\x00\x07" + bytes(8) + b"payload") is True
    [packet] = wire.received()
    assert packet.endswith(b"payload")
    assert wire.route.sent == 5


def test_without_the_c_module_the_python_path_forwards_the_same(tmp_path: Any) -> None:
    """A machine without a C compiler: the rewrite and WHIP → WHEP forwarding tests pass on pure Python."""
    files = ["tests/sfu/test_subscription.py", "tests/sfu/test_whip.py"]  # ~10 s
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
            *files,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_a_changed_srtp_protect_signature_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """The C loop calls libsrtp 2's srtp_protect through a bare address: a pylibsrtp built on another
    signature (libsrtp 3 changed it) must stop the SFU rather than be called with the wrong arguments."""
    assert fanout.srtp_protect_address() > 0
    monkeypatch.setattr(fanout, "SRTP_PROTECT_TYPE", "srtp_err_status_t(*)(struct srtp_ctx_t_ *, uint8_t *)")
    with pytest.raises(HookSurfaceChanged, match="srtp_protect"):
        fanout.srtp_protect_address()
