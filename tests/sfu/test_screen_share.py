"""Screen share is one more video track: two bundled video m-sections, started and stopped by a new offer."""

from __future__ import annotations

import pytest
from aiortc import RTCSessionDescription

from sfu.events import TrackPublished, TrackUnpublished
from tests.sfu.conftest import CounterVideoTrack, Meeting, assert_consecutive, install_send_loss, random_loss

pytestmark = pytest.mark.slow


async def test_screen_share_starts_and_stops(meeting: Meeting) -> None:
    presenter = await meeting.client("presenter")
    await presenter.publish(video_start=100, amplitude=0.0)
    viewer = await meeting.client("viewer")
    await meeting.wait_tracks(2)
    await viewer.subscribe()
    await viewer.wait_until(lambda: len(viewer.counters_from(100)) >= 5, within=10)

    # Share the screen: a second video transceiver on the same publish connection, a new offer.
    assert presenter.pub_pc is not None and presenter.peer is not None
    pc = presenter.pub_pc
    screen = CounterVideoTrack(20_000)
    pc.addTrack(screen)
    await pc.setLocalDescription(await pc.createOffer())
    screen_mid = next(t.mid for t in pc.getTransceivers() if t.sender.track is screen)
    answer = await presenter.peer.answer_publish(pc.localDescription.sdp, {screen_mid: "screen"})
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    # With two bundled video m-sections aiortc's own router drops RTX; the SFU demuxes it itself.
    install_send_loss(pc, random_loss(0.03, 5, [0]))

    await meeting.wait_event(
        lambda: any(isinstance(e, TrackPublished) and e.source == "screen" for e in meeting.events)
    )
    published = next(e for e in meeting.events if isinstance(e, TrackPublished) and e.source == "screen")
    assert (published.participant_id, published.kind) == ("presenter", "video")
    screen_layer = meeting.router.tracks[published.track_id].layers[""]
    await viewer.wait_until(
        lambda: len(viewer.counters_from(20_000)) >= 30 and screen_layer.rtx_packets >= 1, within=20
    )
    assert_consecutive(viewer.counters_from(20_000), "viewer <- screen")
    mids = meeting.router.peers["viewer"].subscribe_mids()
    assert published.track_id in mids.values()

    # Stop sharing: the m-section goes inactive, the track is unpublished, the viewer's offer follows.
    answers = viewer.answers
    next(t for t in pc.getTransceivers() if t.mid == screen_mid).direction = "inactive"
    await pc.setLocalDescription(await pc.createOffer())
    answer = await presenter.peer.answer_publish(pc.localDescription.sdp, {})
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    assert TrackUnpublished("presenter", published.track_id) in meeting.events
    await viewer.wait_until(lambda: viewer.answers > answers, within=10)
    assert published.track_id not in meeting.router.peers["viewer"].subscribe_mids().values()
    camera = len(viewer.counters_from(100))
    await viewer.wait_until(lambda: len(viewer.counters_from(100)) >= camera + 10, within=10)
    assert_consecutive(viewer.counters_from(100), "viewer <- camera")
