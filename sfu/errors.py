"""Exception types of the SFU."""

from __future__ import annotations


class SfuError(Exception):
    """Base class of the SFU's errors."""


class BadRequest(SfuError):
    """The caller's input (SDP, candidate, source map, ids) is invalid; the message names what is wrong."""


class Closed(SfuError):
    """The object (Sfu, Router or Peer) is closed."""


class Unavailable(SfuError):
    """The SFU cannot take this connection now (no free UDP port for media); trying later may work."""


class HookSurfaceChanged(SfuError):
    """The installed aiortc no longer has the private hook points sfu/hooks.py relies on."""
