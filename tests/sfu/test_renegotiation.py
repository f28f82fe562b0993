"""A join does not renegotiate everyone: past the audio last-N threshold microphones ride on a few audio
slots, past the video cap a camera waits without an m-section until it is asked for. Counted per subscriber
over joins 2..N through a real Router (packet-level harness, no SDP)."""

from __future__ import annotations

from bench.large_meeting_rtp import SyntheticMeeting
from sfu.settings import SfuSettings

N, CAP, FROM, LAST_N = 30, 9, 10, 4


async def test_joins_past_the_thresholds_renegotiate_nobody() -> None:
    settings = SfuSettings(audio_last_n=LAST_N, audio_last_n_from=FROM, max_videos_per_subscriber=CAP)
    meeting = SyntheticMeeting(0, settings)
    try:
        await meeting.start()
        per_join: list[int] = []
        for i in range(N):
            before = sum(meeting.renegotiations.values())
            await meeting.join(f"p{i:02d}")
            meeting.participants[f"p{i:02d}"].muted = i != 0  # p00 talks, the others are muted
            meeting.participants["p00"].speaking = True
            await meeting.run(0.1)
            per_join.append(sum(meeting.renegotiations.values()) - before)
        # Up to the thresholds each join renegotiates the others once (a microphone and a camera to add).
        assert per_join[1:CAP] == list(range(1, CAP))
        # Past both, a join costs nobody an offer: its microphone is not selected, its camera is deferred.
        assert per_join[FROM + 1 :] == [0] * (N - FROM - 1), per_join
        assert max(meeting.renegotiations.values()) <= FROM, meeting.renegotiations
        last = f"p{N - 1:02d}"
        assert meeting.m_sections("p01") == (FROM - 2, CAP)  # what it had when the thresholds were reached
        assert meeting.m_sections(last) == (LAST_N, CAP)  # a late joiner's offer is small too

        # Paging: the first page's cameras go off screen (0x0), a tile shows a deferred camera. Only that
        # subscriber renegotiates, once.
        counted = dict(meeting.renegotiations)
        viewer = meeting.router.peers[last]
        assert viewer.subscribe_connection is not None
        for subscription in viewer.subscribe_connection.subscriptions:
            if subscription.video and subscription.track is not None:
                viewer.set_max_size(subscription.track.id, 0, 0)
        viewer.set_max_size("p20:1", 320, 180)
        await meeting.run(0.5)
        changed = {p: n - counted[p] for p, n in meeting.renegotiations.items() if n != counted[p]}
        assert changed == {last: 1}
        assert meeting.sent.get((last, "p20:1"), 0) > 0

        # The speaker's audio reached everyone through the slots.
        assert all(meeting.sent.get((p, "p00:0"), 0) > 0 for p in meeting.participants if p != "p00")
    finally:
        await meeting.close()
