// Billing, contract side, and the Billing section's tabs: contracts (created from the seed contract's terms),
// usage of the current period, outages, the billing run. Only the platform admin sees the write forms.
import { useState } from "preact/hooks";
import { currentLanguage, formatDateTime, t } from "../lib/i18n.js";
import { html } from "../lib/ui.js";
import { api, qs } from "./api.js";
import { ErrorBox, Loading, label, useLoad } from "./common.js";
import { FieldError, FormError, Invoices, money } from "./invoices.js";

// The seed contract (docs/billing.md): editable in the form before it is accepted (created).
const SEED = {
  currency: "CNY",
  fee_per_endpoint_year: "12850",
  payment_period: "monthly",
  change_rule: "next_month",
  trial_months: "1",
  payment_due_days: "40",
  late_fee_rate_per_day: "0.03",
};
const TERM_FIELDS = ["currency", "fee_per_endpoint_year", "start", "trial_months", "payment_due_days", "late_fee_rate_per_day"];
const USAGE_KINDS = ["sms", "participant_minutes.browser", "participant_minutes.sip", "live_viewer_minutes", "recording_gb_months"];
const TABS = ["invoices", "contracts", "usage", "outages", "run"];

function today() {
  return new Date().toISOString().slice(0, 10);
}

function NewContract({ accountId, onDone }) {
  const [terms, setTerms] = useState({ ...SEED, start: today() });
  const [error, setError] = useState(null);
  const [sites] = useLoad(() => api.get(`/sites${qs({ account_id: accountId, limit: 500 })}`), [accountId]);
  async function submit(e) {
    e.preventDefault();
    setError(null);
    const body = { ...terms, trial_months: Number(terms.trial_months), payment_due_days: Number(terms.payment_due_days) };
    try {
      await api.post(`/accounts/${accountId}/contracts`, { terms: body, sites: (sites || []).map((s) => ({ site_id: s.id })) });
      onDone();
    } catch (err) {
      setError(err);
    }
  }
  const set = (key) => (e) => setTerms({ ...terms, [key]: e.target.value });
  const field = (key, type = "text") => html`<label for=${`term-${key}`}>${t(`admin.billing.terms.${key}`)}</label>
    <input id=${`term-${key}`} type=${type} required value=${terms[key]} onInput=${set(key)} />
    <${FieldError} error=${error} field=${key} />`;
  return html`<form class="card" id="contract-form" onSubmit=${submit}>
    <h3>${t("admin.billing.new_contract")}</h3>
    <p class="muted">${t("admin.billing.seed_explain", { count: (sites || []).length })}</p>
    ${field("currency")} ${field("fee_per_endpoint_year")} ${field("start", "date")}
    <label for="term-payment_period">${t("admin.billing.terms.payment_period")}</label>
    <select id="term-payment_period" value=${terms.payment_period} onChange=${set("payment_period")}>
      ${["monthly", "quarterly", "yearly"].map((p) => html`<option value=${p}>${label("admin.billing.periods", p)}</option>`)}
    </select>
    ${field("trial_months", "number")} ${field("payment_due_days", "number")} ${field("late_fee_rate_per_day")}
    <${FormError} error=${error} fields=${TERM_FIELDS} />
    <button type="submit" class="primary" id="contract-submit">${t("admin.billing.accept_contract")}</button>
  </form>`;
}

function Contracts({ user, accountId }) {
  const [contracts, error, reload] = useLoad(() => api.get(`/accounts/${accountId}/contracts`), [accountId]);
  if (!contracts) return error ? html`<${ErrorBox} error=${error} />` : html`<${Loading} />`;
  return html`<section id="contracts">
    ${contracts.length === 0 ? html`<p class="muted">${t("admin.billing.no_contracts")}</p>` : html`<table class="table" id="contracts-table">
      <thead><tr><th>${t("admin.billing.terms.start")}</th><th>${t("admin.billing.end")}</th>
        <th>${t("admin.billing.terms.fee_per_endpoint_year")}</th><th>${t("admin.billing.terms.payment_period")}</th>
        <th>${t("admin.billing.terms.payment_due_days")}</th></tr></thead>
      <tbody>${contracts.map((c) => html`<tr key=${c.id} data-contract=${c.id}><td>${c.start}</td><td>${c.end || "—"}</td>
        <td class="num">${money(c.terms.fee_per_endpoint_year, c.terms.currency)}</td>
        <td>${label("admin.billing.periods", c.terms.payment_period)}</td><td class="num">${c.terms.payment_due_days}</td></tr>`)}</tbody>
    </table>`}
    ${user.account_id === null ? html`<${NewContract} accountId=${accountId} onDone=${reload} />` : null}
  </section>`;
}

function Usage({ user, accountId }) {
  const lang = currentLanguage();
  const [draft, error, reload] = useLoad(() => api.get(`/accounts/${accountId}/invoices/preview?lang=${lang}`), [accountId, lang]);
  const [form, setForm] = useState({ kind: "sms", month: today().slice(0, 8) + "01", quantity: "" });
  const [formError, setFormError] = useState(null);
  async function submit(e) {
    e.preventDefault();
    setFormError(null);
    try {
      await api.put(`/accounts/${accountId}/usage`, form);
      reload();
    } catch (err) {
      setFormError(err);
    }
  }
  const set = (key) => (e) => setForm({ ...form, [key]: e.target.value });
  return html`<section id="usage">
    <h3>${t("admin.billing.draft_title")}</h3>
    <${ErrorBox} error=${error} />
    ${draft ? html`<p>${t("admin.billing.draft_explain", { start: draft.period_start, end: draft.period_end })}</p>
      <table class="table" id="draft-lines"><tbody>${draft.lines.map((line, i) => html`<tr key=${i}>
        <td>${line.description}</td><td class="num">${line.quantity}</td><td class="num">${line.amount}</td></tr>`)}
        <tr><th>${t("admin.billing.total")}</th><td></td><td class="num">${money(draft.total, draft.currency)}</td></tr></tbody></table>` : null}
    ${user.account_id === null ? html`<form class="card" id="usage-form" onSubmit=${submit}>
      <h3>${t("admin.billing.usage_entry")}</h3>
      <label for="usage-kind">${t("admin.billing.usage_kind")}</label>
      <select id="usage-kind" value=${form.kind} onChange=${set("kind")}>
        ${USAGE_KINDS.map((k) => html`<option value=${k}>${label("admin.billing.usage_kinds", k)}</option>`)}</select>
      <label for="usage-month">${t("admin.billing.usage_month")}</label>
      <input id="usage-month" type="date" required value=${form.month} onInput=${set("month")} />
      <${FieldError} error=${formError} field="month" />
      <label for="usage-quantity">${t("admin.billing.quantity")}</label>
      <input id="usage-quantity" required value=${form.quantity} onInput=${set("quantity")} />
      <${FieldError} error=${formError} field="quantity" />
      <${FormError} error=${formError} fields=${["month", "quantity"]} />
      <button type="submit">${t("admin.billing.save")}</button>
    </form>` : null}
  </section>`;
}

function Outages({ user, accountId }) {
  const [outages, error, reload] = useLoad(() => api.get("/outages"), []);
  const [form, setForm] = useState({ start: "", end: "", scope: "account", note: "" });
  const [formError, setFormError] = useState(null);
  async function submit(e) {
    e.preventDefault();
    setFormError(null);
    const body = { start: new Date(form.start).toISOString(), end: new Date(form.end).toISOString(), note: form.note, source: "admin" };
    if (form.scope === "account") body.account_id = accountId;
    try {
      await api.post("/outages", body);
      reload();
    } catch (err) {
      setFormError(err);
    }
  }
  const set = (key) => (e) => setForm({ ...form, [key]: e.target.value });
  const minutes = (o) => Math.round((Date.parse(o.end) - Date.parse(o.start)) / 60_000);
  return html`<section id="outages">
    <p class="muted">${t("admin.billing.outage_credits")}</p>
    <${ErrorBox} error=${error} />
    ${outages ? html`<table class="table" id="outages-table">
      <thead><tr><th>${t("admin.billing.outage_start")}</th><th>${t("admin.billing.outage_end")}</th><th>${t("admin.billing.outage_minutes")}</th>
        <th>${t("admin.billing.outage_scope")}</th><th>${t("admin.billing.outage_note")}</th></tr></thead>
      <tbody>${outages.map((o) => html`<tr key=${o.id}><td>${formatDateTime(o.start)}</td><td>${formatDateTime(o.end)}</td>
        <td class="num">${minutes(o)}</td><td>${o.account_id === null ? t("admin.billing.scope_service") : t("admin.billing.scope_account")}</td>
        <td>${o.note}</td></tr>`)}</tbody></table>` : html`<${Loading} />`}
    ${user.account_id === null ? html`<form class="card" id="outage-form" onSubmit=${submit}>
      <h3>${t("admin.billing.outage_new")}</h3>
      <label for="outage-start">${t("admin.billing.outage_start")}</label>
      <input id="outage-start" type="datetime-local" required value=${form.start} onInput=${set("start")} />
      <${FieldError} error=${formError} field="start" />
      <label for="outage-end">${t("admin.billing.outage_end")}</label>
      <input id="outage-end" type="datetime-local" required value=${form.end} onInput=${set("end")} />
      <${FieldError} error=${formError} field="end" />
      <label for="outage-scope">${t("admin.billing.outage_scope")}</label>
      <select id="outage-scope" value=${form.scope} onChange=${set("scope")}>
        <option value="account">${t("admin.billing.scope_account")}</option><option value="service">${t("admin.billing.scope_service")}</option></select>
      <label for="outage-note">${t("admin.billing.outage_note")}</label>
      <input id="outage-note" maxlength="500" value=${form.note} onInput=${set("note")} />
      <${FormError} error=${formError} fields=${["start", "end"]} />
      <button type="submit">${t("admin.billing.save")}</button>
    </form>` : null}
  </section>`;
}

function Run() {
  const [report, setReport] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  async function run() {
    setBusy(true);
    setError(null);
    try {
      setReport(await api.post("/billing/run"));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  const list = (items) => (items.length ? items.join(", ") : "—");
  return html`<section id="billing-run" class="card">
    <p class="muted">${t("admin.billing.run_explain")}</p>
    <button type="button" class="primary" id="run-billing" disabled=${busy} onClick=${run}>${t("admin.billing.run_now")}</button>
    <${ErrorBox} error=${error} />
    ${report ? html`<dl class="kv" id="run-report">
      <dt>${t("admin.billing.run_issued")}</dt><dd id="run-issued">${list(report.issued)}</dd>
      <dt>${t("admin.billing.run_notices")}</dt><dd>${list(report.notices)}</dd>
      <dt>${t("admin.billing.run_suspended")}</dt><dd>${list(report.suspended)}</dd>
      <dt>${t("admin.billing.run_purged")}</dt><dd>${report.purged}</dd></dl>` : null}
  </section>`;
}

export function Billing({ user, accountId }) {
  const tabs = user.account_id === null ? TABS : TABS.filter((name) => name !== "run");
  const [tab, setTab] = useState("invoices");
  const views = { invoices: Invoices, contracts: Contracts, usage: Usage, outages: Outages, run: Run };
  const View = views[tab];
  return html`<section class="billing">
    <div class="tabs" role="tablist">
      ${tabs.map((name) => html`<button type="button" role="tab" id=${`billing-tab-${name}`} aria-selected=${tab === name}
        onClick=${() => setTab(name)}>${t(`admin.billing.tab.${name}`)}</button>`)}
    </div>
    ${user.account_id !== null ? html`<p class="muted" id="billing-readonly">${t("admin.billing.readonly")}</p>` : null}
    <${View} key=${tab} user=${user} accountId=${accountId} />
  </section>`;
}
