"""Recording who changed what: one SQLAlchemy flush hook writes an AuditEntry per changed object.

A caller that acts for someone (the REST API, for each mutating request) opens an :func:`acting` scope; every
flush inside it adds one entry per created, changed or deleted object of a tracked type. The entries are
flushed by the same commit as the change: both are written, or neither. Outside a scope nothing is recorded,
so the billing run and the meeting server write no entries except the ones they name themselves
(:func:`record`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, UOWTransaction

from rooms.audit.models import AuditEntry
from rooms.billing.models import Contract, CreditNote, Invoice, Outage, Payment, SiteServiceChange
from rooms.models import Account, Booking, Endpoint, Room, Site, User
from rooms.webhooks.models import Webhook

# The object types the log follows, by the name it gives them.
TRACKED: dict[type[Any], str] = {
    Account: "account",
    User: "user",
    Site: "site",
    Endpoint: "endpoint",
    Room: "room",
    Booking: "booking",
    Contract: "contract",
    SiteServiceChange: "service_change",
    Outage: "outage",
    Invoice: "invoice",
    Payment: "payment",
    CreditNote: "credit_note",
    Webhook: "webhook",
}
# Logged as changed, never with their values.
SECRET_FIELDS = frozenset({"password_hash", "sip_secret", "secret", "passcode", "host_key"})
# Bookkeeping that changes with every write and says nothing about who did what.
IGNORED_FIELDS = frozenset({"updated_at", "sequence", "first_start", "last_end"})
MAX_VALUE = 200


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    email: str
    account_id: int | None
    address: str


@dataclass(frozen=True)
class _Scope:
    actor: Callable[[], Actor | None]
    now: Callable[[], datetime]


_acting: ContextVar[_Scope | None] = ContextVar("audit_scope", default=None)


@contextlib.contextmanager
def acting(actor: Callable[[], Actor | None], now: Callable[[], datetime]) -> Iterator[None]:
    """Record the changes flushed inside this scope for ``actor()`` at ``now()`` (both asked at flush time,
    so a request can name its user once it has authenticated); None as actor records "anonymous"."""
    token = _acting.set(_Scope(actor, now))
    try:
        yield
    finally:
        _acting.reset(token)


def acting_unless_acting(
    actor: Actor, now: Callable[[], datetime]
) -> contextlib.AbstractContextManager[None]:
    """:func:`acting` for a background job (e.g. the billing run), unless a caller already acts for someone
    (an admin's REST request that runs it): then the entries name that person."""
    return contextlib.nullcontext() if _acting.get() is not None else acting(lambda: actor, now)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str) and len(value) > MAX_VALUE:
        return value[:MAX_VALUE] + "…"
    if value is None or isinstance(value, bool | int | float | str):
        return value
    text = str(value)
    return text[:MAX_VALUE]


def _shown(key: str, value: Any) -> Any:
    return "***" if key in SECRET_FIELDS and value is not None else _plain(value)


def _created(obj: Any) -> dict[str, Any]:
    mapper = inspect(obj).mapper
    return {
        attr.key: _shown(attr.key, getattr(obj, attr.key))
        for attr in mapper.column_attrs
        if attr.key not in IGNORED_FIELDS and attr.key != "id"
    }


def _changed(obj: Any) -> dict[str, Any]:
    state = inspect(obj)
    changes: dict[str, Any] = {}
    for attr in state.mapper.column_attrs:
        if attr.key in IGNORED_FIELDS:
            continue
        history = state.attrs[attr.key].history
        if not history.has_changes():
            continue
        old = history.deleted[0] if history.deleted else None
        new = history.added[0] if history.added else None
        if old != new:
            changes[attr.key] = [_shown(attr.key, old), _shown(attr.key, new)]
    return changes


def _label(obj: Any) -> dict[str, Any]:
    for key in ("name", "title", "number", "email", "url", "sip_username", "display_name"):
        value = getattr(obj, key, None)
        if isinstance(value, str) and value:
            return {key: _plain(value)}
    return {}


def _account_of(obj: Any) -> int | None:
    if isinstance(obj, Account):
        return int(obj.id)
    value = getattr(obj, "account_id", None)
    return int(value) if isinstance(value, int) else None


def entry(actor: Actor | None, action: str, object_type: str, object_id: object, *, account_id: int | None,
          changes: dict[str, Any], at: datetime) -> AuditEntry:  # fmt: skip
    return AuditEntry(
        at=at,
        actor_id=actor.user_id if actor else None,
        actor=actor.email if actor else "system",
        account_id=account_id,
        address=actor.address if actor else "",
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else "",
        changes=changes,
    )


def _after_flush(session: Session, _context: UOWTransaction) -> None:
    # After the flush, new objects have their ids; `new`, `dirty` and `deleted` and the attribute history
    # still describe what this flush wrote. The entries added here go out with the commit's next flush.
    scope = _acting.get()
    if scope is None:
        return
    actor = scope.actor() or Actor(None, "anonymous", None, "")
    at = scope.now()
    found: list[AuditEntry] = []
    for action, objects in (("create", session.new), ("update", session.dirty), ("delete", session.deleted)):
        for obj in objects:
            kind = TRACKED.get(type(obj))
            if kind is None:
                continue
            if action == "create":
                changes = _created(obj)
            elif action == "update":
                changes = _changed(obj)
                if not changes:
                    continue
            else:
                changes = _label(obj)
            # Not state.identity: a new object gets its identity key only after this hook.
            object_id = inspect(obj).mapper.primary_key_from_instance(obj)[0]
            found.append(
                entry(actor, action, kind, object_id, account_id=_account_of(obj), changes=changes, at=at)
            )
    for item in found:
        session.add(item)


def install() -> None:
    """Register the flush hook once per process (it does nothing outside an :func:`acting` scope)."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)


def record(session: AsyncSession, action: str, object_type: str, object_id: object, *, account_id: int | None,
           changes: dict[str, Any], now: datetime, actor: Actor | None = None) -> None:  # fmt: skip
    """Add a named entry (e.g. a participant removed by a moderator) to the caller's transaction."""
    session.add(entry(actor, action, object_type, object_id, account_id=account_id, changes=changes, at=now))
