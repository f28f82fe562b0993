"""Peer reports its PeerConnections' state (ConnectionStateChanged): real aiortc clients, UDP cut for real."""

from __future__ import annotations

import aioice.ice
import pytest

from sfu.events import ConnectionStateChanged
from tests.sfu.conftest import Meeting
from tests.signaling.test_media_failed import cut_udp


@pytest.fixture(autouse=True)
def fast_consent(monkeypatch: pytest.MonkeyPatch) -> None:
    # aioice's defaults (a check every 5 s, 6 misses) take ~30 s to declare a dead path; ~1 s here.
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.05)
    monkeypatch.setattr(aioice.ice, "CONSENT_FAILURES", 2)


def _states(meeting: Meeting, participant_id: str, pc: str) -> list[str]:
    return [
        e.state
        for e in meeting.events
        if isinstance(e, ConnectionStateChanged) and e.participant_id == participant_id and e.pc == pc
    ]


async def test_a_cut_connection_is_reported_dead_and_a_replaced_one_is_not_news() -> None:
    meeting = Meeting()
    try:
        alice = await meeting.client("alice")
        bob = await meeting.client("bob")
        await alice.publish()
        await bob.subscribe()
        await meeting.wait_tracks(2)
        await meeting.wait_event(lambda: "connected" in _states(meeting, "bob", "subscribe"))
        assert "connected" in _states(meeting, "alice", "publish")

        assert alice.pub_pc is not None
        cut_udp(alice.pub_pc)
        # Either way aiortc says it: "failed" when ICE notices first, "closed" when DTLS does (its transport
        # closes, and aiortc closes a PeerConnection whose DTLS transports all closed).
        dead = {"failed", "closed"}
        await meeting.wait_event(lambda: bool(dead & set(_states(meeting, "alice", "publish"))))

        before, answers = len(meeting.events), bob.answers
        assert alice.peer is not None
        await alice.peer.restart("publish")  # the SFU closes it itself: no "closed" report
        assert meeting.router.tracks == {}  # alice's tracks are unpublished until she offers again
        await bob.wait_until(lambda: bob.answers > answers, 10)  # bob renegotiated without them
        await meeting.leave("bob")  # closed with its peer: no report either
        assert not [e for e in meeting.events[before:] if isinstance(e, ConnectionStateChanged)]
    finally:
        await meeting.close()
