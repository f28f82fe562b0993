"""Where a meeting goes: pure functions over the registry's view of the workers (no I/O, no clock)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SERVING = "serving"
DRAINING = "draining"


@dataclass(frozen=True, slots=True)
class WorkerView:
    """One worker as its registry key shows it (``yh:worker:{id}``)."""

    id: str
    state: str
    beat_ms: int  # the heartbeat that wrote this view, milliseconds since the epoch
    address: str = "127.0.0.1"
    http_port: int = 0
    udp: str = ""
    meetings: int = 0
    participants: int = 0
    reserved: int = 0  # participants expected in rooms placed here recently and not yet joined
    pid: int = 0

    @property
    def load(self) -> int:
        return self.participants + self.reserved

    def as_fields(self) -> dict[str, str]:
        return {
            "state": self.state, "beat_ms": str(self.beat_ms), "address": self.address,
            "http_port": str(self.http_port), "udp": self.udp, "meetings": str(self.meetings),
            "participants": str(self.participants), "pid": str(self.pid),
        }  # fmt: skip

    @classmethod
    def of(cls, worker_id: str, fields: Mapping[str, str], reserved: int = 0) -> WorkerView:
        """From the hash; a field missing or garbled (an older or newer worker) reads as zero."""

        def number(name: str) -> int:
            try:
                return int(fields.get(name, "0"))
            except ValueError:
                return 0

        return cls(
            id=worker_id,
            state=fields.get("state", DRAINING),
            beat_ms=number("beat_ms"),
            address=fields.get("address", "127.0.0.1"),
            http_port=number("http_port"),
            udp=fields.get("udp", ""),
            meetings=number("meetings"),
            participants=number("participants"),
            reserved=reserved,
            pid=number("pid"),
        )


def is_available(worker: WorkerView, *, now_ms: int, fresh_ms: int) -> bool:
    """Takes new meetings: serving, with a heartbeat no older than ``fresh_ms``."""
    return worker.state == SERVING and 0 <= now_ms - worker.beat_ms <= fresh_ms


def choose_worker(
    workers: Sequence[WorkerView], *, now_ms: int, fresh_ms: int, rng: random.Random | None = None
) -> WorkerView | None:
    """The worker a new meeting goes to: the lighter of two available workers drawn at random (the power of
    two choices: near the least loaded, without every locator herding onto the same one); None when no
    worker is available. Draining and stale workers are never chosen."""
    available = [w for w in workers if is_available(w, now_ms=now_ms, fresh_ms=fresh_ms)]
    if len(available) <= 1:
        return available[0] if available else None
    first, second = (rng or random).sample(available, 2)
    return second if second.load < first.load else first


def owner_value(worker_id: str, epoch: int) -> str:
    """A lease's value: the owner and the fencing token (a cluster-wide counter, higher is newer)."""
    return f"{worker_id}:{epoch}"


def parse_owner(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    worker_id, _, epoch = value.rpartition(":")
    try:
        return (worker_id, int(epoch)) if worker_id else None
    except ValueError:
        return None
