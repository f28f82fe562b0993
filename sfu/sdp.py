"""SDP text helpers for what aiortc does not do: simulcast (rid) answers, announced addresses."""

from __future__ import annotations

from sfu.errors import Unavailable


def media_sections(sdp: str) -> dict[str, str]:
    """mid -> kind ("audio" | "video") of every media section of an SDP."""
    result: dict[str, str] = {}
    kind: str | None = None
    for line in sdp.splitlines():
        if line.startswith("m="):
            kind = line[2:].split(" ", 1)[0]
        elif line.startswith("a=mid:") and kind in ("audio", "video"):
            result[line[6:].strip()] = kind
    return result


def offered_rids(offer_sdp: str) -> dict[str, list[str]]:
    """mid -> rids the offerer sends as simulcast (``a=rid:<rid> send`` with ``a=simulcast:send``)."""
    result: dict[str, list[str]] = {}
    mid: str | None = None
    rids: list[str] = []
    simulcast = False

    def flush() -> None:
        if mid is not None and simulcast and rids:
            result[mid] = list(rids)

    for raw in offer_sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            flush()
            mid, rids, simulcast = None, [], False
        elif line.startswith("a=mid:"):
            mid = line[6:]
        elif line.startswith("a=rid:"):
            parts = line[6:].split()
            if len(parts) >= 2 and parts[1] == "send":
                rids.append(parts[0])
        elif line.startswith("a=simulcast:send"):
            simulcast = True
    flush()
    return result


def answer_with_simulcast(answer_sdp: str, rids_by_mid: dict[str, list[str]]) -> str:
    """Add ``a=rid:<rid> recv`` and ``a=simulcast:recv`` to the answer's m-sections offered as simulcast.

    aiortc has no rid/simulcast support, so this is applied to the answer text after setLocalDescription.
    """
    if not rids_by_mid:
        return answer_sdp
    out: list[str] = []
    for line in answer_sdp.splitlines():
        out.append(line)
        if line.startswith("a=mid:") and line[6:] in rids_by_mid:
            rids = rids_by_mid[line[6:]]
            out += [f"a=rid:{rid} recv" for rid in rids]
            out.append("a=simulcast:recv " + ";".join(rids))
    return "\r\n".join(out) + "\r\n"


def require_candidates(sdp: str) -> str:
    """`sdp` (our local description) unchanged, or Unavailable when it has media but no ICE candidate: every
    host socket failed to bind (the UDP port range is full), and the peer could never connect."""
    if media_sections(sdp) and "a=candidate:" not in sdp:
        raise Unavailable("no UDP port is free for media on this server; try again shortly")
    return sdp


def announce_address(sdp: str, address: str | None) -> str:
    """Write the announced address into our host candidates (1:1 NAT, containers)."""
    if not address:
        return sdp
    out: list[str] = []
    for line in sdp.splitlines():
        parts = line.split()
        if line.startswith("a=candidate:") and " typ host" in line and len(parts) > 5:
            parts[4] = address
            out.append(" ".join(parts))
        else:
            out.append(line)
    return "\r\n".join(out) + "\r\n"
