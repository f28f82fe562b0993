// Incidents: an account admin reports a fault and follows it; platform staff assign, answer and resolve it.
// Each incident shows the contract's clocks (response, resolution) with their due times and breaches; the
// quarterly report lists response and resolution times against the contract, with a CSV export.
import { useEffect, useState } from "preact/hooks";
import { formatDateTime, t } from "../lib/i18n.js";
import { html } from "../lib/ui.js";
import { api, download, qs } from "./api.js";
import { ErrorBox, Loading, label, useLoad } from "./common.js";
import { QuarterPicker, currentQuarter } from "./availability.js";

const STATUSES = ["open", "in_progress", "resolved", "closed"];
const NEXT = { open: ["in_progress", "resolved", "closed"], in_progress: ["open", "resolved", "closed"], resolved: ["in_progress", "closed"], closed: [] };

/** The account whose reports are shown: the admin's own, or the one a platform admin works in. */
export function reportAccount(user, accountId) {
  return user.account_id ?? accountId ?? null;
}

export function ClockBadge({ clock, kind }) {
  const state = clock.state;
  return html`<span class=${`pill clock ${state}`} data-clock=${kind} data-state=${state}
    title=${t("ops.clock.due", { time: formatDateTime(clock.due_at) })}>${t(`ops.clock.${state}`)}</span>`;
}

function title(incident) {
  if (incident.source !== "monitor") return incident.title;
  const causes = incident.title.split(": ").pop().split(",");
  return t("ops.incident.monitor_title", { cause: causes.map((c) => label("ops.cause", c)).join(", ") });
}

function ReportForm({ onDone }) {
  const [form, setForm] = useState({ title: "", description: "", severity: "minor" });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (key) => (e) => setForm({ ...form, [key]: e.target.value });
  async function submit(e) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.post("/incidents", form);
      setForm({ title: "", description: "", severity: "minor" });
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  return html`<form class="card form-grid" id="incident-form" onSubmit=${submit}>
    <h2>${t("ops.incident.report")}</h2>
    <label for="incident-title">${t("ops.incident.title")}</label>
    <input id="incident-title" required maxlength="200" value=${form.title} onInput=${set("title")} />
    <label for="incident-severity">${t("ops.incident.severity")}</label>
    <select id="incident-severity" value=${form.severity} onChange=${set("severity")}>
      <option value="minor">${t("ops.severity.minor")}</option>
      <option value="major">${t("ops.severity.major")}</option>
    </select>
    <label for="incident-description">${t("ops.incident.description")}</label>
    <textarea id="incident-description" rows="3" maxlength="10000" value=${form.description} onInput=${set("description")}></textarea>
    <${ErrorBox} error=${error} />
    <div class="actions"><button type="submit" class="primary" disabled=${busy}>${t("ops.incident.submit")}</button></div>
  </form>`;
}

function Detail({ id, user, onChanged }) {
  const [detail, error, reload] = useLoad(() => api.get(`/incidents/${id}`), [id]);
  const [note, setNote] = useState("");
  const [status, setStatus] = useState("");
  const [failure, setFailure] = useState(null);
  const staff = user.account_id === null;
  async function change(body) {
    setFailure(null);
    try {
      await api.patch(`/incidents/${id}`, body);
      setNote("");
      setStatus("");
      reload();
      onChanged();
    } catch (err) {
      setFailure(err);
    }
  }
  function submit(e) {
    e.preventDefault();
    const body = {};
    if (note.trim()) body.note = note;
    if (status) body.status = status;
    change(body);
  }
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!detail) return html`<${Loading} />`;
  return html`<article class="card" id="incident-detail" data-incident=${detail.id}>
    <h2>${title(detail)}</h2>
    <p class="muted">${label("ops.severity", detail.severity)} · ${label("ops.status", detail.status)} ·
      ${t("ops.incident.opened_at", { time: formatDateTime(detail.opened_at) })}</p>
    ${detail.description ? html`<p>${detail.description}</p>` : null}
    <dl class="facts">
      <dt>${t("ops.clock.response")}</dt><dd><${ClockBadge} clock=${detail.response} kind="response" />
        ${t("ops.clock.due", { time: formatDateTime(detail.response.due_at) })}</dd>
      <dt>${t("ops.clock.resolution")}</dt><dd><${ClockBadge} clock=${detail.resolution} kind="resolution" />
        ${t("ops.clock.due", { time: formatDateTime(detail.resolution.due_at) })}</dd>
    </dl>
    <ol class="plain" id="incident-events">
      ${detail.events.map((e) => html`<li key=${e.id}><span class="muted">${formatDateTime(e.at)}</span>
        ${label("ops.event", e.kind)}${e.status ? html` → ${label("ops.status", e.status)}` : null}${e.note ? html`: ${e.note}` : null}</li>`)}
    </ol>
    ${staff || detail.account_id !== null ? html`<form class="form-grid" onSubmit=${submit}>
      <label for="incident-note">${t("ops.incident.note")}</label>
      <textarea id="incident-note" rows="2" value=${note} onInput=${(e) => setNote(e.target.value)}></textarea>
      ${staff && NEXT[detail.status].length
        ? html`<label for="incident-status">${t("ops.incident.status")}</label>
          <select id="incident-status" value=${status} onChange=${(e) => setStatus(e.target.value)}>
            <option value="">${t("ops.incident.status_keep")}</option>
            ${NEXT[detail.status].map((s) => html`<option value=${s}>${t(`ops.status.${s}`)}</option>`)}
          </select>`
        : null}
      <${ErrorBox} error=${failure} />
      <div class="actions"><button type="submit" class="primary" id="incident-save">${t("ops.incident.save")}</button>
      ${staff && detail.assignee_id !== user.id
        ? html`<button type="button" id="incident-assign" onClick=${() => change({ assignee_id: user.id })}>${t("ops.incident.assign_me")}</button>`
        : null}</div>
    </form>` : null}
  </article>`;
}

function QuarterReport({ account }) {
  const [quarter, setQuarter] = useState(currentQuarter());
  const [report, error] = useLoad(
    () => (account ? api.get(`/accounts/${account}/incidents/report${qs({ quarter })}`) : Promise.resolve(null)),
    [account, quarter],
  );
  if (!account) return null;
  const hours = (s) => (s === null ? "–" : (s / 3600).toFixed(1));
  return html`<section class="card" id="incident-report" aria-labelledby="incident-report-title">
    <div class="section-head"><h2 id="incident-report-title">${t("ops.report.title")}</h2>
      <${QuarterPicker} id="incident-quarter" value=${quarter} onChange=${setQuarter} />
      <button type="button" id="incident-report-csv" onClick=${() => download(`/accounts/${account}/incidents/report/csv${qs({ quarter, lang: document.documentElement.lang })}`, `incidents-${quarter}.csv`)}>${t("ops.csv")}</button>
    </div>
    <${ErrorBox} error=${error} />
    ${report
      ? html`<p class="muted">${t("ops.report.terms", { response: report.response_hours, resolution: report.resolution_hours, major: report.major_resolution_hours })}</p>
        <div class="stats">
          <div class="stat"><span class="stat-value" id="report-response-met">${report.response.met}</span><span>${t("ops.report.response_met")}</span></div>
          <div class="stat"><span class="stat-value" id="report-response-breached">${report.response.breached}</span><span>${t("ops.report.response_breached")}</span></div>
          <div class="stat"><span class="stat-value" id="report-resolution-met">${report.resolution.met}</span><span>${t("ops.report.resolution_met")}</span></div>
          <div class="stat"><span class="stat-value">${hours(report.response.mean_seconds)}</span><span>${t("ops.report.mean_response")}</span></div>
          <div class="stat"><span class="stat-value">${hours(report.resolution.mean_seconds)}</span><span>${t("ops.report.mean_resolution")}</span></div>
        </div>
        <table class="table" id="incident-report-table">
          <thead><tr><th scope="col">${t("ops.incident.title")}</th><th scope="col">${t("ops.incident.opened")}</th>
            <th scope="col">${t("ops.clock.response")}</th><th scope="col">${t("ops.clock.resolution")}</th></tr></thead>
          <tbody>
            ${report.incidents.length === 0 ? html`<tr><td colspan="4" class="muted">${t("ops.report.none")}</td></tr>` : null}
            ${report.incidents.map((i) => html`<tr key=${i.id} data-incident=${i.id}><td>${title(i)}</td><td>${formatDateTime(i.opened_at)}</td>
              <td><${ClockBadge} clock=${i.response} kind="response" /> ${t("ops.hours", { n: hours(i.response.elapsed_seconds) })}</td>
              <td><${ClockBadge} clock=${i.resolution} kind="resolution" /> ${t("ops.hours", { n: hours(i.resolution.elapsed_seconds) })}</td></tr>`)}
          </tbody>
        </table>`
      : null}
  </section>`;
}

export function Incidents({ user, accountId }) {
  const account = reportAccount(user, accountId);
  const [filter, setFilter] = useState("active");
  const [selected, setSelected] = useState(null);
  const [tick, setTick] = useState(0);
  const [items, error] = useLoad(
    () => api.get(`/incidents${qs({ status: filter === "all" ? null : filter, account_id: user.account_id === null ? accountId : null })}`),
    [filter, tick, accountId],
  );
  useEffect(() => setSelected(null), [accountId]);
  const refresh = () => setTick(tick + 1);
  return html`<section aria-labelledby="incidents-title" class="incidents">
    <div class="section-head"><h1 id="incidents-title">${t("admin.nav.incidents")}</h1>
      <label for="incident-filter">${t("ops.incident.filter")}</label>
      <select id="incident-filter" value=${filter} onChange=${(e) => setFilter(e.target.value)}>
        <option value="active">${t("ops.filter.active")}</option>
        <option value="all">${t("ops.filter.all")}</option>
        ${STATUSES.map((s) => html`<option value=${s}>${t(`ops.status.${s}`)}</option>`)}
      </select>
    </div>
    <${ReportForm} onDone=${refresh} />
    <div>
        <${ErrorBox} error=${error} />
        ${items === null && !error ? html`<${Loading} />` : null}
        ${items
          ? html`<table class="table" id="incident-table">
            <thead><tr><th scope="col">${t("ops.incident.title")}</th><th scope="col">${t("ops.incident.severity")}</th>
              <th scope="col">${t("ops.incident.status")}</th><th scope="col">${t("ops.incident.opened")}</th>
              <th scope="col">${t("ops.clock.response")}</th><th scope="col">${t("ops.clock.resolution")}</th></tr></thead>
            <tbody>
              ${items.length === 0 ? html`<tr><td colspan="6" class="muted">${t("ops.incident.none")}</td></tr>` : null}
              ${items.map((i) => html`<tr key=${i.id} data-incident=${i.id} class=${selected === i.id ? "selected" : ""}>
                <td><button type="button" class="link" onClick=${() => setSelected(i.id)}>${title(i)}</button></td>
                <td>${label("ops.severity", i.severity)}</td><td>${label("ops.status", i.status)}</td>
                <td>${formatDateTime(i.opened_at)}</td>
                <td><${ClockBadge} clock=${i.response} kind="response" /></td>
                <td><${ClockBadge} clock=${i.resolution} kind="resolution" /></td>
              </tr>`)}
            </tbody>
          </table>`
          : null}
        ${selected ? html`<${Detail} id=${selected} user=${user} onChanged=${refresh} />` : null}
    </div>
    <${QuarterReport} account=${account} />
  </section>`;
}
