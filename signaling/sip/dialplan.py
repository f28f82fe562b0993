"""The dial plan: what a room terminal dialled (the Request-URI's user part) decides where the call goes.

Routing is on the Request-URI, never on To: proxies and call managers retarget the request and leave To as
the user typed it. Pure functions; the call layer (signaling/sip/call.py) acts on the result.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import unquote

__all__ = ["Destination", "Direct", "Lobby", "route"]

# Meeting numbers are digits (rooms/numbers.py); passcodes typed on a remote are digits too, but a room's
# passcode may hold letters, and a terminal with a keyboard can send them.
_MEETING = r"[0-9]{1,20}"
_PASSCODE = r"[0-9A-Za-z]{1,20}"
# `.` is what the vendors' address books accept; `**` is what Zoom and Webex taught (the `*` keys).
_DIRECT = re.compile(rf"(?P<meeting>{_MEETING})(?:\.|\*\*)(?P<passcode>{_PASSCODE})")
_MEETING_ONLY = re.compile(_MEETING)
# Keypad noise some dial strings carry: a trailing `#` (typed as "end of number") and spaces/dashes copied
# from an invitation ("123 456 789").
_NOISE = re.compile(r"[\s\-]+")


@dataclass(frozen=True, slots=True)
class Direct:
    """Join ``meeting_number``; ``passcode`` None: ask for it (by the IVR) if the room has one."""

    meeting_number: str
    passcode: str | None = None


@dataclass(frozen=True, slots=True)
class Lobby:
    """Nothing usable was dialled: the IVR asks for the meeting number."""


Destination = Direct | Lobby


def route(request_user: str | None) -> Destination:
    """The destination of a call to ``request_user`` (the user part of the Request-URI, percent-encoded or
    not; None or "" when the URI had none, e.g. ``sip:203.0.113.5``)."""
    user = unquote(request_user or "").strip()
    user = _NOISE.sub("", user).removesuffix("#")
    if not user or user == "0" or _is_address(user):
        return Lobby()
    if _MEETING_ONLY.fullmatch(user):
        return Direct(user)
    match = _DIRECT.fullmatch(user)
    if match is not None:
        return Direct(match["meeting"], match["passcode"])
    # Anything else (a name, "conference", a malformed string) is not an error at this point: the caller
    # is a room system with a remote, and the lobby lets the person in front of it type the number.
    return Lobby()


def _is_address(user: str) -> bool:
    try:
        ipaddress.ip_address(user.strip("[]"))
    except ValueError:
        return False
    return True
