"""RTMP ingest of live channels: the stream key (a secret, rotatable) and the channel's listening port.

The engine listens on the channel's own port (recording/live/ingest.py; docs/decisions.md, "RTMP ingest"): the
port follows from the channel id and the configured range, so an encoder's settings stay the same from one
event to the next; the key is what makes a push the channel's.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from rooms.database import Database
from rooms.errors import Conflict, NotFound
from rooms.live.models import LiveChannel

KEY_BYTES = 18  # 24 URL-safe characters


def new_stream_key() -> str:
    return secrets.token_urlsafe(KEY_BYTES)


def ingest_port(channel_id: int, low: int, high: int) -> int:
    """The channel's RTMP port in the range [low, high]."""
    if high < low:
        raise ValueError(f"the RTMP ingest ports {low}-{high} are an empty range")
    return low + channel_id % (high - low + 1)


async def rotate_key(db: Database, channel_id: int, *, now: datetime) -> LiveChannel:
    """A new stream key for an RTMP channel (the old one stops working at the encoder's next connection)."""
    async with db.writer() as session:
        channel = await session.get(LiveChannel, channel_id, with_for_update=True)
        if channel is None:
            raise NotFound("no such live channel")
        if channel.source_kind != "rtmp":
            raise Conflict("only an RTMP source has a stream key", code="not_rtmp", field="source_kind")
        channel.ingest_key = new_stream_key()
        channel.updated_at = now
        await session.commit()
        return channel
