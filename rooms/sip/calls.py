"""CallRecord: one SIP leg (a CDR): which Endpoint of which Site called which meeting, how, and how it ended.

Written when the INVITE arrives (so a call that never got in is on record with its refusal), updated when
it joins a meeting and when it ends. A crash leaves rows without ``ended_at``; the next start of the same
worker slot closes them (``close_unfinished``) with the reason "server_restart".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, or_, select, update
from sqlalchemy.orm import Mapped, mapped_column

from rooms.database import Database
from rooms.errors import NotFound
from rooms.models import Base, Endpoint, Worker

DIRECTIONS = ("inbound", "outbound")


class CallRecord(Base):
    __tablename__ = "sip_calls"
    __table_args__ = (Index("ix_sip_calls_account_id_started_at", "account_id", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # None only for a guest call (no Endpoint) refused before it named a meeting.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    # SET NULL: deleting an Endpoint or Site keeps the history that billing disputes are settled with.
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"), index=True)
    endpoint_id: Mapped[int | None] = mapped_column(
        ForeignKey("endpoints.id", ondelete="SET NULL"), index=True
    )
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meetings.id", ondelete="SET NULL"), index=True)
    # The run (rooms.workers) whose gateway carried the call: a restart closes only its own slot's records.
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id", ondelete="SET NULL"), index=True)
    direction: Mapped[str] = mapped_column(String(10))
    sip_call_id: Mapped[str] = mapped_column(String(200))
    # What the terminal dialled (the Request-URI's user part), and the meeting it reached.
    dialled: Mapped[str] = mapped_column(String(100), default="")
    meeting_number: Mapped[str | None] = mapped_column(String(20))
    participant_id: Mapped[str | None] = mapped_column(String(100))
    transport: Mapped[str] = mapped_column(String(3))
    remote: Mapped[str] = mapped_column(String(100))
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    # Negotiated codecs, e.g. "PCMU/8000" and "H264/90000 42e01f mode 1"; "" when the m-line was refused.
    audio_codec: Mapped[str] = mapped_column(String(60), default="")
    video_codec: Mapped[str] = mapped_column(String(60), default="")
    srtp: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    joined_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    # bye, hangup, cancel, rejected:<status>, silence, timer, no_ack, transport, shutdown, meeting_ended,
    # removed, ivr_failed, server_restart ...
    end_reason: Mapped[str | None] = mapped_column(String(40))


@dataclass(frozen=True, slots=True)
class CallStart:
    """The facts known when an INVITE arrives."""

    direction: str
    sip_call_id: str
    dialled: str
    transport: str
    remote: str
    user_agent: str = ""
    endpoint_id: int | None = None
    worker_id: int | None = None


async def open_call(db: Database, start: CallStart, *, now: datetime) -> int:
    """Insert the record of a new call; the Endpoint (if any) gives its site and account."""
    async with db.writer() as session:
        site_id = account_id = None
        if start.endpoint_id is not None:
            endpoint = await session.get(Endpoint, start.endpoint_id)
            if endpoint is None:
                raise NotFound("no such endpoint", field="endpoint_id")
            site_id, account_id = endpoint.site_id, endpoint.account_id
        record = CallRecord(
            account_id=account_id,
            site_id=site_id,
            endpoint_id=start.endpoint_id,
            worker_id=start.worker_id,
            direction=start.direction,
            sip_call_id=start.sip_call_id[:200],
            dialled=start.dialled[:100],
            transport=start.transport,
            remote=start.remote[:100],
            user_agent=start.user_agent[:200],
            started_at=now,
        )
        session.add(record)
        await session.commit()
        return record.id


async def answered(
    db: Database, record_id: int, *, audio_codec: str, video_codec: str, srtp: bool, now: datetime
) -> None:
    """The call was answered (by the IVR or straight into a meeting) with these codecs."""
    await _update(
        db,
        record_id,
        answered_at=now,
        audio_codec=audio_codec[:60],
        video_codec=video_codec[:60],
        srtp=srtp,
    )


async def joined(
    db: Database,
    record_id: int,
    *,
    meeting_id: int,
    account_id: int,
    meeting_number: str,
    participant_id: str,
    now: datetime,
) -> None:
    """The call joined a meeting as ``participant_id`` (its Attendance row has the same id)."""
    await _update(
        db,
        record_id,
        meeting_id=meeting_id,
        account_id=account_id,
        meeting_number=meeting_number,
        participant_id=participant_id,
        joined_at=now,
    )


async def ended(db: Database, record_id: int, *, reason: str, now: datetime) -> None:
    """The call is over; a second end keeps the first reason (idempotent)."""
    async with db.writer() as session:
        await session.execute(
            update(CallRecord)
            .where(CallRecord.id == record_id, CallRecord.ended_at.is_(None))
            .values(ended_at=now, end_reason=reason[:40])
        )
        await session.commit()


async def close_unfinished(
    db: Database, *, now: datetime, worker_id: int | None = None, reason: str = "server_restart"
) -> int:
    """End the calls a stopped run left open; returns how many.

    With ``worker_id`` (this run, rooms.workers): only the records of earlier runs of the same worker slot,
    and those written before records named their run; the calls of other live workers stay open. Without
    it (no worker registry): every open record."""
    query = update(CallRecord).where(CallRecord.ended_at.is_(None))
    if worker_id is not None:
        slot = select(Worker.name).where(Worker.id == worker_id).scalar_subquery()
        earlier = select(Worker.id).where(Worker.name == slot, Worker.id != worker_id)
        query = query.where(or_(CallRecord.worker_id.is_(None), CallRecord.worker_id.in_(earlier)))
    async with db.writer() as session:
        result = await session.execute(query.values(ended_at=now, end_reason=reason))
        await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


async def recent(
    db: Database, *, account_id: int | None, site_id: int | None = None, limit: int = 100, offset: int = 0
) -> list[CallRecord]:
    """Call records, newest first; ``account_id`` None: every account's (a platform admin)."""
    query = select(CallRecord).order_by(CallRecord.started_at.desc(), CallRecord.id.desc())
    if account_id is not None:
        query = query.where(CallRecord.account_id == account_id)
    if site_id is not None:
        query = query.where(CallRecord.site_id == site_id)
    async with db.session() as session:
        return list((await session.scalars(query.limit(limit).offset(offset))).all())


async def _update(db: Database, record_id: int, **values: object) -> None:
    async with db.writer() as session:
        result = await session.execute(update(CallRecord).where(CallRecord.id == record_id).values(**values))
        await session.commit()
    if not getattr(result, "rowcount", 0):
        raise NotFound("no such call record")
