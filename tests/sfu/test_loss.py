"""NACK/RTX on both legs: 5 % loss on the publish leg and on the subscribe leg, and no frame goes missing."""

from __future__ import annotations

import random
import re

import pytest

from tests.sfu.conftest import Meeting, assert_consecutive, install_send_loss

pytestmark = pytest.mark.slow

LOSS = 0.05


async def test_frames_stay_complete_under_loss_on_both_legs(meeting: Meeting) -> None:
    publisher = await meeting.client("pub")
    await publisher.publish(video_start=7000, amplitude=0.1)
    assert publisher.pub_pc is not None
    up_drops = [0]
    # The publish leg loses retransmissions too: the SFU asks again until they arrive.
    up = random.Random(1)

    def drop_up(data: bytes) -> bool:
        if up.random() >= LOSS:
            return False
        if data[1] & 0x7F == 97:
            up_drops[0] += 1
        return True

    install_send_loss(publisher.pub_pc, drop_up)
    await meeting.wait_tracks(2)

    subscriber = await meeting.client("sub")
    down_drops = [0]
    offer_rtx: set[int] = set()

    def drop_down(data: bytes) -> bool:
        # The stock aiortc receiver NACKs a gap only once, so its retransmissions are not dropped.
        pt = data[1] & 0x7F
        if pt in offer_rtx or down.random() >= LOSS:
            return False
        if pt == 97:
            down_drops[0] += 1
        return True

    down = random.Random(2)
    subscriber.sub_lossy = drop_down
    await subscriber.subscribe()
    offer_rtx.update(int(pt) for pt in re.findall(r"a=rtpmap:(\d+) rtx/", subscriber.offer_sdp))
    assert offer_rtx, "the subscribe offer negotiates RTX"

    await subscriber.wait_until(
        lambda: up_drops[0] >= 3 and down_drops[0] >= 3 and len(subscriber.counters_from(7000)) >= 60,
        within=40,
    )
    assert_consecutive(subscriber.counters_from(7000), "sub <- pub under loss")

    peer = meeting.router.peers["pub"]
    assert peer.publish_connection is not None
    track = next(t for t in meeting.router.tracks.values() if t.kind == "video")
    layer = track.layers[""]
    sub_connection = meeting.router.peers["sub"].subscribe_connection
    assert sub_connection is not None
    subscription = sub_connection.subscription_for(track.id)
    assert subscription is not None
    # Retransmissions counted on each leg: publisher -> SFU (RTX unwrapped), SFU -> subscriber (RTX sent).
    assert peer.publish_connection.nacks_sent >= 1
    assert layer.rtx_packets >= 1
    assert sub_connection.nacks_received >= 1
    assert subscription.retransmitted >= 1
    print(
        f"dropped up={up_drops[0]} down={down_drops[0]};"
        f" NACKs to publisher={peer.publish_connection.nacks_sent}"
        f" RTX in={layer.rtx_packets}; NACKs from subscriber={sub_connection.nacks_received}"
        f" RTX out={subscription.retransmitted}"
    )
