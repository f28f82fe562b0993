"""SDP offer/answer for room terminals (research/sip-gateway.md §3.2): pure functions, no I/O.

`answer(offer, policy)` answers a terminal's offer, `offer(policy)` makes ours (delayed offer, dial-out) and
`parse_answer(answer, offer, policy)` reads the terminal's answer to it. What was negotiated comes back typed
(`MediaLine` per m-line) and converts to the SFU's plain values with `SdpAnswer.plain_media()`.
"""

from __future__ import annotations

import time

from signaling.sip import sdp_parse as text
from signaling.sip.sdp_model import (
    AUDIO_PREFERENCE,
    SUITES,
    VIDEO_FEEDBACK,
    Codec,
    Crypto,
    Direction,
    H264Params,
    MediaLine,
    SdpAnswer,
    SdpError,
    SdpPolicy,
    SdpRejection,
    SignallingTransport,
    SrtpPolicy,
    SrtpSuite,
)

__all__ = [
    "AUDIO_PREFERENCE",
    "SUITES",
    "VIDEO_FEEDBACK",
    "Codec",
    "Crypto",
    "Direction",
    "H264Params",
    "MediaLine",
    "SdpAnswer",
    "SdpError",
    "SdpPolicy",
    "SdpRejection",
    "SignallingTransport",
    "SrtpPolicy",
    "SrtpSuite",
    "answer",
    "offer",
    "parse_answer",
]


# ----------------------------------------------------------------------------------------------- answer
def answer(offer: str, policy: SdpPolicy) -> SdpAnswer | SdpRejection:
    """Answer a terminal's offer: same m-lines in the same order, port 0 for what we do not take.

    One audio codec (Opus > G.722 > PCMU > PCMA) plus the offered telephone-event; one H.264 video,
    packetization-mode 1 preferred (0 accepted), Baseline family first; BFCP, slides, H.224, ix and any second
    audio/video line get port 0. SRTP as `policy` says. No usable audio → SdpRejection (488).
    """
    try:
        parsed = text.parse(offer)
    except SdpError as exc:
        return SdpRejection(str(exc))
    session = parsed.session
    lines: list[MediaLine] = []
    have_audio = have_video = False
    for index, section in enumerate(parsed.media):
        rejected = _reject_reason(section, have_audio=have_audio, have_video=have_video, policy=policy)
        if rejected is None:
            negotiated = _negotiate(index, section, session, policy)
            if isinstance(negotiated, SdpRejection):
                if section.media == "audio":
                    return negotiated
                rejected = negotiated.reason
            else:
                lines.append(negotiated)
                have_audio = have_audio or section.media == "audio"
                have_video = have_video or section.media == "video"
                continue
        lines.append(
            MediaLine(
                index=index,
                media=section.media,
                proto=section.proto,
                accepted=False,
                reason=rejected,
                content=(section.attrs("content") or [""])[0],
                label=(section.attrs("label") or [""])[0],
            )
        )
    if not have_audio:
        reasons = "; ".join(x.reason for x in lines if x.media == "audio") or "no audio m-line"
        return SdpRejection(f"no acceptable audio: {reasons}")
    return SdpAnswer(_write(parsed, lines, policy), tuple(lines))


def _reject_reason(
    section: text.Section, *, have_audio: bool, have_video: bool, policy: SdpPolicy
) -> str | None:
    if section.port == 0:
        return "disabled in the offer"
    if section.media not in ("audio", "video"):
        return f"{section.media} {section.proto} is not supported"
    if not section.proto.upper().startswith("RTP/"):
        return f"{section.proto} is not RTP"
    content = (section.attrs("content") or ["main"])[0].lower()
    if section.media == "video" and content not in ("main", ""):
        return f"content:{content} needs BFCP (phase 2)"
    if (section.media == "audio" and have_audio) or (section.media == "video" and have_video):
        return f"a second {section.media} line"
    if section.media == "video" and not policy.video_port:
        return "no video socket"
    return None


def _negotiate(
    index: int, section: text.Section, session: text.Section, policy: SdpPolicy
) -> MediaLine | SdpRejection:
    proto = section.proto.upper()
    secure = proto in ("RTP/SAVP", "RTP/SAVPF")
    crypto: Crypto | None = None
    if secure:
        if policy.srtp == "off":
            return SdpRejection(f"{section.proto}: SRTP is off for this site")
        if not policy.may_sdes:
            return SdpRejection(f"{section.proto}: SDES keys only over TLS, not {policy.transport}")
        chosen = text.crypto(section)
        if chosen is None:
            return SdpRejection(f"{section.proto}: no usable a=crypto (AES_CM_128_HMAC_SHA1_80/32 only)")
        crypto = Crypto(chosen[0], chosen[1], chosen[2], policy.key())
    elif policy.srtp == "mandatory":
        return SdpRejection(f"{section.proto}: this site requires SRTP (RTP/SAVP)")
    codecs = text.rtpmaps(section)
    telephone_event: int | None = None
    rtcp_fb: frozenset[str] = frozenset()
    h264: H264Params | None = None
    if section.media == "audio":
        chosen_codec = text.choose_audio(codecs)
        if chosen_codec is None:
            return SdpRejection("audio: no common codec (Opus, G.722, PCMU, PCMA)")
        events = [c for c in codecs.values() if c.name.lower() == "telephone-event"]
        matching = [c for c in events if c.clock_rate == chosen_codec.clock_rate]
        if matching or events:
            telephone_event = (matching or events)[0].pt
        chosen_list = (chosen_codec, *(c for c in events if c.pt == telephone_event))
    else:
        video = text.choose_video(codecs)
        if video is None:
            return SdpRejection("video: no H.264 in packetization-mode 0 or 1")
        chosen_list = (video,)
        h264 = text.h264(video)
        rtcp_fb = text.feedback(section, video.pt)
    remote = section.connection or session.connection
    rtcp_attr = (section.attrs("rtcp") or [""])[0].split()
    bandwidth = section.bandwidth.get("TIAS") or section.bandwidth.get("AS", 0) * 1000
    return MediaLine(
        index=index,
        media=section.media,
        proto=section.proto,
        accepted=True,
        local_port=policy.audio_port if section.media == "audio" else policy.video_port,
        remote_address=remote,
        remote_port=section.port,
        remote_rtcp_port=int(rtcp_attr[0]) if rtcp_attr and rtcp_attr[0].isdigit() else 0,
        rtcp_mux=section.has("rtcp-mux"),
        direction=text.REVERSE[text.direction(section, session)],
        codecs=chosen_list,
        telephone_event_pt=telephone_event,
        rtcp_fb=rtcp_fb,
        h264=h264,
        tias=bandwidth,
        crypto=crypto,
        content=(section.attrs("content") or [""])[0],
        label=(section.attrs("label") or [""])[0],
    )


# ----------------------------------------------------------------------------------------------- writing
def _origin(policy: SdpPolicy) -> str:
    session_id = policy.session_id or int(time.time())
    return f"o=yunhui {session_id} {policy.session_version} IN IP4 {policy.address}"


def _codec_lines(codec: Codec) -> list[str]:
    encoding = f"{codec.name}/{codec.clock_rate}" + (f"/{codec.channels}" if codec.channels > 1 else "")
    out = [f"a=rtpmap:{codec.pt} {encoding}"]
    if codec.fmtp:
        out.append(f"a=fmtp:{codec.pt} " + ";".join(f"{k}={v}" if k else v for k, v in codec.fmtp))
    return out


def _answer_fmtp(codec: Codec) -> Codec:
    if codec.name.upper() != "H264":
        return codec
    # What we can receive: the offered profile and limits as they are (we decode nothing, browsers do).
    keep = ("profile-level-id", "packetization-mode", "max-fs", "max-mbps", "max-br", "max-fps")
    fmtp = tuple((k, v) for k, v in codec.fmtp if k in keep)
    if not any(k == "packetization-mode" for k, _ in fmtp):
        fmtp += (("packetization-mode", "0"),)
    return Codec(codec.pt, codec.name, codec.clock_rate, codec.channels, fmtp)


def _write(parsed: text.Session, lines: list[MediaLine], policy: SdpPolicy) -> str:
    out = ["v=0", _origin(policy), "s=Yunhui", f"c=IN IP4 {policy.address}", "t=0 0"]
    for line, section in zip(lines, parsed.media, strict=True):
        if not line.accepted:
            formats = " ".join(section.formats) or "0"
            out.append(f"m={section.media} 0 {section.proto} {formats}")
            continue
        pts = " ".join(str(c.pt) for c in line.codecs)
        out.append(f"m={line.media} {line.local_port} {section.proto} {pts}")
        if line.media == "video":
            out.append(f"b=AS:{policy.video_tias // 1000}")
            out.append(f"b=TIAS:{policy.video_tias}")
        for codec in line.codecs:
            out.extend(_codec_lines(_answer_fmtp(codec)))
        if line.media == "audio":
            out.append("a=ptime:20")
        for fb in sorted(line.rtcp_fb):
            out.append(f"a=rtcp-fb:{line.codecs[0].pt} {fb}")
        if line.rtcp_mux:
            out.append("a=rtcp-mux")
        if line.crypto is not None:
            out.append(f"a=crypto:{line.crypto.tag} {line.crypto.suite} {text.inline(line.crypto.local_key)}")
        if line.content:
            out.append(f"a=content:{line.content}")
        if line.label:
            out.append(f"a=label:{line.label}")
        out.append(f"a={line.direction}")
    return "\r\n".join(out) + "\r\n"


# ----------------------------------------------------------------------------------------------- our offer
def offer(policy: SdpPolicy, *, video: bool = True) -> str:
    """Our offer (delayed offer in the 200, or dial-out): PCMU, PCMA, G.722, Opus and telephone-event;
    H.264 42e01f in mode 1 and mode 0 with `nack pli` and `ccm fir`. RTP/SAVP with a fresh key when the
    policy makes SRTP mandatory and SDES may be used; plain RTP/AVP otherwise."""
    secure = policy.srtp == "mandatory" and policy.may_sdes
    proto = "RTP/SAVP" if secure else "RTP/AVP"
    out = ["v=0", _origin(policy), "s=Yunhui", f"c=IN IP4 {policy.address}", "t=0 0"]
    out.append(f"m=audio {policy.audio_port} {proto} 0 8 9 111 101")
    out += [
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
    ]
    if secure:
        out.append(f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 {text.inline(policy.key())}")
    out.append("a=sendrecv")
    if video and policy.video_port:
        out.append(f"m=video {policy.video_port} {proto} 96 97")
        out.append(f"b=AS:{policy.video_tias // 1000}")
        out.append(f"b=TIAS:{policy.video_tias}")
        out += [
            "a=rtpmap:96 H264/90000",
            "a=fmtp:96 profile-level-id=42e01f;packetization-mode=1",
            "a=rtpmap:97 H264/90000",
            "a=fmtp:97 profile-level-id=42e01f;packetization-mode=0",
            "a=rtcp-fb:* nack",
            "a=rtcp-fb:* nack pli",
            "a=rtcp-fb:* ccm fir",
        ]
        if secure:
            out.append(f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 {text.inline(policy.key())}")
        out.append("a=content:main")
        out.append("a=sendrecv")
    return "\r\n".join(out) + "\r\n"


def parse_answer(answer_sdp: str, our_offer: str, policy: SdpPolicy) -> SdpAnswer | SdpRejection:
    """The terminal's answer (in the ACK or the 200) to `our_offer`: what it chose, with our offered keys.

    The returned SdpAnswer's `sdp` is `our_offer` (what we sent); its lines describe the terminal's choice.
    """
    try:
        ours, theirs = text.parse(our_offer), text.parse(answer_sdp)
    except SdpError as exc:
        return SdpRejection(str(exc))
    if len(ours.media) != len(theirs.media):
        return SdpRejection(f"answer has {len(theirs.media)} m-lines, the offer {len(ours.media)}")
    lines: list[MediaLine] = []
    for index, (mine, section) in enumerate(zip(ours.media, theirs.media, strict=True)):
        if section.port == 0:
            lines.append(MediaLine(index, section.media, section.proto, False, reason="rejected"))
            continue
        codecs = text.rtpmaps(section)
        offered = text.rtpmaps(mine)
        codecs = {pt: offered.get(pt, c) if c.name.lower() != "h264" else c for pt, c in codecs.items()}
        crypto: Crypto | None = None
        if section.proto.upper() in ("RTP/SAVP", "RTP/SAVPF"):
            theirs_crypto, ours_crypto = text.crypto(section), text.crypto(mine)
            if theirs_crypto is None or ours_crypto is None:
                return SdpRejection(f"m-line {index}: SRTP without a usable a=crypto")
            crypto = Crypto(theirs_crypto[0], theirs_crypto[1], theirs_crypto[2], ours_crypto[2])
        elif policy.srtp == "mandatory" and policy.may_sdes:
            return SdpRejection(f"m-line {index}: the terminal answered without SRTP")
        h264 = None
        rtcp_fb: frozenset[str] = frozenset()
        telephone_event = next((c.pt for c in codecs.values() if c.name.lower() == "telephone-event"), None)
        if section.media == "audio":
            chosen = text.choose_audio(codecs)
            if chosen is None:
                return SdpRejection("audio: the answer has no codec we offered")
            chosen_list = (chosen,)
        else:
            video_codec = text.choose_video(codecs)
            if video_codec is None:
                lines.append(MediaLine(index, section.media, section.proto, False, reason="no H.264"))
                continue
            chosen_list, h264 = (video_codec,), text.h264(video_codec)
            rtcp_fb = text.feedback(section, video_codec.pt)
        rtcp_attr = (section.attrs("rtcp") or [""])[0].split()
        lines.append(
            MediaLine(
                index=index,
                media=section.media,
                proto=section.proto,
                accepted=True,
                local_port=mine.port,
                remote_address=section.connection or theirs.session.connection,
                remote_port=section.port,
                remote_rtcp_port=int(rtcp_attr[0]) if rtcp_attr and rtcp_attr[0].isdigit() else 0,
                rtcp_mux=section.has("rtcp-mux"),
                direction=text.REVERSE[text.direction(section, theirs.session)],
                codecs=chosen_list,
                telephone_event_pt=telephone_event if section.media == "audio" else None,
                rtcp_fb=rtcp_fb,
                h264=h264,
                tias=section.bandwidth.get("TIAS") or section.bandwidth.get("AS", 0) * 1000,
                crypto=crypto,
                content=(section.attrs("content") or [""])[0],
                label=(section.attrs("label") or [""])[0],
            )
        )
    if not any(x.accepted and x.media == "audio" for x in lines):
        return SdpRejection("the answer accepts no audio")
    return SdpAnswer(our_offer, tuple(lines))
