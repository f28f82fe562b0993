"""The webhook dispatcher: sends what rooms' webhook outbox holds, signed, in order per webhook, with retries.

Safe to run in several workers at once: each delivery is leased with a conditional UPDATE before it is sent
(rooms.webhooks.store.claim_due), so two dispatchers never send the same attempt; a worker that dies
mid-send leaves a lease that runs out, and the delivery is sent again (receivers dedupe on the event id).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import socket
from collections.abc import AsyncIterator, Callable
from importlib.metadata import version

import aiohttp
from aiohttp import web
from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

from rooms.database import Database
from rooms.errors import InvalidInput
from rooms.webhooks import store
from rooms.webhooks.policy import UrlPolicy, check_url, forbidden_address
from rooms.webhooks.signing import SIGNATURE_HEADER, sign
from web.api.webhooks import URL_POLICY
from yunhui.settings import WebhookSettings

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
DISPATCHER: web.AppKey[WebhookDispatcher] = web.AppKey("webhook_dispatcher")
# Longer than any send can take, so a live dispatcher's lease never runs out under it.
LEASE_MARGIN = dt.timedelta(seconds=30)


class _PublicResolver(ThreadedResolver):
    """Drops addresses the policy forbids, so a host name cannot lead the dispatcher into the private network
    (checked at connect time, which also defeats a name that resolves differently later)."""

    def __init__(self, policy: UrlPolicy) -> None:
        super().__init__()
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await super().resolve(host, port, family)
        allowed = [r for r in found if not forbidden_address(r["host"], self._policy)]
        if not allowed:
            raise OSError(f"{host} resolves only to private, loopback or reserved addresses")
        return allowed


class WebhookDispatcher:
    """Owns one task that polls the outbox, and the HTTP client session it sends with."""

    def __init__(self, database: Database, settings: WebhookSettings, clock: Clock) -> None:
        self._database = database
        self._settings = settings
        self._clock = clock
        self.policy = UrlPolicy(allow_private=settings.allow_private_addresses)
        self._http: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closed = False
        self.sent = 0
        self.failed = 0

    def start(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._loop(), name="webhooks:dispatch")

    def kick(self) -> None:
        """Look at the outbox now instead of at the next poll."""
        self._wake.set()

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None:
            connector = aiohttp.TCPConnector(
                resolver=_PublicResolver(self.policy), limit=self._settings.concurrency
            )
            self._http = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self._settings.timeout_seconds),
                headers={"User-Agent": f"Yunhui-Webhooks/{version('yunhui')}"},
            )
        return self._http

    async def _loop(self) -> None:
        while True:
            try:
                while await self.run_once():
                    pass
            except Exception:
                log.exception("webhook dispatch failed; retrying at the next poll")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.poll_interval_seconds)
            self._wake.clear()

    async def run_once(self) -> int:
        """Send every delivery due now (at most one per webhook); returns how many were attempted."""
        lease = dt.timedelta(seconds=self._settings.timeout_seconds) + LEASE_MARGIN
        claimed = await store.claim_due(
            self._database, now=self._clock(), lease=lease, limit=self._settings.concurrency
        )
        if claimed:
            await asyncio.gather(*(self._send(item) for item in claimed))
        return len(claimed)

    async def _send(self, item: store.Claimed) -> None:
        body = item.body.encode()
        code: int | None = None
        error = ""
        try:
            check_url(item.url, self.policy)
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(item.secret, body, now=self._clock()),
                "Yunhui-Event": item.event,
                "Yunhui-Delivery": str(item.delivery_id),
            }
            # Redirects are not followed: a receiver must answer at the URL it registered.
            async with self._client().post(
                item.url, data=body, headers=headers, allow_redirects=False
            ) as resp:
                code = resp.status
                if not 200 <= code < 300:
                    error = f"HTTP {code}: {(await resp.text(errors='replace'))[:200]}"
        except InvalidInput as exc:
            error = exc.message
        except TimeoutError:
            error = f"no answer within {self._settings.timeout_seconds:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = code is not None and 200 <= code < 300 and not error
        if ok:
            self.sent += 1
        else:
            self.failed += 1
            log.info("webhook %d delivery %d failed: %s", item.webhook_id, item.delivery_id, error)
        await store.finish(
            self._database,
            item.delivery_id,
            ok=ok,
            response_code=code,
            error=error,
            now=self._clock(),
            schedule=self._settings.retry_after_seconds,
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._http is not None:
            await self._http.close()
            self._http = None


def install(
    app: web.Application, api: web.Application, settings: WebhookSettings, database: Database, clock: Clock
) -> WebhookDispatcher:
    """The dispatcher as a cleanup context of ``app``; the API learns the URL policy it enforces."""
    dispatcher = WebhookDispatcher(database, settings, clock)
    app[DISPATCHER] = dispatcher
    api[URL_POLICY] = dispatcher.policy

    async def webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
        if settings.enabled:
            dispatcher.start()
        yield
        await dispatcher.close()

    app.cleanup_ctx.append(webhooks_ctx)
    return dispatcher
