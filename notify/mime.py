"""The e-mail itself: Google Calendar's invitation shape, which the common mail clients show as an invitation.

multipart/mixed
  multipart/alternative
    text/plain
    text/html
    text/calendar; method=REQUEST|CANCEL   (only with an .ics)
  application/ics; name=invite.ics       (the same .ics, for clients that only import attachments)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from notify.channel import Message
from notify.templating import Rendered

# RFC 3834: a machine wrote this; autoresponders must not answer it.
AUTO_SUBMITTED = "auto-generated"
# Kinds whose mail carries a one-click unsubscribe (RFC 8058); invitations and account mail never do.
UNSUBSCRIBABLE = frozenset({"reminder"})


@dataclass(frozen=True)
class Envelope:
    sender: str
    domain: str


def message_id(outbox_id: int, domain: str) -> str:
    """Derived from the outbox row, so a resend after an ambiguous failure carries the same Message-ID."""
    return f"<outbox-{outbox_id}@{domain}>"


def build_email(
    message: Message,
    rendered: Rendered,
    envelope: Envelope,
    *,
    now: datetime,
    unsubscribe_url: str | None = None,
) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = envelope.sender
    mail["To"] = message.recipient
    mail["Subject"] = rendered.subject
    mail["Date"] = format_datetime(now)
    mail["Message-ID"] = message_id(message.id, envelope.domain)
    mail["Auto-Submitted"] = AUTO_SUBMITTED
    mail["Content-Language"] = message.locale
    if unsubscribe_url and message.kind in UNSUBSCRIBABLE:
        mail["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    mail.set_content(rendered.text)
    mail.add_alternative(rendered.html, subtype="html")
    calendars = [a for a in message.attachments if a.content_type == "text/calendar"]
    for ics in calendars[:1]:
        mail.add_alternative(ics.text, subtype="calendar", params=dict(ics.params))
    for attachment in message.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        if attachment.content_type == "text/calendar":
            maintype, subtype = "application", "ics"
        mail.add_attachment(
            attachment.data if attachment.data is not None else attachment.text.encode("utf-8"),
            maintype=maintype,
            subtype=subtype,
            filename=attachment.filename,
        )
    return mail
