"""Pre-recorded videos and the playlists of live channels: the tables and their pure rules.

A LiveVideo is an upload of an account: uploading (bytes arrive in chunks, resumable) → checking (ffprobe,
a decode test, loudness) → refused (``reason`` names why) or normalising (``progress``) → ready. Only a ready
video goes into a playlist; a half upload never becomes one. A PlaylistItem is one video in the ordered
playlist of a live channel: queued → playing → played, or skipped. Positions order a channel's items; the
rules below renumber them (reorder, insert) and say which item plays next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rooms.errors import Conflict, InvalidInput
from rooms.models import Base

VIDEO_STATES = ("uploading", "checking", "refused", "normalising", "ready")
# Which state may follow which. checking and normalising are redone after a crash (the work is repeatable).
VIDEO_TRANSITIONS: dict[str, frozenset[str]] = {
    "uploading": frozenset({"checking"}),
    "checking": frozenset({"refused", "normalising"}),
    "normalising": frozenset({"ready", "refused"}),
    "refused": frozenset(),
    "ready": frozenset(),
}
# States a background job works on; a job holds a lease on the row while it does.
WORK_STATES = ("checking", "normalising")
# Refusals of the upload itself (the checks' reasons are in recording/live/media_check.py REASONS).
UPLOAD_REASONS = ("normalise_failed",)
ITEM_STATES = ("queued", "playing", "played", "skipped")
DONE = frozenset({"played", "skipped"})
SOURCE_NAME = "source"
NORMAL_NAME = "normal.mp4"


class LiveVideo(Base):
    __tablename__ = "live_videos"
    __table_args__ = (Index("ix_live_videos_state_lease_until", "state", "lease_until"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20))
    # A refused video's reason code and the check's detail (English, with the values).
    reason: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(Text)
    # The size the upload declared, and how much of it has been written (the resume offset).
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    received_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # Normalisation progress, 0-100.
    progress: Mapped[int] = mapped_column(Integer, default=0)
    # Relative to the videos root (live.videos.root_dir): the upload ("source") and the normalised file.
    directory: Mapped[str] = mapped_column(String(100), unique=True)
    normal_size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # ffprobe's summary (recording.live.media_check.ProbeSummary) and every check's result.
    probe: Mapped[dict[str, Any] | None]
    checks: Mapped[list[Any] | None]
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    # The job working on it (a worker name) and until when its claim holds unless renewed.
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    # An upload not finished by then is deleted.
    upload_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PlaylistItem(Base):
    __tablename__ = "live_playlist_items"
    __table_args__ = (Index("ix_live_playlist_items_channel_id_position", "channel_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("live_channels.id", ondelete="CASCADE"))
    # Denormalised from the channel, for account isolation without a join.
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("live_videos.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(10))
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


# --- pure rules ------------------------------------------------------------------------------------------


def check_transition(current: str, new: str) -> None:
    """Raise Conflict unless a video in ``current`` may move to ``new``."""
    if new not in VIDEO_TRANSITIONS.get(current, frozenset()):
        raise Conflict(f"a video that is {current} cannot become {new}", code="bad_state", field="state")


@dataclass(frozen=True, slots=True)
class Item:
    """What the playlist rules need of an item."""

    id: int
    position: int
    state: str


def ordered(items: Sequence[Item]) -> list[Item]:
    return sorted(items, key=lambda i: (i.position, i.id))


def next_item(items: Sequence[Item]) -> Item | None:
    """The item that plays next: the first queued one in playlist order."""
    return next((i for i in ordered(items) if i.state == "queued"), None)


def queue(items: Sequence[Item]) -> list[Item]:
    """The queued items in the order they will play."""
    return [i for i in ordered(items) if i.state == "queued"]


def _numbered(ids: Sequence[int]) -> dict[int, int]:
    return {item_id: n for n, item_id in enumerate(ids, start=1)}


def reorder(items: Sequence[Item], queued_ids: Sequence[int]) -> dict[int, int]:
    """New positions when the queued items are to play in ``queued_ids`` order.

    Played, skipped and playing items keep their places: the queued items take the slots queued items had,
    in the new order. ``queued_ids`` must name every queued item once (a stale list is refused, not merged).
    """
    current = ordered(items)
    waiting = [i.id for i in current if i.state == "queued"]
    if len(set(queued_ids)) != len(queued_ids) or sorted(queued_ids) != sorted(waiting):
        raise Conflict(
            "item_ids must list every queued item of the playlist once (it changed meanwhile?)",
            code="stale_order",
            field="item_ids",
        )
    new = iter(queued_ids)
    return _numbered([next(new) if i.state == "queued" else i.id for i in current])


def insert(
    items: Sequence[Item], new_id: int, *, before: int | None = None, play_next: bool = False
) -> dict[int, int]:
    """Positions with ``new_id`` added: before the queued item ``before``, first in the queue
    (``play_next``), or at the end."""
    current = [i.id for i in ordered(items)]
    if before is not None and play_next:
        raise InvalidInput("give before_item_id or next, not both", field="before_item_id")
    if play_next:
        first = next_item(items)
        before = first.id if first is not None else None
    if before is None:
        return _numbered([*current, new_id])
    target = next((i for i in items if i.id == before), None)
    if target is None:
        raise InvalidInput("before_item_id is not an item of this playlist", field="before_item_id")
    if target.state != "queued":
        raise Conflict(
            f"an item can only go before a queued item (that one is {target.state})",
            code="bad_state",
            field="before_item_id",
        )
    at = current.index(before)
    return _numbered([*current[:at], new_id, *current[at:]])


def skip(item: Item) -> str:
    """The state of a skipped item; only a queued or a playing item can be skipped."""
    if item.state not in ("queued", "playing"):
        raise Conflict(f"an item that was {item.state} cannot be skipped", code="bad_state", field="state")
    return "skipped"


def check_removable(item: Item) -> None:
    """A playing item is skipped first (the playout is cut there), then it can be removed."""
    if item.state == "playing":
        raise Conflict("the item is playing; skip it first", code="bad_state", field="state")


def started(item: Item) -> str:
    """The engine put the item on air: queued → playing (a skipped one stays skipped)."""
    return "playing" if item.state in ("queued", "playing") else item.state


def ended(item: Item) -> str:
    """The item finished on air: playing → played; a skipped one stays skipped."""
    return "played" if item.state in ("queued", "playing") else item.state
