// Billing, contract side, and the Billing section's tabs: contracts (created from the seed contract's terms,
// edited until their acceptance date), usage per month, outages, the billing run for a chosen month. Only the
// platform admin sees the write forms.
import { useState } from "preact/hooks";
import { currentLanguage, formatDateTime, t } from "../lib/i18n.js";
import { html } from "../lib/ui.js";
import { api, qs } from "./api.js";
import { ErrorBox, Loading, label, useLoad } from "./common.js";
import { Field, FormError, Invoices, money } from "./invoices.js";
import { Customer, Statements } from "./statements.js";

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
const TERM_FIELDS = ["currency", "fee_per_endpoint_year", "start", "payment_period", "trial_months", "payment_due_days", "late_fee_rate_per_day"];
const USAGE_KINDS = ["sms", "participant_minutes.browser", "participant_minutes.sip", "live_viewer_minutes", "recording_gb_months"];
const TABS = ["invoices", "statements", "customer", "contracts", "usage", "outages", "run"];

function today() {
  return new Date().toISOString().slice(0, 10);
}

/** The terms form: a new contract from the seed's terms, or a contract's terms before its acceptance date. */
function TermsForm({ accountId, contract, onDone }) {
  // Terms the form does not show (site fees, usage prices, …) are sent back as they are.
  const initial = contract ? { ...contract.terms } : { ...SEED, start: today() };
  const [terms, setTerms] = useState(initial);
  const [error, setError] = useState(null);
  const [sites] = useLoad(() => api.get(`/sites${qs({ account_id: accountId, limit: 500 })}`), [accountId]);
  async function submit(e) {
    e.preventDefault();
    setError(null);
    const body = { ...terms, trial_months: Number(terms.trial_months), payment_due_days: Number(terms.payment_due_days) };
    try {
      if (contract) await api.patch(`/contracts/${contract.id}`, { terms: body });
      else await api.post(`/accounts/${accountId}/contracts`, { terms: body, sites: (sites || []).map((s) => ({ site_id: s.id })) });
      onDone();
    } catch (err) {
      setError(err);
    }
  }
  const set = (key) => (e) => setTerms({ ...terms, [key]: e.target.value });
  const field = (key, type = "text") => html`<${Field} id=${`term-${key}`} label=${t(`admin.billing.terms.${key}`)} error=${error} name=${key}>
    <input id=${`term-${key}`} type=${type} required value=${terms[key]} onInput=${set(key)} /></${Field}>`;
  return html`<form class="card" id=${contract ? "contract-edit-form" : "contract-form"} onSubmit=${submit}>
    <h3>${contract ? t("admin.billing.edit_contract") : t("admin.billing.new_contract")}</h3>
    <p class="muted">${contract ? t("admin.billing.edit_explain", { start: contract.start }) : t("admin.billing.seed_explain", { count: (sites || []).length })}</p>
    ${field("currency")} ${field("fee_per_endpoint_year")} ${field("start", "date")}
    <${Field} id="term-payment_period" label=${t("admin.billing.terms.payment_period")} error=${error} name="payment_period">
      <select id="term-payment_period" value=${terms.payment_period} onChange=${set("payment_period")}>
        ${["monthly", "quarterly", "yearly"].map((p) => html`<option value=${p}>${label("admin.billing.periods", p)}</option>`)}
      </select></${Field}>
    ${field("trial_months", "number")} ${field("payment_due_days", "number")} ${field("late_fee_rate_per_day")}
    <${FormError} error=${error} fields=${TERM_FIELDS} />
    <div class="form-actions">
      <button type="submit" class="primary" id=${contract ? "contract-save" : "contract-submit"}>
        ${contract ? t("admin.billing.save_terms") : t("admin.billing.accept_contract")}</button>
      ${contract ? html`<button type="button" onClick=${onDone}>${t("admin.billing.cancel")}</button>` : null}
    </div>
  </form>`;
}

function Contracts({ user, accountId }) {
  const [contracts, error, reload] = useLoad(() => api.get(`/accounts/${accountId}/contracts`), [accountId]);
  const [editing, setEditing] = useState(null);
  if (!contracts) return error ? html`<${ErrorBox} error=${error} />` : html`<${Loading} />`;
  const writer = user.account_id === null;
  const done = () => {
    setEditing(null);
    reload();
  };
  const standing = (c) => (c.end
    ? t("admin.billing.ends_on", { date: c.end })
    : t("admin.billing.renews", { date: c.renews_on, deadline: c.notice_deadline, ends: c.notice_ends_on }));
  return html`<section id="contracts">
    ${contracts.length === 0 ? html`<p class="muted">${t("admin.billing.no_contracts")}</p>` : html`<table class="table" id="contracts-table">
      <thead><tr><th>${t("admin.billing.terms.start")}</th><th>${t("admin.billing.acceptance")}</th>
        <th>${t("admin.billing.term")}</th><th>${t("admin.billing.renewal")}</th>
        <th>${t("admin.billing.terms.fee_per_endpoint_year")}</th><th>${t("admin.billing.terms.payment_period")}</th>
        <th>${t("admin.billing.terms.payment_due_days")}</th><th></th></tr></thead>
      <tbody>${contracts.map((c) => html`<tr key=${c.id} data-contract=${c.id} data-accepted=${String(c.accepted)}><td>${c.start}</td>
        <td><span class=${`pill ${c.accepted ? "ok" : "off"}`}>${t(c.accepted ? "admin.billing.accepted" : "admin.billing.not_accepted")}</span></td>
        <td>${t("admin.billing.term_months", { count: c.term_months })}</td>
        <td class="contract-renewal">${standing(c)}</td>
        <td class="num">${money(c.terms.fee_per_endpoint_year, c.terms.currency)}</td>
        <td>${label("admin.billing.periods", c.terms.payment_period)}</td><td class="num">${c.terms.payment_due_days}</td>
        <td>${writer && !c.accepted ? html`<button type="button" class="small contract-edit" onClick=${() => setEditing(c)}>
          ${t("admin.billing.edit_terms")}</button>` : null}</td></tr>`)}</tbody>
    </table>`}
    ${writer && editing ? html`<${TermsForm} key=${editing.id} accountId=${accountId} contract=${editing} onDone=${done} />` : null}
    ${writer && !editing && !contracts.some((c) => c.end === null) ? html`<${TermsForm} accountId=${accountId} onDone=${reload} />` : null}
  </section>`;
}

function UsageTable({ accountId }) {
  const [month, setMonth] = useState(today().slice(0, 7));
  const [report, error] = useLoad(() => api.get(`/accounts/${accountId}/usage${qs({ month })}`), [accountId, month]);
  return html`<div class="card" id="usage-report">
    <div class="toolbar"><${Field} id="usage-report-month" label=${t("admin.billing.usage_of_month")} error=${error} name="month">
      <input id="usage-report-month" type="month" value=${month} onInput=${(e) => e.target.value && setMonth(e.target.value)} /></${Field}></div>
    ${error && error.field !== "month" ? html`<${ErrorBox} error=${error} />` : null}
    ${report ? html`<div class="two-col">
      <table class="table" id="usage-kinds"><thead><tr><th>${t("admin.billing.usage_kind")}</th><th>${t("admin.billing.quantity")}</th>
        <th>${t("admin.billing.usage_source")}</th></tr></thead>
        <tbody>${report.usage.length === 0 ? html`<tr><td colspan="3" class="muted">${t("admin.billing.no_usage")}</td></tr>`
          : report.usage.map((u) => html`<tr key=${u.kind} data-kind=${u.kind}><td>${label("admin.billing.usage_kinds", u.kind)}</td>
          <td class="num">${u.quantity}</td><td>${label("admin.billing.usage_sources", u.source)}</td></tr>`)}</tbody></table>
      <table class="table" id="usage-sites"><thead><tr><th>${t("admin.billing.site")}</th><th>${t("admin.billing.billable_endpoints")}</th></tr></thead>
        <tbody>${report.sites.map((s) => html`<tr key=${s.site_id}><td>${s.name}</td>
          <td class="num">${s.in_service ? s.endpoints : t("admin.billing.not_in_service")}</td></tr>`)}</tbody></table>
    </div>` : null}
  </div>`;
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
    <${UsageTable} accountId=${accountId} />
    <h3>${t("admin.billing.draft_title")}</h3>
    <${ErrorBox} error=${error} />
    ${draft ? html`<p>${t("admin.billing.draft_explain", { start: draft.period_start, end: draft.period_end })}</p>
      <table class="table" id="draft-lines"><tbody>${draft.lines.map((line, i) => html`<tr key=${i}>
        <td>${line.description}</td><td class="num">${line.quantity}</td><td class="num">${line.amount}</td></tr>`)}
        <tr><th>${t("admin.billing.total")}</th><td></td><td class="num">${money(draft.total, draft.currency)}</td></tr></tbody></table>` : null}
    ${user.account_id === null ? html`<form class="card" id="usage-form" onSubmit=${submit}>
      <h3>${t("admin.billing.usage_entry")}</h3>
      <${Field} id="usage-kind" label=${t("admin.billing.usage_kind")} error=${formError} name="kind">
        <select id="usage-kind" value=${form.kind} onChange=${set("kind")}>
          ${USAGE_KINDS.map((k) => html`<option value=${k}>${label("admin.billing.usage_kinds", k)}</option>`)}</select></${Field}>
      <${Field} id="usage-month" label=${t("admin.billing.usage_month")} error=${formError} name="month">
        <input id="usage-month" type="date" required value=${form.month} onInput=${set("month")} /></${Field}>
      <${Field} id="usage-quantity" label=${t("admin.billing.quantity")} error=${formError} name="quantity">
        <input id="usage-quantity" required value=${form.quantity} onInput=${set("quantity")} /></${Field}>
      <${FormError} error=${formError} fields=${["kind", "month", "quantity"]} />
      <button type="submit">${t("admin.billing.save")}</button>
    </form>` : null}
  </section>`;
}

function OutageCredits({ accountId }) {
  const lang = currentLanguage();
  const [credits, error] = useLoad(() => api.get(`/accounts/${accountId}/outage-credits?lang=${lang}`), [accountId, lang]);
  return html`<div class="card" id="outage-credits-card">
    <h3>${t("admin.billing.outage_credits_title")}</h3>
    <${ErrorBox} error=${error} />
    ${credits && credits.length === 0 ? html`<p class="muted">${t("admin.billing.no_outage_credits")}</p>` : null}
    ${credits && credits.length ? html`<table class="table" id="outage-credits">
      <thead><tr><th>${t("admin.billing.number")}</th><th>${t("admin.billing.period")}</th><th>${t("admin.billing.description")}</th>
        <th>${t("admin.billing.amount")}</th></tr></thead>
      <tbody>${credits.map((c, i) => html`<tr key=${i} data-kind=${c.kind}><td>${c.number}</td><td>${c.period_start} – ${c.period_end}</td>
        <td>${c.description}</td><td class="num">${money(c.amount, c.currency)}</td></tr>`)}</tbody></table>` : null}
  </div>`;
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
    <${OutageCredits} accountId=${accountId} />
    ${user.account_id === null ? html`<form class="card" id="outage-form" onSubmit=${submit}>
      <h3>${t("admin.billing.outage_new")}</h3>
      <${Field} id="outage-start" label=${t("admin.billing.outage_start")} error=${formError} name="start">
        <input id="outage-start" type="datetime-local" required value=${form.start} onInput=${set("start")} /></${Field}>
      <${Field} id="outage-end" label=${t("admin.billing.outage_end")} error=${formError} name="end">
        <input id="outage-end" type="datetime-local" required value=${form.end} onInput=${set("end")} /></${Field}>
      <${Field} id="outage-scope" label=${t("admin.billing.outage_scope")} error=${formError} name="account_id">
        <select id="outage-scope" value=${form.scope} onChange=${set("scope")}>
          <option value="account">${t("admin.billing.scope_account")}</option><option value="service">${t("admin.billing.scope_service")}</option></select></${Field}>
      <${Field} id="outage-note" label=${t("admin.billing.outage_note")} error=${formError} name="note">
        <input id="outage-note" maxlength="500" value=${form.note} onInput=${set("note")} /></${Field}>
      <${FormError} error=${formError} fields=${["start", "end"]} />
      <button type="submit">${t("admin.billing.save")}</button>
    </form>` : null}
  </section>`;
}

function previousMonth() {
  const now = new Date();
  const first = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  return first.toISOString().slice(0, 7);
}

function Run() {
  const [through, setThrough] = useState(previousMonth());
  const [report, setReport] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  async function run(e) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setReport(null);
    try {
      setReport(await api.post("/billing/run", through ? { through } : {}));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  const list = (items) => (items.length ? items.join(", ") : "—");
  return html`<section id="billing-run" class="card">
    <p class="muted">${t("admin.billing.run_explain_period")}</p>
    <form class="inline-form" id="run-form" onSubmit=${run}>
      <${Field} id="run-through" label=${t("admin.billing.run_through")} error=${error} name="through">
        <input id="run-through" type="month" value=${through} onInput=${(e) => setThrough(e.target.value)} /></${Field}>
      <button type="submit" class="primary" id="run-billing" disabled=${busy}>${t("admin.billing.run_now")}</button>
    </form>
    <${FormError} error=${error} fields=${["through"]} />
    ${report ? html`<dl class="kv" id="run-report">
      <dt>${t("admin.billing.run_period")}</dt><dd>${report.through ? t("admin.billing.run_through_month", { month: report.through }) : t("admin.billing.run_all")}</dd>
      <dt>${t("admin.billing.run_issued")}</dt><dd id="run-issued">${list(report.issued)}</dd>
      <dt>${t("admin.billing.run_notices")}</dt><dd>${list(report.notices)}</dd>
      <dt>${t("admin.billing.run_suspended")}</dt><dd>${list(report.suspended)}</dd>
      <dt>${t("admin.billing.run_purged")}</dt><dd>${report.purged}</dd></dl>
      ${report.invoices.length ? html`<table class="table" id="run-invoices">
        <thead><tr><th>${t("admin.billing.number")}</th><th>${t("admin.billing.account")}</th><th>${t("admin.billing.period")}</th>
          <th>${t("admin.billing.total")}</th></tr></thead>
        <tbody>${report.invoices.map((i) => html`<tr key=${i.number} data-invoice=${i.number}><td>${i.number}</td><td>${i.account_name}</td>
          <td>${i.period_start} – ${i.period_end}</td><td class="num">${money(i.total, i.currency)}</td></tr>`)}</tbody></table>` : null}` : null}
  </section>`;
}

export function Billing({ user, accountId }) {
  const tabs = user.account_id === null ? TABS : TABS.filter((name) => name !== "run");
  const [tab, setTab] = useState("invoices");
  const views = { invoices: Invoices, statements: Statements, customer: Customer, contracts: Contracts, usage: Usage, outages: Outages, run: Run };
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
