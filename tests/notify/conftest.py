"""Fixtures of the notification tests: the rooms store's databases (SQLite, and PostgreSQL where it runs)."""

from __future__ import annotations

from tests.rooms.conftest import db, postgres_server

__all__ = ["db", "postgres_server"]
