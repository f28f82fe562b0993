"""Regenerate the IVR's prompts: ``python signaling/sip/prompts/make_prompts.py`` (espeak-ng, ffmpeg).

Run by hand when a text changes; the results are shipped, so neither tool is needed at runtime. Each prompt
is 16 kHz mono Ogg Opus (a few kB; WAV would be ~30 kB a second): wideband for G.722 and Opus terminals,
downsampled for G.711 at start (signaling/sip/ivr.py).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
VOICES = {"zh-CN": "cmn", "en": "en-us"}

# Keys are the names signaling/sip/ivr.py plays. Keep both languages of a prompt short: a room waits.
TEXTS: dict[str, dict[str, str]] = {
    "welcome": {
        "zh-CN": "欢迎使用云会。请输入会议号，并按井号键结束。",
        "en": "Welcome to Yunhui. Please enter the meeting number, then press pound.",
    },
    "passcode": {
        "zh-CN": "请输入会议密码，并按井号键结束。",
        "en": "Please enter the meeting passcode, then press pound.",
    },
    "unknown_meeting": {
        "zh-CN": "没有找到这个会议号，请重新输入。",
        "en": "That meeting number was not found. Please try again.",
    },
    "wrong_passcode": {
        "zh-CN": "密码不正确，请重新输入。",
        "en": "That passcode is not correct. Please try again.",
    },
    "lobby": {
        "zh-CN": "请稍候，主持人将很快让您入会。",
        "en": "Please wait. The host will let you in shortly.",
    },
    "joining": {"zh-CN": "正在加入会议。", "en": "Joining the meeting."},
    "not_open": {"zh-CN": "会议尚未开放。", "en": "This meeting is not open yet."},
    "closed": {"zh-CN": "会议已经结束。", "en": "This meeting has ended."},
    "full": {"zh-CN": "会议人数已满。", "en": "This meeting is full."},
    "locked": {"zh-CN": "会议已被锁定。", "en": "This meeting is locked."},
    "try_later": {"zh-CN": "尝试次数过多，请稍后再试。", "en": "Too many attempts. Please try again later."},
    "goodbye": {"zh-CN": "再见。", "en": "Goodbye."},
}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for key, texts in TEXTS.items():
            for language, text in texts.items():
                wav = Path(tmp) / f"{key}.{language}.wav"
                subprocess.run(
                    ["espeak-ng", "-v", VOICES[language], "-s", "150", "-w", str(wav), text], check=True
                )
                out = HERE / f"{key}.{language}.opus"
                argv = ["ffmpeg", "-y", "-loglevel", "error", "-i", str(wav), "-ac", "1", "-ar", "16000"]
                argv += [
                    "-c:a",
                    "libopus",
                    "-b:a",
                    "16k",
                    "-application",
                    "voip",
                    "-map_metadata",
                    "-1",
                    str(out),
                ]
                subprocess.run(argv, check=True)


if __name__ == "__main__":
    main()
