"""ORM models of the rooms domain. `Base` is shared by every model of the project (billing included)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from rooms.columns import UtcDateTime
from rooms.numbers import host_key

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROLES = ("admin", "organizer")
PARTICIPANT_KINDS = ("browser", "sip", "whip", "recorder", "viewer")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    # The customer's details printed on invoices (billing name, tax number, address, contact); see
    # rooms/billing/documents.py. JSON because finance asks for more fields over time, none of them queried.
    billing: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # None only for a platform admin, who sees every account.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    # Set for a generated one-time password (the first admin): the API refuses everything else until changed.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The language of the mail the user gets (zh-CN or en); None: the platform's default (notify settings).
    locale: Mapped[str | None] = mapped_column(String(10))

    @property
    def is_platform_admin(self) -> bool:
        return self.role == "admin" and self.account_id is None


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(500), default="")
    # Set by billing when a site is suspended for non-payment; its endpoints are then refused.
    suspended_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Endpoint(Base):
    __tablename__ = "endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    sip_username: Mapped[str] = mapped_column(String(100), unique=True)
    # Kept readable because SIP digest authentication needs the secret itself; the API shows it only once.
    sip_secret: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class Room(Base):
    __tablename__ = "rooms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    meeting_number: Mapped[str] = mapped_column(String(10), unique=True)
    passcode: Mapped[str | None] = mapped_column(String(20))
    capacity: Mapped[int] = mapped_column(Integer)
    max_session_minutes: Mapped[int | None] = mapped_column(Integer)
    lobby: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    # Entered in a meeting (claim_host) to become its host: a meeting joined by guests only still gets one.
    host_key: Mapped[str] = mapped_column(String(12), default=host_key)
    # Start recording as soon as the meeting starts (the recording notice tells everyone who joins).
    auto_record: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Booking(Base):
    """A single occurrence or a series; a detached occurrence is a child booking sharing the parent's UID."""

    __tablename__ = "bookings"
    __table_args__ = (Index("ix_bookings_room_span", "room_id", "first_start", "last_end"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    organizer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id", ondelete="CASCADE"), index=True)
    # The parent's local start of the occurrence this child replaces (iCalendar RECURRENCE-ID).
    recurrence_id: Mapped[datetime | None] = mapped_column(DateTime(timezone=False))
    uid: Mapped[str] = mapped_column(String(200), index=True)
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    # Wall-clock times in `time_zone`: a weekly 09:00 series stays at 09:00 across DST changes.
    start_local: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    end_local: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    time_zone: Mapped[str] = mapped_column(String(64))
    rrule: Mapped[str | None] = mapped_column(String(500))
    exdates: Mapped[list[Any]] = mapped_column(default=list)
    invitees: Mapped[list[Any]] = mapped_column(default=list)
    capacity: Mapped[int | None] = mapped_column(Integer)
    passcode: Mapped[str | None] = mapped_column(String(20))
    lobby: Mapped[bool | None] = mapped_column(Boolean)
    # UTC span of all occurrences, for cheap candidate selection in overlap checks.
    first_start: Mapped[datetime]
    last_end: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Worker(Base):
    """One run of a server process: its heartbeat, and the owner of the meetings it hosts."""

    __tablename__ = "workers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The worker slot ("main" for the single process): a new run of a slot proves the previous one is dead.
    name: Mapped[str] = mapped_column(String(64), index=True)
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime]
    beat_at: Mapped[datetime]
    # Set by a clean stop; a run that stops without it crashed.
    stopped_at: Mapped[datetime | None]


class Meeting(Base):
    __tablename__ = "meetings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id", ondelete="SET NULL"))
    occurrence_start: Mapped[datetime | None]
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(40))
    # The worker run that hosts the meeting; crash recovery closes it at that run's last heartbeat.
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id", ondelete="SET NULL"), index=True)
    # The fencing token of the lease its owner holds in a cluster (issue #20): ending or adopting the meeting
    # is conditioned on it, so a stale owner (its lease moved while it was paused) cannot close a moved one.
    lease_epoch: Mapped[int | None] = mapped_column(BigInteger)


class Attendance(Base):
    __tablename__ = "attendances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    participant_id: Mapped[str] = mapped_column(String(100))
    display_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    endpoint_id: Mapped[int | None] = mapped_column(ForeignKey("endpoints.id", ondelete="SET NULL"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"))
    device_class: Mapped[str] = mapped_column(String(20))
    user_agent: Mapped[str] = mapped_column(String(500), default="")
    joined_at: Mapped[datetime]
    left_at: Mapped[datetime | None]
    leave_reason: Mapped[str | None] = mapped_column(String(40))
