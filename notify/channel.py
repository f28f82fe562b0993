"""The channel protocol: what the dispatcher hands a sender, and what a sender answers.

A channel (e-mail over SMTP, SMS over SMPP, a provider's HTTP API, announcements to live meetings) takes one
:class:`Message` at a time and either returns :class:`Accepted` with the provider's ids (one per part) or
raises a :class:`ChannelError` whose class says what the dispatcher does next:

- :class:`RetryLater` — nothing was taken (SMTP 4xx, connection refused, ``ESME_RTHROTTLED``): retry with
  back-off, or not before ``retry_after`` seconds.
- :class:`Rejected` — it will never be taken (SMTP 5xx, ``ESME_RINVDSTADR``): fail now; ``suppress`` also
  stops later messages to that recipient (a hard bounce).
- :class:`Ambiguous` — the provider may or may not have taken it (the connection dropped after the data
  went out). The channel's ``resend_when_ambiguous`` decides: e-mail is resent with the same Message-ID,
  SMS is marked ``unknown`` and never resent.

Receipts and inbound (MO) messages arrive later, on any connection: the channel pushes them to the
:class:`EventSink` given to :meth:`Channel.start`; the dispatcher matches them to rows by provider id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

Disposition = Literal["retry", "permanent", "ambiguous"]


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    text: str
    params: Mapping[str, str] = field(default_factory=dict)
    data: bytes | None = None  # a binary file (a PDF): sent as is instead of `text`


@dataclass(frozen=True)
class Message:
    """One outbox row as a sender sees it. `id` is stable across retries (the e-mail's Message-ID)."""

    id: int
    channel: str
    kind: str
    template_key: str
    locale: str
    recipient: str
    variables: Mapping[str, Any]
    attachments: tuple[Attachment, ...] = ()
    account_id: int | None = None
    booking_id: int | None = None
    batch_id: str | None = None
    attempt: int = 1


@dataclass(frozen=True)
class Accepted:
    """The provider took the message: its id for each part (SMTP has one part and perhaps no id)."""

    provider_ids: tuple[str | None, ...]

    @property
    def parts(self) -> int:
        return len(self.provider_ids)


class ChannelError(Exception):
    """A send that did not (or may not have) worked; the subclass is the disposition."""

    disposition: Disposition = "retry"

    def __init__(self, message: str, *, suppress: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.suppress = suppress
        self.retry_after = retry_after


class RetryLater(ChannelError):
    disposition: Disposition = "retry"


class Rejected(ChannelError):
    disposition: Disposition = "permanent"


class Ambiguous(ChannelError):
    disposition: Disposition = "ambiguous"


@dataclass(frozen=True)
class Receipt:
    """A delivery report for one part: `status` is delivered, failed or unknown."""

    channel: str
    provider_message_id: str
    status: Literal["delivered", "failed", "unknown"]
    error: str | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class Inbound:
    """A message from a recipient to us (an SMS MO: an opt-out `TD`, `退订`, ...)."""

    channel: str
    sender: str
    text: str
    at: datetime | None = None


EventSink = Callable[[Receipt | Inbound], Awaitable[None]]


class Channel(Protocol):
    """A sender of one channel. The dispatcher owns it: start once, submit many, close once."""

    @property
    def name(self) -> str: ...

    @property
    def resend_when_ambiguous(self) -> bool: ...

    async def start(self, events: EventSink) -> None: ...

    async def submit(self, message: Message) -> Accepted: ...

    async def close(self) -> None: ...
