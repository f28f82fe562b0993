"""The exceptions of the rooms package. The API maps each to one HTTP status."""

from __future__ import annotations


class RoomsError(Exception):
    """Base of the package's errors; `code` is a stable machine-readable reason."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class InvalidInput(RoomsError):
    """The input breaks a domain rule (bad time zone, RRULE, a booking in the past, ...)."""

    code = "invalid"


class NotFound(RoomsError):
    code = "not_found"


class Conflict(RoomsError):
    """The write would break a uniqueness rule; `booking_id` names the booking in the way, if any."""

    code = "conflict"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        booking_id: int | None = None,
    ) -> None:
        super().__init__(message, field=field, code=code)
        self.booking_id = booking_id


class StaleLease(Conflict):
    """A write of a meeting's former owner, after its lease moved to another worker (issue #20)."""

    code = "stale_lease"
