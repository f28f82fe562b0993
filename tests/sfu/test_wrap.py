"""Long streams: 200,000 packets through the rewrite, across several wraps of the 16-bit sequence number.

Until the switch point followed the stream, every copy had to pass ``((seq - switch_seq) & 0xFFFF) <
0x8000`` with ``switch_seq`` set only at a switch: 32,768 packets after a subscriber attached, every packet
of the stream was dropped for the next 32,768 (a camera froze after ~3 minutes, audio went silent after
~11). These tests fail on that code: no packet after the 32,768th arrived.
"""

from __future__ import annotations

import struct
from types import SimpleNamespace
from typing import Any

import pytest

from sfu import fanout
from sfu.rtp import RtpHeader, parse_rtp, split_payload
from sfu.subscription import GUARD_WINDOW, Subscription
from sfu.track import Layer
from tests.sfu.test_fanout import Wire, deliver, twin, wire  # noqa: F401  (the fixture)
from tests.sfu.test_subscription import VP8_IN, make_subscription, make_track

PACKETS = 200_000
FIRST_SEQ = 65_500  # the publisher's numbering wraps 35 packets in, then every 65,536
FIRST_TS = 0xFFFF_F000  # and its timestamps wrap within the first frames


def packet(seq: int, ts: int, ssrc: int, picture_id: int, *, key: bool) -> bytes:
    """A small VP8 packet (15-bit picture id, a mid extension) as a publisher sends it."""
    descriptor = bytes((0x90, 0x80, 0x80 | (picture_id >> 8), picture_id & 0xFF))
    frame = b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", 320, 240) if key else b"\x01\x00\x00"
    ext = struct.pack("!HH", 0xBEDE, 1) + bytes((4 << 4,)) + b"1\x00\x00"
    header = struct.pack("!BBHII", 0x90, VP8_IN, seq & 0xFFFF, ts & 0xFFFF_FFFF, ssrc)
    return header + ext + descriptor + frame + seq.to_bytes(4, "big")


def out_seq(data: bytes) -> int:
    return int(struct.unpack_from("!H", data, 2)[0])


def attached(send: Any, rids: list[str]) -> tuple[Subscription, Any]:
    track = make_track(SimpleNamespace(), rids)  # type: ignore[arg-type]
    subscription = make_subscription(SimpleNamespace())  # type: ignore[arg-type]
    subscription._send_now = send
    subscription.configure(subscription.params)
    return subscription, track


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    # A switch reads the clock for the timestamp gap: the twins must see the same time.
    import sfu.subscription

    monkeypatch.setattr(sfu.subscription.time, "monotonic", lambda: 5000.0)


def test_200000_packets_every_one_forwarded_c_and_python_byte_identical(wire: Wire, clock: None) -> None:  # noqa: F811
    """One camera stream, attached at a keyframe: the Python rewrite and the C copy over a real SRTP route
    send every one of 200,000 packets, the same bytes, with contiguous output numbers across every wrap."""
    sent: list[bytes] = []

    def capture(data: bytes) -> bool:
        sent.append(data)
        return True

    python, track = attached(capture, [])
    native, _ = attached(capture, [])
    native.route = wire.route
    twin(python, native)
    layer = track.layers[""]
    layer.ssrc = 77
    python.bind(track)
    native.bind(track)
    received = 0
    previous = None
    for i in range(PACKETS):
        seq = FIRST_SEQ + i
        data = packet(seq, FIRST_TS + (i // 4) * 3000, 77, i & 0x7FFF, key=i % 3000 == 0)
        deliver(python, fanout.python_fan_out, layer, data, 5000.0 + i / 1000)
        deliver(native, fanout.fan_out, layer, data, 5000.0 + i / 1000)
        if i % 256 == 255 or i == PACKETS - 1:  # loopback: each datagram is queued within sendto
            got = wire.received()
            assert got == sent, f"packet {i}: the C copies differ from the Python rewrite"
            for data_out in got:
                if previous is not None:
                    assert out_seq(data_out) == (previous + 1) & 0xFFFF, f"packet {received}"
                previous = out_seq(data_out)
            received += len(got)
            sent.clear()
    assert received == PACKETS
    assert python.packets == native.packets == PACKETS
    assert wire.route.sent == PACKETS and wire.route.errors == 0
    # The switch point followed the stream: it trails the newest packet by the guard window.
    assert ((FIRST_SEQ + PACKETS - 1 - python.switch_seq) & 0xFFFF) == GUARD_WINDOW
    assert python.switch_seq == native.switch_seq


def test_audio_never_switches_yet_is_forwarded_for_hours() -> None:
    """Opus at 50 packets/s has one layer and never switches: 200,000 packets is 66 minutes of a speaker."""
    from tests.sfu.test_fanout import audio_subscription, audio_track

    track = audio_track()
    layer = track.layers[""]
    subscription = audio_subscription(level_id=0)
    count = 0

    def capture(data: bytes) -> bool:
        nonlocal count
        count += 1
        return True

    subscription._send_now = capture
    subscription.bind(track)
    h = RtpHeader()
    for i in range(PACKETS):
        seq, ts = (FIRST_SEQ + i) & 0xFFFF, (FIRST_TS + i * 960) & 0xFFFF_FFFF
        data = struct.pack("!BBHII", 0x80, 111, seq, ts, 5) + b"\xfc\xff\xfe"
        assert parse_rtp(data, h)
        h.arrival = 1.0 + i * 0.02
        for slow in fanout.python_fan_out((subscription,), layer, data, h, None) or ():
            slow.forward_now(layer, data, h, None, b"")
    assert count == PACKETS


def test_nack_right_after_a_wrap_is_answered(clock: None) -> None:
    """Packets just before and just after the publisher's 65,535 -> 0, NACKed by their output numbers once
    the stream has run past several wraps, come back from the ingress ring with the same payload."""
    sent: list[bytes] = []
    subscription, track = attached(lambda data: sent.append(data) or True, [])
    layer = track.layers[""]
    layer.ssrc = 9
    subscription.bind(track)
    h = RtpHeader()
    total = 3 * 65_536 + 40  # the last wrap is 40 packets back
    start = 65_536 - 20
    for i in range(total):
        seq = start + i
        data = packet(seq, FIRST_TS + i * 3000, 9, i & 0x7FFF, key=i == 0)
        assert parse_rtp(data, h)
        h.arrival = 1.0 + i / 1000
        if layer.ring:
            layer.ring[h.seq % len(layer.ring)] = data
        split_payload(data, h, "vp8")
        for slow in fanout.python_fan_out((subscription,), layer, data, h, None) or ():
            slow.forward_now(layer, data, h, None, b"\x00\x00\x01")
    assert len(sent) == total
    for back in (1, 30, 39, 40, 41, 60, len(layer.ring) - 1):  # both sides of the wrap 40 packets back
        original = sent[-back]
        answer = subscription._resend(out_seq(original))
        assert answer is not None, f"{back} packets back"
        assert answer[:4] == original[:4] and answer[-4:] == original[-4:]
    # Older than the ring: not answered (and never a wrong packet from an older lap).
    assert subscription._resend(out_seq(sent[-len(layer.ring) - 5])) is None
    assert subscription._resend((out_seq(sent[-1]) + 1) & 0xFFFF) is None  # not sent yet


def simulcast_packets(layer: Layer, first: int, count: int, key_every: int) -> list[bytes]:
    return [
        packet(first + i, FIRST_TS + i * 3000, layer.ssrc, (first + i) & 0x7FFF, key=i % key_every == 0)
        for i in range(count)
    ]


def test_simulcast_switches_across_a_wrap(wire: Wire, clock: None) -> None:  # noqa: F811
    """Two layers whose numbering wraps at different moments; the subscriber switches back and forth, also
    right at a wrap. C and Python agree, output numbers stay contiguous, nothing after a switch is lost."""
    sent: list[bytes] = []

    def capture(data: bytes) -> bool:
        sent.append(data)
        return True

    python, track = attached(capture, ["q", "f"])
    native, _ = attached(capture, ["q", "f"])
    native.route = wire.route
    twin(python, native)
    low, high = track.layers["q"], track.layers["f"]
    low.ssrc, high.ssrc = 10, 20
    low.width, low.height, high.width, high.height = 80, 60, 320, 240
    for s in (python, native):
        s.max_width, s.max_height = 80, 60
        s.bind(track)
    streams = {low: 65_530, high: 65_400}
    switches = 0
    previous = None
    total = 0
    for step in range(120_000):
        if step % 20_000 == 10_000 - 3:  # right before the low layer's numbering wraps (every 65,536 / 2)
            size = (320, 240) if python.max_width == 80 else (80, 60)
            for s in (python, native):
                s.max_width, s.max_height = size
                assert s.reselect_layer(now=5000.0) is not None
            switches += 1
        for layer in (low, high):
            seq = streams[layer]
            streams[layer] = seq + 1
            i = seq - 65_000
            data = packet(seq, FIRST_TS + i * 3000, layer.ssrc, seq & 0x7FFF, key=i % 30 == 0)
            deliver(python, fanout.python_fan_out, layer, data, 5000.0 + step / 1000)
            deliver(native, fanout.fan_out, layer, data, 5000.0 + step / 1000)
        if step % 128 == 127:
            got = wire.received()
            assert got == sent, f"step {step}"
            for data_out in got:
                if previous is not None:
                    assert out_seq(data_out) == (previous + 1) & 0xFFFF, f"step {step}"
                previous = out_seq(data_out)
            total += len(got)
            sent.clear()
    assert python.switches == native.switches == switches + 1  # and the attach
    # One layer's packets every step except the few waiting for the next keyframe after each switch.
    assert total >= 120_000 - 128 - switches * 30 * 2


def test_one_failing_subscription_does_not_stop_the_copies_to_the_others(wire: Wire) -> None:  # noqa: F811
    """A subscription whose route cannot even be asked (its refresh raises) is handed back to Python; the
    C loop still copies the packet to every other subscription, and the failure is counted."""
    from sfu.fanout import Route
    from tests.sfu.test_fanout import current_subscription

    def broken() -> bool:
        raise RuntimeError("a bug in a refresh")

    good, layer, track = current_subscription(wire)
    bad = make_subscription(SimpleNamespace())  # type: ignore[arg-type]
    bad.route = Route(broken)
    bad.configure(bad.params)
    bad.bind(track)
    bad._switch(layer, good_h(1))
    before = fanout.native_counters()["dropped_error"]
    for seq in range(2, 12):
        slow = send_one_to((bad, good), layer, seq)
        assert slow == [bad]
    assert len(wire.received()) == 10
    assert fanout.native_counters()["dropped_error"] == before + 10


def good_h(seq: int) -> RtpHeader:
    h = RtpHeader()
    h.seq = seq
    return h


def send_one_to(subscriptions: tuple[Subscription, ...], layer: Layer, seq: int) -> Any:
    from tests.sfu.test_fanout import vp8_packet

    data = vp8_packet(seq, seq * 3000, 10, seq & 0x7FFF, key=False, tl0=None, pt=VP8_IN)
    h = RtpHeader()
    assert parse_rtp(data, h)
    split_payload(data, h, "vp8")
    return fanout.fan_out(subscriptions, layer, data, h, b"\x00\x00\x01")


def test_a_switch_waits_for_the_subscribers_connection() -> None:
    """The keyframe a subscription would switch on is not consumed while its connection is not up (it would
    be lost, and the subscriber would have to ask for another); no keyframe is asked for meanwhile."""
    sent: list[bytes] = []
    subscription, track = attached(lambda data: sent.append(data) or True, [])
    up = False
    subscription._connected = lambda: up
    layer = track.layers[""]
    layer.ssrc = 9
    subscription.bind(track)
    h = RtpHeader()

    def forward(seq: int, *, key: bool) -> bool:
        data = packet(seq, seq * 3000, 9, seq, key=key)
        assert parse_rtp(data, h)
        split_payload(data, h, "vp8")
        return subscription.forward_now(layer, data, h, None, b"\x00\x00\x01")

    assert not forward(1, key=True) and not forward(2, key=False)  # not connected: held, nothing asked
    assert subscription.current is None and subscription.target is layer and not sent
    up = True
    assert forward(3, key=False)  # connected, still waiting: ask the publisher for a keyframe
    assert not forward(4, key=True) and subscription.current is layer and len(sent) == 1
