"""Bounds on what one participant can make the SFU hold: pure checks of offers and candidate addresses.

A publisher's offer and its trickled candidates are the two ways a client creates server state without media
(transceivers and tracks; ICE pairs and STUN checks). Everything here is decided from text, before aiortc or
aioice allocate anything.
"""

from __future__ import annotations

import ipaddress

from sfu.sdp import offered_rids

# Above any browser's simulcast (libwebrtc sends at most 3 layers, 4 with some codecs): each rid becomes a
# Layer with its own NACK ring, so an offer with thousands of a=rid lines would otherwise cost megabytes.
MAX_RIDS = 4

# Address kinds a trickled candidate may point at, besides "routable" (see address_kind).
LOCAL_KINDS = frozenset({"loopback", "link_local", "unspecified"})


def count_media_sections(sdp: str) -> int:
    """Audio and video m-sections of an SDP, rejected (port 0) ones included: aiortc makes a transceiver for
    each, and a repeated mid does not make one fewer."""
    return sum(1 for line in sdp.splitlines() if line.startswith(("m=audio ", "m=video ")))


def publish_offer_excess(offer_sdp: str, *, max_tracks: int) -> tuple[str, str] | None:
    """(bound, message) when a publish offer asks for more than a participant may publish, else None.

    A publish offer always describes the whole connection (JSEP never removes an m-section), so its count is
    the number of transceivers the connection would have: the check needs no state. Bounds: "tracks" (the
    m-sections) and "layers" (simulcast rids of one m-section).
    """
    sections = count_media_sections(offer_sdp)
    if sections > max_tracks:
        message = f"{sections} audio/video m-sections; a participant publishes at most {max_tracks} tracks"
        return "tracks", f"offer_sdp: {message}"
    for mid, rids in offered_rids(offer_sdp).items():
        if len(rids) > MAX_RIDS:
            message = f"m-section {mid!r} offers {len(rids)} simulcast layers; at most {MAX_RIDS}"
            return "layers", f"offer_sdp: {message}"
    return None


def address_kind(host: str) -> str:
    """What a candidate's connection address is: "loopback", "link_local", "unspecified" (0.0.0.0 and ::,
    which Linux delivers to the local host), "multicast", "broadcast" (255.255.255.255 and the rest of
    240/4), "routable" (anything else, private ranges included: LAN clients use them), or "name" (not an IP
    address: an mDNS name, which aioice resolves itself)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return "name"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1 on a dual-stack socket
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link_local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address) and ip.is_reserved:
        return "broadcast"
    return "routable"


def candidate_allowed(host: str, *, allow_local: bool) -> bool:
    """Whether the SFU should run ICE checks towards a remote candidate at `host`.

    Loopback, link-local and unspecified addresses reach the server's own host or its local link, never a
    remote client (STUN checks there probe the server's side); multicast and broadcast never name one peer.
    `allow_local` (tests, development on one machine) lets the local kinds through.
    """
    kind = address_kind(host)
    if kind in LOCAL_KINDS:
        return allow_local
    return kind in ("routable", "name")
