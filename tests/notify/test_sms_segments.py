"""SMS segmentation (N4): GSM-7 160/153 septets with escapes kept whole, UCS-2 70/67 units with surrogate
pairs kept whole, as the carriers count and bill parts."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notify.sms import (
    GSM_BASIC,
    GSM_EXTENSION,
    MAX_PARTS,
    Encoding,
    SmsTooLong,
    char_units,
    decode_text,
    encode_text,
    parse_short_message,
    pdus,
    preview,
    segment,
    text_units,
)

GSM_CHARS = "".join(sorted(GSM_BASIC))
EXTENSION_CHARS = "".join(sorted(GSM_EXTENSION))
gsm_text = st.text(alphabet=GSM_CHARS + EXTENSION_CHARS, min_size=1, max_size=1200)
basic_text = st.text(alphabet=GSM_CHARS, min_size=1, max_size=1200)
# Chinese, ASCII, and characters outside the BMP (emoji, CJK Ext-B): two UTF-16 units each.
wide_text = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
        st.sampled_from("abc 12,."),
        st.characters(min_codepoint=0x1F600, max_codepoint=0x1F64F),
        st.characters(min_codepoint=0x20000, max_codepoint=0x2A6DF),
    ),
    min_size=1,
    max_size=700,
).filter(lambda t: not all(c in GSM_BASIC or c in GSM_EXTENSION for c in t))


def test_the_brief_measurements() -> None:
    zh = segment("会" * 90)
    assert (zh.encoding, [len(p) for p in zh.parts]) == (Encoding.UCS2, [67, 23])
    en = segment("a" * 200)
    assert (en.encoding, [len(p) for p in en.parts]) == (Encoding.GSM7, [153, 47])
    assert segment("a" * 160).count == 1
    assert segment("a" * 161).count == 2
    assert segment("会" * 70).count == 1
    assert segment("会" * 71).count == 2


def test_an_escape_at_the_boundary_moves_whole_into_the_next_part() -> None:
    # aiosmpplib's split counts characters: this first part would be 154 septets there.
    seg = segment("a" * 152 + "€" + "b" * 10)
    assert [text_units(p, Encoding.GSM7) for p in seg.parts] == [152, 12]
    assert seg.parts[1].startswith("€")


def test_a_surrogate_pair_at_the_boundary_moves_whole() -> None:
    seg = segment("会" * 66 + "😀" + "会" * 5)
    assert seg.parts == ("会" * 66, "😀" + "会" * 5)
    assert [text_units(p, Encoding.UCS2) for p in seg.parts] == [66, 7]


def test_one_chinese_character_makes_the_message_ucs2() -> None:
    assert segment("Meeting at 10:00 in 会议室").encoding is Encoding.UCS2


def test_empty_and_too_long_texts_are_refused() -> None:
    with pytest.raises(SmsTooLong):
        segment("")
    assert segment("a" * 153 * MAX_PARTS).count == MAX_PARTS
    with pytest.raises(SmsTooLong, match="256 parts"):
        segment("a" * (153 * MAX_PARTS + 1))


def test_udh_and_payloads_of_a_two_part_message() -> None:
    parts = pdus(segment("会" * 90), 0x2A)
    assert [p.short_message[:6].hex() for p in parts] == ["0500032a0201", "0500032a0202"]
    assert all(p.udhi and p.data_coding == 8 for p in parts)
    assert [len(p.short_message) - 6 for p in parts] == [134, 46]
    single = pdus(segment("hello"), 1)
    assert (single[0].udhi, single[0].short_message) == (False, b"hello")


def test_preview_counts_the_signature() -> None:
    # N12: a 68-character Chinese text plus 【云会】 is 72 UCS-2 units: two parts.
    shown = preview("通" * 68, "【云会】")
    assert (shown.characters, shown.encoding, shown.parts, shown.part_limit) == (72, Encoding.UCS2, 2, 67)
    assert preview("通" * 66, "【云会】").parts == 1


@settings(max_examples=300, deadline=None)
@given(gsm_text)
def test_gsm7_parts_concatenate_back_and_respect_the_limits(text: str) -> None:
    seg = segment(text)
    assert seg.encoding is Encoding.GSM7
    assert "".join(seg.parts) == text
    sizes = [text_units(p, Encoding.GSM7) for p in seg.parts]
    assert sum(sizes) == seg.units == text_units(text, Encoding.GSM7)
    if seg.count == 1:
        assert seg.units <= 160
    else:
        assert seg.units > 160
        assert all(0 < size <= 153 for size in sizes)
        # Greedy: a part ends early only by the one septet an escape pair could not fit in.
        assert all(size >= 152 for size in sizes[:-1])
    for pdu, part in zip(pdus(seg, 7), seg.parts, strict=True):
        body = pdu.short_message[6:] if pdu.udhi else pdu.short_message
        assert decode_text(body, Encoding.GSM7) == part
        # No part ends with a lone escape octet: the escape and its code travel together.
        assert not body.endswith(b"\x1b")


@settings(max_examples=200, deadline=None)
@given(basic_text)
def test_without_escapes_the_part_count_is_the_carriers_rule(text: str) -> None:
    n = len(text)
    assert segment(text).count == (1 if n <= 160 else math.ceil(n / 153))


@settings(max_examples=300, deadline=None)
@given(wide_text)
def test_ucs2_parts_concatenate_back_and_never_split_a_surrogate_pair(text: str) -> None:
    seg = segment(text)
    assert seg.encoding is Encoding.UCS2
    assert "".join(seg.parts) == text
    sizes = [text_units(p, Encoding.UCS2) for p in seg.parts]
    assert sum(sizes) == len(text.encode("utf-16-be")) // 2
    if seg.count == 1:
        assert seg.units <= 70
    else:
        assert all(0 < size <= 67 for size in sizes)
        assert all(size >= 66 for size in sizes[:-1])
    for pdu, part in zip(pdus(seg, 9), seg.parts, strict=True):
        body = pdu.short_message[6:] if pdu.udhi else pdu.short_message
        # Each part's octets decode on their own: no half of a pair at either end.
        assert body.decode("utf-16-be") == part
        parsed = parse_short_message(pdu.short_message, data_coding=8, udhi=pdu.udhi)
        assert (parsed.text, parsed.seq, parsed.total) == (part, pdu.seq, seg.count)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=71, max_size=900))
def test_chinese_part_count_is_the_carriers_rule(text: str) -> None:
    assert segment(text).count == math.ceil(len(text) / 67)


def test_gsm_alphabet_round_trip_and_unit_sizes() -> None:
    assert decode_text(encode_text(GSM_CHARS + EXTENSION_CHARS, Encoding.GSM7), Encoding.GSM7) == (
        GSM_CHARS + EXTENSION_CHARS
    )
    assert char_units("€", Encoding.GSM7) == 2
    assert char_units("a", Encoding.GSM7) == 1
    assert char_units("😀", Encoding.UCS2) == 2
    with pytest.raises(ValueError, match=r"GSM 03\.38"):
        encode_text("会", Encoding.GSM7)
