"""SMS templates (N12): `${var}` declared with maximum lengths, both locales, checked at save time; the
preview counts the longest text with the signature."""

from __future__ import annotations

import pytest

from notify.sms import Encoding
from notify.sms_templates import (
    SHIPPED,
    SHIPPED_VARIABLES,
    TemplateProblem,
    Variable,
    names_in,
    parse_variables,
    preview_template,
    render,
    render_message,
    validate,
)

DECLARED = (Variable("name", 10), Variable("start", 16))
TEXTS = {"zh-CN": "${name}您好，会议${start}开始", "en": "Hi ${name}, the meeting starts ${start}"}


def test_a_valid_template_passes() -> None:
    assert validate(TEXTS, DECLARED) == TEXTS


@pytest.mark.parametrize(
    ("texts", "field", "message"),
    [
        (
            {"zh-CN": "会议${start}开始 ${room}", "en": "${start} ${name}"},
            "texts.zh-CN",
            "${room} is not a declared",
        ),
        ({"zh-CN": "${name}${start}"}, "texts.en", "every locale"),
        ({"zh-CN": "${name}${start}", "en": "  "}, "texts.en", "every locale"),
        ({"zh-CN": "${name}${start}", "en": "${name} ${start"}, "texts.en", "must look like"),
        ({"zh-CN": "${name}${start}", "en": "${name}${start}", "fr": "x"}, "texts.fr", "unknown locale"),
        ({"zh-CN": "${name}", "en": "${name}"}, "variables", "start is declared but no text uses it"),
    ],
)
def test_a_bad_template_is_refused_naming_the_field(texts: dict[str, str], field: str, message: str) -> None:
    with pytest.raises(TemplateProblem) as caught:
        validate(texts, DECLARED)
    assert caught.value.field == field
    assert message in caught.value.message


def test_declared_variables_are_checked() -> None:
    assert parse_variables(["a", {"name": "b", "max_length": 5}]) == (Variable("a", 40), Variable("b", 5))
    for raw, field in [
        ("x", "variables"),
        ([{"name": "1x"}], "variables[0].name"),
        ([{"name": "a", "max_length": 0}], "variables[0].max_length"),
        ([{"name": "a", "max_length": True}], "variables[0].max_length"),
        (["a", "a"], "variables[1].name"),
        ([3], "variables[0]"),
    ]:
        with pytest.raises(TemplateProblem) as caught:
            parse_variables(raw)
        assert caught.value.field == field


def test_preview_uses_the_longest_values_in_the_texts_alphabet() -> None:
    shown = {p.locale: p for p in preview_template(TEXTS, DECLARED, signature="【云会】")}
    # zh: 4 + 10 + 5 + 16 + 2 = 37 UCS-2 units; en keeps GSM-7 with an ASCII signature.
    assert (shown["zh-CN"].preview.encoding, shown["zh-CN"].preview.units, shown["zh-CN"].preview.parts) == (
        Encoding.UCS2,
        37,
        1,
    )
    en = preview_template(TEXTS, DECLARED, signature="Yunhui: ")[1]
    assert (en.preview.encoding, en.preview.parts) == (Encoding.GSM7, 1)
    sample = preview_template(TEXTS, DECLARED, signature="", sample={"name": "李", "start": "10:00"})
    assert sample[0].text == "李您好，会议10:00开始"


def test_a_template_that_cannot_be_sent_is_refused_at_preview() -> None:
    with pytest.raises(TemplateProblem, match="parts"):
        # 1,000 characters plus 40 × 500 at most: 21,000 UCS-2 units, 314 parts.
        preview_template({"zh-CN": "字" * 1000 + "${x}" * 40}, (Variable("x", 500),), signature="")


def test_render_and_the_shipped_reminder() -> None:
    assert render("Hi ${name}", {"name": "Li"}) == "Hi Li"
    with pytest.raises(KeyError):
        render("Hi ${name}", {})
    variables = {
        "title": "周会",
        "start": "2026-12-03 10:00",
        "minutes_before": 15,
        "meeting_number": "12345678",
        "passcode": "1234",
        "join_url": "https://meet.example.com/m/12345678",
    }
    for locale in ("zh-CN", "en"):
        assert set(names_in(SHIPPED["reminder"][locale])) == {v.name for v in SHIPPED_VARIABLES["reminder"]}
        validate(SHIPPED["reminder"], SHIPPED_VARIABLES["reminder"])
    assert "周会" in render_message("reminder", "zh-CN", variables)
    assert render_message("reminder", "en", variables).startswith('Your meeting "周会"')
    assert render_message("custom", "en", {"text": "Hello"}) == "Hello"
