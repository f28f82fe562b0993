"""Fuzz: generated events and payloads from one participant never crash the server or disturb the others."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.signaling.signaling_fakes import Harness

EVENTS = [
    "publish_offer",
    "subscribe_answer",
    "candidate",
    "video_size",
    "media_state",
    "chat_send",
    "hand",
    "reaction",
    "moderate",
]
FIELDS = [
    "sdp",
    "sources",
    "pc",
    "candidate",
    "sdp_mid",
    "sdp_mline_index",
    "track_id",
    "width",
    "height",
    "source",
    "muted",
    "text",
    "to",
    "raised",
    "reaction",
    "action",
    "participant_id",
]
WORDS = [
    "mic",
    "camera",
    "screen",
    "publish",
    "subscribe",
    "clap",
    "mute",
    "remove",
    "end",
    "lock",
    "v=0",
    "",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=40)
    | st.sampled_from(WORDS)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(WORDS + FIELDS), inner, max_size=4)
    ),
    max_leaves=12,
)
payloads = st.dictionaries(st.sampled_from(FIELDS), values, max_size=6) | values
events = st.sampled_from(EVENTS) | st.text(max_size=12) | st.integers() | st.none()
batches = st.lists(st.tuples(events, st.lists(payloads, max_size=3)), min_size=1, max_size=10)


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def _scenario(root: Path, batch: list[tuple[Any, list[Any]]]) -> None:
    h = Harness(root)
    try:
        room = h.store.add_room()
        ann, a = await h.join(room, "host", "Ann")
        fuzzer, f = await h.join(room, "participant", "Fuzz")
        carol, _ = await h.join(room, "participant", "Carol")
        for event, raw in batch:
            # Sometimes aim at a real participant, the way an attacker would.
            args = [
                {**x, "participant_id": a["participant_id"], "to": a["participant_id"]}
                if isinstance(x, dict) and "participant_id" in x
                else x
                for x in raw
            ]
            await fuzzer.emit_raw(event, *args)
        await ann.emit("chat_send", {"text": "still fine?"})
        for client in (ann, carol):
            while (await client.expect("chat"))["entry"]["text"] != "still fine?":
                pass
        for client in (ann, carol):
            disturbed = [
                e for e, _ in client.seen if e in ("error", "removed", "meeting_ended", "media_request")
            ]
            assert disturbed == []
            assert not client.disconnected.is_set()
        (conference,) = h.server.conferences()
        assert not conference.ending
        del f
    finally:
        await h.server.close()


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches)
def test_fuzzed_events_never_crash_or_disturb_other_participants(batch: list[tuple[Any, list[Any]]]) -> None:
    handler = _Errors()
    logger = logging.getLogger("signaling")
    logger.addHandler(handler)
    try:
        with tempfile.TemporaryDirectory() as root:
            asyncio.run(_scenario(Path(root), batch))
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in handler.records] == []
