"""POST /meetings/{id}/end: another account's meeting is 404 to every role, as every other object is."""

from __future__ import annotations

from rooms.models import Meeting

from .conftest import START, Api
from .test_api_rooms import make_room


async def test_end_answers_404_for_another_accounts_meeting_before_checking_the_role(api: Api) -> None:
    room = await make_room(await api.login("admin@a.example"))
    async with api.db.writer() as session:
        meeting = Meeting(account_id=api.accounts["a"], room_id=room["id"], started_at=START)
        session.add(meeting)
        await session.commit()
    path = f"/meetings/{meeting.id}/end"
    # An organizer of account b must not learn that the meeting exists: 404, not 403.
    status, body = await (await api.login("org@b.example")).call("POST", path)
    assert (status, body["error"]["code"]) == (404, "not_found")
    assert (await (await api.login("admin@b.example")).call("POST", path))[0] == 404
    # Inside the account the role still matters.
    status, body = await (await api.login("org@a.example")).call("POST", path)
    assert (status, body["error"]["code"]) == (403, "forbidden")
