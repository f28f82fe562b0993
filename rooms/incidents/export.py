"""CSV of the quarterly availability and incident reports, with headings in zh-CN or en."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

from rooms.incidents.availability import AvailabilityReport
from rooms.incidents.report import IncidentReport

LANGUAGES = ("en", "zh-CN")

WORDS = {
    "en": {
        "quarter": "Quarter",
        "service": "Service",
        "target": "Target %",
        "actual": "Measured %",
        "downtime": "Downtime (s)",
        "met": "Met",
        "yes": "yes",
        "no": "no",
        "meetings": "Meetings",
        "operations": "Operations",
        "outage": "Outage",
        "start": "Start",
        "end": "End",
        "seconds": "Seconds",
        "scope": "Scope",
        "cause": "Cause",
        "source": "Source",
        "credit": "Credit",
        "amount": "Amount",
        "kind": "Kind",
        "label": "For",
        "incident": "Incident",
        "title": "Title",
        "severity": "Severity",
        "status": "Status",
        "opened": "Opened",
        "responded": "First response",
        "resolved": "Resolved",
        "response_due": "Response due",
        "response": "Response",
        "resolution_due": "Resolution due",
        "resolution": "Resolution",
        "running": "running",
        "breached": "breached",
        "event_credit": "live event credit",
        "availability_credit": "availability credit",
    },
    "zh-CN": {
        "quarter": "季度",
        "service": "服务",
        "target": "承诺可用率 %",
        "actual": "实测可用率 %",
        "downtime": "中断时长（秒）",
        "met": "达标",
        "yes": "是",
        "no": "否",
        "meetings": "会议服务",
        "operations": "运维管理平台",
        "outage": "中断",
        "start": "开始",
        "end": "结束",
        "seconds": "秒",
        "scope": "范围",
        "cause": "原因",
        "source": "来源",
        "credit": "补偿",
        "amount": "金额",
        "kind": "类型",
        "label": "对象",
        "incident": "故障单",
        "title": "标题",
        "severity": "级别",
        "status": "状态",
        "opened": "报告时间",
        "responded": "首次响应",
        "resolved": "解决时间",
        "response_due": "响应时限",
        "response": "响应",
        "resolution_due": "解决时限",
        "resolution": "解决",
        "running": "计时中",
        "breached": "超时",
        "met_state": "达标",
        "event_credit": "直播场次补偿",
        "availability_credit": "可用率补偿",
    },
}
WORDS["en"]["met_state"] = "met"


def _lang(lang: str) -> dict[str, str]:
    return WORDS[lang if lang in LANGUAGES else "en"]


def _when(at: datetime | None) -> str:
    return "" if at is None else at.isoformat()


def _state(words: dict[str, str], state: str) -> str:
    return words["met_state"] if state == "met" else words.get(state, state)


def _minutes(span: timedelta) -> str:
    return f"{span.total_seconds() / 60:.0f}"


def availability_csv(report: AvailabilityReport, lang: str = "en") -> str:
    w = _lang(lang)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([w["quarter"], w["service"], w["target"], w["actual"], w["downtime"], w["met"]])
    for uptime in (report.meetings, report.operations):
        writer.writerow(
            [
                report.quarter,
                w[uptime.service],
                f"{uptime.target}",
                f"{uptime.actual}",
                uptime.downtime_seconds,
                w["yes"] if uptime.met else w["no"],
            ]
        )
    writer.writerow([])
    writer.writerow([w["outage"], w["start"], w["end"], w["seconds"], w["scope"], w["cause"], w["source"]])
    for o in report.outages:
        writer.writerow(
            [o.id, _when(o.start), _when(o.end), o.seconds, o.scope.value, o.cause or "", o.source]
        )
    writer.writerow([])
    writer.writerow([w["credit"], w["label"], w["amount"]])
    for c in report.credits:
        writer.writerow([w.get(c.kind, c.kind), c.label, f"{c.amount:.2f}"])
    return out.getvalue()


def incidents_csv(report: IncidentReport, lang: str = "en") -> str:
    w = _lang(lang)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            w["incident"],
            w["title"],
            w["severity"],
            w["status"],
            w["source"],
            w["opened"],
            w["responded"],
            w["response_due"],
            w["response"],
            w["resolved"],
            w["resolution_due"],
            w["resolution"],
        ]
    )
    for row in report.rows:
        i = row.incident
        writer.writerow(
            [
                i.id,
                i.title,
                i.severity,
                i.status,
                i.source,
                _when(i.opened_at),
                _when(i.responded_at),
                _when(row.response.due_at),
                _state(w, row.response.state.value),
                _when(i.resolved_at),
                _when(row.resolution.due_at),
                _state(w, row.resolution.state.value),
            ]
        )
    return out.getvalue()
