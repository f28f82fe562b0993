"""SmtpSender: one SMTP transaction per message to the operator's smarthost, on aiosmtplib.

A fresh connection per send, as aiosmtplib's maintainer advises (a kept-open client can hang after the
server's idle timeout). Failures become the channel's error classes: 4xx and connection problems retry,
5xx is permanent (550 also suppresses the address), and a connection lost after the message data went out is
ambiguous: the server may have queued it, so the resend carries the same Message-ID.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import getaddresses, parseaddr

import aiosmtplib

from notify.channel import Ambiguous, Rejected, RetryLater

log = logging.getLogger(__name__)

# A hard bounce: the mailbox does not exist (RFC 5321 550, 551, 553). Others 5xx fail this message only.
SUPPRESSING_CODES = frozenset({550, 551, 553})


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    tls: bool = False
    starttls: bool = True
    user: str = ""
    password: str = ""
    timeout: float = 30.0
    ca_file: str | None = None


def _classify(code: int, text: str, *, what: str) -> RetryLater | Rejected:
    message = f"{what}: {code} {text}".strip()
    if 400 <= code < 500:
        return RetryLater(message)
    return Rejected(message, suppress=code in SUPPRESSING_CODES)


class SmtpSender:
    """Sends an EmailMessage; raises RetryLater, Rejected or Ambiguous. Owns no connection between sends."""

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config
        self._tls_context: ssl.SSLContext | None = None
        if config.tls or config.starttls:
            self._tls_context = ssl.create_default_context(cafile=config.ca_file)

    async def send(self, mail: EmailMessage) -> str:
        """Deliver `mail` to its To recipients; return the server's final reply (250 ...)."""
        config = self._config
        sender = parseaddr(str(mail["From"]))[1]
        recipients = [address for _, address in getaddresses(mail.get_all("To", []))]
        data = mail.as_bytes(policy=SMTP_POLICY)
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            use_tls=config.tls,
            start_tls=config.starttls and not config.tls,
            tls_context=self._tls_context,
            timeout=config.timeout,
        )
        try:
            await client.connect()
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError, OSError) as exc:
            raise RetryLater(f"cannot connect to {config.host}:{config.port}: {exc}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _classify(exc.code, exc.message, what="connect") from exc
        except aiosmtplib.SMTPException as exc:
            raise RetryLater(f"connect to {config.host}:{config.port}: {exc}") from exc
        try:
            return await self._transaction(client, sender, recipients, data)
        finally:
            if client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()

    async def _transaction(
        self, client: aiosmtplib.SMTP, sender: str, recipients: list[str], data: bytes
    ) -> str:
        config = self._config
        try:
            if config.user:
                await client.login(config.user, config.password)
            await client.mail(sender)
            for recipient in recipients:
                await client.rcpt(recipient)
        except aiosmtplib.SMTPAuthenticationError as exc:
            # A wrong password is the operator's to fix; keep the message until it is fixed or expires.
            raise RetryLater(f"authentication failed: {exc.code} {exc.message}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _classify(exc.code, exc.message, what="envelope") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise RetryLater(f"before the data: {exc}") from exc
        try:
            response = await client.data(data)
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code >= 400:
                raise _classify(exc.code, exc.message, what="data") from exc
            raise Ambiguous(f"data: unexpected reply {exc.code} {exc.message}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise Ambiguous(f"connection lost after the data went out: {exc}") from exc
        return f"{response.code} {response.message}"
