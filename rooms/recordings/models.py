"""Tables of recordings: one Recording per recorded meeting (or per start of recording), with its files."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rooms.models import Base

# recording: the Recorder writes; finalising: files are being closed (or recovered after a crash);
# rendering: the composite is being rendered; ready: playable; failed: `error` says why (a render can be
# retried); deleted: files removed (the row stays for billing's storage history).
STATES = ("recording", "finalising", "rendering", "ready", "failed", "deleted")
FILE_KINDS = ("audio", "video", "screen", "timeline", "composite")


class Recording(Base):
    __tablename__ = "recordings"
    __table_args__ = (Index("ix_recordings_state_retain_until", "state", "retain_until"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    # SET NULL: deleting a room (and its meetings) must not lose the storage history billing reads.
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meetings.id", ondelete="SET NULL"), index=True)
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id", ondelete="SET NULL"), index=True)
    state: Mapped[str] = mapped_column(String(20))
    # Relative to the recordings root (recording.root_dir): the per-track files, timeline.jsonl, composite.
    directory: Mapped[str] = mapped_column(String(200), unique=True)
    composite_path: Mapped[str | None] = mapped_column(String(200))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    started_by: Mapped[str] = mapped_column(String(200), default="")
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    # Every file of the recording together (what billing counts as storage).
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    retain_until: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]

    files: Mapped[list[RecordingFile]] = relationship(
        back_populates="recording",
        cascade="all, delete-orphan",
        order_by="RecordingFile.id",
        lazy="selectin",
    )


class RecordingFile(Base):
    __tablename__ = "recording_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    # A plain file name inside the recording's directory (never a path: see rooms/recordings/rules.py).
    name: Mapped[str] = mapped_column(String(200))
    participant: Mapped[str] = mapped_column(String(200), default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    checksum: Mapped[str] = mapped_column(String(80), default="")  # "sha256:<hex>"

    recording: Mapped[Recording] = relationship(back_populates="files")
