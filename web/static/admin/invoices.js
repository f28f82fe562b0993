// Billing, bill side: an account's invoices (filter by state), one invoice with its lines, payment, credit
// note, PDF and CSV. The platform admin writes; an account's admins read their own account's documents.
import { useState } from "preact/hooks";
import { currentLanguage, t } from "../lib/i18n.js";
import { html } from "../lib/ui.js";
import { api, download } from "./api.js";
import { ErrorBox, Loading, label, useLoad } from "./common.js";

export const STATES = ["draft", "issued", "overdue", "suspended", "paid"];

export function money(amount, currency) {
  return `${currency} ${amount}`;
}

/** The API's message beside the field it names (`terms.fee_per_endpoint_year` matches `fee_per_endpoint_year`). */
export function FieldError({ error, field }) {
  if (!error || !error.field) return null;
  const named = error.field === field || error.field.endsWith(`.${field}`);
  return named ? html`<span class="error field-error" role="alert" data-field=${field}>${error.message}</span>` : null;
}

/** One labelled control with the API's message for it beneath (`name`: the API's field name). */
export function Field({ id, label: text, error, name, children }) {
  return html`<div class="field"><label for=${id}>${text}</label>${children}<${FieldError} error=${error} field=${name} /></div>`;
}

/** An error no field of the form claims (a conflict such as already_paid, or a 403). */
export function FormError({ error, fields }) {
  if (!error) return null;
  if (error.field && fields.some((f) => error.field === f || error.field.endsWith(`.${f}`))) return null;
  return html`<p class="error" role="alert">${error.message || String(error)}</p>`;
}

function Payment({ invoice, onDone }) {
  const [form, setForm] = useState({ amount: invoice.amount_due, paid_on: "", reference: "" });
  const [error, setError] = useState(null);
  const fields = ["amount", "paid_on", "reference"];
  async function submit(e) {
    e.preventDefault();
    setError(null);
    try {
      await api.post(`/invoices/${invoice.id}/payments`, form);
      onDone();
    } catch (err) {
      setError(err);
    }
  }
  const set = (key) => (e) => setForm({ ...form, [key]: e.target.value });
  return html`<form class="card" id="payment-form" onSubmit=${submit}>
    <h3>${t("admin.billing.pay_title")}</h3>
    <${Field} id="pay-amount" label=${t("admin.billing.amount")} error=${error} name="amount">
      <input id="pay-amount" required value=${form.amount} onInput=${set("amount")} /></${Field}>
    <${Field} id="pay-date" label=${t("admin.billing.paid_on")} error=${error} name="paid_on">
      <input id="pay-date" type="date" required value=${form.paid_on} onInput=${set("paid_on")} /></${Field}>
    <${Field} id="pay-reference" label=${t("admin.billing.reference")} error=${error} name="reference">
      <input id="pay-reference" maxlength="200" value=${form.reference} onInput=${set("reference")} /></${Field}>
    <${FormError} error=${error} fields=${fields} />
    <button type="submit" class="primary" id="pay-submit">${t("admin.billing.pay")}</button>
  </form>`;
}

function CreditNote({ invoice, onDone }) {
  const [form, setForm] = useState({ amount: "", reason: "" });
  const [error, setError] = useState(null);
  async function submit(e) {
    e.preventDefault();
    setError(null);
    try {
      await api.post(`/invoices/${invoice.id}/credit-notes`, form);
      setForm({ amount: "", reason: "" });
      onDone();
    } catch (err) {
      setError(err);
    }
  }
  const set = (key) => (e) => setForm({ ...form, [key]: e.target.value });
  return html`<form class="card" id="credit-form" onSubmit=${submit}>
    <h3>${t("admin.billing.credit_title")}</h3>
    <${Field} id="credit-amount" label=${t("admin.billing.amount")} error=${error} name="amount">
      <input id="credit-amount" required value=${form.amount} onInput=${set("amount")} /></${Field}>
    <${Field} id="credit-reason" label=${t("admin.billing.reason")} error=${error} name="reason">
      <input id="credit-reason" required maxlength="500" value=${form.reason} onInput=${set("reason")} /></${Field}>
    <${FormError} error=${error} fields=${["amount", "reason"]} />
    <button type="submit" id="credit-submit">${t("admin.billing.credit")}</button>
  </form>`;
}

/** What the late fee figure is: accrued so far while unpaid; once paid, charged on a later invoice or still to be. */
function lateFeeLabel(invoice) {
  if (invoice.paid_on === null) return t("admin.billing.accrued_late_fee");
  if (Number(invoice.accrued_late_fee) === 0) return t("admin.billing.late_fee");
  if (invoice.late_fee_billed_in) return t("admin.billing.late_fee_billed", { number: invoice.late_fee_billed_in });
  return t("admin.billing.late_fee_to_bill");
}

function InvoiceDetail({ id, user, onBack, onChanged }) {
  const lang = currentLanguage();
  const [invoice, error, reload] = useLoad(() => api.get(`/invoices/${id}?lang=${lang}`), [id, lang]);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!invoice) return html`<${Loading} />`;
  const writer = user.account_id === null;
  const open = ["issued", "overdue", "suspended"].includes(invoice.state);
  const changed = () => {
    reload();
    onChanged();
  };
  const file = (kind, l) => download(`/invoices/${id}/${kind}?lang=${l}`, `invoice-${invoice.number}-${l}.${kind}`);
  return html`<section class="card" id="invoice-detail" data-state=${invoice.state}>
    <div class="actions">
      <button type="button" onClick=${onBack}>${t("admin.billing.back")}</button>
      <button type="button" id="pdf-zh" onClick=${() => file("pdf", "zh-CN")}>${t("admin.billing.pdf_zh")}</button>
      <button type="button" id="pdf-en" onClick=${() => file("pdf", "en")}>${t("admin.billing.pdf_en")}</button>
      <button type="button" onClick=${() => file("csv", lang)}>${t("admin.billing.csv")}</button>
    </div>
    <h2>${t("admin.billing.invoice_title", { number: invoice.number })}</h2>
    <dl class="kv">
      <dt>${t("admin.billing.period")}</dt><dd>${invoice.period_start} – ${invoice.period_end}</dd>
      <dt>${t("admin.billing.issued")}</dt><dd>${invoice.issue_date}</dd>
      <dt>${t("admin.billing.due")}</dt><dd>${invoice.due_date}</dd>
      <dt>${t("admin.billing.state")}</dt><dd id="invoice-state"><span class=${`pill ${invoice.state}`}>${label("admin.billing.states", invoice.state)}</span></dd>
      <dt>${t("admin.billing.total")}</dt><dd id="invoice-total">${money(invoice.total, invoice.currency)}</dd>
      <dt>${t("admin.billing.amount_due")}</dt><dd id="invoice-due">${money(invoice.amount_due, invoice.currency)}</dd>
      ${invoice.paid_amount !== null ? html`<dt>${t("admin.billing.paid_amount")}</dt>
        <dd id="invoice-paid">${money(invoice.paid_amount, invoice.currency)}</dd>` : null}
      ${invoice.paid_on ? html`<dt>${t("admin.billing.paid_on")}</dt><dd id="invoice-paid-on">${invoice.paid_on}</dd>` : null}
      <dt>${t("admin.billing.balance")}</dt><dd id="invoice-balance">${money(invoice.balance, invoice.currency)}</dd>
      <dt>${lateFeeLabel(invoice)}</dt><dd id="invoice-late-fee">${money(invoice.accrued_late_fee, invoice.currency)}</dd>
      ${invoice.overdue_from && !invoice.notice_on ? html`<dt>${t("admin.billing.overdue_from")}</dt>
        <dd id="invoice-overdue-from">${invoice.overdue_from}</dd>` : null}
      ${invoice.suspends_on && !invoice.suspended_on ? html`<dt>${t("admin.billing.suspends_on")}</dt>
        <dd id="invoice-suspends-on">${invoice.suspends_on}</dd>` : null}
      ${invoice.notice_on ? html`<dt>${t("admin.billing.notice_on")}</dt><dd>${invoice.notice_on}</dd>` : null}
      ${invoice.suspended_on ? html`<dt>${t("admin.billing.suspended_on")}</dt><dd>${invoice.suspended_on}</dd>` : null}
      ${Number(invoice.carry_forward) ? html`<dt>${t("admin.billing.carry_forward")}</dt><dd>${money(invoice.carry_forward, invoice.currency)}</dd>` : null}
    </dl>
    ${invoice.credit_notes.length ? html`<h3>${t("admin.billing.credit_notes")}</h3>
      <ul class="plain" id="invoice-credit-notes">${invoice.credit_notes.map((n) => html`<li key=${n.id} data-credit-note=${n.number}>
        <span>${n.number} · ${n.issued_on} · ${money(n.amount, invoice.currency)} · ${t(n.settles ? "admin.billing.credit_settles" : "admin.billing.credit_carried")}</span>
        <button type="button" class="small" onClick=${() => download(`/credit-notes/${n.id}/pdf?lang=${lang}`, `credit-note-${n.number}-${lang}.pdf`)}>
          ${t("admin.billing.credit_pdf", { number: n.number })}</button></li>`)}</ul>` : null}
    <table class="table" id="invoice-lines">
      <thead><tr><th>${t("admin.billing.description")}</th><th>${t("admin.billing.quantity")}</th>
        <th>${t("admin.billing.unit_price")}</th><th>${t("admin.billing.amount")}</th></tr></thead>
      <tbody>${invoice.lines.map((line, i) => html`<tr key=${i} data-kind=${line.kind}>
        <td>${line.description}</td><td class="num">${line.quantity}</td><td class="num">${line.unit_price}</td>
        <td class="num">${line.amount}</td></tr>`)}</tbody>
    </table>
    ${writer && open ? html`<div class="columns"><${Payment} invoice=${invoice} onDone=${changed} />
      <${CreditNote} invoice=${invoice} onDone=${changed} /></div>` : null}
    ${writer && invoice.state === "paid" ? html`<${CreditNote} invoice=${invoice} onDone=${changed} />` : null}
  </section>`;
}

export function Invoices({ user, accountId }) {
  const [state, setState] = useState("");
  const [selected, setSelected] = useState(null);
  const [invoices, error, reload] = useLoad(() => api.get(`/accounts/${accountId}/invoices`), [accountId]);
  const [standing, , reloadStanding] = useLoad(() => api.get(`/accounts/${accountId}/standing`), [accountId]);
  const changed = () => {
    reload();
    reloadStanding();
  };
  if (selected !== null) {
    return html`<${InvoiceDetail} id=${selected} user=${user} onBack=${() => setSelected(null)} onChanged=${changed} />`;
  }
  const rows = (invoices || []).filter((i) => !state || i.state === state);
  const lang = currentLanguage();
  return html`<section id="invoices">
    ${standing && standing.suspended
      ? html`<p class="warning" id="standing" role="status">${t("admin.billing.suspended_for", { reason: standing.reason })}</p>`
      : null}
    <div class="toolbar">
      <label for="invoice-state-filter">${t("admin.billing.state")}</label>
      <select id="invoice-state-filter" value=${state} onChange=${(e) => setState(e.target.value)}>
        <option value="">${t("admin.billing.all_states")}</option>
        ${STATES.map((s) => html`<option value=${s}>${label("admin.billing.states", s)}</option>`)}
      </select>
      <button type="button" onClick=${() => download(`/accounts/${accountId}/invoices/csv?lang=${lang}`, `invoices-${accountId}.csv`)}>
        ${t("admin.billing.csv")}</button>
    </div>
    <${ErrorBox} error=${error} />
    ${!invoices ? html`<${Loading} />` : rows.length === 0 ? html`<p class="muted">${t("admin.billing.no_invoices")}</p>`
      : html`<table class="table" id="invoices-table">
        <thead><tr><th>${t("admin.billing.number")}</th><th>${t("admin.billing.period")}</th><th>${t("admin.billing.issued")}</th>
          <th>${t("admin.billing.due")}</th><th>${t("admin.billing.state")}</th><th>${t("admin.billing.total")}</th>
          <th>${t("admin.billing.amount_due")}</th><th>${t("admin.billing.paid_on")}</th></tr></thead>
        <tbody>${rows.map((i) => html`<tr key=${i.id} data-invoice=${i.number} data-state=${i.state}>
          <td><a href="#" onClick=${(e) => { e.preventDefault(); setSelected(i.id); }}>${i.number}</a></td>
          <td>${i.period_start} – ${i.period_end}</td><td>${i.issue_date}</td><td>${i.due_date}</td>
          <td><span class=${`pill ${i.state}`}>${label("admin.billing.states", i.state)}</span></td>
          <td class="num">${money(i.total, i.currency)}</td><td class="num">${money(i.amount_due, i.currency)}</td>
          <td>${i.paid_on || ""}</td></tr>`)}</tbody>
      </table>`}
  </section>`;
}
