"""Process-wide aiortc codec and header-extension settings the SFU needs (patched once per process)."""

from __future__ import annotations

import aiortc.rtp as aiortc_rtp
from aiortc.codecs import CODECS, HEADER_EXTENSIONS
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters

from sfu.rtp import URI_RID, URI_RRID

# Video codecs forwarded besides aiortc's own (VP8, H.264): (mime type, fmtp) as Chrome offers them.
FORWARDED_VIDEO_CODECS: tuple[tuple[str, dict[str, str | int | None]], ...] = (
    ("video/VP9", {"profile-id": "0"}),
    ("video/AV1", {"level-idx": "5", "profile": "0", "tier": "0"}),
)

# Ids for the simulcast extensions we answer with; unique across kinds because of BUNDLE.
RID_EXTENSION_ID = 10
RRID_EXTENSION_ID = 11

_state = {"patched": False}


def install_global_patches() -> None:
    """Process-wide aiortc settings an SFU needs (idempotent).

    * Accept the dynamic payload types 35..63 that recent browsers use once 96..127 run out; otherwise aiortc
      answers with its own PT and drops the matching RTX.
    * Answer Opus with the browser's usual fmtp plus usedtx=1 (aiortc copies its local parameters into the
      answer): a publisher then sends almost nothing while it is silent (Opus DTX: one frame per 400 ms).
    * Negotiate rtp-stream-id / repaired-rtp-stream-id so browsers can send simulcast.
    * Offer and accept VP9 (profile 0) and AV1 besides aiortc's VP8 and H.264: the SFU forwards them without
      a codec (aiortc has no VP9/AV1 encoder or decoder, and the SFU's connections never use one). An answer
      keeps the browser's codec order, so the browser's preference decides what it sends.
    """
    if _state["patched"]:
        return
    _state["patched"] = True
    video = CODECS["video"]
    next_pt = max(c.payloadType or 0 for c in video) + 1
    for mime, parameters in FORWARDED_VIDEO_CODECS:
        if any(c.mimeType.lower() == mime.lower() for c in video):
            continue
        feedback = [RTCRtcpFeedback("nack"), RTCRtcpFeedback("nack", "pli"), RTCRtcpFeedback("goog-remb")]
        video.append(
            RTCRtpCodecParameters(
                mime, 90000, payloadType=next_pt, rtcpFeedback=feedback, parameters=parameters
            )
        )
        video.append(
            RTCRtpCodecParameters("video/rtx", 90000, payloadType=next_pt + 1, parameters={"apt": next_pt})
        )
        next_pt += 2
    aiortc_rtp.DYNAMIC_PAYLOAD_TYPES = range(35, 128)
    for codec in CODECS["audio"]:
        if codec.mimeType.lower() == "audio/opus":
            codec.parameters = {"minptime": 10, "useinbandfec": 1, "usedtx": 1}
    uris = {x.uri for x in HEADER_EXTENSIONS["video"]}
    if URI_RID not in uris:
        HEADER_EXTENSIONS["video"].append(RTCRtpHeaderExtensionParameters(id=RID_EXTENSION_ID, uri=URI_RID))
    if URI_RRID not in uris:
        HEADER_EXTENSIONS["video"].append(RTCRtpHeaderExtensionParameters(id=RRID_EXTENSION_ID, uri=URI_RRID))
