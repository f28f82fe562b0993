"""fan_out: one input packet to every Subscription of its Track, in C when sfu._fanout is built.

Per forwarded packet the Python path spent ~20 µs of user CPU against Janus's ~11 µs: a function call per
copy, the header rewrite, pylibsrtp's wrapper and asyncio's ``sendto``. sfu/_fanout.c does exactly the
steady-state copy (a subscription already forwarding the packet's layer) in one C loop per input packet,
building each copy in a per-connection buffer, protecting it there with the connection's own libsrtp session
and sending it with one ``sendto``; everything else (switching layers on a keyframe, keyframe requests,
NACKs, RTCP) stays in Python, which hands back to it through the subscriptions ``fan_out`` returns.

Without a C compiler at install time the module is missing and the pure-Python loop below runs instead:
the same packets, more CPU. ``NATIVE`` says which one this process uses (``Sfu`` logs it at start).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pylibsrtp._binding import ffi as _ffi
from pylibsrtp._binding import lib as _lib

from sfu.errors import HookSurfaceChanged

__all__ = [
    "NATIVE",
    "PythonSubscriptionBase",
    "Route",
    "SubscriptionBase",
    "fan_out",
    "native_counters",
    "python_fan_out",
    "srtp_context_address",
    "srtp_protect_address",
]

# The signature sfu/_route.c calls srtp_protect with (libsrtp 2): checked before the address is handed over.
SRTP_PROTECT_TYPE = "srtp_err_status_t(*)(struct srtp_ctx_t_ *, void *, int *)"


class PythonSubscriptionBase:
    """sfu._fanout.SubscriptionBase without the C module: Subscription keeps the same fields (typed in
    sfu/_fanout.pyi) as plain attributes."""


def python_fan_out(
    subscriptions: tuple[Any, ...], layer: Any, data: bytes, h: Any, value: bytes | None
) -> list[Any] | None:
    """Every subscription forwarding or waiting for `layer`: the caller runs ``forward_now`` on each."""
    slow = [s for s in subscriptions if s.current is layer or s.target is layer]
    return slow or None


def srtp_protect_address() -> int:
    """The address of pylibsrtp's own srtp_protect: the C loop protects with the sessions aiortc created."""
    got = str(_ffi.typeof(_lib.srtp_protect))[len("<ctype '") : -len("'>")]
    if got != SRTP_PROTECT_TYPE:
        raise HookSurfaceChanged(f"pylibsrtp's srtp_protect is {got}, sfu/_route.c calls {SRTP_PROTECT_TYPE}")
    return int(_ffi.cast("uintptr_t", _ffi.addressof(_lib, "srtp_protect")))


def srtp_context_address(session: Any) -> int:
    """The srtp_t of a pylibsrtp.Session, for Route.set."""
    return int(_ffi.cast("uintptr_t", session._srtp[0]))


def native_counters() -> dict[str, int]:
    """The C copy loop's counters (forwarded packets and bytes, dropped copies by reason); {} without it."""
    return _counters() if NATIVE else {}


if TYPE_CHECKING:
    from sfu._fanout import Route, SubscriptionBase, fan_out
    from sfu._fanout import counters as _counters

    NATIVE: bool
else:
    try:
        from sfu._fanout import Route, SubscriptionBase, fan_out, set_protect
        from sfu._fanout import counters as _counters
    except ImportError:
        NATIVE = False
        _counters = None
        Route = None
        SubscriptionBase = PythonSubscriptionBase
        fan_out = python_fan_out
    else:
        NATIVE = True
        set_protect(srtp_protect_address())
