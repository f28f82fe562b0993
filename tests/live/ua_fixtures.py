"""User-Agent strings of the devices the statistics classify (captured from the real apps and browsers)."""

from __future__ import annotations

WECHAT_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 MicroMessenger/8.0.44(0x18002c2f) NetType/WIFI Language/zh_CN"
)
WECHAT_ANDROID = (
    "Mozilla/5.0 (Linux; Android 13; V2154A Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160027 "
    "MMWEBSDK/20231105 MMWEBID/2833 "
    "MicroMessenger/8.0.44.2502(0x28002C37) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64"
)
WECOM_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/53.0.2785.116 "
    "Safari/537.36 QBCore/4.0.1326.400 QQBrowser/9.0.2524.400 NetType/WIFI "
    "MicroMessenger/7.0.20.1781(0x6700143B) WindowsWechat(0x63090719) XWEB/8555 wxwork/4.1.16 "
    "(MicroMessenger/6.2) WeChat/2.0.4"
)
DINGTALK_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 AliApp(DingTalk/7.0.40) com.laiwang.DingTalk/30213766 Channel/201200 language/zh-Hans-CN"
)
EDGE_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36 Edg/120.0.2210.91"
)
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
    "Safari/605.1.15"
)
SAFARI_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
    "Mobile/15E148 Safari/604.1"
)
CHROME_ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 12; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36"
)
CHROME_ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Mobile Safari/537.36"
)

# (user agent, device class, browser, os)
FIXTURES = [
    (WECHAT_IOS, "phone", "WeChat", "iOS"),
    (WECHAT_ANDROID, "phone", "WeChat", "Android"),
    (WECOM_WINDOWS, "desktop", "WeCom", "Windows"),
    (DINGTALK_IOS, "phone", "DingTalk", "iOS"),
    (EDGE_WINDOWS, "desktop", "Edge", "Windows"),
    (SAFARI_MAC, "desktop", "Safari", "Mac OS X"),
    (SAFARI_IPAD, "tablet", "Safari", "iOS"),
    (CHROME_ANDROID_TABLET, "tablet", "Chrome", "Android"),
    (CHROME_ANDROID_PHONE, "phone", "Chrome", "Android"),
    ("", "other", "Other", "Other"),
    ("curl/8.5.0", "other", "curl", "Other"),
]
