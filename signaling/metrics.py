"""SignalingMetrics: the live-meeting plane's per-process counters, read by /metrics (yunhui/app.py).

Plain integers bumped where a hostile or broken client is refused, never a log line per event: a flood of
malformed frames or rate-limited events is one WARNING per client and a counter here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class SignalingMetrics:
    """Counters since the process started (monotonic; Prometheus computes the rates)."""

    # Socket.IO packets that did not decode, or that the meeting protocol never uses (binary, CONNECT_ERROR).
    malformed_packets: int = 0
    # Client events refused as rate_limited, by event name.
    rate_limited: Counter[str] = field(default_factory=Counter)
    # Clients disconnected as too slow (slow_client): too much queued for them that they did not read.
    slow_clients: int = 0

    def samples(self) -> Iterable[tuple[str, dict[str, str], int]]:
        """(name, labels, value) of every counter."""
        yield "malformed_packets", {}, self.malformed_packets
        for event, count in sorted(self.rate_limited.items()):
            yield "rate_limited_events", {"event": event}, count
        yield "slow_clients", {}, self.slow_clients


SIGNALING_METRICS = SignalingMetrics()
