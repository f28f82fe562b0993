"""The zh-CN and en catalogues agree, cover every key and protocol value the UI shows, and the UI code has
no untranslated literal text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from signaling.errors import RefusalCode
from signaling.messages import EndReason, Reaction, Role, Source
from web.i18n import LANGUAGES
from web.i18n import catalogue as web_catalogue

WEB = Path(__file__).resolve().parents[2] / "web"
STATIC = WEB / "static"
PLACEHOLDER = re.compile(r"\{(\w+)\}")
# t("key") and t(`key`) with a literal key; t(`prefix.${expr}`) is a dynamic key checked by prefix below.
LITERAL_KEY = re.compile(r"\bt\(\s*([\"'`])([\w.\-]+)\1")
DYNAMIC_KEY = re.compile(r"\bt\(\s*`([\w.\-]*)\$\{")
VISIBLE_ATTRIBUTES = re.compile(r"\b(aria-label|title|placeholder|alt|label)\s*=\s*([\"'])(.*?)\2", re.S)
VISIBLE_CALLS = re.compile(r"\b(confirm|alert|prompt|setNotice|setError|ErrorBox error=)\(\s*[\"'`]")


def catalogue(language: str) -> dict[str, str]:
    # The catalogue as served: the base file and every feature's part (web/i18n/<part>.<language>.json).
    return web_catalogue(language)


def ui_modules() -> list[Path]:
    """Every UI module: the SDK has no visible text (its errors are codes), node_modules is not ours."""
    return sorted(
        p
        for p in STATIC.rglob("*.js")
        if "node_modules" not in p.parts and "sdk" not in p.relative_to(STATIC).parts
    )


def all_modules() -> list[Path]:
    return sorted(p for p in STATIC.rglob("*.js") if "node_modules" not in p.parts)


def _skip_string(src: str, i: int) -> int:
    """Index just past the string literal starting at src[i] (a quote or a backtick)."""
    quote = src[i]
    i += 1
    while i < len(src):
        c = src[i]
        if c == "\\":
            i += 2
            continue
        if c == quote:
            return i + 1
        if quote == "`" and src.startswith("${", i):
            i = _skip_expression(src, i + 2)
            continue
        i += 1
    raise ValueError("unterminated string")


def _skip_expression(src: str, i: int) -> int:
    """Index just past the `}` closing a `${` expression whose body starts at src[i]."""
    depth = 1
    while i < len(src):
        c = src[i]
        if c in "\"'`":
            i = _skip_string(src, i)
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError("unterminated expression")


def template_static_text(src: str) -> list[str]:
    """The static parts of every html`...` template in a module, with each ${...} replaced by a marker."""
    parts: list[str] = []
    for match in re.finditer(r"\bhtml`", src):
        i = match.end()
        buffer: list[str] = []
        while i < len(src) and src[i] != "`":
            if src[i] == "\\":
                buffer.append(src[i : i + 2])
                i += 2
            elif src.startswith("${", i):
                buffer.append("\x00")
                i = _skip_expression(src, i + 2)
            else:
                buffer.append(src[i])
                i += 1
        parts.append("".join(buffer))
    return parts


def untranslated(src: str) -> list[str]:
    """Literal visible text: text between tags, visible attributes and user-facing calls with a string."""
    found: list[str] = []
    for text in template_static_text(src):
        without_tags = re.sub(r"<[^>]*>", "\x00", text)
        for chunk in without_tags.split("\x00"):
            if any(ch.isalpha() for ch in chunk):
                found.append(chunk.strip())
        for tag in re.findall(r"<[^>]*>", text):
            for _, _, value in VISIBLE_ATTRIBUTES.findall(tag):
                if any(ch.isalpha() for ch in value):
                    found.append(value)
    found.extend(m.group(0) for m in VISIBLE_CALLS.finditer(src))
    return found


def test_both_catalogues_have_the_same_keys() -> None:
    en, zh = catalogue("en"), catalogue("zh-CN")
    assert set(LANGUAGES) == {"en", "zh-CN"}
    assert sorted(set(en) - set(zh)) == []
    assert sorted(set(zh) - set(en)) == []


def test_translations_are_filled_in_and_keep_their_placeholders() -> None:
    en, zh = catalogue("en"), catalogue("zh-CN")
    for key in en:
        assert en[key].strip(), key
        assert zh[key].strip(), key
        assert set(PLACEHOLDER.findall(en[key])) == set(PLACEHOLDER.findall(zh[key])), key


def test_chinese_catalogue_is_chinese() -> None:
    # A copy-pasted English string in zh-CN would pass the key test; most strings must carry CJK characters.
    zh = catalogue("zh-CN")
    cjk = [k for k, v in zh.items() if re.search(r"[\u4e00-\u9fff]", v)]
    assert len(cjk) / len(zh) > 0.85


def test_every_literal_key_used_by_the_ui_exists() -> None:
    en = catalogue("en")
    used = {key for path in all_modules() for _, key in LITERAL_KEY.findall(path.read_text("utf-8"))}
    assert len(used) > 150
    assert sorted(used - set(en)) == []


def test_every_dynamic_key_prefix_has_entries() -> None:
    en = catalogue("en")
    prefixes = {prefix for path in all_modules() for prefix in DYNAMIC_KEY.findall(path.read_text("utf-8"))}
    assert prefixes, "the scanner found no dynamic keys; has the t() call style changed?"
    for prefix in prefixes:
        assert any(key.startswith(prefix) for key in en), prefix


@pytest.mark.parametrize(
    ("prefix", "values"),
    [
        ("refusal.", [c.value for c in RefusalCode]),
        ("ended.", [r.value for r in EndReason] + ["removed", "rejected"]),
        ("role.", [r.value for r in Role]),
        ("reaction.", [r.value for r in Reaction]),
        ("notice.moderator_", [s.value for s in Source]),
        ("quality.", ["good", "fair", "poor"]),
        ("prejoin.media_", ["denied", "missing", "failed"]),
        ("language.", list(LANGUAGES)),
    ],
)
def test_protocol_values_shown_to_users_are_translated(prefix: str, values: list[str]) -> None:
    for language in LANGUAGES:
        data = catalogue(language)
        assert [v for v in values if f"{prefix}{v}" not in data] == [], language


def test_ui_modules_have_no_untranslated_literal_text() -> None:
    modules = ui_modules()
    assert len(modules) >= 10
    problems = {str(p.relative_to(STATIC)): untranslated(p.read_text("utf-8")) for p in modules}
    assert {name: found for name, found in problems.items() if found} == {}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("html`<p>Hello</p>`", ["Hello"]),
        ("html`<p>${t('a.b')}</p>`", []),
        ('html`<button aria-label="Close">${x}</button>`', ["Close"]),
        ("html`<b title=${t('x')}>${cond ? html`<i>Nested text</i>` : null}</b>`", ["Nested text"]),
        ("html`<span>${a} · ${b} — 42</span>`", []),
        ("confirm('Really?')", ["confirm('"]),
        ("const s = `not a template ${1}`;", []),
    ],
)
def test_the_literal_scanner_finds_what_it_should(source: str, expected: list[str]) -> None:
    assert untranslated(source) == expected
