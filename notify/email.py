"""EmailChannel: renders a message's template, builds the MIME and hands it to the SMTP sender."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from typing import Protocol

from notify.channel import Accepted, EventSink, Message, Rejected
from notify.mime import Envelope, build_email, message_id
from notify.templating import RenderError, TemplateMissing, Templates

log = logging.getLogger(__name__)


class MailTransport(Protocol):
    async def send(self, mail: EmailMessage) -> str: ...


class EmailChannel:
    """The `email` channel. E-mail may be resent when ambiguous: the same Message-ID lets receivers dedupe."""

    def __init__(
        self,
        transport: MailTransport,
        templates: Templates,
        envelope: Envelope,
        *,
        clock: Callable[[], datetime],
        unsubscribe_url: Callable[[Message], str | None] = lambda _m: None,
    ) -> None:
        self._transport = transport
        self._templates = templates
        self._envelope = envelope
        self._clock = clock
        self._unsubscribe_url = unsubscribe_url

    @property
    def name(self) -> str:
        return "email"

    @property
    def resend_when_ambiguous(self) -> bool:
        return True

    async def start(self, events: EventSink) -> None:
        # SMTP has no receipts on the submission connection; bounces come back as mail (not read yet).
        return None

    def build(self, message: Message) -> EmailMessage:
        unsubscribe = self._unsubscribe_url(message)
        variables = dict(message.variables)
        if message.template_key == "reminder":
            variables.setdefault("unsubscribe_url", unsubscribe or "")
        try:
            rendered = self._templates.render(message.template_key, message.locale, variables)
        except (TemplateMissing, RenderError) as exc:
            raise Rejected(f"template {message.template_key!r}: {exc}") from exc
        return build_email(message, rendered, self._envelope, now=self._clock(), unsubscribe_url=unsubscribe)

    async def submit(self, message: Message) -> Accepted:
        mail = self.build(message)
        reply = await self._transport.send(mail)
        log.debug("outbox %d sent to %s: %s", message.id, message.recipient, reply)
        return Accepted((message_id(message.id, self._envelope.domain),))

    async def close(self) -> None:
        return None
