"""A11: the SDP answer policy on captured room-system offers (tests/sip/offers/), our offer, their answer."""

from __future__ import annotations

import base64
import itertools
from pathlib import Path

import pytest

from signaling.sip import sdp

OFFERS = Path(__file__).parent / "offers"
KEYS = itertools.count(1)


def _policy(**kw: object) -> sdp.SdpPolicy:
    base: dict[str, object] = {"address": "198.51.100.1", "audio_port": 40000, "video_port": 40002}
    base.update(kw)
    return sdp.SdpPolicy(**base)  # type: ignore[arg-type]


def _offer(name: str) -> str:
    return (OFFERS / name).read_text().replace("\n", "\r\n")


def _answer(name: str, **kw: object) -> sdp.SdpAnswer:
    result = sdp.answer(_offer(name), _policy(**kw))
    assert isinstance(result, sdp.SdpAnswer), result
    return result


def _m_lines(text: str) -> list[list[str]]:
    return [line[2:].split() for line in text.splitlines() if line.startswith("m=")]


# Expected per offer: (media of each m-line, which are accepted, audio codec, video PT, telephone-event PT)
CASES = {
    "poly_bfcp_tcp.sdp": (["audio", "video", "application", "application"], [1, 1, 0, 0], "G722", 110, 101),
    "livekit_slides_udp_bfcp.sdp": (
        ["audio", "video", "application", "video", "application"],
        [1, 1, 0, 0, 0],
        "G722",
        126,
        101,
    ),
    "cisco_room_tcp.sdp": (
        ["audio", "video", "application", "video", "application", "application"],
        [1, 1, 0, 0, 0, 0],
        "opus",
        126,
        101,
    ),
    "sipp_room101.sdp": (["audio", "video"], [1, 1], "PCMU", 96, 101),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_vendor_offers_are_answered_line_for_line(name: str) -> None:
    media, accepted, audio_codec, video_pt, te_pt = CASES[name]
    offer = _offer(name)
    answer = _answer(name)
    offered, answered = _m_lines(offer), _m_lines(answer.sdp)
    # Same number, order and proto of m-lines; rejected ones have port 0, accepted ones our ports.
    assert [m[0] for m in answered] == [m[0] for m in offered] == media
    assert [m[2] for m in answered] == [m[2] for m in offered]
    assert [int(m[1] != "0") for m in answered] == accepted
    assert [x.accepted for x in answer.lines] == [bool(a) for a in accepted]
    audio, video = answer.audio, answer.video
    assert audio is not None and video is not None
    assert answered[0][1] == "40000" and answered[1][1] == "40002"
    # One audio codec plus the offer's own telephone-event number; one H.264 mode 1 payload type.
    assert audio.codecs[0].name == audio_codec
    assert audio.telephone_event_pt == te_pt
    assert answered[0][3:] == [str(audio.codecs[0].pt), str(te_pt)]
    assert answered[1][3:] == [str(video_pt)]
    assert video.h264 is not None and video.h264.packetization_mode == 1 and video.h264.baseline_family
    assert f"a=fmtp:{video_pt} " in answer.sdp and "packetization-mode=1" in answer.sdp
    assert "b=TIAS:" in answer.sdp and "a=ptime" not in answer.sdp.split("m=video")[1]
    for bad in ("H265", "x-ulpfecuc", "H263", "MP4A-LATM", "G7221", "G729", "H224"):
        assert bad not in answer.sdp
    # The answer is well formed enough for our own parser to read back.
    reread = sdp.parse_answer(answer.sdp, offer, _policy())
    assert isinstance(reread, sdp.SdpAnswer)


def test_poly_fir_only_and_limits_are_read() -> None:
    answer = _answer("poly_bfcp_tcp.sdp")
    video = answer.video
    assert video is not None and video.h264 is not None
    assert video.rtcp_fb == {"ccm fir", "ccm tmmbr"}  # no PLI: keyframes by FIR (or INFO)
    assert (video.h264.profile_level_id, video.h264.max_fs, video.h264.max_mbps) == ("428020", 8192, 490000)
    assert video.remote_rtcp_port == 29689 and video.remote_address == "192.0.2.10"
    assert "a=rtcp-fb:110 ccm fir" in answer.sdp and "nack pli" not in answer.sdp
    media = answer.plain_media("192.0.2.10")
    stream = media.stream("video")
    assert stream is not None and stream.feedback == {("ccm", "fir"), ("ccm", "tmmbr")}
    assert stream.max_fs == 8192


def test_cisco_labels_content_and_level_raised_by_max_fs() -> None:
    answer = _answer("cisco_room_tcp.sdp")
    video = answer.video
    assert video is not None and video.h264 is not None
    assert (video.content, video.label) == ("main", "11")
    assert "a=content:main" in answer.sdp and "a=label:11" in answer.sdp
    assert video.h264.level_idc == 0x16 and video.h264.max_fs == 8160  # level 2.2 raised to 1080p
    assert video.rtcp_fb == {"nack pli", "ccm fir", "ccm tmmbr"}  # ccm pan dropped
    slides = answer.lines[3]
    assert not slides.accepted and "slides" in slides.reason


def test_no_usable_audio_codec_is_488() -> None:
    result = sdp.answer(_offer("audio_g729_only.sdp"), _policy())
    assert isinstance(result, sdp.SdpRejection)
    assert result.status == 488 and "audio" in result.reason


def test_malformed_offers_are_rejected_not_raised() -> None:
    for text in ("", "v=0\r\nm=audio\r\n", "garbage", "v=0\r\nm=audio 99999 RTP/AVP 0\r\n", "x" * 70_000):
        result = sdp.answer(text, _policy())
        assert isinstance(result, sdp.SdpRejection), text[:20]


def test_telephone_event_is_never_assumed_101() -> None:
    """Webex-style: 101 is Opus, telephone-event is 100 (and a Polycom uses 119)."""
    answer = _answer("cisco_webex_savpf.sdp", transport="tls", video_port=0)
    audio = answer.audio
    assert audio is not None and audio.codecs[0].name == "opus" and audio.codecs[0].pt == 101
    assert audio.telephone_event_pt == 100
    assert "a=rtpmap:100 telephone-event/8000" in answer.sdp
    # The same with a re-numbered offer: telephone-event 119 mirrored.
    offer = _offer("sipp_room101.sdp").replace(" 101", " 119").replace(":101 ", ":119 ")
    again = sdp.answer(offer, _policy())
    assert isinstance(again, sdp.SdpAnswer) and again.audio is not None
    assert again.audio.telephone_event_pt == 119


# ------------------------------------------------------------------------------------------------ SRTP
def test_sdes_over_tls_gets_a_fresh_key_per_answer() -> None:
    answers = [_answer("cisco_webex_savpf.sdp", transport="tls", video_port=0) for _ in range(2)]
    for answer in answers:
        audio = answer.audio
        assert audio is not None and audio.crypto is not None
        # AEAD and AES_256 tags are skipped; the first AES_CM_128 one (tag 3, with a WSH hint) is taken.
        assert (audio.crypto.tag, audio.crypto.suite) == (3, "AES_CM_128_HMAC_SHA1_80")
        assert audio.crypto.remote_key == bytes(range(30)) and len(audio.crypto.local_key) == 30
        inline = base64.b64encode(audio.crypto.local_key).decode()
        assert f"a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{inline}" in answer.sdp
        assert "RTP/SAVPF" in answer.sdp
    keys = {a.audio.crypto.local_key for a in answers if a.audio is not None and a.audio.crypto is not None}
    assert len(keys) == 2


def test_sdes_over_udp_is_488_by_default() -> None:
    result = sdp.answer(_offer("cisco_webex_savpf.sdp"), _policy(video_port=0))
    assert isinstance(result, sdp.SdpRejection) and result.status == 488 and "TLS" in result.reason
    allowed = sdp.answer(_offer("cisco_webex_savpf.sdp"), _policy(video_port=0, sdes_without_tls=True))
    assert isinstance(allowed, sdp.SdpAnswer) and allowed.encrypted


def test_aes_256_only_is_488_and_srtp_off_refuses_savp() -> None:
    result = sdp.answer(_offer("pjsip_zoom_tls_aes256.sdp"), _policy(transport="tls"))
    assert isinstance(result, sdp.SdpRejection) and "AES_CM_128" in result.reason
    off = sdp.answer(_offer("cisco_webex_savpf.sdp"), _policy(transport="tls", srtp="off", video_port=0))
    assert isinstance(off, sdp.SdpRejection) and "off" in off.reason


def test_mandatory_refuses_plain_rtp_and_best_effort_crypto_on_avp_is_plain() -> None:
    mandatory = sdp.answer(_offer("sipp_room101.sdp"), _policy(transport="tls", srtp="mandatory"))
    assert isinstance(mandatory, sdp.SdpRejection) and "requires SRTP" in mandatory.reason
    key = base64.b64encode(bytes(range(30))).decode()
    offer = _offer("sipp_room101.sdp").replace(
        "a=fmtp:101 0-15\r\n", f"a=fmtp:101 0-15\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n"
    )
    best = sdp.answer(offer, _policy(transport="tls"))
    assert isinstance(best, sdp.SdpAnswer) and not best.encrypted and "a=crypto" not in best.sdp


@pytest.mark.parametrize(
    ("params", "usable"),
    [
        ("inline:{k}|2^31", True),
        ("inline:{k}|2^48|1:4", False),  # an MKI
        ("inline:{k}|2^64", False),  # lifetime beyond what SRTP allows us
        ("inline:{k} UNENCRYPTED_SRTCP", False),
        ("inline:{k} KDR=1", False),
        ("inline:{k} WSH=128", True),
        ("inline:AAAA", False),  # a short key
    ],
)
def test_crypto_attribute_parameters(params: str, usable: bool) -> None:
    key = base64.b64encode(bytes(range(30))).decode()
    offer = (
        "v=0\r\no=x 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        "m=audio 5000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        f"a=crypto:7 AES_CM_128_HMAC_SHA1_32 {params.format(k=key)}\r\n"
    )
    result = sdp.answer(offer, _policy(transport="tls"))
    assert isinstance(result, sdp.SdpAnswer) is usable, result
    if usable:
        assert isinstance(result, sdp.SdpAnswer) and result.audio is not None and result.audio.crypto
        assert result.audio.crypto.suite == "AES_CM_128_HMAC_SHA1_32"
        assert "a=crypto:7 AES_CM_128_HMAC_SHA1_32 inline:" in result.sdp


# ------------------------------------------------------------------------------------------------ hold
def test_hold_and_direction_are_mirrored() -> None:
    offer = _offer("sipp_room101.sdp").replace(
        "m=video 6002 RTP/AVP 96", "m=video 6002 RTP/AVP 96\r\na=sendonly"
    )
    offer = offer.replace("a=label:11\r\na=sendrecv", "a=label:11")
    answer = sdp.answer(offer, _policy())
    assert isinstance(answer, sdp.SdpAnswer) and answer.video is not None
    assert answer.video.direction == "recvonly"
    held = sdp.answer(
        _offer("sipp_room101.sdp").replace("c=IN IP4 192.0.2.30", "c=IN IP4 0.0.0.0"), _policy()
    )
    assert isinstance(held, sdp.SdpAnswer)
    stream = held.plain_media().stream("audio")
    assert stream is not None and stream.remote_host == "0.0.0.0"


# ---------------------------------------------------------------------------------------------- delayed offer
def test_delayed_offer_and_the_terminals_answer() -> None:
    policy = _policy(transport="tls", srtp="mandatory")
    ours = sdp.offer(policy)
    assert _m_lines(ours) == [
        ["audio", "40000", "RTP/SAVP", "0", "8", "9", "111", "101"],
        ["video", "40002", "RTP/SAVP", "96", "97"],
    ]
    for needed in ("opus/48000/2", "telephone-event/8000", "packetization-mode=1", "packetization-mode=0"):
        assert needed in ours
    assert "a=rtcp-fb:* nack pli" in ours and "a=rtcp-fb:* ccm fir" in ours
    # The terminal (a baresip-like answer) picks G.722 and mode 1, with its own key.
    key = base64.b64encode(bytes(range(30))).decode()
    theirs = (
        "v=0\r\no=b 1 1 IN IP4 192.0.2.50\r\ns=-\r\nc=IN IP4 192.0.2.50\r\nt=0 0\r\n"
        f"m=audio 9000 RTP/SAVP 9 101\r\na=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
        f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n"
        "m=video 9002 RTP/SAVP 96\r\na=rtpmap:96 H264/90000\r\n"
        "a=fmtp:96 profile-level-id=42e01f;packetization-mode=1\r\na=rtcp-fb:* ccm fir\r\n"
        f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n"
    )
    result = sdp.parse_answer(theirs, ours, policy)
    assert isinstance(result, sdp.SdpAnswer)
    audio, video = result.audio, result.video
    assert audio is not None and video is not None and audio.crypto and video.crypto
    assert audio.codecs[0].name == "G722" and audio.telephone_event_pt == 101
    assert (audio.remote_address, audio.remote_port, audio.local_port) == ("192.0.2.50", 9000, 40000)
    assert video.rtcp_fb == {"ccm fir"} and audio.crypto.remote_key == bytes(range(30))
    assert audio.crypto.local_key != audio.crypto.remote_key
    # An answer without SRTP to a mandatory offer, or with fewer m-lines, is refused.
    plain = theirs.replace("RTP/SAVP", "RTP/AVP")
    assert isinstance(sdp.parse_answer(plain, ours, policy), sdp.SdpRejection)
    assert isinstance(
        sdp.parse_answer(theirs.split("m=video", maxsplit=1)[0], ours, policy), sdp.SdpRejection
    )
