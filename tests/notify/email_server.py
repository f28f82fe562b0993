"""A real SMTP server for the notification tests: aiosmtpd on 127.0.0.1, STARTTLS and AUTH required.

Started with loop.create_server inside the test's own event loop (aiosmtpd's UnthreadedController calls
run_until_complete and fails inside a running loop). `replies` scripts the answers to DATA, one per message
("250 OK" when empty); `drop_after_data` closes the connection instead of answering (an ambiguous send).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from yunhui.bootstrap import ensure_self_signed_cert

USER = "yunhui"
PASSWORD = "smtp-secret"


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Handler:
    replies: list[str] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    drop_after_data: int = 0
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.rcpt_replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.attempts += 1
        content = envelope.original_content or b""
        if self.drop_after_data:
            self.drop_after_data -= 1
            # The message arrived whole, but the reply never does: the client cannot know it was taken.
            self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), content))
            assert server.transport is not None
            server.transport.abort()
            await self._notify()
            return "250 OK"
        reply = self.replies.pop(0) if self.replies else "250 OK"
        if reply.startswith("250"):
            self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), content))
        await self._notify()
        return reply

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait_for(self, count: int, *, attempts: bool = False) -> None:
        """Return once `count` messages were received (or DATA was tried `count` times); 30 s bound a hang."""

        def done() -> bool:
            return (self.attempts if attempts else len(self.received)) >= count

        async with asyncio.timeout(30), self.changed:
            await self.changed.wait_for(done)


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


@dataclass
class SmtpServer:
    host: str
    port: int
    ca_file: Path
    handler: Handler

    def settings(self) -> dict[str, Any]:
        """The notify.smtp section that reaches this server."""
        return {
            "host": self.host,
            "port": self.port,
            "starttls": True,
            "tls": False,
            "ca_file": str(self.ca_file),
            "user": USER,
            "password": PASSWORD,
            "timeout_seconds": 10,
        }


@asynccontextmanager
async def smtp_server(tmp_path: Path, handler: Handler | None = None) -> AsyncIterator[SmtpServer]:
    cert, key = ensure_self_signed_cert(tmp_path / "smtp", datetime.now(UTC), ["127.0.0.1"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = handler or Handler()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            handler,
            hostname="smtp.test",
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=_authenticate,
        ),
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    try:
        yield SmtpServer("127.0.0.1", port, cert, handler)
    finally:
        server.close()
        await server.wait_closed()
