from __future__ import annotations

import pytest

from web.i18n import LANGUAGES, catalogue, negotiate


def test_catalogues_have_the_same_keys() -> None:
    keys = [set(catalogue(language)) for language in LANGUAGES]
    assert all(k == keys[0] for k in keys)
    assert all(value.strip() for language in LANGUAGES for value in catalogue(language).values())


@pytest.mark.parametrize(
    ("header", "requested", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", None, "zh-CN"),
        ("en;q=0.5,zh-TW;q=0.9", None, "zh-CN"),
        ("fr-FR,en;q=0.8", None, "en"),
        ("de", None, "en"),
        (None, None, "en"),
        ("zh-CN", "en", "en"),
        ("en;q=bogus,zh", None, "zh-CN"),
    ],
)
def test_negotiate(header: str | None, requested: str | None, expected: str) -> None:
    assert negotiate(header, requested) == expected
