"""The pre-join page in real Chromium: preview, level meter, devices, language; zh-CN and en screenshots."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import Page

from tests.browser.conftest import UNNAMED_CONTROLS, artifact
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def open_prejoin(new_context: Callable[..., Any], site: RunningServer, locale: str) -> Page:
    context = await new_context(locale=locale)
    page: Page = await context.new_page()
    await page.goto(f"{site.url}/m/123456789")
    await page.wait_for_selector("#join:enabled")
    return page


@pytest.mark.parametrize(
    ("locale", "language", "join_text", "title_text"),
    [("zh-CN", "zh-CN", "加入会议", "准备好加入了吗？"), ("en-US", "en", "Join meeting", "Ready to join?")],
)
async def test_prejoin_page_renders_in_the_browser_language(
    *,
    new_context: Callable[..., Any],
    site: RunningServer,
    locale: str,
    language: str,
    join_text: str,
    title_text: str,
) -> None:
    page = await open_prejoin(new_context, site, locale)
    assert await page.locator("html").get_attribute("lang") == language
    assert (await page.inner_text("#join")).strip() == join_text
    assert (await page.inner_text("h2")).strip() == title_text
    body = await page.inner_text("body")
    assert "prejoin." not in body and "ui." not in body  # no raw catalogue keys leak
    # The camera preview plays and the fake devices are listed in the pickers.
    await page.wait_for_function("document.querySelector('.preview video').videoWidth > 0")
    assert "fake_device_0" in await page.inner_text("#pick-camera")
    assert await page.locator("#pick-mic option").count() >= 1
    # The fake microphone beeps about once a second: the level meter must move.
    await page.wait_for_function(
        "Number(document.querySelector('[role=meter]').getAttribute('aria-valuenow')) > 5", timeout=5000
    )
    assert await page.evaluate(UNNAMED_CONTROLS) == []
    await page.screenshot(path=artifact(f"prejoin-{language}.png"))


async def test_language_switch_changes_the_page_and_is_remembered(
    new_context: Callable[..., Any], site: RunningServer
) -> None:
    page = await open_prejoin(new_context, site, "zh-CN")
    assert (await page.inner_text("#join")).strip() == "加入会议"
    await page.select_option(".language-switch select", "en")
    assert (await page.inner_text("#join")).strip() == "Join meeting"
    assert await page.locator("html").get_attribute("lang") == "en"
    await page.reload()
    await page.wait_for_selector("#join:enabled")
    assert (await page.inner_text("#join")).strip() == "Join meeting"


async def test_camera_toggle_and_name_are_keyboard_operable(
    new_context: Callable[..., Any], site: RunningServer
) -> None:
    page = await open_prejoin(new_context, site, "en-US")
    camera = page.get_by_role("button", name="Stop video")
    await camera.focus()
    await page.keyboard.press("Enter")
    assert await page.get_by_role("button", name="Start video").get_attribute("aria-pressed") == "true"
    await page.wait_for_selector(".preview-off")
    await page.get_by_label("Your name").fill("Ada")
    assert await page.input_value("#display-name") == "Ada"
