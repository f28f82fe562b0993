// Availability: an account's measured uptime per quarter against its contract (meetings and operations),
// the outages that made it, and the credits the billing rules grant; CSV and PDF downloads.
import { useState } from "preact/hooks";
import { formatDateTime, formatNumber, t } from "../lib/i18n.js";
import { html } from "../lib/ui.js";
import { api, download, qs } from "./api.js";
import { ErrorBox, Loading, label, useLoad } from "./common.js";

/** "2026-Q2" for a date. */
export function quarterOf(date) {
  return `${date.getFullYear()}-Q${Math.floor(date.getMonth() / 3) + 1}`;
}

export function currentQuarter() {
  return quarterOf(new Date());
}

/** This quarter and the seven before it, newest first. */
export function recentQuarters(now = new Date()) {
  const quarters = [];
  const d = new Date(now.getFullYear(), Math.floor(now.getMonth() / 3) * 3, 1);
  for (let i = 0; i < 8; i++) {
    quarters.push(quarterOf(d));
    d.setMonth(d.getMonth() - 3);
  }
  return quarters;
}

export function QuarterPicker({ id, value, onChange }) {
  const quarters = recentQuarters();
  if (!quarters.includes(value)) quarters.push(value);
  return html`<label for=${id}>${t("ops.quarter")}</label>
    <select id=${id} value=${value} onChange=${(e) => onChange(e.target.value)}>
      ${quarters.map((q) => html`<option value=${q}>${q}</option>`)}
    </select>`;
}

function duration(seconds) {
  if (seconds < 60) return t("ops.seconds", { n: seconds });
  if (seconds < 3600) return t("ops.minutes", { n: formatNumber(seconds / 60, { maximumFractionDigits: 1 }) });
  return t("ops.hours", { n: formatNumber(seconds / 3600, { maximumFractionDigits: 1 }) });
}

function Uptime({ uptime }) {
  return html`<div class="stat" data-service=${uptime.service}>
    <span class="stat-value" id=${`uptime-${uptime.service}`}>${formatNumber(Number(uptime.actual), { minimumFractionDigits: 3 })} %</span>
    <span>${t(`ops.service.${uptime.service}`)}</span>
    <span class="muted">${t("ops.target", { target: uptime.target })}</span>
    <span class=${`pill clock ${uptime.met ? "met" : "breached"}`}>${t(uptime.met ? "ops.met" : "ops.missed")}</span>
  </div>`;
}

export function Availability({ user, accountId }) {
  const account = user.account_id ?? accountId ?? null;
  const [quarter, setQuarter] = useState(currentQuarter());
  const [report, error] = useLoad(
    () => (account ? api.get(`/accounts/${account}/availability${qs({ quarter })}`) : Promise.resolve(null)),
    [account, quarter],
  );
  const lang = document.documentElement.lang;
  const file = (kind) => download(`/accounts/${account}/availability/${kind}${qs({ quarter, lang })}`, `availability-${quarter}.${kind}`);
  return html`<section aria-labelledby="availability-title" class="availability">
    <div class="section-head"><h1 id="availability-title">${t("admin.nav.availability")}</h1>
      <${QuarterPicker} id="availability-quarter" value=${quarter} onChange=${setQuarter} />
      <button type="button" id="availability-csv" disabled=${!report} onClick=${() => file("csv")}>${t("ops.csv")}</button>
      <button type="button" id="availability-pdf" disabled=${!report} onClick=${() => file("pdf")}>${t("ops.pdf")}</button>
    </div>
    ${account ? null : html`<p class="muted">${t("ops.choose_account")}</p>`}
    <${ErrorBox} error=${error} />
    ${account && !report && !error ? html`<${Loading} />` : null}
    ${report
      ? html`<p class="muted">${t("ops.span", { start: formatDateTime(report.start), end: formatDateTime(report.end) })}</p>
        <div class="stats"><${Uptime} uptime=${report.meetings} /><${Uptime} uptime=${report.operations} /></div>
        <h2>${t("ops.outages")}</h2>
        <table class="table" id="outage-table">
          <thead><tr><th scope="col">${t("ops.outage.start")}</th><th scope="col">${t("ops.outage.duration")}</th>
            <th scope="col">${t("ops.outage.scope")}</th><th scope="col">${t("ops.outage.cause")}</th><th scope="col">${t("ops.outage.source")}</th></tr></thead>
          <tbody>
            ${report.outages.length === 0 ? html`<tr><td colspan="5" class="muted">${t("ops.outage.none")}</td></tr>` : null}
            ${report.outages.map((o) => html`<tr key=${o.id} data-outage=${o.id}><td>${formatDateTime(o.start, { dateStyle: "medium", timeStyle: "medium" })}</td>
              <td>${duration(o.seconds)}</td><td>${label("ops.scope", o.scope)}</td>
              <td>${(o.cause || "").split(",").map((c) => label("ops.cause", c)).join(", ")}</td><td>${label("ops.source", o.source)}</td></tr>`)}
          </tbody>
        </table>
        <h2>${t("ops.credits")}</h2>
        <table class="table" id="credit-table">
          <thead><tr><th scope="col">${t("ops.credit.kind")}</th><th scope="col">${t("ops.credit.for")}</th><th scope="col">${t("ops.credit.amount")}</th></tr></thead>
          <tbody>
            ${report.credits.length === 0 ? html`<tr><td colspan="3" class="muted">${t("ops.credit.none")}</td></tr>` : null}
            ${report.credits.map((c, i) => html`<tr key=${i}><td>${label("ops.credit", c.kind)}</td><td>${c.label}</td>
              <td>${report.currency} ${formatNumber(Number(c.amount), { minimumFractionDigits: 2 })}</td></tr>`)}
          </tbody>
        </table>`
      : null}
  </section>`;
}
