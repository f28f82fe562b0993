"""Switcher: which source is on air — the primary, or the hot standby when the primary fell silent (pure).

Prefer-primary (Google Live Stream's FailoverPreferPrimary, Tencent's 主备流; research/recording.md §3.7): the
standby goes on air when the primary sent no video for ``standby_after_s``, and the primary takes over again
once it has sent video without a stall for ``standby_hold_s``. The console's manual override pins either one.
Times are the channel's clock, passed in (``now``); nothing here reads a clock.
"""

from __future__ import annotations

from typing import Literal

Role = Literal["primary", "standby", "none"]
Override = Literal["on", "off", "auto"]


class Switcher:
    """The on-air decision. ``video(role, now)`` for every video frame a source delivers; ``decide(now)``."""

    # A pause between two primary frames longer than this starts its healthy time over.
    STALL = 1.0

    def __init__(self, standby_after: float, hold: float, now: float) -> None:
        self.standby_after = standby_after
        self.hold = hold
        self.override: Override = "auto"
        self.on_air: Role = "none"
        self.has_primary = False
        self.has_standby = False
        self._primary_set_at = now
        self._primary_last: float | None = None
        self._healthy_since: float | None = None
        self.switches = 0

    def primary_changed(self, present: bool, now: float) -> None:
        """A new primary source (or none): it gets standby_after_s to send its first frame."""
        self.has_primary = present
        self._primary_set_at = now
        self._primary_last = None
        self._healthy_since = None

    def standby_changed(self, present: bool) -> None:
        self.has_standby = present

    def video(self, role: Role, now: float) -> None:
        if role != "primary":
            return
        last = self._primary_last
        if last is None or now - last > self.STALL:
            self._healthy_since = now
        self._primary_last = max(now, last) if last is not None else now

    def primary_silent_for(self, now: float) -> float:
        return now - (self._primary_last if self._primary_last is not None else self._primary_set_at)

    def decide(self, now: float) -> Role:
        """The role that should be on air at `now` (and remember it)."""
        wanted = self._wanted(now)
        if wanted != self.on_air:
            self.on_air = wanted
            self.switches += 1
        return wanted

    def _wanted(self, now: float) -> Role:
        if self.override == "on" and self.has_standby:
            return "standby"
        if self.override == "off" and self.has_primary:
            return "primary"
        if not self.has_primary:
            return "standby" if self.has_standby else "none"
        if not self.has_standby:
            return "primary"
        silent = self.primary_silent_for(now) >= self.standby_after
        if self.on_air == "standby":
            healthy = (
                not silent
                and self._healthy_since is not None
                and self.primary_silent_for(now) < self.STALL
                and now - self._healthy_since >= self.hold
            )
            return "primary" if healthy else "standby"
        return "standby" if silent else "primary"
