"""SignalingCollector: the live-meeting plane's counters (signaling/metrics.py), for /metrics."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from signaling.metrics import SIGNALING_METRICS, SignalingMetrics

PREFIX = "yunhui_signaling_"
HELP = {
    "malformed_packets": "Socket.IO packets from clients that did not decode or that the protocol never uses",
    "rate_limited_events": "client events refused as rate_limited, by event",
    "slow_clients": "clients disconnected as slow_client (too much queued that they did not read)",
}


class SignalingCollector(Collector):
    """Read at every scrape: the counters are plain integers bumped where a client is refused."""

    def __init__(self, metrics: SignalingMetrics = SIGNALING_METRICS) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily]:
        families: dict[str, CounterMetricFamily] = {}
        for name, labels, value in self._metrics.samples():
            family = families.get(name)
            if family is None:
                family = families[name] = CounterMetricFamily(
                    PREFIX + name, HELP.get(name, name), labels=sorted(labels)
                )
            family.add_metric([labels[k] for k in sorted(labels)], value)
        yield from families.values()
