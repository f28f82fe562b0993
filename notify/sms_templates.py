"""SMS templates: `${name}` variables as the carriers' template SMS use them, declared with maximum lengths.

A template is checked when it is saved, never at send time: every locale is present, every `${…}` is
declared (and well formed), every declared variable is used somewhere. Its preview counts the parts of the
longest text it can produce (each variable at its maximum length) with the signature. Pure functions only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from notify.sms import Preview, SmsTooLong, preview

LOCALES = ("zh-CN", "en")
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]{0,39})\}")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")
MAX_TEXT = 1000
MAX_VARIABLE_LENGTH = 500


class TemplateProblem(ValueError):
    """A template that cannot be saved; `field` names the offending part (texts.en, variables[1].name…)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Variable:
    name: str
    max_length: int = 40


# Shipped texts; an account (or the platform) may override them per locale in notification_templates.
REMINDER_VARIABLES = (
    Variable("title", 40),
    Variable("start", 16),
    Variable("meeting_number", 12),
    Variable("passcode", 12),
    Variable("join_url", 80),
    Variable("minutes_before", 4),
)
SHIPPED: dict[str, dict[str, str]] = {
    "reminder": {
        "zh-CN": "您的会议“${title}”将于${start}开始（${minutes_before}分钟后），会议号${meeting_number}，"
        "密码${passcode}。入会：${join_url} 回TD退订",
        "en": 'Your meeting "${title}" starts at ${start} (in ${minutes_before} min), number '
        "${meeting_number}, passcode ${passcode}. Join: ${join_url} Reply TD to opt out",
    },
}
SHIPPED_VARIABLES: dict[str, tuple[Variable, ...]] = {"reminder": REMINDER_VARIABLES}


def names_in(text: str) -> list[str]:
    return [match.group(1) for match in VARIABLE.finditer(text)]


def _check_syntax(text: str, field: str) -> None:
    # Whatever is left after removing the well-formed variables must hold no "${".
    if "${" in VARIABLE.sub("", text):
        raise TemplateProblem(field, "a variable must look like ${name} (letters, digits, _)")


def parse_variables(raw: object) -> tuple[Variable, ...]:
    """Declared variables from JSON: a list of {"name": ..., "max_length": ...} (or of bare names)."""
    if not isinstance(raw, list):
        raise TemplateProblem("variables", "must be a list")
    out: list[Variable] = []
    for i, item in enumerate(raw):
        name: object
        length: object = 40
        if isinstance(item, str):
            name = item
        elif isinstance(item, Mapping):
            name, length = item.get("name"), item.get("max_length", 40)
        else:
            raise TemplateProblem(f"variables[{i}]", "must be a name or {name, max_length}")
        if not isinstance(name, str) or not NAME.match(name):
            raise TemplateProblem(f"variables[{i}].name", "letters, digits and _, starting with a letter")
        if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= MAX_VARIABLE_LENGTH:
            raise TemplateProblem(f"variables[{i}].max_length", f"an integer from 1 to {MAX_VARIABLE_LENGTH}")
        if any(v.name == name for v in out):
            raise TemplateProblem(f"variables[{i}].name", f"{name} is declared twice")
        out.append(Variable(name, length))
    return tuple(out)


def validate(texts: Mapping[str, object], declared: Sequence[Variable]) -> dict[str, str]:
    """The texts of a template that may be saved, per locale; raises TemplateProblem naming the field."""
    unknown = sorted(set(texts) - set(LOCALES))
    if unknown:
        raise TemplateProblem(f"texts.{unknown[0]}", f"unknown locale; the locales are {', '.join(LOCALES)}")
    names = {v.name for v in declared}
    used: set[str] = set()
    out: dict[str, str] = {}
    for locale in LOCALES:
        field = f"texts.{locale}"
        text = texts.get(locale)
        if not isinstance(text, str) or not text.strip():
            raise TemplateProblem(field, "every locale needs a text (zh-CN and en)")
        if len(text) > MAX_TEXT:
            raise TemplateProblem(field, f"at most {MAX_TEXT} characters")
        _check_syntax(text, field)
        for name in names_in(text):
            if name not in names:
                raise TemplateProblem(field, f"${{{name}}} is not a declared variable")
            used.add(name)
        out[locale] = text
    for variable in declared:
        if variable.name not in used:
            raise TemplateProblem("variables", f"{variable.name} is declared but no text uses it")
    return out


def render(text: str, values: Mapping[str, Any]) -> str:
    """Fill the variables; a missing one is a KeyError (the template was validated, the values were not)."""

    def fill(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        return "" if value is None else str(value)

    return VARIABLE.sub(fill, text)


def longest(text: str, declared: Sequence[Variable], sample: Mapping[str, Any] | None = None) -> str:
    """The text with each variable at its maximum length (or the admin's sample value, when given).

    The filler is a character of the text's own alphabet, so a GSM-7 text stays GSM-7 and a Chinese one is
    counted in UCS-2 units."""
    lengths = {v.name: v.max_length for v in declared}
    wide = any(ord(c) > 0x7F for c in VARIABLE.sub("", text))

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if sample and name in sample:
            return str(sample[name])
        return ("字" if wide else "x") * lengths.get(name, 40)

    return VARIABLE.sub(fill, text)


@dataclass(frozen=True)
class TemplatePreview:
    locale: str
    text: str
    preview: Preview


def preview_template(
    texts: Mapping[str, str],
    declared: Sequence[Variable],
    *,
    signature: str,
    sample: Mapping[str, Any] | None = None,
) -> list[TemplatePreview]:
    """Each locale's longest text and its part count with the signature; raises TemplateProblem past 255."""
    out = []
    for locale, text in texts.items():
        filled = longest(text, declared, sample)
        try:
            out.append(TemplatePreview(locale, filled, preview(filled, signature)))
        except SmsTooLong as exc:
            raise TemplateProblem(f"texts.{locale}", str(exc)) from None
    return out


def render_message(template_key: str, locale: str, variables: Mapping[str, Any]) -> str:
    """The text of an outbox SMS: its `text` (rendered when it was queued), else the shipped template."""
    text = variables.get("text")
    if isinstance(text, str) and text:
        return text
    texts = SHIPPED[template_key]
    return render(texts.get(locale) or texts["zh-CN"], variables)
