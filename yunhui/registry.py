"""The cluster registry in Redis: worker heartbeats and per-meeting leases with a fencing token.

Keys (research/scale-out.md §4.3): ``yh:worker:{id}`` a hash of the worker's address, state and load, with
a TTL renewed every heartbeat; ``yh:room:{room_id}`` = ``"{worker}:{epoch}"``, the room's lease, claimed
with SET NX PX (``epoch`` from ``INCR yh:epoch``: a later owner always has a higher token), renewed by its
owner every heartbeat with a compare-and-PEXPIRE and released with a compare-and-DEL, so a stale owner can
never extend or drop a lease that has moved; ``yh:reserved:{worker}`` a sorted set of rooms placed there
recently (score: until when they count), the ramp-up share of the load.

Everything is safe to run in every worker at once: placements take a short Redis lock so that a burst of
locates sees each other's reservations, and every lease change is one atomic script.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import redis.asyncio as redis_asyncio
from redis.asyncio.lock import Lock
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from yunhui.placement import (
    DRAINING,
    SERVING,
    WorkerView,
    choose_worker,
    is_available,
    owner_value,
    parse_owner,
)
from yunhui.settings import WorkerSettings

log = logging.getLogger(__name__)

WORKER_KEY = "yh:worker:"
ROOM_KEY = "yh:room:"
RESERVED_KEY = "yh:reserved:"
EPOCH_KEY = "yh:epoch"
PLACING_KEY = "yh:placing"

# 1: renewed; 2: the key was gone (a Redis restart, a starved loop) and is claimed again; 0: another owns it.
_RENEW = """
local value = redis.call('GET', KEYS[1])
if value == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not value then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Take a room over from a dead owner: only if the lease still holds the value that was read.
_TAKE_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end
return 0
"""


class RegistryUnavailable(Exception):
    """Redis cannot be reached: running meetings go on, new placements are refused until it is back."""


@dataclass(frozen=True, slots=True)
class Owner:
    """Who holds a room's lease."""

    worker: WorkerView
    epoch: int


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def now_ms() -> int:
    return int(time.time() * 1000)


def connect(url: str) -> redis_asyncio.Redis:
    """A client whose commands fail within about a second when Redis is away (not redis-py's 5 s default
    waited out three times): a join waiting on the registry is a person looking at a spinner."""
    client: redis_asyncio.Redis = redis_asyncio.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        socket_keepalive=True,
        health_check_interval=15,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 1),
    )
    return client


class Registry:
    """This worker's registration and leases; ``close()`` unregisters and releases them (idempotent)."""

    def __init__(
        self,
        client: redis_asyncio.Redis,
        settings: WorkerSettings,
        *,
        me: WorkerView,
        local_rooms: Callable[[], dict[int, int]],
        clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self._redis = client
        self._settings = settings
        self.me = me
        self._local_rooms = local_rooms  # room id -> participants, of this worker's live conferences
        self._clock_ms = clock_ms
        self._held: dict[int, str] = {}  # room id -> the lease value this worker holds
        self._live: set[int] = set()  # the rooms with a meeting here at the last heartbeat
        self._handed: set[int] = set()  # rooms handed over to another worker (a drain)
        self._failed = False  # the last heartbeat did not reach Redis
        self._recovered_ms = -(2**62)  # when a heartbeat reached Redis again after failing
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.last_beat_ms = 0  # the last heartbeat Redis took
        self.moved: Callable[[int], object] | None = None  # called with a room whose lease another took
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._take_over = client.register_script(_TAKE_OVER)

    @property
    def worker_id(self) -> str:
        return self.me.id

    def _ms(self, seconds: float) -> int:
        return max(1, int(seconds * 1000))

    @property
    def healthy(self) -> bool:
        """Redis took a heartbeat recently (readiness)."""
        return self._clock_ms() - self.last_beat_ms <= self._ms(self._settings.worker_ttl_seconds)

    def drain(self) -> None:
        """Take no new meetings from the next heartbeat on (placement skips a draining worker)."""
        self.me = replace(self.me, state=DRAINING)

    @property
    def draining(self) -> bool:
        return self.me.state == DRAINING

    def epoch(self, room_id: int) -> int | None:
        """The fencing token of this worker's lease on the room; None when it holds none."""
        parsed = parse_owner(self._held.get(room_id))
        return None if parsed is None else parsed[1]

    async def hand_over(self, room_id: int, *, expected: int) -> WorkerView | None:
        """Release this worker's lease on the room and place it now on another available worker (this one
        drains, so placement skips it); the new owner's view, or None when no other worker can take it."""
        self._handed.add(room_id)
        value = self._held.pop(room_id, None)
        try:
            if value is not None:
                await self._release(keys=[ROOM_KEY + str(room_id)], args=[value])
            found = await self.locate(room_id, expected=expected)
        except (RedisError, RegistryUnavailable) as exc:
            log.warning("room %s: cannot hand it over (%s)", room_id, exc)
            return None
        return None if found.id == self.me.id else found

    # --- the heartbeat ---

    def start(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._loop(), name="registry-heartbeat")

    async def _loop(self) -> None:
        while True:
            try:
                await self.beat()
            except RedisError as exc:
                self._failed = True
                log.warning("registry heartbeat failed: %s", exc)
            except Exception:
                log.exception("registry heartbeat failed")
            await asyncio.sleep(self._settings.heartbeat_seconds)

    async def beat(self) -> None:
        """Write this worker's key and renew the leases of its live meetings; release the ended ones'."""
        rooms = self._local_rooms()
        at = self._clock_ms()
        self.me = replace(self.me, beat_ms=at, meetings=len(rooms), participants=sum(rooms.values()))
        key = WORKER_KEY + self.me.id
        async with self._redis.pipeline(transaction=True) as pipe:
            fields: dict[Any, Any] = self.me.as_fields()
            pipe.hset(key, mapping=fields)
            pipe.pexpire(key, self._ms(self._settings.worker_ttl_seconds))
            pipe.zremrangebyscore(RESERVED_KEY + self.me.id, "-inf", at)
            await pipe.execute()
        self.last_beat_ms = at
        if self._failed:
            # Leases may have run out while Redis was away: for one lease period only the rooms' owners
            # (re-claiming theirs below) may take rooms, so no locate places a live meeting a second time.
            self._failed = False
            self._recovered_ms = at
            log.info("registry reachable again")
        lease = self._ms(self._settings.lease_ttl_seconds)
        for room_id in rooms:
            if room_id in self._handed:
                continue  # its meeting is moving away: never re-claimed by this worker
            value = self._held.get(room_id)
            if value is None:
                value = self._held[room_id] = owner_value(self.me.id, int(await self._redis.incr(EPOCH_KEY)))
            renewed = int(await self._renew(keys=[ROOM_KEY + str(room_id)], args=[value, lease]))
            if renewed == 0:
                self._held.pop(room_id, None)
                log.warning("room %s: its lease is held by another worker; the meeting moves", room_id)
                if self.moved is not None:
                    self.moved(room_id)
        # Only a meeting that ran here and ended gives its room up now; a room just placed here and not yet
        # joined keeps its lease until it runs out, or the client that located it would find it gone.
        for room_id in [r for r in self._live if r not in rooms and r in self._held]:
            await self._release(keys=[ROOM_KEY + str(room_id)], args=[self._held.pop(room_id)])
        self._live = set(rooms)

    # --- reading the registry ---

    async def workers(self) -> list[WorkerView]:
        """Every registered worker (its key not expired), with its current reservations."""
        return await self.read(self._redis, self._clock_ms())

    @staticmethod
    async def read(client: redis_asyncio.Redis, at: int | None = None) -> list[WorkerView]:
        """The registered workers as any client sees them (the CLI has no Registry of its own)."""
        ids = [_text(key) or "" async for key in client.scan_iter(match=WORKER_KEY + "*")]
        ids = [key.removeprefix(WORKER_KEY) for key in ids]
        if not ids:
            return []
        at = now_ms() if at is None else at
        async with client.pipeline(transaction=False) as pipe:
            for worker_id in ids:
                pipe.hgetall(WORKER_KEY + worker_id)
                pipe.zrangebyscore(RESERVED_KEY + worker_id, at, "+inf")
            replies: list[Any] = await pipe.execute()
        views = []
        for i, worker_id in enumerate(ids):
            fields, reserved = replies[2 * i], replies[2 * i + 1]
            if fields:
                expected = sum(int(m.rpartition(":")[2] or 0) for m in reserved)
                views.append(WorkerView.of(worker_id, fields, reserved=expected))
        return sorted(views, key=lambda w: w.id)

    async def owner(self, room_id: int, views: Sequence[WorkerView] | None = None) -> Owner | None:
        """The room's owner while its lease and its worker's key both exist; None otherwise."""
        parsed = parse_owner(_text(await self._redis.get(ROOM_KEY + str(room_id))))
        if parsed is None:
            return None
        found = views if views is not None else await self.workers()
        worker = next((w for w in found if w.id == parsed[0]), None)
        return None if worker is None else Owner(worker, parsed[1])

    # --- placement ---

    async def locate(self, room_id: int | None, *, expected: int = 1) -> WorkerView:
        """The worker a client must join ``room_id`` on: its owner, or a worker chosen now and leased to it.
        ``room_id`` None (an unknown meeting number): any available worker, nothing claimed."""
        try:
            return await self._locate(room_id, expected)
        except RedisError as exc:
            raise RegistryUnavailable(str(exc)) from exc

    async def _locate(self, room_id: int | None, expected: int) -> WorkerView:
        fresh = self._ms(self._settings.worker_ttl_seconds)
        if room_id is not None:
            views = await self.workers()
            current = await self.owner(room_id, views)
            if current is not None:
                return current.worker
        lock = Lock(self._redis, PLACING_KEY, timeout=2.0, blocking_timeout=5.0, sleep=0.01)
        if not await lock.acquire():
            raise RegistryUnavailable("placement is busy; try again")
        try:
            views = await self.workers()
            if room_id is not None:
                current = await self.owner(room_id, views)
                if current is not None:
                    return current.worker
            if room_id is not None and self._clock_ms() - self._recovered_ms < self._ms(
                self._settings.lease_ttl_seconds
            ):
                raise RegistryUnavailable("the registry has just come back; try again shortly")
            chosen = choose_worker(views, now_ms=self._clock_ms(), fresh_ms=fresh)
            if chosen is None:
                raise RegistryUnavailable("no worker is serving")
            if room_id is None:
                return chosen
            value = owner_value(chosen.id, int(await self._redis.incr(EPOCH_KEY)))
            lease = self._ms(self._settings.lease_ttl_seconds)
            stale = await self._redis.get(ROOM_KEY + str(room_id))
            if stale is None:
                claimed = await self._redis.set(ROOM_KEY + str(room_id), value, nx=True, px=lease)
            else:  # its owner is gone (no worker key): the room moves now, not when the lease runs out
                claimed = await self._take_over(keys=[ROOM_KEY + str(room_id)], args=[stale, value, lease])
            if claimed:
                until = self._clock_ms() + self._ms(self._settings.reserve_seconds)
                await self._redis.zadd(RESERVED_KEY + chosen.id, {f"{room_id}:{expected}": until})
                if chosen.id == self.me.id:
                    self._held[room_id] = value
                return chosen
            current = await self.owner(room_id)
            if current is None:
                raise RegistryUnavailable("the room's owner changed during placement; try again")
            return current.worker
        finally:
            with contextlib.suppress(RedisError):
                await lock.release()

    async def admit(self, room_id: int) -> WorkerView:
        """Before a join here: this worker's own view when it owns (or now takes) the room, else the owner."""
        try:
            if room_id in self._held:
                return self.me
            found = await self.locate(room_id)
            if found.id == self.me.id:
                value = _text(await self._redis.get(ROOM_KEY + str(room_id)))
                if value is not None and parse_owner(value) is not None:
                    self._held[room_id] = value
            return found
        except RedisError as exc:
            raise RegistryUnavailable(str(exc)) from exc

    def available(self, views: Sequence[WorkerView]) -> list[WorkerView]:
        fresh = self._ms(self._settings.worker_ttl_seconds)
        return [w for w in views if is_available(w, now_ms=self._clock_ms(), fresh_ms=fresh)]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(RedisError, OSError):
            for room_id, value in list(self._held.items()):
                await self._release(keys=[ROOM_KEY + str(room_id)], args=[value])
            await self._redis.delete(WORKER_KEY + self.me.id)
        self._held.clear()
        await self._redis.aclose()


def worker_view(settings: WorkerSettings, *, http_port: int, udp: str) -> WorkerView:
    """This worker as it registers at start (no load yet)."""
    assert settings.worker_id is not None
    return WorkerView(
        id=str(settings.worker_id), state=SERVING, beat_ms=0, address=settings.address,
        http_port=http_port, udp=udp, pid=os.getpid(),
    )  # fmt: skip
