"""Simulcast: layer order, layer availability and the pure per-subscriber layer choice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# A layer whose packet count has not grown for this long is unavailable: the publisher paused that encoding
# (browsers drop their top layers when their bandwidth estimate falls, and may never start them).
LAYER_TIMEOUT_S = 0.5


@dataclass(frozen=True)
class LayerInfo:
    width: int  # 0 when unknown
    height: int
    bitrate: int  # bits per second, 0 when unknown
    available: bool = True  # receives packets


def layer_order(sizes: Sequence[tuple[int, int]]) -> list[int]:
    """Indices of the layers from the lowest to the highest quality; `sizes` in the negotiated rid order.

    The negotiated order is taken as lowest first (browsers list their encodings that way) unless the decoded
    sizes known so far say it is highest first. Once every size is known, the sizes decide. A missing size
    never makes a layer "lowest": it only means the layer has not been seen yet.
    """
    order = list(range(len(sizes)))
    areas = [w * h for w, h in sizes]
    known = [a for a in areas if a > 0]
    if len(known) == len(areas):
        return sorted(order, key=lambda i: (areas[i], i))
    if len(known) >= 2 and known[0] > known[-1]:
        order.reverse()
    return order


class LayerActivity:
    """Whether a layer still receives packets, sampled from its packet count (no clock read per packet)."""

    __slots__ = ("changed_at", "packets")

    def __init__(self) -> None:
        self.packets = 0
        self.changed_at: float | None = None  # when the count last grew; None: never

    def observe(self, packets: int, now: float) -> None:
        if packets != self.packets:
            self.packets = packets
            self.changed_at = now

    @property
    def seen(self) -> bool:
        """Whether packets were ever observed."""
        return self.changed_at is not None

    def available(self, now: float, timeout: float = LAYER_TIMEOUT_S) -> bool:
        return self.changed_at is not None and now - self.changed_at <= timeout


def select_layer(
    layers: Sequence[LayerInfo],
    *,
    max_width: int,
    max_height: int,
    bandwidth: int,
    current: int | None = None,
) -> int:
    """Index of the layer a subscriber should get; `layers` go from lowest to highest quality.

    Only available layers are candidates. When none is, the `current` layer stays (a publisher sending
    nothing, or a frame a second, is no reason to switch), else every layer is a candidate (before the first
    packets). The smallest candidate that fills the tile (max_width x max_height, 0 = no limit) is the
    ceiling, else the highest candidate; below it, the highest candidate whose bitrate fits the bandwidth
    estimate (0 = unknown, no limit), else the lowest candidate.
    """
    if not layers:
        raise ValueError("no layers")
    candidates = [i for i, x in enumerate(layers) if x.available]
    if not candidates:
        if current is not None:
            return current
        candidates = list(range(len(layers)))
    ceiling = candidates[-1]
    if max_width > 0 or max_height > 0:
        for i in candidates:
            layer = layers[i]
            if layer.width and layer.height and layer.width >= max_width and layer.height >= max_height:
                ceiling = i
                break
    if bandwidth <= 0:
        return ceiling
    fitting = [i for i in candidates if i <= ceiling and layers[i].bitrate <= bandwidth]
    return fitting[-1] if fitting else candidates[0]


# A layer nobody wanted for this long is paused at the publisher; wanted again, it is resumed at once.
PAUSE_AFTER_S = 3.0


class LayerPauser:
    """Which simulcast layers a publisher should send (pure; `now` injected). LiveKit calls it dynacast.

    A layer is wanted when a subscriber forwards it, waits to switch to it, or would choose it if every layer
    were sent (its tile and its bandwidth decide, availability does not: a paused layer sends nothing, so
    "available only" would never ask for it again). The lowest layer is always wanted. A layer unwanted for
    PAUSE_AFTER_S is paused; pausing waits so that a tile resized back and forth does not flap encoders.
    """

    __slots__ = ("_rids", "_since", "_wanted_at", "active")

    def __init__(self, rids: Sequence[str]) -> None:
        self._rids = tuple(rids)
        self.active = frozenset(self._rids)  # the publisher starts with every layer on
        self._wanted_at: dict[str, float] = {}
        self._since: float | None = None

    def update(self, wanted: set[str], now: float) -> frozenset[str] | None:
        """The layers to send from now on when that changed, else None."""
        if self._since is None:
            self._since = now  # nothing is paused before a first full PAUSE_AFTER_S of observation
        for rid in wanted:
            self._wanted_at[rid] = now
        active = frozenset(
            rid for rid in self._rids if now - self._wanted_at.get(rid, self._since) < PAUSE_AFTER_S
        )
        if active == self.active:
            return None
        self.active = active
        return active


def effective_bandwidth(remb: int, fraction_lost: int, current_bitrate: int) -> int:
    """The subscriber's bandwidth estimate: its REMB, lowered under heavy loss (fraction_lost is of 256)."""
    estimate = remb
    if fraction_lost > 25 and current_bitrate:  # about 10 % loss: the current layer is already too much
        lossy = int(current_bitrate * (1 - fraction_lost / 512))
        estimate = min(estimate, lossy) if estimate else lossy
    return estimate


# After the delay-based estimator last backed off, its estimate is what publishers are told for this long.
CONGESTION_HOLD_S = 5.0


class PublisherRemb:
    """The bitrate in the REMB sent to a publisher (pure; `now` injected).

    The receive-side estimator never lets its estimate exceed about 1.5 x the bitrate it currently receives.
    A simulcast publisher enables its next layer only once its own estimate covers that layer's minimum on top
    of the lower layers (q 150 kb/s alone -> q + h needs ~300 kb/s, + f ~1.2 Mb/s), so a REMB that follows
    the received bitrate keeps it on its lowest layer forever. Without transport-cc (aiortc has none) the
    publisher cannot probe either; its own loss-based control (from our receiver reports) ramps up and backs
    off on loss. So the REMB is the ceiling, except after the estimator backed off (delay-based congestion):
    then the estimate, for CONGESTION_HOLD_S.
    """

    __slots__ = ("_ceiling", "_congested_at", "_last")

    def __init__(self, ceiling: int) -> None:
        self._ceiling = ceiling
        self._last = 0
        self._congested_at: float | None = None

    def update(self, estimate: int, now: float) -> int:
        if self._last and estimate < self._last:
            self._congested_at = now
        self._last = estimate
        if self._congested_at is not None and now - self._congested_at < CONGESTION_HOLD_S:
            return min(estimate, self._ceiling)
        return self._ceiling


# A subscriber's estimate at least this many times the bitrate it receives says nothing about the link: a
# receive-side estimator grows to about 1.5 x what it receives and no further, whatever the capacity.
UNINFORMATIVE_RATIO = 1.3
# How long an informative (limiting) estimate keeps holding the layer choice down.
DOWNLINK_HOLD_S = 10.0


class DownlinkEstimate:
    """The bandwidth a subscription's layer choice may use (pure; `now` injected).

    The subscriber's REMB cannot be a ceiling for upgrades: it follows the bitrate we send (see
    UNINFORMATIVE_RATIO), so it would keep a subscriber on the layer it started on. It limits the choice only
    when it is below what that bitrate would give (congestion, or loss via `effective_bandwidth`); that limit
    then holds for DOWNLINK_HOLD_S (or until the estimate rises past it), after which a better layer is tried.
    """

    __slots__ = ("limit", "limited_at")

    def __init__(self) -> None:
        self.limit = 0
        self.limited_at: float | None = None

    def bandwidth(self, estimate: int, current_bitrate: int, now: float) -> int:
        """0: no limit. `current_bitrate` 0: nothing forwarded yet, the estimate is taken as it is."""
        if estimate > 0 and (current_bitrate <= 0 or estimate < current_bitrate * UNINFORMATIVE_RATIO):
            self.limit, self.limited_at = estimate, now
            return estimate
        if estimate > self.limit:
            self.limited_at = None  # the estimate recovered past the limit: the congestion is over
        if self.limited_at is not None and now - self.limited_at < DOWNLINK_HOLD_S:
            return self.limit
        return 0
