"""SfuCollector: the SFU's per-process counters (sfu/metrics.py) and its peers by state, for /metrics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from sfu.metrics import METRICS, SfuMetrics
from sfu.sfu import Sfu

PREFIX = "yunhui_sfu_"
HELP = {
    "forwarded_packets": "RTP copies sent to subscribers",
    "forwarded_bytes": "bytes of RTP copies sent to subscribers (before SRTP)",
    "dropped_copies": "copies for subscribers not sent, by reason",
    "nacks_received": "RTCP NACK packets received from subscribers",
    "nack_seqs_requested": "sequence numbers subscribers asked for again",
    "retransmissions": "retransmissions sent to subscribers",
    "retransmissions_suppressed": "NACKed packets not resent (capped, resent within an RTT, or gone)",
    "nacks_sent": "RTCP NACK packets sent to publishers",
    "transport_feedback_sent": "RTCP transport-cc feedback packets sent to publishers",
    "keyframe_requests_sent": "keyframe requests (PLI/FIR) sent to publishers",
    "keyframe_requests_refused": "subscribers' keyframe requests refused by their budget",
    "keyframe_waits": "packets held back until a keyframe (attach or layer switch)",
    "hook_errors": "exceptions caught in the SFU's hooks into aiortc",
    "runt_datagrams": "datagrams on media sockets too short to be RTP, RTCP, STUN or DTLS",
    "candidates_dropped": "trickled ICE candidates dropped (over the cap or not routable)",
    "media_failed": "participants that left because their media stayed dead",
    "publisher_bounds_refused": "publisher requests refused by a bound, by bound",
}


class SfuCollector(Collector):
    """Read at every scrape: the counters are plain integers bumped on the media path."""

    def __init__(self, sfu: Sfu, metrics: SfuMetrics = METRICS) -> None:
        self._sfu = sfu
        self._metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        families: dict[str, CounterMetricFamily] = {}
        for name, labels, value in self._metrics.samples():
            family = families.get(name)
            if family is None:
                family = families[name] = CounterMetricFamily(
                    PREFIX + name, HELP.get(name, name), labels=sorted(labels)
                )
            family.add_metric([labels[k] for k in sorted(labels)], value)
        yield from families.values()
        peers = GaugeMetricFamily(
            PREFIX + "peer_connections", "the SFU's PeerConnections by connectionState", labels=["state"]
        )
        for state, count in sorted(self.peer_states().items()):
            peers.add_metric([state], count)
        yield peers

    def peer_states(self) -> Counter[str]:
        states: Counter[str] = Counter()
        for router in self._sfu.routers.values():
            for peer in router.peers.values():
                for connection in (peer.publish_connection, peer.subscribe_connection):
                    if connection is not None:
                        states[connection.pc.connectionState] += 1
        return states
