"""Tables of live channels: the channel, its viewer sessions and the concurrency samples of its statistics."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from rooms.models import Base

# draft: being set up; rehearsal: the pipeline runs, only staff watch; live: public; ended: the EVENT playlist
# has its ENDLIST and is the replay; archived: no longer listed for viewers (the replay stays for staff).
STATES = ("draft", "rehearsal", "live", "ended", "archived")
LANGUAGES = ("zh-CN", "en")
# meeting: a meeting of `room_id` (speaker layout); encoder: a WHIP encoder; playlist: uploaded videos;
# rtmp: an encoder pushing RTMP to the channel's own listener with its stream key (rooms/live/ingest.py).
SOURCE_KINDS = ("meeting", "encoder", "playlist", "rtmp")
# none: no hot standby; video: a looping backup video; encoder: a backup encoder.
STANDBY_KINDS = ("none", "video", "encoder")
# auto: the switcher decides (prefer primary); primary / standby: the operator forces one.
STANDBY_OVERRIDES = ("auto", "primary", "standby")
# The phase a viewer session watched in: rehearsal (staff only, never in public statistics), live, replay.
PHASES = ("rehearsal", "live", "replay")
DEVICE_CLASSES = ("desktop", "phone", "tablet", "other")


class LiveChannel(Base):
    __tablename__ = "live_channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(20))
    source_kind: Mapped[str] = mapped_column(String(20))
    # A meeting source names the room; the meeting is the room's live occurrence while the channel runs.
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id", ondelete="SET NULL"), index=True)
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meetings.id", ondelete="SET NULL"))
    # The participant whose microphone is the channel's audio (an interpreter); "" is the mix of everyone.
    # Two channels of one meeting share the video and differ here (a zh and an en room).
    audio_participant: Mapped[str] = mapped_column(String(200), default="")
    standby_kind: Mapped[str] = mapped_column(String(20), default="none")
    standby_override: Mapped[str] = mapped_column(String(20), default="auto")
    # The backup video of a "video" standby: a ready pre-recorded video (rooms/live/videos.py; no foreign key,
    # that table comes in a later migration), looped by the engine while it is on air.
    standby_video_id: Mapped[int | None] = mapped_column(Integer)
    # Where the programme is pushed too (RTMP): it holds the receiver's stream key, so the API masks it.
    rtmp_url: Mapped[str | None] = mapped_column(Text)
    # The stream key an RTMP encoder pushes with (a secret; rotated from the console; migration 0120).
    ingest_key: Mapped[str | None] = mapped_column(String(64))
    # The current run's directory under the live root (the engine's playlists and segments); a new one per
    # rehearsal or go-live from draft, so a rehearsal that was stopped never leaks into the replay.
    directory: Mapped[str | None] = mapped_column(String(200))
    show_viewer_count: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime]
    rehearsal_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]  # went live (public); the replay and public statistics start here
    ended_at: Mapped[datetime | None]
    archived_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class LiveViewerSession(Base):
    __tablename__ = "live_viewer_sessions"
    __table_args__ = (Index("ix_live_viewer_sessions_channel_id_last_seen", "channel_id", "last_seen"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("live_channels.id", ondelete="CASCADE"))
    # Denormalised from the channel: billing reads an account's sessions of a month without a join.
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    # The page's id of the person (localStorage), or a hash of address and user agent without one.
    viewer_id: Mapped[str] = mapped_column(String(64))
    phase: Mapped[str] = mapped_column(String(10))
    user_agent: Mapped[str] = mapped_column(String(500), default="")
    device_class: Mapped[str] = mapped_column(String(10))
    browser: Mapped[str] = mapped_column(String(40))
    os: Mapped[str] = mapped_column(String(40))
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    # Media segments served to the session: a session that fetched none is a page load, not a view.
    segments: Mapped[int] = mapped_column(Integer, default=0)


class LiveConcurrencySample(Base):
    """Distinct viewers at one sampling instant (10 s grid); unique, so a second sampler adds nothing."""

    __tablename__ = "live_concurrency_samples"
    __table_args__ = (UniqueConstraint("channel_id", "phase", "at", name="uq_live_concurrency_samples_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("live_channels.id", ondelete="CASCADE"), index=True)
    phase: Mapped[str] = mapped_column(String(10))
    at: Mapped[datetime]
    viewers: Mapped[int] = mapped_column(Integer)
