"""MonitorCollector: the health monitor's state for /metrics (each check's status and last success, each
scope's open outage)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from yunhui.monitor import Monitor

PREFIX = "yunhui_monitor_"


class MonitorCollector(Collector):
    def __init__(self, monitor: Monitor) -> None:
        self._monitor = monitor

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        monitor = self._monitor
        up = GaugeMetricFamily(
            PREFIX + "check_up", "1 if the check passed in the last round", labels=["check"]
        )
        seconds = GaugeMetricFamily(
            PREFIX + "check_seconds", "how long the check took last", labels=["check"]
        )
        success = GaugeMetricFamily(
            PREFIX + "check_last_success_timestamp_seconds", "when the check last passed", labels=["check"]
        )
        for name in monitor.checks:
            result = monitor.results.get(name)
            if result is not None:
                up.add_metric([name], 1.0 if result.ok else 0.0)
                seconds.add_metric([name], result.seconds)
            last = monitor.last_success.get(name)
            if last is not None:
                success.add_metric([name], last.timestamp())
        yield up
        yield seconds
        yield success
        outage = GaugeMetricFamily(
            PREFIX + "outage_open", "1 while the scope has an open outage", labels=["scope"]
        )
        since = GaugeMetricFamily(
            PREFIX + "outage_start_timestamp_seconds", "when the scope's open outage began", labels=["scope"]
        )
        for scope, track in sorted(monitor.tracks.items()):
            outage.add_metric([scope.value], 1.0 if track.open else 0.0)
            if track.open and track.start is not None:
                since.add_metric([scope.value], track.start.timestamp())
        yield outage
        yield since
        rounds = CounterMetricFamily(PREFIX + "rounds", "check rounds run")
        rounds.add_metric([], monitor.rounds)
        yield rounds
        pending = GaugeMetricFamily(PREFIX + "pending_writes", "outage writes waiting for the database")
        pending.add_metric([], monitor.pending_writes)
        yield pending
