"""Tier 3: passcode guessing against a real server, from several loopback addresses, on the injected clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.signaling.live_server import Live, start_live
from tests.signaling.raw_socket import raw_socket


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with start_live(tmp_path) as state:
        yield state


async def attempt(live: Live, passcode: str, *, source: str, name: str = "Mallory") -> dict[str, Any]:
    """Join with ``passcode`` from ``source``: the refusal's data, or {"code": "joined"}."""
    auth = {"meeting_number": "888000111", "passcode": passcode, "display_name": name}
    async with raw_socket(live.url, source=source) as raw:
        try:
            await raw.connect(auth)
        except ConnectionRefusedError as refused:
            data: dict[str, Any] = refused.args[0]["data"]
            return data
        await raw.expect("joined")
        await raw.emit("leave")
        await raw.closed()
        return {"code": "joined"}


async def test_one_address_guessing_is_slowed_down_exponentially(live: Live) -> None:
    answers = [(await attempt(live, f"{n:04d}", source="127.0.0.2"))["code"] for n in range(30)]
    assert answers == ["wrong_passcode"] * 6 + ["too_many_attempts"] * 24
    refused = await attempt(live, "2468", source="127.0.0.2")  # right, but not checked while blocked
    assert refused == {
        "code": "too_many_attempts",
        "message": "too many failed attempts; try again in 1 s",
        "retry_after": 1,
    }
    live.clock.advance(1)
    assert (await attempt(live, "0000", source="127.0.0.2"))["code"] == "wrong_passcode"
    assert (await attempt(live, "2468", source="127.0.0.2"))["retry_after"] == 2  # doubled
    live.clock.advance(2)
    assert (await attempt(live, "2468", source="127.0.0.2"))["code"] == "joined"
    # Another address was never slowed down: the meeting's own limit is far from reached.
    assert (await attempt(live, "2468", source="127.0.0.3", name="Carol"))["code"] == "joined"


async def test_many_addresses_guessing_one_meeting_cannot_keep_its_guests_out(live: Live) -> None:
    attackers = [f"127.0.0.{10 + i}" for i in range(5)]
    for source in attackers[:4]:  # 4 x 5 free failures: the meeting's 20
        for n in range(5):
            assert (await attempt(live, f"1{n:03d}", source=source))["code"] == "wrong_passcode"
    assert (await attempt(live, "9999", source=attackers[4]))["code"] == "wrong_passcode"  # 21st
    # The meeting is in back-off: an address with failures on record is refused unchecked, even when right...
    refused = await attempt(live, "2468", source=attackers[0])
    assert (refused["code"], refused["retry_after"]) == ("too_many_attempts", 1)
    # ...one without is checked: the guest who knows the passcode gets in, a new guesser gets one guess.
    assert (await attempt(live, "2468", source="127.0.0.3", name="Carol"))["code"] == "joined"
    assert (await attempt(live, "5555", source="127.0.0.4"))["code"] == "wrong_passcode"
    assert (await attempt(live, "2468", source="127.0.0.4"))["code"] == "too_many_attempts"
    # The block never outlasts the back-off: once it ends, everyone's passcode is checked again.
    live.clock.advance(2)
    assert (await attempt(live, "2468", source="127.0.0.4", name="Dave"))["code"] == "joined"


async def test_unknown_meeting_numbers_count_against_the_address(live: Live) -> None:
    for n in range(6):
        auth = {"meeting_number": f"77700{n}", "passcode": "123456", "display_name": "Scanner"}
        async with raw_socket(live.url, source="127.0.0.5") as raw:
            with pytest.raises(ConnectionRefusedError) as refused:
                await raw.connect(auth)
        assert refused.value.args[0]["data"]["code"] == "no_such_meeting"
    assert (await attempt(live, "2468", source="127.0.0.5"))["code"] == "too_many_attempts"
    assert live.server.attempts.tracked() == (1, 0)  # no meeting key for numbers that do not exist
