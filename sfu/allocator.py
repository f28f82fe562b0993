"""Downlink allocation: a subscriber's one bandwidth estimate split across its videos (pure, `now` injected).

A subscriber's browser sends one REMB for its whole subscribe connection: the bitrate its receive-side
estimator thinks the downlink carries, listing every SSRC. Handing that number to each stream separately (as
the layer choice did) lets five videos each take what only one of them may. Here the estimate is a budget:
audio is paid first (never paused), then the videos in priority order (screen share, the active speaker,
then larger tiles, then the most recent speakers) get their lowest layer while it fits, then the better
layers in the same order. A video that does not fit is paused (nothing forwarded until it fits again, then
from a keyframe), except the first one: a subscriber always sees somebody. Independently of the budget, at
most ``max_videos`` videos are forwarded (``SfuSettings.max_videos_per_subscriber``): a 50-person grid shows
a page, and the cap keeps a client that reports every tile as shown from receiving 49 videos.

Receive-side estimates cannot see spare capacity: they grow to about 1.5 x what is received and no further
(sfu/simulcast.py, UNINFORMATIVE_RATIO), and a browser's first estimates are a start value, not a measure.
So only an estimate under what is being sent limits (the link carries less: congestion, or heavy loss);
above it, the last limit holds, and going up is a *try*: one step (the next layer, or resuming a paused
video) is added, at most every ``interval``; if the subscriber's estimate falls within ``TRY_WINDOW_S`` the
try failed, the allocation goes back down with the estimate, and the interval doubles (up to
``MAX_TRY_INTERVAL_S``); a try that holds resets it. The SFU sends no padding probes (it runs no send-side
estimator towards subscribers: they do not offer transport-cc feedback to it), so a try with real media is
the probe.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sfu.simulcast import select_layer

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from sfu.subscription import Subscription
    from sfu.track import LayerView

# Priority tiers (lower first): what a subscriber can least do without.
TIER_SCREEN, TIER_SPEAKER, TIER_OTHER = 0, 1, 2

# Bitrate assumed for a layer not measured yet, by height (a VP8 camera at 30 fps; bits per second).
NOMINAL_BITRATES = ((180, 150_000), (360, 500_000), (720, 1_500_000))
NOMINAL_TOP = 2_500_000
# An Opus microphone not measured yet.
AUDIO_BITRATE = 40_000

# A tile with no size reported (a client that never says) counts as the largest.
UNSIZED_AREA = 1 << 40

# A try (one step up) at most this often; doubled on each failed try, up to the maximum.
TRY_INTERVAL_S = 2.0
MAX_TRY_INTERVAL_S = 32.0
# A limiting estimate this soon after a try means the try failed.
TRY_WINDOW_S = 2.0
# An estimate under this share of what is sent is a shortfall; nearer, it is an estimator's noise around
# what arrives (a limit there would hold every upgrade off for good).
CONGESTED_SHARE = 0.85
# Heavy loss this long lets the allocation pause videos.
PAUSE_AFTER_S = 2.0
# A try failed when the subscriber's estimate fell under this share of what it was when the try began.
TRY_FALL = 0.9
# Heavy loss (fraction_lost of 256, about 10 %) lowers the estimate to what is sent, less the loss.
LOSS_LIMIT = 25


def nominal_bitrate(height: int) -> int:
    """The bitrate assumed for a layer of `height` pixels whose bitrate is not measured yet."""
    for top, bitrate in NOMINAL_BITRATES:
        if height <= top:
            return bitrate
    return NOMINAL_TOP


@dataclass(frozen=True, slots=True)
class Demand:
    """One stream a subscriber wishes to get.

    `costs`: the bitrate of each layer it may get, lowest first, up to the one that fills its tile (one
    entry for a stream without simulcast). `area`: the tile's size in pixels (UNSIZED_AREA when not
    reported). `recency`: when its participant was last the active speaker (larger is more recent; -inf
    never). `order`: a stable tie-break (the order subscriptions were made), so equal streams do not flap.
    """

    kind: str  # "audio" | "video"
    costs: tuple[int, ...]
    tier: int = TIER_OTHER
    area: int = UNSIZED_AREA
    recency: float = float("-inf")
    order: int = 0


@dataclass(frozen=True, slots=True)
class Allocation:
    """Per demand (same order): the layer index into its costs, or None when paused.

    `total`: the bitrate allocated. `next_step`: how much more the next upgrade would cost (the highest
    priority stream not at its top, or the first paused one); 0 when nothing could go up.
    """

    layers: tuple[int | None, ...]
    total: int
    next_step: int


def priority(demand: Demand) -> tuple[int, int, float, int]:
    return (demand.tier, -demand.area, -demand.recency, demand.order)


def allocate(
    demands: Sequence[Demand], budget: int, *, max_videos: int = 0, pause: bool = True
) -> Allocation:
    """Split `budget` (bits per second; 0: no limit) across `demands`; `max_videos` 0: no cap. `pause`
    False: the budget chooses layers only, every video within the cap keeps at least its lowest."""
    layers: list[int | None] = [None] * len(demands)
    total = 0
    videos: list[int] = []
    for i, demand in enumerate(demands):
        if not demand.costs:
            continue
        if demand.kind == "video":
            videos.append(i)
        else:  # audio is never paused
            layers[i] = len(demand.costs) - 1 if budget <= 0 else 0
            total += demand.costs[layers[i]]  # type: ignore[index]
    videos.sort(key=lambda i: priority(demands[i]))
    eligible = videos[:max_videos] if max_videos > 0 else videos
    if budget <= 0:
        for i in eligible:
            layers[i] = len(demands[i].costs) - 1
            total += demands[i].costs[-1]
        return Allocation(tuple(layers), total, 0)
    next_step = 0
    # Lowest layers first, in priority order, until one does not fit (the first always gets its own).
    for rank, i in enumerate(eligible):
        cost = demands[i].costs[0]
        if rank and pause and total + cost > budget:
            next_step = cost
            break
        layers[i] = 0
        total += cost
    # Then better layers, in the same order: each as high as what is left allows.
    for i in eligible:
        index = layers[i]
        if index is None:
            break
        costs = demands[i].costs
        while index + 1 < len(costs) and total + costs[index + 1] - costs[index] <= budget:
            total += costs[index + 1] - costs[index]
            index += 1
        if index + 1 < len(costs) and not next_step:
            next_step = costs[index + 1] - costs[index]
        layers[i] = index
    return Allocation(tuple(layers), total, next_step)


class DownlinkBudget:
    """The budget `allocate` gets for one subscriber: its estimate when that limits, else a bounded try.

    State per subscribe connection; every call gets `now`. `sent`: the bitrate of what is being forwarded
    or switched to; `next_step`: the last allocation's next upgrade.
    """

    __slots__ = (
        "_lossy_since",
        "_tried_at",
        "_try_estimate",
        "failed_tries",
        "interval",
        "level",
        "limited_at",
        "pausing",
        "tries",
    )

    def __init__(self) -> None:
        self.level = 0  # the budget granted; 0: no limit (no estimate ever limited)
        self.limited_at = 0.0
        self.interval = TRY_INTERVAL_S
        self._tried_at: float | None = None
        self._try_estimate = 0
        self.tries = 0
        self.failed_tries = 0
        # Whether videos may be paused: after PAUSE_AFTER_S of heavy loss reported by the subscriber, until
        # tries brought everything back. A low estimate alone only chooses lower layers: receive-side
        # estimates start low and are noisy (aiortc's swing between a third and all of what arrives), and
        # a video stopped for noise is worse than one at its lowest layer.
        self.pausing = False
        self._lossy_since: float | None = None

    def budget(self, estimate: int, fraction_lost: int, sent: int, next_step: int, now: float) -> int:
        """0: no limit."""
        lossy = fraction_lost > LOSS_LIMIT and sent > 0
        if lossy:
            lossy_estimate = int(sent * (1 - fraction_lost / 512))
            estimate = min(estimate, lossy_estimate) if estimate else lossy_estimate
        if not lossy:
            self._lossy_since = None
        elif self._lossy_since is None:
            self._lossy_since = now
        elif now - self._lossy_since >= PAUSE_AFTER_S:
            self.pausing = True
        if estimate <= 0:
            return self.level
        congested = lossy or estimate < sent * CONGESTED_SHARE
        if self._tried_at is not None:
            if now - self._tried_at < TRY_WINDOW_S:
                if lossy or estimate < self._try_estimate * TRY_FALL:
                    # The subscriber's estimator backed off: the step was too much. Back to what it says,
                    # and wait longer before the next try.
                    self.failed_tries += 1
                    self.interval = min(self.interval * 2, MAX_TRY_INTERVAL_S)
                    self._tried_at = None
                    self.level, self.limited_at = estimate, now
                return self.level  # the estimate follows what arrives: give the step time to show
            self._tried_at = None
            self.interval = TRY_INTERVAL_S  # the last try held
        if congested:
            self.level, self.limited_at = estimate, now
            return estimate
        if not next_step:
            self.pausing = False  # everything is back at its best: the congestion is over
        if not self.level:
            return 0  # never limited: nothing to try against
        if next_step and now - self.limited_at >= self.interval:
            self._tried_at, self._try_estimate = now, estimate
            self.level = max(self.level, sent) + next_step
            self.limited_at = now
            self.tries += 1
        return self.level


@dataclass(frozen=True, slots=True)
class Ranking:
    """What the router knows about who matters: the active speaker and when each participant last was."""

    speaker: str | None = None
    spoke_at: Mapping[str, float] = field(default_factory=dict)


# A video being forwarded counts as having spoken this much later than it did: two people taking turns at
# the cap's edge do not swap places (and cost a keyframe) at every allocation.
FORWARDED_BONUS_S = 3.0

# A subscriber's allocation is redone at least this often (its estimate, the layers' bitrates, speakers).
ALLOCATE_INTERVAL_S = 0.5


class SubscriberAllocator:
    """Applies `allocate` to one subscribe connection's subscriptions: pauses what it cannot afford (or what
    the cap leaves out) and gives each simulcast video its share as the bandwidth its layer choice may use.

    Owned by the SubscribeConnection; the router calls `run` every tick (it runs when due or asked), the
    connection calls `request` when the subscriber's estimate, a tile or a switch changed.
    """

    def __init__(self, max_videos: int) -> None:
        self.max_videos = max_videos
        self.estimate = 0  # the subscriber's REMB: one number for the whole connection
        self.budget = DownlinkBudget()
        self.ranking = Ranking()
        self.allocation = Allocation((), 0, 0)
        self._due = 0.0
        self.runs = 0

    def request(self) -> None:
        self._due = 0.0

    def admit(self, subscription: Subscription, subscriptions: Sequence[Subscription]) -> None:
        """A subscription was (re)configured: over the cap, a new video waits paused for the next run
        (within a tick) rather than forwarding until then; the next run places it either way."""
        self.request()
        if not subscription.video or subscription.paused or self.max_videos <= 0:
            return
        forwarded = sum(1 for s in subscriptions if s.video and s.track is not None and not s.paused)
        if forwarded > self.max_videos:
            subscription.paused = True
            subscription.source_changed()

    def run(
        self,
        subscriptions: Sequence[Subscription],
        now: float,
        ranking: Ranking | None = None,
        views: dict[str, LayerView] | None = None,
        *,
        force: bool = False,
    ) -> None:
        if ranking is not None and ranking.speaker != self.ranking.speaker:
            force = True
        if ranking is not None:
            self.ranking = ranking
        if not force and now < self._due:
            return
        self._due = now + ALLOCATE_INTERVAL_S
        self.runs += 1
        views = {} if views is None else views
        chosen: list[Subscription] = []
        demands: list[Demand] = []
        lost = sent = 0
        for order, subscription in enumerate(subscriptions):
            demand = self._demand(subscription, order, now, views)
            if demand is None:
                subscription.paused = False
                continue
            if not subscription.video:
                continue  # never paused, and outside the estimate: REMB measures the video (abs-send-time)
            chosen.append(subscription)
            demands.append(demand)
            lost = max(lost, subscription.fraction_lost)
            layer = subscription.current or subscription.target
            if layer is not None:
                sent += layer.bitrate or nominal_bitrate(layer.height)
        budget = self.budget.budget(self.estimate, lost, sent, self.allocation.next_step, now)
        self.allocation = allocate(demands, budget, max_videos=self.max_videos, pause=self.budget.pausing)
        for subscription, demand, index in zip(chosen, demands, self.allocation.layers, strict=True):
            if not subscription.video:
                continue
            paused = index is None
            subscription.allowance = 0 if index is None or budget <= 0 else demand.costs[index]
            if paused != subscription.paused:
                log.debug(
                    "%s %s: budget %d (estimate %d, lost %d/256, congested %s)",
                    "pause" if paused else "resume",
                    subscription.track.id if subscription.track else "-",
                    budget,
                    self.estimate,
                    lost,
                    self.budget.pausing,
                )
                subscription.paused = paused
                subscription.source_changed()
            else:
                subscription.reselect_layer(
                    now, views.get(subscription.track.id) if subscription.track else None
                )

    def _demand(
        self, subscription: Subscription, order: int, now: float, views: dict[str, LayerView]
    ) -> Demand | None:
        track = subscription.track
        if track is None or subscription.params is None or not subscription.enabled or not track.forwarding:
            return None
        if not subscription.video:
            if not track.selected:
                return None
            layer = next(iter(track.layers.values()))
            return Demand("audio", (layer.bitrate or AUDIO_BITRATE,), order=order)
        if subscription.hidden:
            return None
        width, height = subscription.max_width, subscription.max_height
        view = views.get(track.id)
        if view is None:
            view = views[track.id] = track.layer_view(now)
        infos = view.available
        candidates = [i for i, x in enumerate(infos) if x.available] or list(range(len(infos)))
        current = subscription.current
        stay = view.layers.index(current) if current in view.layers and current.activity.seen else None
        ceiling = select_layer(infos, max_width=width, max_height=height, bandwidth=0, current=stay)
        costs: list[int] = []
        for i in candidates if ceiling in candidates else [ceiling]:
            if i <= ceiling:
                info = infos[i]
                cost = info.bitrate or nominal_bitrate(info.height)
                costs.append(max(cost, costs[-1]) if costs else cost)
        ranking = self.ranking
        if track.source == "screen":
            tier = TIER_SCREEN
        elif track.participant_id == ranking.speaker:
            tier = TIER_SPEAKER
        else:
            tier = TIER_OTHER
        return Demand(
            "video",
            tuple(costs),
            tier=tier,
            area=width * height if width and height else UNSIZED_AREA,
            recency=ranking.spoke_at.get(track.participant_id, float("-inf"))
            + (
                FORWARDED_BONUS_S
                if subscription.current is not None or subscription.target is not None
                else 0
            ),
            order=order,
        )
