"""The Tracks and the stand-ins a PlainPeer hands to the SFU's forwarding code (sfu/plain.py).

Track and Subscription read aiortc's negotiated parameters; a terminal's come from its SDP (PlainStream), so
they are built here as aiortc objects, and aiortc access for plain peers stays in these few functions.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING

from aiortc.codecs.h264 import H264Encoder
from aiortc.rtcrtpparameters import (
    RTCRtcpFeedback,
    RTCRtpCodecParameters,
    RTCRtpReceiveParameters,
)

from sfu.plain_media import PlainStream
from sfu.track import SendRtcp, Track

if TYPE_CHECKING:
    from sfu.settings import SfuSettings

# At most one keyframe request per this interval per stream, whatever the way (research §3.1).
KEYFRAME_INTERVAL_S = 0.5
OPUS_PT = 111


class _Sender:
    def __init__(self) -> None:
        self._ssrc = random.getrandbits(32) or 1
        self._rtx_ssrc = 0


class Transceiver:
    """What Subscription reads of an aiortc transceiver: its kind and the sender's SSRCs."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.sender = _Sender()


def aiortc_codec(stream: PlainStream) -> RTCRtpCodecParameters:
    codec = stream.main
    return RTCRtpCodecParameters(
        mimeType=f"{stream.kind}/{codec.name}",
        clockRate=codec.clock_rate,
        channels=codec.channels if stream.kind == "audio" else None,
        payloadType=codec.pt,
        rtcpFeedback=[RTCRtcpFeedback(type=t, parameter=p or None) for t, p in codec.rtcp_feedback],
        parameters=dict(codec.parameters),
    )


def size_for_max_fs(max_fs: int) -> tuple[int, int]:
    """The 16:9 picture that fits `max_fs` macroblocks (16x16 pixels), for the layer choice; (0, 0): any."""
    if max_fs <= 0:
        return (0, 0)
    width = int(math.sqrt(max_fs * 256 * 16 / 9))
    return (width, width * 9 // 16)


def camera_track(
    participant_id: str,
    codec: RTCRtpCodecParameters,
    settings: SfuSettings,
    rtcp_ssrc: int,
    send_rtcp: SendRtcp,
) -> Track:
    """The terminal's camera as a Track (its SSRC is learnt from the first packet)."""
    return Track(
        track_id=f"{participant_id}:video",
        participant_id=participant_id,
        kind="video",
        source="camera",
        mid="video",
        params=RTCRtpReceiveParameters(codecs=[codec]),
        rtcp_ssrc=rtcp_ssrc,
        send_rtcp=send_rtcp,
        rids=[],
        keyframe_min_interval=max(KEYFRAME_INTERVAL_S, settings.keyframe_min_interval_ms / 1000),
        keyframe_retry=max(KEYFRAME_INTERVAL_S, settings.keyframe_retry_ms / 1000),
        keyframe_join_interval=KEYFRAME_INTERVAL_S,
        ring_size=settings.nack_history,
    )


def opus_track(participant_id: str, rtcp_ssrc: int, send_rtcp: SendRtcp) -> Track:
    """The terminal's voice as the mixer publishes it: Opus with the audio-level extension, our SSRC."""
    codec = RTCRtpCodecParameters(
        mimeType="audio/opus",
        clockRate=48000,
        channels=2,
        payloadType=OPUS_PT,
        parameters={"minptime": 10, "useinbandfec": 1},
    )
    track = Track(
        track_id=f"{participant_id}:audio",
        participant_id=participant_id,
        kind="audio",
        source="mic",
        mid="audio",
        params=RTCRtpReceiveParameters(codecs=[codec]),
        rtcp_ssrc=rtcp_ssrc,
        send_rtcp=send_rtcp,
        rids=[],
        keyframe_min_interval=1.0,
        keyframe_retry=1.0,
    )
    track.layers[""].ssrc = random.getrandbits(32) or 1
    return track


def h264_payloads(frame: bytes) -> list[bytes]:
    """An Annex B access unit as RFC 6184 payloads (single NAL / STAP-A / FU-A, as aiortc packetizes)."""
    return H264Encoder._packetize(H264Encoder._split_bitstream(frame))
