"""The SMS platform: real-time and batch sends, templates with a part-count preview, history, statistics.

Texts are counted and rendered by the SMS service the composition root puts on the app (SMS_TEXTS: notify's
segmentation and ${var} rules); sends are written to the outbox through rooms/sms/store.py and leave at the
channel's rate. An admin of an account (or a platform admin) may use its routes.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from rooms.sms import store, templates
from rooms.sms.store import BatchProgress, BatchRow
from web.api.base import CLOCK, DB, Api, ApiError, parse_body, parse_query, path_id, send
from web.api.billing_schemas import account_reader
from web.api.notifications import wake
from web.api.sms_schemas import (
    SMS_DAILY_CAP,
    SMS_SPACING,
    SMS_TEXTS,
    BatchIn,
    BatchOut,
    InvalidLine,
    MessageOut,
    MessageQuery,
    SendIn,
    SendOut,
    SmsPreviewIn,
    SmsPreviewOut,
    SmsTexts,
    StatOut,
    StatsQuery,
    TemplateIn,
    TemplateOut,
    VariableIn,
)

api = Api()
TAG = "sms"
MAX_INVALID_SHOWN = 50
STATS_SPAN = timedelta(days=31)
FIRST, LAST = 2000, 2200  # the years statistics may ask about


def texts_of(request: web.Request) -> SmsTexts:
    service = request.app.get(SMS_TEXTS)
    if service is None:  # an API built without the composition root (tests of other packages)
        raise ApiError(409, "sms_unavailable", "SMS is not set up on this server")
    return service


def e164(raw: str, *, default_country_code: str = "86") -> str | None:
    """A number as E.164 (+8613800138000), or None; a bare 11-digit mainland mobile gets +86."""
    text = raw.strip().replace(" ", "").replace("-", "")
    digits = text.removeprefix("+")
    if not digits.isdigit():
        return None
    if text.startswith("+"):
        return text if 7 <= len(digits) <= 15 and digits[0] != "0" else None
    if len(digits) == 11 and digits.startswith("1"):
        return f"+{default_country_code}{digits}"
    if digits.startswith("00") and 9 <= len(digits) <= 17:
        return f"+{digits[2:]}"
    return None


async def _template_text(request: web.Request, account_id: int, key: str, locale: str) -> str:
    text = await templates.template_text(request.app[DB], account_id=account_id, key=key, locale=locale)
    if text is None:
        for shipped in texts_of(request).shipped():
            if shipped.key == key and locale in shipped.texts:
                return shipped.texts[locale]
        raise ApiError(404, "not_found", f"no SMS template {key!r}", "template_key")
    return text


@api.op("POST", "/sms/preview", summary="Count the parts of an SMS text", tag=TAG, body=SmsPreviewIn,
        response=SmsPreviewOut)  # fmt: skip
async def preview(request: web.Request) -> web.Response:
    body = await parse_body(request, SmsPreviewIn)
    return send(texts_of(request).preview(body.text, body.locale))


@api.op("GET", "/accounts/{account_id}/sms/templates", summary="An account's SMS templates", tag=TAG,
        response=TemplateOut, many=True)  # fmt: skip
async def list_templates(request: web.Request) -> web.Response:
    _, account_id = await account_reader(request)
    service = texts_of(request)
    rows = await templates.template_rows(request.app[DB], account_id=account_id)
    by_key: dict[str, TemplateOut] = {}
    for row in rows:
        out = by_key.setdefault(
            row.key,
            TemplateOut(
                key=row.key,
                texts={},
                variables=[VariableIn.model_validate(v) for v in row.variables],
                provider_code=row.provider_code,
                approval=row.approval,
                updated_at=row.updated_at,
            ),
        )
        out.texts[row.locale] = row.body
    for shipped in service.shipped():
        by_key.setdefault(shipped.key, shipped)
    result = []
    for key in sorted(by_key):
        out = by_key[key]
        previews = service.check_template(out.texts, [v.model_dump() for v in out.variables], None)
        result.append(out.model_copy(update={"previews": previews}))
    return send(result)


@api.op("PUT", "/accounts/{account_id}/sms/templates/{key}",
        summary="Save an SMS template (both locales, declared variables; checked now, not at send time)",
        tag=TAG, body=TemplateIn, response=TemplateOut)  # fmt: skip
async def put_template(request: web.Request) -> web.Response:
    _, account_id = await account_reader(request)
    key = request.match_info["key"]
    if not key.replace("_", "").replace("-", "").replace(".", "").isalnum() or len(key) > 64:
        raise ApiError(422, "invalid", "key: letters, digits, _ . -", "key")
    body = await parse_body(request, TemplateIn)
    variables = [v.model_dump() for v in body.variables]
    service = texts_of(request)
    for shipped in service.shipped():
        # A shipped key (the meeting reminder) is rendered with the values its sender has, and no others.
        known = {v.name for v in shipped.variables}
        extra = sorted({v.name for v in body.variables} - known)
        if shipped.key == key and extra:
            names = ", ".join(sorted(known))
            message = f"variables: {shipped.key} texts can use only {names} (not {extra[0]})"
            raise ApiError(422, "invalid_template", message, "variables")
    previews = service.check_template(body.texts, variables, body.sample)
    rows = await templates.save_template(
        request.app[DB],
        account_id=account_id,
        key=key,
        texts=body.texts,
        variables=variables,
        provider_code=body.provider_code,
        now=request.app[CLOCK](),
    )
    return send(
        TemplateOut(
            key=key,
            texts={r.locale: r.body for r in rows},
            variables=body.variables,
            provider_code=body.provider_code,
            approval=rows[0].approval,
            previews=previews,
            updated_at=rows[0].updated_at,
        )
    )


@api.op("DELETE", "/accounts/{account_id}/sms/templates/{key}",
        summary="Delete an account's SMS template (a shipped one is used again)", tag=TAG,
        status=204)  # fmt: skip
async def delete_template(request: web.Request) -> web.Response:
    _, account_id = await account_reader(request)
    if not await templates.delete_template(
        request.app[DB], account_id=account_id, key=request.match_info["key"]
    ):
        raise ApiError(404, "not_found", "no such template", "key")
    return web.Response(status=204)


@api.op("POST", "/accounts/{account_id}/sms", summary="Send one SMS now (queued; 202)", tag=TAG, body=SendIn,
        response=SendOut, status=202, errors=(429,))  # fmt: skip
async def send_sms(request: web.Request) -> web.Response:
    _, account_id = await account_reader(request)
    body = await parse_body(request, SendIn)
    service = texts_of(request)
    to = e164(body.to)
    if to is None:
        raise ApiError(422, "invalid", "to: not a phone number (E.164, e.g. +8613800138000)", "to")
    if (body.text is None) == (body.template_key is None):
        raise ApiError(422, "invalid", "text: give either text or template_key", "text")
    if body.template_key is not None:
        template = await _template_text(request, account_id, body.template_key, body.locale)
        text = service.render(template, body.variables, "variables")
    else:
        assert body.text is not None
        text = service.render(body.text, body.variables, "text") if body.variables else body.text
    shown = service.preview(text, body.locale)
    try:
        message_id, created = await store.send_now(
            request.app[DB],
            account_id=account_id,
            recipient=to,
            text=text,
            locale=body.locale,
            now=request.app[CLOCK](),
            template_key=body.template_key or store.KIND,
            idempotency_key=body.idempotency_key,
            daily_cap=request.app.get(SMS_DAILY_CAP, 0),
        )
    except store.DailyCapReached as exc:
        raise ApiError(429, exc.code, f"to: {exc.message}", "to") from None
    wake(request)
    return send(SendOut(id=message_id, status="queued", created=created, preview=shown), 202)


@api.op("GET", "/accounts/{account_id}/sms", summary="Sent SMS, newest first (kept six months)", tag=TAG,
        response=MessageOut, many=True, query=MessageQuery)  # fmt: skip
async def list_messages(request: web.Request) -> web.Response:
    _, account_id = await account_reader(request)
    q = parse_query(request, MessageQuery)
    rows = await store.history(
        request.app[DB], account_id=account_id, limit=q.limit, offset=q.offset, batch_id=q.batch_id
    )
    return send(
        [
            MessageOut(
                id=r.id,
                to=r.recipient,
                template_key=r.template_key,
                locale=r.locale,
                status=r.status,
                parts=r.parts,
                batch_id=r.batch_id,
                created_at=r.created_at,
                sent_at=r.sent_at,
                last_error=r.last_error,
            )
            for r in rows
        ]
    )


def parse_numbers(text: str) -> tuple[list[tuple[str, dict[str, str]]], list[InvalidLine]]:
    """The CSV's numbers as E.164 with their columns (a header names them), and the lines refused."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    good: list[tuple[str, dict[str, str]]] = []
    bad: list[InvalidLine] = []
    seen: set[str] = set()
    header: list[str] | None = None
    for line, raw in enumerate(reader, start=1):
        cells = [c.strip() for c in raw]
        if not cells or not any(cells):
            continue
        if line == 1 and e164(cells[0]) is None and not any(ch.isdigit() for ch in cells[0]):
            header = [c.lower() for c in cells]
            continue
        number = e164(cells[0])
        if number is None:
            bad.append(InvalidLine(line=line, value=cells[0][:40], reason="not_a_number"))
            continue
        if number in seen:
            bad.append(InvalidLine(line=line, value=cells[0][:40], reason="duplicate"))
            continue
        seen.add(number)
        columns = dict(zip(header[1:], cells[1:], strict=False)) if header else {}
        good.append((number, columns))
    return good, bad


def batch_out(progress: BatchProgress, invalid: list[InvalidLine] | None = None) -> BatchOut:
    b = progress.batch
    return BatchOut(
        id=b.id,
        name=b.name,
        template_key=b.template_key,
        locale=b.locale,
        total=b.total,
        skipped=b.skipped,
        done=progress.done,
        parts=progress.parts,
        statuses=progress.statuses,
        created_at=b.created_at,
        cancelled_at=b.cancelled_at,
        invalid=invalid or [],
    )


@api.op("POST", "/accounts/{account_id}/sms/batches",
        summary="Send one text or template to a CSV of numbers (queued; 202; released at the channel's rate)",
        tag=TAG, body=BatchIn, response=BatchOut, status=202)  # fmt: skip
async def create_batch(request: web.Request) -> web.Response:
    who, account_id = await account_reader(request)
    body = await parse_body(request, BatchIn)
    service = texts_of(request)
    if (body.text is None) == (body.template_key is None):
        raise ApiError(422, "invalid", "text: give either text or template_key", "text")
    template = (
        await _template_text(request, account_id, body.template_key, body.locale)
        if body.template_key is not None
        else body.text
    )
    assert template is not None
    numbers, invalid = parse_numbers(body.csv)
    rows = []
    for n, (number, columns) in enumerate(numbers):
        text = service.render(template, columns, "csv") if "${" in template else template
        if n == 0:
            service.preview(text, body.locale)  # a text that cannot be sent fails the request, not the rows
        rows.append(BatchRow(number, text))
    if not rows:
        raise ApiError(422, "invalid", "csv: no valid phone numbers", "csv")
    batch = await store.create_batch(
        request.app[DB],
        account_id=account_id,
        name=body.name,
        locale=body.locale,
        template_key=body.template_key,
        text=template,
        rows=rows,
        skipped=len(invalid),
        now=request.app[CLOCK](),
        spacing=request.app.get(SMS_SPACING, 0.1),
        created_by=who.user.id,
        daily_cap=request.app.get(SMS_DAILY_CAP, 0),
    )
    wake(request)
    progress = await store.batch_progress(request.app[DB], account_id=account_id, batch_id=batch.id)
    return send(batch_out(progress, invalid[:MAX_INVALID_SHOWN]), 202)


@api.op("GET", "/accounts/{account_id}/sms/batches", summary="An account's batches with their progress",
        tag=TAG, response=BatchOut, many=True)  # fmt: skip
async def list_batches(request: web.Request) -> web.Response:
    _, account_id = await account_reader(request)
    return send([batch_out(p) for p in await store.list_batches(request.app[DB], account_id=account_id)])


@api.op("GET", "/accounts/{account_id}/sms/batches/{batch_id}", summary="A batch's progress", tag=TAG,
        response=BatchOut)  # fmt: skip
async def get_batch(request: web.Request) -> web.Response:
    _, account_id = await account_reader(request)
    batch_id = path_id(request, "batch_id")
    return send(
        batch_out(await store.batch_progress(request.app[DB], account_id=account_id, batch_id=batch_id))
    )


@api.op("POST", "/accounts/{account_id}/sms/batches/{batch_id}/cancel",
        summary="Cancel what of a batch has not gone out", tag=TAG, response=BatchOut)  # fmt: skip
async def cancel_batch(request: web.Request) -> web.Response:
    _, account_id = await account_reader(request)
    batch_id = path_id(request, "batch_id")
    db = request.app[DB]
    await store.cancel_batch(db, account_id=account_id, batch_id=batch_id, now=request.app[CLOCK]())
    return send(batch_out(await store.batch_progress(db, account_id=account_id, batch_id=batch_id)))


@api.op("GET", "/accounts/{account_id}/sms/stats",
        summary="SMS statistics by day, template, status or batch (default: the last 31 days)", tag=TAG,
        response=StatOut, many=True, query=StatsQuery)  # fmt: skip
async def get_stats(request: web.Request) -> web.Response:
    _, account_id = await account_reader(request)
    q = parse_query(request, StatsQuery)
    try:
        ZoneInfo(q.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ApiError(422, "invalid", "time_zone: unknown time zone", "time_zone") from None
    now = request.app[CLOCK]()
    for value in (q.since, q.until):
        if value is not None and not FIRST < value.year < LAST:
            raise ApiError(422, "invalid", f"since: times between {FIRST} and {LAST}", "since")
    # By default up to and including this instant.
    until = q.until or now + timedelta(seconds=1)
    since = q.since or until - STATS_SPAN
    if since.tzinfo is None or until.tzinfo is None:
        raise ApiError(
            422, "invalid", "since: give times with their offset (2026-12-01T00:00:00+08:00)", "since"
        )
    if since >= until or until - since > timedelta(days=400):
        raise ApiError(422, "invalid", "since: must be before until, at most 400 days apart", "since")
    rows = await store.stats(
        request.app[DB], account_id=account_id, since=since, until=until, group_by=q.group_by,
        time_zone=q.time_zone,
    )  # fmt: skip
    return send(
        [
            StatOut(
                key=r.key,
                messages=r.messages,
                parts=r.parts,
                accepted=r.accepted,
                delivered=r.statuses.get("delivered", 0),
                failed=r.statuses.get("failed", 0),
                unknown=r.statuses.get("unknown", 0),
                pending=r.statuses.get("queued", 0) + r.statuses.get("sending", 0),
            )
            for r in rows
        ]
    )
