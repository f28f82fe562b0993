"""Renegotiation under churn: publishers come and go, the subscriber's offer stays bounded, media flows."""

from __future__ import annotations

import pytest

from tests.sfu.conftest import Meeting, assert_consecutive

pytestmark = pytest.mark.slow

CYCLES = 20


def _m_lines(sdp: str) -> int:
    return sum(1 for line in sdp.splitlines() if line.startswith("m="))


async def test_twenty_publishers_join_and_leave(meeting: Meeting) -> None:
    viewer = await meeting.client("viewer")
    steady = await meeting.client("steady")
    await steady.publish(video_start=100, amplitude=0.0)
    await meeting.wait_tracks(2)
    await viewer.subscribe()
    await viewer.wait_until(lambda: len(viewer.counters_from(100, 99)) >= 5, within=10)

    most = 0
    for cycle in range(CYCLES):
        pid = f"guest-{cycle}"
        start = 1000 + cycle * 1000
        guest = await meeting.client(pid)
        await guest.publish(video_start=start, amplitude=0.0)
        # The guest's video reaches the viewer through a re-offer, with a relayed keyframe.
        await viewer.wait_until(lambda s=start: len(viewer.counters_from(s)) >= 3, within=10)
        most = max(most, _m_lines(viewer.offer_sdp))
        answers = viewer.answers
        await meeting.leave(pid)
        await viewer.wait_until(lambda a=answers: viewer.answers > a, within=10)  # the re-offer after leaving
        assert all(not t.id.startswith(pid) for t in meeting.router.tracks.values())

    # Steady's two tracks plus one guest's two at a time: inactive m-sections are reused, so four in all.
    assert most == 4
    assert _m_lines(viewer.offer_sdp) == 4
    mids = meeting.router.peers["viewer"].subscribe_mids()
    assert sorted(mids.values()) == ["steady:0", "steady:1"]

    # Media kept flowing all along: steady's video, decoded in order, and every guest was seen.
    before = len(viewer.counters_from(100, 900))
    await viewer.wait_until(lambda: len(viewer.counters_from(100, 900)) >= before + 10, within=10)
    assert_consecutive(viewer.counters_from(100, 900), "viewer <- steady")
    for cycle in range(CYCLES):
        counters = viewer.counters_from(1000 + cycle * 1000)
        assert counters == sorted(counters), f"guest-{cycle} frames out of order"
    assert meeting.router.peers["viewer"].subscribe_connection is not None
    assert meeting.router.peers["viewer"].subscribe_connection.hooks.errors == 0
