"""transport-cc feedback: what we build parses back to the arrivals (250 µs), across wraps and losses."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from sfu.twcc import URI_TRANSPORT_CC, TransportFeedback, answer_with_transport_cc, parse_feedback


def _reported(feedback: TransportFeedback) -> list[tuple[int, int | None]]:
    out: list[tuple[int, int | None]] = []
    for packet in feedback.build(1, 2):
        assert len(packet) % 4 == 0 and len(packet) <= 1200
        out += parse_feedback(packet)[1]
    return out


def test_every_packet_is_reported_once_with_its_arrival_to_250_us() -> None:
    feedback = TransportFeedback()
    arrivals = {seq & 0xFFFF: 5_000_000 + i * 4_321 for i, seq in enumerate(range(65_500, 65_600))}
    lost = {65_510 & 0xFFFF, 65_536 & 0xFFFF, 65_537 & 0xFFFF}
    for seq, at in arrivals.items():
        if seq not in lost:
            feedback.record(seq, at)
    reported = _reported(feedback)
    assert [seq for seq, _ in reported] == list(arrivals)  # across the wrap, in order
    for seq, at in reported:
        if seq in lost:
            assert at is None
        else:
            assert at is not None and abs(at - arrivals[seq]) <= 125
    assert _reported(feedback) == []  # nothing twice
    feedback.record(65_520 & 0xFFFF, 9_000_000)  # too late: already reported
    assert _reported(feedback) == []


def test_reordering_large_gaps_and_the_feedback_count() -> None:
    feedback = TransportFeedback()
    feedback.record(10, 1_000_000)
    feedback.record(12, 1_000_600)
    feedback.record(11, 1_000_400)  # reordered: still in time
    feedback.record(13, 1_000_000 + 9_000_000)  # 9 s later: needs a new reference
    packets = feedback.build(7, 8)
    assert len(packets) == 2
    counts = [parse_feedback(p)[0] for p in packets]
    assert counts == [0, 1]
    arrivals = [a for p in packets for _, a in parse_feedback(p)[1]]
    want = [1_000_000, 1_000_400, 1_000_600, 10_000_000]
    assert all(a is not None and abs(a - w) <= 125 for a, w in zip(arrivals, want, strict=True)), arrivals


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(0, 0xFFFF),
    count=st.integers(1, 1500),
    loss=st.floats(0, 0.5),
    seed=st.integers(0, 2**32),
)
def test_any_stream_round_trips(start: int, count: int, loss: float, seed: int) -> None:
    rng = random.Random(seed)
    feedback = TransportFeedback()
    expected: dict[int, int | None] = {}
    at = rng.randrange(0, 10**9)
    received = []
    for i in range(count):
        at += rng.choice((0, 100, 3_000, 20_000, 70_000))
        seq = (start + i) & 0xFFFF
        if i in (0, count - 1) or rng.random() >= loss:
            received.append((seq, at))
            expected[seq] = at
        else:
            expected[seq] = None
    for seq, at in received:
        feedback.record(seq, at)
    reported = _reported(feedback)
    assert [seq for seq, _ in reported] == list(expected)
    for seq, at in reported:
        want = expected[seq]
        assert (at is None) == (want is None)
        if at is not None and want is not None:
            assert abs(at - want) <= 125 * 2  # rounding of this and of the reference


OFFER = """v=0\r
m=audio 9 UDP/TLS/RTP/SAVPF 111\r
a=mid:0\r
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r
a=rtpmap:111 opus/48000/2\r
a=rtcp-fb:111 transport-cc\r
m=video 9 UDP/TLS/RTP/SAVPF 96 97\r
a=mid:1\r
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r
a=rtpmap:96 VP8/90000\r
a=rtcp-fb:96 transport-cc\r
a=rtpmap:97 rtx/90000\r
"""
ANSWER = """v=0\r
m=audio 9 UDP/TLS/RTP/SAVPF 111\r
a=mid:0\r
a=rtpmap:111 opus/48000/2\r
m=video 9 UDP/TLS/RTP/SAVPF 96 97\r
a=mid:1\r
a=rtpmap:96 VP8/90000\r
a=rtpmap:97 rtx/90000\r
"""


def test_the_answer_gets_the_offered_extension_id_and_feedback() -> None:
    answer = answer_with_transport_cc(OFFER, ANSWER)
    sections = answer.split("m=")[1:]
    assert f"a=extmap:3 {URI_TRANSPORT_CC}" in sections[0] and "a=rtcp-fb:111 transport-cc" in sections[0]
    assert f"a=extmap:3 {URI_TRANSPORT_CC}" in sections[1] and "a=rtcp-fb:96 transport-cc" in sections[1]
    assert "a=rtcp-fb:97 transport-cc" not in answer
    # Not offered: nothing added.
    assert answer_with_transport_cc(ANSWER, ANSWER) == ANSWER
