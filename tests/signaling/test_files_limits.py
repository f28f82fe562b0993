"""Shared files against a real server: downloads only for live participants, upload quotas, and the chat rate
limit on file announcements."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from signaling.files import TOTAL, Quota, UploadLedger, Usage, quota_problem
from tests.signaling.live_server import Live, start_live


async def _upload(http: aiohttp.ClientSession, live: Live, joined: Any, data: bytes) -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename="notes.txt")
    async with http.post(live.url + joined["upload_url"], data=form) as response:
        return response.status, await response.json()


async def test_a_removed_participants_link_no_longer_downloads(tmp_path: Path) -> None:
    async with start_live(tmp_path) as live, aiohttp.ClientSession() as http:
        ann, a = await live.join("host", "Ann")
        bob, b = await live.join("participant", "Bob")
        assert (await _upload(http, live, a, b"agenda"))[0] == 201
        bobs_link = live.url + (await bob.expect("chat"))["entry"]["file"]["url"]
        anns_link = live.url + (await ann.expect("chat"))["entry"]["file"]["url"]
        async with http.get(bobs_link) as response:
            assert response.status == 200
        await ann.sio.emit("moderate", {"action": "remove", "participant_id": b["participant_id"]})
        assert (await ann.expect("participant_left"))["reason"] == "removed"
        async with http.get(bobs_link) as response:
            assert response.status == 403
            error = (await response.json())["error"]
        assert error == {
            "code": "forbidden",
            "message": "only participants still in the meeting may download its files",
        }
        async with http.get(anns_link) as response:
            assert response.status == 200
            assert await response.read() == b"agenda"


async def test_upload_quotas_per_participant_and_per_meeting(tmp_path: Path) -> None:
    limits = start_live(
        tmp_path,
        upload_max_files_per_participant=2,
        upload_max_files_per_meeting=3,
        upload_max_bytes_per_participant=250,
        chat_rate_count=50,
    )
    async with limits as live, aiohttp.ClientSession() as http:
        _ann, a = await live.join("host", "Ann")
        _bob, b = await live.join("participant", "Bob")
        assert (await _upload(http, live, a, b"x" * 200))[0] == 201
        status, body = await _upload(http, live, a, b"x" * 100)  # 300 bytes of Ann's: over her 250
        assert (status, body["error"]["code"]) == (413, "quota_exceeded")
        assert body["error"]["message"] == "your shared files may take at most 250 bytes in all"
        assert (await _upload(http, live, a, b"x" * 50))[0] == 201  # the refused file took no room
        status, body = await _upload(http, live, a, b"y")
        assert (status, body["error"]["code"]) == (429, "too_many_files")
        assert body["error"]["message"] == "you may share at most 2 files in this meeting"
        assert (await _upload(http, live, b, b"z"))[0] == 201
        status, body = await _upload(http, live, b, b"z")
        assert (status, body["error"]["message"]) == (429, "this meeting already holds its 3 shared files")
        assert len(live.server.files.usage(int(a["meeting"]["meeting_id"]))) == 3  # Ann, Bob, TOTAL


async def test_file_announcements_spend_the_chat_rate_limit(tmp_path: Path) -> None:
    async with start_live(tmp_path, chat_rate_count=2) as live, aiohttp.ClientSession() as http:
        _ann, a = await live.join("host", "Ann")
        assert (await _upload(http, live, a, b"one"))[0] == 201
        assert (await _upload(http, live, a, b"two"))[0] == 201
        status, body = await _upload(http, live, a, b"three")
        assert (status, body["error"]["code"]) == (429, "rate_limited")
        live.clock.advance(live.server.settings.chat_rate_window_seconds)
        assert (await _upload(http, live, a, b"three"))[0] == 201


def test_uploads_under_way_count_toward_the_quota() -> None:
    ledger = UploadLedger()
    first = ledger.open(7, "ann")
    ledger.grow(7, first, 900)
    quota = Quota(files=5, bytes=1000)
    usage = ledger.usage(7)
    assert usage == {"ann": Usage(1, 900), TOTAL: Usage(1, 900)}
    # A second upload in parallel cannot take what the first is still sending.
    assert quota_problem(usage, "ann", participant=quota, meeting=Quota(10, 10**6), adding=Usage(1, 200))
    assert (
        quota_problem(usage, "bob", participant=quota, meeting=Quota(10, 10**6), adding=Usage(1, 200)) is None
    )
    assert ledger.usage(7, besides=first) == {}
    ledger.close(7, first)
    assert ledger.usage(7) == {}
