"""Users: creation, password hashing (argon2) and authentication."""

from __future__ import annotations

import asyncio
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from rooms.database import Database
from rooms.errors import Conflict, InvalidInput, NotFound
from rooms.models import ROLES, Account, User

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or not domain or " " in email:
        raise InvalidInput("not an e-mail address", field="email")
    return email


async def create_user(
    db: Database,
    *,
    email: str,
    password: str,
    role: str,
    account_id: int | None,
    now: datetime,
    display_name: str = "",
    must_change_password: bool = False,
) -> User:
    """Create a user; role "admin" with account_id None is a platform admin."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")
    if role == "organizer" and account_id is None:
        raise InvalidInput("an organizer belongs to an account", field="account_id")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password needs at least {MIN_PASSWORD_LENGTH} characters", field="password")
    email = normalise_email(email)
    password_hash = await asyncio.to_thread(hash_password, password)
    async with db.writer() as session:
        if account_id is not None and await session.get(Account, account_id) is None:
            raise NotFound("no such account", field="account_id")
        user = User(
            email=email,
            password_hash=password_hash,
            role=role,
            account_id=account_id,
            display_name=display_name,
            created_at=now,
            must_change_password=must_change_password,
        )
        session.add(user)
        try:
            await session.commit()
        except IntegrityError as exc:
            raise Conflict("a user with this e-mail exists", field="email") from exc
    return user


async def has_platform_admin(db: Database) -> bool:
    async with db.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(User).where(User.role == "admin", User.account_id.is_(None))
        )
    return bool(count)


async def authenticate(
    db: Database, *, email: str, password: str, now: datetime | None = None
) -> User | None:
    """The user with these credentials, or None. Spends the same hashing time for unknown e-mails.

    With `now`, an unexpired one-time password mailed by a reset (rooms/outbox/password_reset.py) also signs
    in: it becomes the password, and the user must choose a new one.
    """
    async with db.session() as session:
        user = await session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        await asyncio.to_thread(hash_password, password)
        return None
    if not await asyncio.to_thread(verify_password, user.password_hash, password):
        from rooms.outbox.password_reset import redeem_reset

        if now is not None and await redeem_reset(db, user.id, password, now=now):
            return await get_user(db, user.id)
        return None
    return user


async def get_user(db: Database, user_id: int) -> User | None:
    async with db.session() as session:
        return await session.get(User, user_id)


async def change_password(db: Database, user_id: int, *, current: str, new: str) -> User:
    """Replace a user's password after checking the current one; clears ``must_change_password``."""
    if len(new) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password needs at least {MIN_PASSWORD_LENGTH} characters", field="new_password")
    if new == current:
        raise InvalidInput("the new password must differ from the current one", field="new_password")
    new_hash = await asyncio.to_thread(hash_password, new)
    async with db.writer() as session:
        user = await session.get(User, user_id)
        if user is None:
            raise NotFound("no such user", field="user_id")
        if not await asyncio.to_thread(verify_password, user.password_hash, current):
            raise InvalidInput(
                "the current password is wrong", field="current_password", code="bad_credentials"
            )
        user.password_hash = new_hash
        user.must_change_password = False
        await session.commit()
    return user
