"""Tables of incidents (and their history) and of the health monitor's open outages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rooms.models import Base

SEVERITIES = ("major", "minor")
STATUSES = ("open", "in_progress", "resolved", "closed")
SOURCES = ("account", "staff", "monitor")
EVENT_KINDS = ("opened", "note", "status", "assigned", "severity", "monitor")


class Incident(Base):
    """A reported fault; its response and resolution clocks run from `opened_at` (see clocks.py)."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_opened", "opened_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # None: the whole platform (the monitor's incidents), which every account's report lists.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))
    reported_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    outage_id: Mapped[int | None] = mapped_column(ForeignKey("billing_outages.id", ondelete="SET NULL"))
    opened_at: Mapped[datetime]
    # The first answer of platform staff (a note, an assignment or a status change).
    responded_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class IncidentEvent(Base):
    """One entry of an incident's history: who did what when (actor None: the monitor)."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="")


class OpenOutage(Base):
    """The monitor's outage of one scope while it lasts: the primary key makes it one row however many
    monitors observe the failure, and a restarted monitor continues it instead of opening another."""

    __tablename__ = "monitor_open_outages"

    scope: Mapped[str] = mapped_column(String(20), primary_key=True)
    outage_id: Mapped[int] = mapped_column(ForeignKey("billing_outages.id", ondelete="CASCADE"), unique=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"))
    # The last check that saw the failure, and the worker that ran it.
    observed_at: Mapped[datetime]
    worker: Mapped[str] = mapped_column(String(64))
