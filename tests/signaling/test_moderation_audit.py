"""The audit log names the moderator who removed someone or ended the meeting (real Socket.IO, SQL store)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from rooms.audit.models import AuditEntry
from tests.signaling.live_server import Live, start_live


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with start_live(tmp_path) as state:
        yield state


async def test_remove_and_end_are_logged_with_the_moderator_who_did_it(live: Live) -> None:
    ann, _ = await live.join("host", "Ann")
    _bob, bob_joined = await live.join("participant", "Bob")
    await ann.sio.emit("moderate", {"action": "remove", "participant_id": bob_joined["participant_id"]})
    await ann.expect("participant_left")
    await ann.sio.emit("moderate", {"action": "end"})
    await ann.expect("meeting_ended")
    for _ in range(500):  # the meeting's end is written after everyone has been told: a bounded poll
        async with live.db.session() as session:
            rows = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
        if any(r.action == "end" for r in rows):
            break
        await asyncio.sleep(0.01)
    assert [(r.action, r.object_type, r.actor) for r in rows] == [
        ("remove", "participant", "Ann (host)"),
        ("end", "meeting", "Ann (host)"),
    ]
    assert rows[0].object_id == bob_joined["participant_id"] and rows[0].changes["display_name"] == "Bob"
