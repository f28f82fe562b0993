"""Wiring of the SMS platform: the SMPP channel on the outbox dispatcher, the SMS text service for web/,
account templates and opt-outs for the channel, and /metrics.

install() is the one call from create_app, after the notifications' install (it registers with their
dispatcher, which starts and closes the channel). The SMS text rules live in notify/ and web/ may not import
notify/ (import-linter), so web/ gets them here as an object on the API app (web.api.sms_schemas.SmsTexts).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from notify.channel import Message
from notify.smpp import SmppSender
from notify.smpp_settings import SmppSettings
from notify.sms import Preview, SmsTooLong
from notify.sms import preview as count_parts
from notify.sms_templates import (
    SHIPPED,
    SHIPPED_VARIABLES,
    TemplateProblem,
    parse_variables,
    preview_template,
    render,
    validate,
)
from rooms.database import Database
from rooms.sms import store, templates
from web.api.base import ApiError
from web.api.sms_schemas import (
    SMS_DAILY_CAP,
    SMS_SPACING,
    SMS_TEXTS,
    SmsPreviewOut,
    TemplateOut,
    TemplatePreviewOut,
    VariableIn,
)
from web.keys import METRICS
from yunhui.notifications import DISPATCHER
from yunhui.settings import Settings

log = logging.getLogger(__name__)

SMS_SENDER = web.AppKey("sms_sender", SmppSender)
Clock = Callable[[], datetime]


class SmsTexts:
    """notify's segmentation and ${var} rules as web/ needs them (web.api.sms_schemas.SmsTexts)."""

    def __init__(self, settings: SmppSettings) -> None:
        self._settings = settings

    def preview(self, text: str, locale: str) -> SmsPreviewOut:
        signature = self._settings.signature_for(locale)
        try:
            return self._out(count_parts(text, signature), signature)
        except SmsTooLong as exc:
            raise ApiError(422, "sms_too_long", f"text: {exc}", "text") from None

    def _out(self, shown: Preview, signature: str) -> SmsPreviewOut:
        return SmsPreviewOut(
            signature=signature,
            characters=shown.characters,
            encoding=shown.encoding.value,
            units=shown.units,
            parts=shown.parts,
            part_limit=shown.part_limit,
        )

    def check_template(
        self,
        texts: Mapping[str, str],
        variables: Sequence[Mapping[str, Any]],
        sample: Mapping[str, str] | None,
    ) -> list[TemplatePreviewOut]:
        try:
            declared = parse_variables(list(variables))
            out = []
            for locale, text in validate(texts, declared).items():
                signature = self._settings.signature_for(locale)
                item = preview_template({locale: text}, declared, signature=signature, sample=sample)[0]
                out.append(
                    TemplatePreviewOut(
                        locale=locale, text=item.text, preview=self._out(item.preview, signature)
                    )
                )
        except TemplateProblem as exc:
            raise ApiError(422, "invalid_template", str(exc), exc.field) from None
        return out

    def render(self, text: str, values: Mapping[str, str], field: str) -> str:
        try:
            return render(text, values)
        except KeyError as exc:
            raise ApiError(422, "invalid", f"{field}: no value for ${{{exc.args[0]}}}", field) from None

    def shipped(self) -> list[TemplateOut]:
        return [
            TemplateOut(
                key=key,
                texts=dict(texts),
                variables=[VariableIn(name=v.name, max_length=v.max_length) for v in SHIPPED_VARIABLES[key]],
                shipped=True,
            )
            for key, texts in sorted(SHIPPED.items())
        ]


class SmsCollector(Collector):
    """The SMS channel's counters at every scrape (no per-account labels)."""

    def __init__(self, sender: SmppSender) -> None:
        self._sender = sender

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self._sender.stats
        bound = GaugeMetricFamily("yunhui_smpp_bound", "1 while the SMPP transceiver bind is up")
        bound.add_metric([], 1 if self._sender.bound else 0)
        yield bound
        rate = GaugeMetricFamily(
            "yunhui_smpp_rate", "the submit rate the SMS channel allows now (per second)"
        )
        rate.add_metric([], self._sender.bucket.rate)
        yield rate
        for name, help_text, value in (
            ("submits", "submit_sm PDUs sent", stats.submitted),
            ("parts", "SMS parts the SMSC accepted", stats.accepted),
            ("throttled", "submits refused with ESME_RTHROTTLED or ESME_RMSGQFUL", stats.throttled),
            ("refused", "submits refused for good or with another error", stats.rejected),
            ("lost", "submits without an answer (their messages became unknown)", stats.lost),
            ("mo", "MO messages received", stats.mo),
            ("opt_outs", "MO opt-outs recorded", stats.opt_outs),
        ):
            family = CounterMetricFamily(f"yunhui_sms_{name}", help_text)
            family.add_metric([], value)
            yield family
        receipts = CounterMetricFamily("yunhui_sms_receipts", "delivery receipts by state", labels=["state"])
        for state, count in sorted(stats.receipts.items()):
            receipts.add_metric([state], count)
        yield receipts


def install(
    app: web.Application, api: web.Application, *, settings: Settings, database: Database, clock: Clock
) -> SmppSender | None:
    """The SMS text service for the API, and, when notify.smpp.host is set, the SMPP channel."""
    smpp = settings.notify.smpp
    api[SMS_TEXTS] = SmsTexts(smpp)
    api[SMS_SPACING] = 1.0 / smpp.tps
    api[SMS_DAILY_CAP] = smpp.daily_cap_per_number
    if not smpp.enabled:
        log.warning("notify.smpp.host is not set: SMS stays queued until it is configured")
        return None

    async def account_text(message: Message) -> str | None:
        # Rendered sends carry their text; reminders use the account's (or the platform's) own template.
        if "text" in message.variables:
            return None
        text = await templates.template_text(
            database, account_id=message.account_id, key=message.template_key, locale=message.locale
        )
        return None if text is None else render(text, message.variables)

    async def opt_out(number: str, words: str) -> None:
        await store.opt_out(database, number=number, text=words, now=clock())
        log.info("SMS opt-out from %s (%r)", number, words)

    sender = SmppSender(smpp, texts=account_text, opt_out=opt_out)
    app[SMS_SENDER] = sender
    app[DISPATCHER].register(sender)
    app[METRICS].register(SmsCollector(sender))
    return sender
