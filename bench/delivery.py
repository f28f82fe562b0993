"""What each subscriber of one measuring window received against what the publishers sent it.

Loss is *expected minus received*, per subscriber: expected is the publishers' own sent count (aiortc's
``packetsSent``, retransmissions excluded) over the window for every stream that subscriber takes, received is
what its probe counted. It cannot come from sequence gaps alone: an SFU rewrites each subscriber's numbering
to stay contiguous, so a packet it never forwards leaves no gap. Gaps are still counted, because a gap in that
rewritten numbering is a packet lost after the SFU (on the subscriber's socket).

The publishers' and the subscribers' counters are read a few milliseconds apart, and a keyframe leaves the
publisher as one burst of dozens of packets, so a window's counts can differ by a burst either way without a
packet being lost; ``LOSS_TOLERANCE`` absorbs that, and any single dropped packet after the SFU is a gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LOSS_TOLERANCE = 0.01  # of a subscriber's expected packets; see the module docstring


@dataclass(frozen=True)
class Delivery:
    """Per subscriber in join order, over the window: packets received, packets expected, sequence gaps."""

    received: tuple[int, ...]
    expected: tuple[int, ...]
    gaps: tuple[int, ...]

    def __post_init__(self) -> None:
        if not len(self.received) == len(self.expected) == len(self.gaps):
            raise ValueError("delivery: one received, expected and gaps count per subscriber")

    @classmethod
    def of_window(cls, first: dict[str, Any], last: dict[str, Any]) -> Delivery:
        """From two snapshots, each with ``sent`` (per publisher), ``packets`` and ``gaps`` (per subscriber).

        Every subscriber of the bench's scenarios takes every stream of every publisher.
        """
        sent = sum(b - a for a, b in zip(first["sent"], last["sent"], strict=True))
        received = tuple(b - a for a, b in zip(first["packets"], last["packets"], strict=True))
        gaps = tuple(b - a for a, b in zip(first["gaps"], last["gaps"], strict=True))
        return cls(received, (sent,) * len(received), gaps)

    @property
    def lost(self) -> tuple[int, ...]:
        # More than expected (a duplicate, a padding packet) does not offset another subscriber's loss.
        return tuple(max(0, e - r) for r, e in zip(self.received, self.expected, strict=True))

    @property
    def ratios(self) -> tuple[float | None, ...]:
        """received ÷ expected per subscriber (None when nothing was expected)."""
        return tuple(r / e if e else None for r, e in zip(self.received, self.expected, strict=True))

    def problems(self, tolerance: float = LOSS_TOLERANCE) -> list[str]:
        """Why this delivery is not loss-free, one sentence per kind of loss, naming the worst subscriber."""
        out = []
        lossy = [
            (lost / expected, k)
            for k, (lost, expected) in enumerate(zip(self.lost, self.expected, strict=True))
            if expected and lost > tolerance * expected
        ]
        if lossy:
            share, k = max(lossy, key=lambda x: (x[0], -x[1]))  # the worst, the first to join on a tie
            out.append(
                f"loss {100 * share:.1f}% > {100 * tolerance:g}% at subscriber {k + 1} "
                f"({self.received[k]:,} of {self.expected[k]:,} packets)"
                + (f" and {len(lossy) - 1} more of {len(self.expected)}" if len(lossy) > 1 else "")
            )
        gapped = [(gaps, k) for k, gaps in enumerate(self.gaps) if gaps]
        if gapped:
            gaps, k = max(gapped, key=lambda x: (x[0], -x[1]))
            out.append(
                f"{gaps:,} packets missing from the output numbering at subscriber {k + 1}"
                + (f" and {len(gapped) - 1} more" if len(gapped) > 1 else "")
            )
        return out
