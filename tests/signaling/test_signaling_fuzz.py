"""Fuzz: generated events and payloads never crash the server or disturb the others: hypothesis against the
in-process harness, then a live run of YUNHUI_FUZZ_EVENTS (10,000) hostile frames against a real server."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.signaling.live_server import start_live
from tests.signaling.raw_socket import raw_socket
from tests.signaling.signaling_fakes import WAIT, Harness

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


# --- the live variant: thousands of hostile frames from authenticated clients against a real server ---

FUZZ_EVENTS = int(os.environ.get("YUNHUI_FUZZ_EVENTS", "10000"))
VALID = [*EVENTS, "subscribe", "restart_media", "ask_unmute", "claim_host"]
GUEST = {"meeting_number": "888000111", "passcode": "2468", "display_name": "Fuzz"}
ODD_NAMES: list[Any] = ["connect", "disconnect", "", "message", "*", "__proto__", 7, None, [], {}]


def _value(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(9 if depth < 3 else 6)
    if pick == 0:
        return None
    if pick == 1:
        return rng.random() < 0.5
    if pick == 2:
        return rng.choice([0, -1, 2**31, 2**70, 255, 256, 16384, 16385])
    if pick == 3:
        return rng.choice([0.5, -1e308, 1e308])
    if pick == 4:
        return rng.choice(WORDS + FIELDS)
    if pick == 5:
        return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(40)))
    if pick == 6:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(FIELDS + WORDS): _value(rng, depth + 1) for _ in range(rng.randrange(5))}


def _frame(rng: random.Random, target: str) -> str | bytes:
    """One WebSocket frame: mostly events of the protocol with random fields, then every kind of junk."""
    roll = rng.random()
    if roll < 0.45:
        payload = {field: _value(rng) for field in rng.sample(FIELDS, rng.randrange(1, 6))}
        if "participant_id" in payload or "to" in payload:
            payload["participant_id"] = payload["to"] = target  # aimed at a real participant
        return "42" + json.dumps([rng.choice(VALID), payload])
    if roll < 0.58:
        name = rng.choice([*ODD_NAMES, "".join(rng.choice("abcdefgh_") for _ in range(rng.randrange(12)))])
        return "42" + json.dumps([name, *[_value(rng) for _ in range(rng.randrange(3))]])
    if roll < 0.68:  # wrong types
        return "42" + json.dumps([rng.choice(VALID), rng.choice([[], "x", 1, True, None, [{"sdp": "v=0"}]])])
    if roll < 0.72:  # huge, within Engine.IO's 1 MB frame limit
        field = rng.choice(["sdp", "text", "candidate", "track_id", "junk"])
        return "42" + json.dumps([rng.choice(VALID), {field: "v" * rng.randrange(50_000, 400_000)}])
    if roll < 0.82:  # not Socket.IO: broken JSON, packet types a client never sends, other namespaces
        junk = "".join(chr(rng.randrange(32, 127)) for _ in range(rng.randrange(30)))
        return (
            "4" + rng.choice(["2[", "2{", "4", "5-", "6", "7", "9", "2/admin,", "3", "0/x,", "1", ""]) + junk
        )
    if roll < 0.87:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    if roll < 0.875:
        return rng.choice(["", "x", "2probe", "5", "6"])  # Engine.IO junk; some of it ends the connection
    valid: list[tuple[str, dict[str, Any]]] = [
        ("hand", {"raised": rng.random() < 0.5}),
        ("media_state", {"source": rng.choice(["mic", "camera", "screen"]), "muted": rng.random() < 0.5}),
        ("chat_send", {"text": "hi", "to": rng.choice([None, target])}),
        ("candidate", {"pc": "publish", "candidate": "candidate:1 1 udp 1 10.0.0.1 9 typ host"}),
        ("video_size", {"track_id": "nope", "width": 320, "height": 180}),
        ("reaction", {"reaction": "clap"}),
        ("subscribe", {}),
    ]
    return "42" + json.dumps(list(rng.choice(valid)))


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_live_fuzz_keeps_the_server_up_and_the_others_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    rng = random.Random(14)
    settings: dict[str, Any] = {
        "reconnect_grace_seconds": 1.0,  # fake seconds; the ticker moves the clock at about real time
        "chat_rate_count": 1000,
        "max_protocol_errors": 200,
        "event_rates": {"chat": {"burst": 50, "per_second": 50.0}},
    }
    async with start_live(tmp_path, **settings) as live:
        tick, _ = await live.join("host", "Tick")
        watch, _ = await live.join("viewer", "Watch")  # viewers do not take a seat: two fuzzers fit
        arrivals: list[float] = []
        fuzzer_ids: set[str] = set()
        left: set[str] = set()
        all_left = asyncio.Event()
        sent = 0
        done = asyncio.Event()

        async def watcher() -> None:
            while True:
                name, data = await watch.events.get()
                if name == "chat" and data["entry"]["text"].startswith("tick"):
                    arrivals.append(time.monotonic())
                elif name == "participant_left":
                    left.add(data["participant_id"])
                    if done.is_set() and fuzzer_ids <= left:
                        all_left.set()

        async def ticker() -> None:
            i = 0
            while not all_left.is_set():
                await asyncio.sleep(0.1)
                live.clock.advance(0.1)
                i += 1
                await tick.sio.emit("chat_send", {"text": f"tick {i}"})

        async def fuzzer() -> None:
            nonlocal sent
            while sent < FUZZ_EVENTS:
                async with raw_socket(live.url) as raw:
                    try:
                        await raw.connect(
                            {"meeting_number": "888000111", "passcode": "2468", "display_name": "F"}
                        )
                        me = await raw.expect("joined")
                    except (ConnectionRefusedError, AssertionError):
                        await asyncio.sleep(0.1)  # the room is full until a fuzzer's grace ends
                        continue
                    fuzzer_ids.add(me["participant_id"])
                    gone = asyncio.create_task(raw.closed())
                    while sent < FUZZ_EVENTS and not gone.done():
                        frame = _frame(rng, rng.choice([me["participant_id"], *fuzzer_ids]))
                        try:
                            if isinstance(frame, bytes):
                                await raw.ws.send_bytes(frame)
                            else:
                                await raw.ws.send_str(frame)
                        except ConnectionError:
                            break
                        sent += 1
                        if sent % 20 == 0:
                            await asyncio.sleep(0)  # let the server and the ticker run
                    gone.cancel()
                    await asyncio.gather(gone, return_exceptions=True)

        rss_before = _rss_bytes()
        watching = asyncio.create_task(watcher())
        ticking = asyncio.create_task(ticker())
        started = time.monotonic()
        await asyncio.gather(fuzzer(), fuzzer())
        fuzz_seconds = time.monotonic() - started
        done.set()
        if fuzzer_ids <= left:
            all_left.set()
        async with asyncio.timeout(WAIT + live.server.settings.reconnect_grace_seconds * 10):
            await all_left.wait()  # every fuzzer left: by leave, protocol_errors or the end of its grace
        await ticking
        watching.cancel()
        rss_growth = _rss_bytes() - rss_before
        (conference,) = live.server.conferences()
        assert sorted(p.display_name for p in conference.participants()) == ["Tick", "Watch"]
        assert not conference.ending and not tick.gone.is_set() and not watch.gone.is_set()
        gaps = [b - a for a, b in itertools.pairwise(arrivals)]
        max_gap = max(gaps)
        print(
            f"live fuzz: {sent} frames in {fuzz_seconds:.1f} s from {len(fuzzer_ids)} joins;"
            f" max gap {max_gap * 1000:.0f} ms over {len(arrivals)} ticks; RSS +{rss_growth / 2**20:.1f} MiB"
        )
        assert sent >= FUZZ_EVENTS
        assert max_gap < 1.0
        assert rss_growth < 64 * 2**20
    tracebacks = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert [r.getMessage() for r in tracebacks] == []
