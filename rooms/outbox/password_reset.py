"""Forgotten passwords: a one-time password by e-mail, written to the outbox with its reset row.

The mailed password does not replace the old one until it is used, so a stranger asking for a reset cannot
lock anybody out; once used it becomes the password and the user must choose a new one
(must_change_password). One request per user every few minutes: a form cannot be used to flood a mailbox.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select

from rooms.database import Database
from rooms.models import User
from rooms.outbox import store
from rooms.outbox.invitations import LOCALES
from rooms.outbox.models import PasswordReset
from rooms.users import hash_password, verify_password

RESET_TTL = timedelta(minutes=30)
RESEND_AFTER = timedelta(minutes=5)
# No 0/O, 1/I/L: read from a phone and typed on a keyboard.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def one_time_password() -> str:
    groups = ["".join(secrets.choice(ALPHABET) for _ in range(4)) for _ in range(3)]
    return "-".join(groups)


async def request_reset(
    db: Database, email: str, *, now: datetime, login_url: str, default_locale: str
) -> bool:
    """Queue a one-time password for the user with `email`; False (and no mail) for an unknown address."""
    password = one_time_password()
    otp_hash = await asyncio.to_thread(hash_password, password)
    async with db.writer() as session:
        user = await session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            return False
        previous = await session.get(PasswordReset, user.id)
        if previous is not None and now - previous.created_at < RESEND_AFTER:
            return True
        if previous is not None:
            await session.delete(previous)
            await session.flush()
        session.add(
            PasswordReset(user_id=user.id, otp_hash=otp_hash, expires_at=now + RESET_TTL, created_at=now)
        )
        await store.enqueue(
            session,
            channel="email",
            kind="password_reset",
            recipient=user.email,
            idempotency_key=f"password_reset:{user.id}:{now.isoformat()}",
            now=now,
            account_id=user.account_id,
            locale=user.locale if user.locale in LOCALES else default_locale,
            variables={
                "name": user.display_name,
                "one_time_password": password,
                "expires_minutes": int(RESET_TTL.total_seconds() // 60),
                "login_url": login_url,
            },
            expires_at=now + RESET_TTL,
        )
        await session.commit()
    return True


async def redeem_reset(db: Database, user_id: int, candidate: str, *, now: datetime) -> bool:
    """Sign in with a mailed one-time password: it becomes the password, which must then be changed."""
    async with db.session() as session:
        reset = await session.get(PasswordReset, user_id)
    if reset is None or reset.expires_at <= now:
        return False
    if not await asyncio.to_thread(verify_password, reset.otp_hash, candidate):
        return False
    async with db.writer() as session:
        reset = await session.get(PasswordReset, user_id)
        user = await session.get(User, user_id)
        if reset is None or user is None or reset.expires_at <= now:
            return False
        user.password_hash = reset.otp_hash
        user.must_change_password = True
        await session.delete(reset)
        await session.commit()
    return True
