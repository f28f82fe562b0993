"""The cluster-wide broadcast bus (issue #20, research/scale-out.md §2, §4.6, S10): Redis pub/sub.

Only what must reach every worker goes here (maintenance announcements today), never a meeting's own
traffic: a meeting's sockets all live in its owner. The listener guards the two known ways such a bus goes
quiet: redis-py 8's 5 s socket timeout on an idle subscription (this client has none: ``socket_timeout``
None) and a deaf listener (a half-open connection, or Redis killing the subscriber): every
``bus_health_seconds`` without a message it PINGs over the subscribed connection, and when no reply comes
within two intervals, or the connection fails, it reconnects and subscribes again, with a backoff.
Delivery is at most once: what is published while a listener reconnects is lost (announcements are sent
again at T−10 min and shown as a banner anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from typing import Any

import redis.asyncio as redis_asyncio
from aiohttp import web
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from signaling.messages import Announcement
from web.keys import METRICS
from yunhui.notifications import ANNOUNCEMENTS
from yunhui.settings import WorkerSettings

log = logging.getLogger(__name__)

CHANNEL = "yunhui:bus"
# Redis drops a subscriber whose output buffer passes 32 MB (client-output-buffer-limit pubsub): keep
# every message small.
MAX_MESSAGE_BYTES = 64 * 1024

Handler = Callable[[dict[str, Any]], None]


class ClusterBus:
    """This worker's end of the bus; ``close()`` stops the listener and closes the client (idempotent)."""

    def __init__(self, url: str, worker: str, *, health_seconds: float) -> None:
        self._client: redis_asyncio.Redis = redis_asyncio.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=None,  # an idle subscription is not an error (redis-py 8 defaults to 5 s)
            socket_connect_timeout=2.0,
            socket_keepalive=True,
        )
        self.worker = worker
        self._health = health_seconds
        self._handlers: dict[str, Handler] = {}
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.subscribed = asyncio.Event()
        self.published = 0
        self.received = 0
        self.reconnects = 0

    def on(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    def start(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._run(), name="cluster-bus")

    async def publish(self, kind: str, body: dict[str, Any]) -> int:
        """Send to every other worker; the number of subscribers Redis delivered it to (this one too)."""
        data = json.dumps({"kind": kind, "origin": self.worker, "body": body}, separators=(",", ":"))
        if len(data) > MAX_MESSAGE_BYTES:
            raise ValueError(f"a bus message has at most {MAX_MESSAGE_BYTES} bytes ({len(data)})")
        reached = int(await self._client.publish(CHANNEL, data))
        self.published += 1
        return reached

    async def _run(self) -> None:
        backoff = 0.1
        while not self._closed:
            try:
                await self._listen()
                backoff = 0.1
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("cluster bus: the subscription failed (%s); subscribing again", exc)
            self.subscribed.clear()
            if self._closed:
                break
            self.reconnects += 1
            await asyncio.sleep(backoff)  # bounded backoff: Redis away must not spin the loop
            backoff = min(backoff * 2, 5.0)

    async def _listen(self) -> None:
        async with self._client.pubsub() as pubsub:
            await pubsub.subscribe(CHANNEL)
            heard = time.monotonic()
            pinged = False
            while not self._closed:
                message = await pubsub.get_message(timeout=self._health)
                now = time.monotonic()
                if message is None:
                    if now - heard > 2 * self._health and pinged:
                        log.warning("cluster bus: no reply to PING in %.1f s; reconnecting", now - heard)
                        return  # a deaf listener: a new connection and subscription
                    if now - heard > self._health and not pinged:
                        await pubsub.ping()
                        pinged = True
                    continue
                heard, pinged = now, False
                kind = message.get("type")
                if kind == "subscribe":
                    self.subscribed.set()
                elif kind == "message":
                    self._dispatch(message.get("data"))

    def _dispatch(self, data: Any) -> None:
        try:
            decoded = json.loads(data)
            kind, origin, body = decoded["kind"], decoded["origin"], decoded["body"]
        except (TypeError, ValueError, KeyError) as exc:
            log.warning("cluster bus: an unreadable message (%s)", exc)
            return
        if origin == self.worker:
            return  # published here: delivered here already
        handler = self._handlers.get(kind)
        if handler is None:
            return  # a kind a newer worker knows
        self.received += 1
        try:
            handler(body)
        except Exception:  # one bad message must not stop the listener
            log.exception("cluster bus: handling %s from worker %s failed", kind, origin)

    async def close(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._client.aclose()


class BusCollector(Collector):
    """/metrics: what crossed the bus, and how often the listener subscribed again."""

    def __init__(self, bus: ClusterBus) -> None:
        self._bus = bus

    def collect(self) -> Iterator[CounterMetricFamily]:
        for name, value, text in (
            ("yunhui_bus_published", self._bus.published, "messages this worker sent to the others"),
            ("yunhui_bus_received", self._bus.received, "messages from other workers handled here"),
            ("yunhui_bus_reconnects", self._bus.reconnects, "times the bus listener subscribed again"),
        ):
            yield CounterMetricFamily(name, text, value=value)


def _encode(announcement: Announcement, account: int | None) -> dict[str, Any]:
    fields = dataclasses.asdict(announcement)
    for name in ("starts_at", "ends_at"):
        value = fields[name]
        fields[name] = None if value is None else value.isoformat()
    return {"account": account, "announcement": fields}


def _decode(body: dict[str, Any]) -> tuple[Announcement, int | None]:
    fields = dict(body["announcement"])
    for name in ("starts_at", "ends_at"):
        value = fields[name]
        fields[name] = None if value is None else datetime.fromisoformat(value)
    account = body["account"]
    return Announcement(**fields), None if account is None else int(account)


def install(app: web.Application, settings: WorkerSettings) -> ClusterBus | None:
    """In a cluster, announcements reach the meetings of every worker (S10); nothing in one process."""
    if settings.redis_url is None or settings.worker_id is None:
        return None
    bus = ClusterBus(settings.redis_url, str(settings.worker_id), health_seconds=settings.bus_health_seconds)
    announcements = app.get(ANNOUNCEMENTS)
    if announcements is not None:
        channel = announcements

        async def relay(announcement: Announcement, account: int | None) -> None:
            try:
                await bus.publish("announcement", _encode(announcement, account))
            except (RedisError, OSError, ValueError) as exc:  # this worker's meetings have it already
                log.warning("announcement %d did not reach the other workers: %s", announcement.id, exc)

        def deliver(body: dict[str, Any]) -> None:
            announcement, account = _decode(body)
            reached = channel.deliver(announcement, account)
            log.info("announcement %d from the bus to %d live meeting(s)", announcement.id, reached)

        channel.relay = relay
        bus.on("announcement", deliver)
    app[METRICS].register(BusCollector(bus))

    async def bus_ctx(app: web.Application) -> AsyncIterator[None]:
        bus.start()
        yield
        await bus.close()

    app.cleanup_ctx.append(bus_ctx)
    return bus
