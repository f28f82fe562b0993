// Reports: meetings, participant-minutes, peak concurrency, device classes and kinds, with CSV export; and
// the charts of GET /reports/usage (concurrency over a day, minutes per day, endpoints per site, devices).
import { useState } from "preact/hooks";
import { formatDateTime, formatNumber, t } from "../lib/i18n.js";
import { html } from "../lib/ui.js";
import { api, qs, saveText } from "./api.js";
import { BarChart, COLORS, LineChart } from "./charts.js";
import { ErrorBox, Loading, accountParam, label } from "./common.js";

const TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "Asia/Shanghai";

/** The four charts of one GET /reports/usage answer. */
export function UsageCharts({ usage }) {
  const times = usage.concurrency.map((p) => formatDateTime(p.at, { hour: "2-digit", minute: "2-digit", timeZone: usage.time_zone }));
  const peak = Math.max(0, ...usage.concurrency.map((p) => p.participants));
  const days = usage.minutes_per_day.map((d) => formatDateTime(`${d.date}T12:00:00Z`, { month: "numeric", day: "numeric", timeZone: "UTC" }));
  const sites = usage.endpoints_per_site;
  const devices = usage.device_classes;
  return html`<div class="charts" id="report-charts">
    <div class="card">
      <${LineChart} id="chart-concurrency" title=${t("ops2.reports.concurrency", { day: formatDateTime(`${usage.day}T12:00:00Z`, { dateStyle: "medium", timeZone: "UTC" }) })}
        labels=${times} values=${usage.concurrency.map((p) => p.participants)} every=${Math.max(1, Math.round(times.length / 8))} />
      <p class="muted" id="chart-concurrency-peak">${t("ops2.reports.peak", { value: formatNumber(peak) })}</p>
    </div>
    <div class="two-col">
      <div class="card">
        <${BarChart} id="chart-minutes" title=${t("ops2.reports.minutes_per_day")} labels=${days}
          series=${[{ name: t("admin.reports.participant_minutes"), color: COLORS[0], values: usage.minutes_per_day.map((d) => d.participant_minutes) }]}
          every=${Math.max(1, Math.ceil(days.length / 6))} width=${420} />
      </div>
      <div class="card">
        ${sites.length
          ? html`<${BarChart} id="chart-sites" title=${t("ops2.reports.endpoints_per_site")} labels=${sites.map((s) => s.name)}
              series=${[
                { name: t("ops2.reports.registered"), color: COLORS[0], values: sites.map((s) => s.endpoints) },
                { name: t("ops2.reports.connected"), color: COLORS[1], values: sites.map((s) => s.connected) },
              ]} width=${420} />`
          : html`<h2>${t("ops2.reports.endpoints_per_site")}</h2><p class="muted">${t("ops2.reports.no_sites")}</p>`}
      </div>
    </div>
    <div class="card">
      ${devices.length
        ? html`<${BarChart} id="chart-devices" title=${t("ops2.reports.device_classes")} labels=${devices.map((d) => label("admin.device", d.device_class))}
            series=${[{ name: t("ops2.reports.stays"), color: COLORS[2], values: devices.map((d) => d.stays) }]} />`
        : html`<h2>${t("ops2.reports.device_classes")}</h2><p class="muted">${t("ops2.reports.no_data")}</p>`}
    </div>
  </div>`;
}

/** Highest number of overlapping [start, end) intervals (ms): a sweep over +1/−1 events, leaves first. */
export function peakConcurrency(intervals) {
  const events = [];
  for (const [start, end] of intervals) {
    events.push([start, 1], [end, -1]);
  }
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let current = 0;
  let peak = 0;
  for (const [, delta] of events) {
    current += delta;
    peak = Math.max(peak, current);
  }
  return peak;
}

/** Per-meeting rows and totals from meetings and their attendance; open stays count up to `now`. */
export function summarize(meetings, attendanceByMeeting, now) {
  const rows = [];
  const all = [];
  const devices = {};
  const kinds = {};
  for (const meeting of meetings) {
    const stays = attendanceByMeeting.get(meeting.id) || [];
    const intervals = stays.map((a) => [Date.parse(a.joined_at), a.left_at ? Date.parse(a.left_at) : now]);
    const minutes = intervals.reduce((sum, [s, e]) => sum + Math.max(0, e - s) / 60_000, 0);
    for (const a of stays) {
      devices[a.device_class] = (devices[a.device_class] || 0) + 1;
      kinds[a.kind] = (kinds[a.kind] || 0) + 1;
    }
    all.push(...intervals);
    const ended = meeting.ended_at ? Date.parse(meeting.ended_at) : now;
    rows.push({
      meeting,
      participants: new Set(stays.map((a) => a.participant_id)).size,
      participantMinutes: minutes,
      peak: peakConcurrency(intervals),
      durationMinutes: Math.max(0, ended - Date.parse(meeting.started_at)) / 60_000,
    });
  }
  return {
    rows,
    meetings: meetings.length,
    participantMinutes: rows.reduce((sum, r) => sum + r.participantMinutes, 0),
    peak: peakConcurrency(all),
    devices,
    kinds,
  };
}

function csvCell(value) {
  const text = String(value ?? "");
  return /[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** RFC 4180 CSV (with a BOM so spreadsheet programs read UTF-8 Chinese correctly). */
export function toCsv(header, rows) {
  return `\uFEFF${[header, ...rows].map((r) => r.map(csvCell).join(",")).join("\r\n")}\r\n`;
}

/** The local calendar date (not UTC's: east of Greenwich the morning would still be yesterday). */
function isoDate(d) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

export function Reports({ user, accountId }) {
  const account = accountParam(user, accountId);
  const [from, setFrom] = useState(isoDate(new Date(Date.now() - 30 * 86400_000)));
  const [to, setTo] = useState(isoDate(new Date()));
  const [report, setReport] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [rooms, setRooms] = useState(new Map());
  const [day, setDay] = useState("");
  const [usage, setUsage] = useState(null);

  async function run(e) {
    e?.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const roomList = await api.get(`/rooms${qs({ account_id: account, limit: 500 })}`);
      const roomMap = new Map(roomList.map((r) => [r.id, r]));
      const start = Date.parse(`${from}T00:00:00`);
      const end = Date.parse(`${to}T23:59:59`);
      const meetings = (await api.get(`/meetings${qs({ limit: 500 })}`)).filter(
        (m) => roomMap.has(m.room_id) && Date.parse(m.started_at) >= start && Date.parse(m.started_at) <= end,
      );
      const lists = await Promise.all(meetings.map((m) => api.get(`/meetings/${m.id}/attendance?limit=500`)));
      setUsage(await api.get(`/reports/usage${qs({ start: from, end: to, day: day || to, tz: TIME_ZONE, account_id: account })}`));
      setRooms(roomMap);
      setReport(summarize(meetings, new Map(meetings.map((m, i) => [m.id, lists[i]])), Date.now()));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  function exportCsv() {
    const header = [
      t("admin.reports.col_meeting"), t("admin.reports.col_room"), t("admin.reports.col_started"), t("admin.reports.col_ended"),
      t("admin.reports.col_reason"), t("admin.reports.col_minutes"), t("admin.reports.col_participants"),
      t("admin.reports.col_participant_minutes"), t("admin.reports.col_peak"),
    ];
    const rows = report.rows.map((r) => [
      r.meeting.id, rooms.get(r.meeting.room_id)?.name, r.meeting.started_at, r.meeting.ended_at || "", r.meeting.end_reason || "",
      r.durationMinutes.toFixed(1), r.participants, r.participantMinutes.toFixed(1), r.peak,
    ]);
    saveText(toCsv(header, rows), `yunhui-report-${from}-${to}.csv`, "text/csv;charset=utf-8");
  }

  const number = (n) => formatNumber(n, { maximumFractionDigits: 1 });
  return html`<section aria-labelledby="reports-title">
    <div class="section-head"><h1 id="reports-title">${t("admin.nav.reports")}</h1></div>
    <form class="card inline" onSubmit=${run}>
      <label for="report-from">${t("admin.reports.from")}</label>
      <input id="report-from" type="date" value=${from} onInput=${(e) => setFrom(e.target.value)} />
      <label for="report-to">${t("admin.reports.to")}</label>
      <input id="report-to" type="date" value=${to} onInput=${(e) => setTo(e.target.value)} />
      <label for="report-day">${t("ops2.reports.day")}</label>
      <input id="report-day" type="date" value=${day || to} onInput=${(e) => setDay(e.target.value)} />
      <button type="submit" class="primary" id="report-run" disabled=${busy}>${t("admin.reports.run")}</button>
      <button type="button" id="report-csv" disabled=${!report} onClick=${exportCsv}>${t("admin.reports.csv")}</button>
    </form>
    <${ErrorBox} error=${error} />
    ${busy ? html`<${Loading} />` : null}
    ${report
      ? html`<div class="stats">
            <div class="stat"><span class="stat-value" id="stat-meetings">${number(report.meetings)}</span><span>${t("admin.reports.meetings")}</span></div>
            <div class="stat"><span class="stat-value" id="stat-minutes">${number(report.participantMinutes)}</span><span>${t("admin.reports.participant_minutes")}</span></div>
            <div class="stat"><span class="stat-value" id="stat-peak">${number(report.peak)}</span><span>${t("admin.reports.peak")}</span></div>
          </div>
          ${usage ? html`<${UsageCharts} usage=${usage} />` : null}
          <div class="two-col">
            <div class="card"><h2>${t("admin.reports.devices")}</h2>
              <ul class="plain">${Object.entries(report.devices).map(([k, v]) => html`<li>${label("admin.device", k)}: ${v}</li>`)}</ul></div>
            <div class="card"><h2>${t("admin.reports.kinds")}</h2>
              <ul class="plain">${Object.entries(report.kinds).map(([k, v]) => html`<li>${label("admin.kind", k)}: ${v}</li>`)}</ul></div>
          </div>
          <table class="table" id="report-table">
            <thead><tr>
              <th scope="col">${t("admin.reports.col_room")}</th><th scope="col">${t("admin.reports.col_started")}</th>
              <th scope="col">${t("admin.reports.col_minutes")}</th><th scope="col">${t("admin.reports.col_participants")}</th>
              <th scope="col">${t("admin.reports.col_participant_minutes")}</th><th scope="col">${t("admin.reports.col_peak")}</th>
              <th scope="col">${t("admin.reports.col_reason")}</th>
            </tr></thead>
            <tbody>
              ${report.rows.length === 0 ? html`<tr><td colspan="7" class="muted">${t("admin.reports.none")}</td></tr>` : null}
              ${report.rows.map((r) => html`<tr key=${r.meeting.id}>
                <td>${rooms.get(r.meeting.room_id)?.name}</td><td>${formatDateTime(r.meeting.started_at)}</td>
                <td>${number(r.durationMinutes)}</td><td>${r.participants}</td><td>${number(r.participantMinutes)}</td><td>${r.peak}</td>
                <td>${r.meeting.end_reason ? label("ended", r.meeting.end_reason) : t("admin.reports.live")}</td>
              </tr>`)}
            </tbody>
          </table>`
      : null}
  </section>`;
}
