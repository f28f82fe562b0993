"""Types of sfu/_fanout.c and sfu/_route.c (see sfu/fanout.py)."""

from collections.abc import Callable
from typing import Any

class Route:
    sent: int
    dropped: int
    errors: int
    routed: bool
    def __init__(self, refresh: Callable[[], bool | None]) -> None: ...
    def set(
        self,
        *,
        dtls: Any,
        nominated: dict[int, Any],
        connected: Any,
        pair: Any,
        session: Any,
        srtp: int,
        fd: int,
        host: str,
        port: int,
    ) -> None: ...
    def clear(self) -> None: ...
    def send(self, data: bytes) -> bool | None: ...
    def close(self) -> None: ...

class SubscriptionBase:
    current: Any
    target: Any
    route: Route | None
    pt_table: bytes
    ext_head: bytes
    ext_tail: bytes
    ext_bare: bytes
    ext_value_len: int
    switch_seq: int
    seq_offset: int
    last_seq: int
    pid_offset: int
    tl0_offset: int
    last_pid: int
    last_tl0: int
    ts_offset: int
    last_ts: int
    ssrc: int
    last_sent_at: float
    packets: int
    octets: int
    video: bool
    vp8_resync: bool

def fan_out(
    subscriptions: tuple[Any, ...], layer: Any, data: bytes, h: Any, value: bytes | None
) -> list[Any] | None: ...
def set_protect(address: int) -> None: ...
def counters() -> dict[str, int]: ...
