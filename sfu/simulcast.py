"""Simulcast: the pure per-subscriber layer choice."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LayerInfo:
    width: int  # 0 when unknown
    height: int
    bitrate: int  # bits per second, 0 when unknown


def select_layer(layers: list[LayerInfo], *, max_width: int, max_height: int, bandwidth: int) -> int:
    """Index of the layer a subscriber should get; `layers` go from lowest to highest quality.

    The smallest layer that fills the tile (max_width x max_height, 0 = no limit) is the ceiling; below it,
    the highest layer whose bitrate fits the bandwidth estimate (0 = unknown, no limit). At least layer 0.
    """
    if not layers:
        raise ValueError("no layers")
    ceiling = len(layers) - 1
    if max_width > 0 or max_height > 0:
        for i, layer in enumerate(layers):
            if not layer.width or not layer.height:
                continue
            if layer.width >= max_width and layer.height >= max_height:
                ceiling = i
                break
    if bandwidth <= 0:
        return ceiling
    for i in range(ceiling, 0, -1):
        if layers[i].bitrate <= bandwidth:
            return i
    return 0


def effective_bandwidth(remb: int, fraction_lost: int, current_bitrate: int) -> int:
    """The subscriber's bandwidth estimate: its REMB, lowered under heavy loss (fraction_lost is of 256)."""
    estimate = remb
    if fraction_lost > 25 and current_bitrate:  # about 10 % loss: the current layer is already too much
        lossy = int(current_bitrate * (1 - fraction_lost / 512))
        estimate = min(estimate, lossy) if estimate else lossy
    return estimate
