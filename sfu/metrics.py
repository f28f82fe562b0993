"""SfuMetrics: the SFU's per-process counters, read by /metrics (yunhui/app.py turns them into Prometheus).

Plain integers bumped where things happen, never a log line per packet: the hot path adds one to an
attribute, and the C copy loop keeps its own counters (``sfu._fanout.counters()``), added at read time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable


# Why a copy for a subscriber was not sent.
DROP_REASONS = ("eagain", "not_connected", "guard", "error")


@dataclass
class SfuMetrics:
    """Counters since the process started (monotonic; Prometheus computes the rates)."""

    # Copies sent to subscribers by the Python path (the C loop's are in sfu._fanout.counters()).
    forwarded_packets: int = 0
    forwarded_bytes: int = 0
    dropped: Counter[str] = field(default_factory=Counter)  # reason (DROP_REASONS) -> copies
    # Subscribers' NACKs: RTCP NACK packets, sequence numbers asked for, answered, and not answered
    # (capped, resent within one RTT, or no longer in the ring).
    nacks_received: int = 0
    nack_seqs_requested: int = 0
    retransmissions: int = 0
    retransmissions_suppressed: int = 0
    # Towards publishers: NACK packets sent, keyframe requests (PLI/FIR) sent and refused by a budget.
    nacks_sent: int = 0
    # RTCP transport-cc feedback packets sent to publishers (sfu/twcc.py).
    transport_feedback_sent: int = 0
    keyframe_requests_sent: int = 0
    keyframe_requests_refused: int = 0
    # Packets of a layer held back until its keyframe (a switch or attach waiting).
    keyframe_waits: int = 0
    # Exceptions caught in a hook (each one is logged once with its traceback, then counted).
    hook_errors: int = 0
    # Datagrams on a media socket too short to be RTP, RTCP, STUN or DTLS.
    runt_datagrams: int = 0
    # Publishers refused for exceeding a bound (tracks per participant, SSRCs per connection), by bound.
    publisher_bounds: Counter[str] = field(default_factory=Counter)
    # Trickled ICE candidates dropped (over the cap, or a loopback/link-local/unspecified address).
    candidates_dropped: int = 0
    # Peers that left because their media stayed dead (reason media_failed).
    media_failed: int = 0

    def samples(self) -> Iterable[tuple[str, dict[str, str], int]]:
        """(name, labels, value) of every counter, the C loop's included."""
        native = _native_counters()
        yield "forwarded_packets", {}, self.forwarded_packets + native.get("forwarded_packets", 0)
        yield "forwarded_bytes", {}, self.forwarded_bytes + native.get("forwarded_bytes", 0)
        for reason in DROP_REASONS:
            yield (
                "dropped_copies",
                {"reason": reason},
                self.dropped[reason] + native.get(f"dropped_{reason}", 0),
            )
        for name in (
            "nacks_received",
            "nack_seqs_requested",
            "retransmissions",
            "retransmissions_suppressed",
            "nacks_sent",
            "transport_feedback_sent",
            "keyframe_requests_sent",
            "keyframe_requests_refused",
            "keyframe_waits",
            "hook_errors",
            "runt_datagrams",
            "candidates_dropped",
            "media_failed",
        ):
            yield name, {}, getattr(self, name)
        for bound, value in sorted(self.publisher_bounds.items()):
            yield "publisher_bounds_refused", {"bound": bound}, value


def _native_counters() -> dict[str, int]:
    from sfu import fanout  # late: fanout imports pylibsrtp, which metrics readers need not load first

    return fanout.native_counters()


METRICS = SfuMetrics()
"""The process's counters: one SFU per process (sfu/sfu.py), so one set of counters."""
