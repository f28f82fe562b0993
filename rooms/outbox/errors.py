"""Errors of the outbox store (subclasses of the rooms package's errors, mapped to HTTP by web/)."""

from __future__ import annotations

from rooms.errors import InvalidInput


class InvalidNotification(InvalidInput):
    """An enqueue names an unknown channel, an empty recipient or an expiry before its start."""

    code = "invalid_notification"
