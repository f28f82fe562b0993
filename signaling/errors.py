"""The signaling package's exceptions and the one place that turns them into wire errors."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Codes of the ``error`` event (a request failed; the connection stays)."""

    UNKNOWN_EVENT = "unknown_event"
    BAD_PAYLOAD = "bad_payload"
    NOT_ALLOWED = "not_allowed"
    NOT_FOUND = "not_found"
    BAD_STATE = "bad_state"
    RATE_LIMITED = "rate_limited"
    TOO_LONG = "too_long"
    NEGOTIATION_FAILED = "negotiation_failed"
    INTERNAL = "internal"
    WRONG_HOST_KEY = "wrong_host_key"  # claim_host with a key that is not the room's
    HOST_KEY_LOCKED = "host_key_locked"  # too many wrong host keys: claim_host is refused for a while
    RECORDING_FAILED = "recording_failed"  # the server could not start or stop recording (message: why)
    SIP_DIAL_FAILED = "sip_dial_failed"  # a room system could not be called (message: why)


class RefusalCode(StrEnum):
    """Why a join was refused (the ``connect_error`` data, or ``lobby_rejected``)."""

    BAD_AUTH = "bad_auth"
    BAD_TOKEN = "bad_token"
    NO_SUCH_MEETING = "no_such_meeting"
    WRONG_PASSCODE = "wrong_passcode"
    NOT_AUTHORISED = "not_authorised"
    NOT_OPEN = "not_open"
    CLOSED = "closed"
    LOCKED = "locked"
    FULL = "full"
    REJECTED = "rejected"
    REMOVED = "removed"
    RECONNECT_EXPIRED = "reconnect_expired"
    MEETING_ENDING = "meeting_ending"
    SERVER_CLOSING = "server_closing"
    UNAVAILABLE = "unavailable"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    WRONG_WORKER = "wrong_worker"  # the meeting lives in another worker: connect there (data "worker")


class SignalingError(Exception):
    """Base of the signaling package's exceptions."""


class ProtocolError(SignalingError):
    """A client event was refused; sent back as an ``error`` event with ``code``."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class JoinRefused(SignalingError):
    """A join (or reconnect) was refused; the client is told ``code`` and is not connected.

    ``retry_after``: seconds after which the same attempt may succeed (``too_many_attempts``).
    ``worker``: the worker the meeting lives in (``wrong_worker``)."""

    def __init__(
        self, code: RefusalCode, message: str, *, retry_after: int | None = None, worker: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.worker = worker
