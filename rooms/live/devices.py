"""Viewers' devices from the User-Agent: ua-parser's rules, plus ours for the Chinese in-app browsers."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from ua_parser import parse

# WeChat, WeCom (企业微信) and DingTalk embed a browser that ua-parser reports as the engine under it (Android
# WeChat is "Chrome Mobile WebView"); their own token names the app. WeCom also carries MicroMessenger, so it
# is tried first.
IN_APP = (
    ("WeCom", re.compile(r"\bwxwork/", re.IGNORECASE)),
    ("DingTalk", re.compile(r"\bDingTalk/", re.IGNORECASE)),
    ("WeChat", re.compile(r"\bMicroMessenger/", re.IGNORECASE)),
)
TABLET = re.compile(r"iPad|Tablet|Tab\b|SM-T\d|Kindle|Silk/|PlayBook|MatePad|MI PAD|Pad\b", re.IGNORECASE)
PHONE = re.compile(r"iPhone|iPod|Mobile|Windows Phone|HarmonyOS.*Phone", re.IGNORECASE)
BOT = re.compile(r"bot\b|spider|crawl|curl/|python-|aiohttp|Go-http-client|Wget", re.IGNORECASE)
DESKTOP_OS = frozenset({"Windows", "Mac OS X", "macOS", "Linux", "Ubuntu", "Chrome OS", "Fedora", "Debian"})
UA_LIMIT = 500


@dataclass(frozen=True)
class Device:
    device_class: str  # desktop, phone, tablet, other
    browser: str  # e.g. WeChat, WeCom, DingTalk, Edge, Safari, Chrome
    os: str  # e.g. iOS, Android, Windows, Mac OS X


@functools.lru_cache(maxsize=2048)
def classify(user_agent: str) -> Device:
    """The device of one User-Agent header (parsed once per viewer session; repeated agents are cached)."""
    ua = user_agent[:UA_LIMIT]
    if not ua.strip():
        return Device("other", "Other", "Other")
    result = parse(ua)
    os_name = result.os.family if result.os is not None else "Other"
    browser = result.user_agent.family if result.user_agent is not None else "Other"
    for name, token in IN_APP:
        if token.search(ua):
            browser = name
            break
    else:
        browser = _plain_browser(browser)
    device_family = result.device.family if result.device is not None else ""
    return Device(_device_class(ua, os_name, device_family), browser[:40], os_name[:40])


def _plain_browser(family: str) -> str:
    # "Mobile Safari" and "Safari" are one browser to an event organiser, as are Chrome and Chrome Mobile.
    for short in ("Edge", "Safari", "Chrome", "Firefox", "Opera", "UC Browser", "QQ Browser"):
        if family.startswith(short) or family.endswith(short) or family == f"{short} Mobile":
            return short
    return family


def _device_class(ua: str, os_name: str, device_family: str) -> str:
    if BOT.search(ua) or device_family == "Spider":
        return "other"
    if device_family == "iPad" or TABLET.search(ua):
        return "tablet"
    if os_name == "Android":
        # Android phones say "Mobile"; Android tablets do not.
        return "phone" if "Mobile" in ua else "tablet"
    if os_name in ("iOS", "Windows Phone") or PHONE.search(ua):
        return "phone"
    if os_name in DESKTOP_OS:
        return "desktop"
    return "other"
