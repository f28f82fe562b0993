"""POST /api/v1/meetings/locate on the one process: its own root, and clear 4xx on bad input."""

from __future__ import annotations

import aiohttp
import pytest

from tests.conftest import RunningServer

# The one process: no Redis, no PostgreSQL.
pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"meeting_number": "123456789"}, 200, None),
        ({"join_token": "not-a-token"}, 401, "bad_token"),
        ({}, 422, None),
        ({"meeting_number": "1", "join_token": "x"}, 422, None),
        ({"meeting_number": "1", "passcode": "x"}, 422, None),
        ({"meeting_number": ""}, 422, None),
    ],
)
async def test_locate_on_one_process(
    server: RunningServer, body: dict[str, str], status: int, code: str | None
) -> None:
    url = f"{server.url}/api/v1/meetings/locate"
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as response:
        answer = await response.json()
        assert response.status == status, answer
    if status == 200:
        assert answer == {"worker": None, "base": "/"}
    elif code is not None:
        assert answer["error"]["code"] == code
