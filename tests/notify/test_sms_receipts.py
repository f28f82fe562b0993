"""Reading deliver_sm (N5, N8): receipts per part from the Appendix B text and the TLVs, MO opt-out words."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import smpp34

from notify.receipts import (
    MalformedPdu,
    MoMessage,
    Receipt,
    ReceiptState,
    classify,
    is_opt_out,
    normalize_number,
    receipt_fields,
)


def deliver(
    text: bytes, *, esm_class: int = 0x04, tlvs: list[smpp34.Tlv] | None = None, **kw: object
) -> bytes:
    pdu = smpp34.DeliverSm(
        "8613800138000",
        "10690000",
        text,
        esm_class=esm_class,
        tlvs=tlvs or [],
        **kw,  # type: ignore[arg-type]
    )
    return pdu.encode()


def test_an_appendix_b_text_receipt() -> None:
    text = (
        b"id:0a1b sub:001 dlvrd:001 submit date:2612031014 done date:2612031015 stat:DELIVRD err:000 text:hi"
    )
    receipt = classify(deliver(text), default_country_code="86")
    assert receipt == Receipt(
        "0a1b", ReceiptState.DELIVERED, "DELIVRD", None, datetime(2026, 12, 3, 10, 15, tzinfo=UTC)
    )


def test_tlvs_win_over_the_text() -> None:
    tlvs = [smpp34.Tlv(0x001E, b"77\x00"), smpp34.Tlv(0x0427, bytes([5]))]
    receipt = classify(deliver(b"id:99 stat:DELIVRD err:000", tlvs=tlvs), default_country_code="86")
    assert isinstance(receipt, Receipt)
    assert (receipt.message_id, receipt.state, receipt.stat, receipt.error) == (
        "77",
        ReceiptState.FAILED,
        "UNDELIV",
        "UNDELIV",
    )


@pytest.mark.parametrize(
    ("stat", "state"),
    [
        ("DELIVRD", ReceiptState.DELIVERED),
        ("UNDELIV", ReceiptState.FAILED),
        ("REJECTD", ReceiptState.FAILED),
        ("EXPIRED", ReceiptState.FAILED),
        ("DELETED", ReceiptState.FAILED),
        ("ACCEPTD", ReceiptState.UNKNOWN),
        ("UNKNOWN", ReceiptState.UNKNOWN),
        ("ENROUTE", ReceiptState.ENROUTE),
        ("WHATEVER", ReceiptState.UNKNOWN),
    ],
)
def test_stat_words_map_to_states(stat: str, state: ReceiptState) -> None:
    receipt = classify(deliver(f"id:1 stat:{stat} err:012".encode()), default_country_code="86")
    assert isinstance(receipt, Receipt)
    assert receipt.state is state
    assert receipt.error == "012"


def test_twelve_digit_dates_and_a_receipt_without_id() -> None:
    receipt = classify(deliver(b"id:5 done date:261203101530 stat:DELIVRD"), default_country_code="86")
    assert isinstance(receipt, Receipt)
    assert receipt.done_at == datetime(2026, 12, 3, 10, 15, 30, tzinfo=UTC)
    assert receipt_fields("id:5 stat:X text:a b:c") == {"id": "5", "stat": "X", "text": "a b:c"}
    assert classify(deliver(b"stat:DELIVRD"), default_country_code="86") is None


def test_an_mo_message_and_its_sender() -> None:
    mo = classify(
        deliver("退订".encode("utf-16-be"), esm_class=0, data_coding=8, source_addr_ton=1),
        default_country_code="86",
    )
    assert mo == MoMessage("+8613800138000", "退订")
    assert mo.is_opt_out


def test_opt_out_words() -> None:
    for word in ("TD", "td", " T ", "STOP", "stop.", "退订", "ＴＤ", "退订。"):
        assert is_opt_out(word), word
    for word in ("", "TDX", "hello", "不退订了", "1"):
        assert not is_opt_out(word), word


def test_numbers_become_e164() -> None:
    assert normalize_number("8613800138000", 1, "86") == "+8613800138000"
    assert normalize_number("13800138000", 0, "86") == "+8613800138000"
    assert normalize_number("8613800138000", 0, "86") == "+8613800138000"
    assert normalize_number("+447700900123", 0, "86") == "+447700900123"


def test_broken_pdus_are_refused_cleanly() -> None:
    good = deliver(b"id:1 stat:DELIVRD")
    for broken in (b"", good[:10], good[:-3], good[:16] + b"\x01" * 5):
        with pytest.raises(MalformedPdu):
            classify(broken, default_country_code="86")
