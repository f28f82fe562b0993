// Billing, account side: the monthly statement of account (对账单) with its PDF and CSV, and the customer's
// billing details printed on every document. The platform admin edits the details; an account's admins read.
import { useEffect, useState } from "preact/hooks";
import { currentLanguage, t } from "../lib/i18n.js";
import { html } from "../lib/ui.js";
import { api, download } from "./api.js";
import { ErrorBox, Loading, useLoad } from "./common.js";
import { Field, FormError, money } from "./invoices.js";

const CUSTOMER_FIELDS = ["name", "tax_id", "address", "contact"];

function thisMonth() {
  return new Date().toISOString().slice(0, 7);
}

export function Statements({ accountId }) {
  const lang = currentLanguage();
  const [month, setMonth] = useState(thisMonth());
  const [statement, error] = useLoad(
    () => api.get(`/accounts/${accountId}/statements/${month}?lang=${lang}`),
    [accountId, month, lang],
  );
  const file = (kind, l) => download(`/accounts/${accountId}/statements/${month}/${kind}?lang=${l}`, `statement-${month}-${l}.${kind}`);
  const amount = (value) => (statement ? money(value, statement.currency) : value);
  const cell = (value) => (Number(value) ? amount(value) : "");
  return html`<section id="statements">
    <div class="toolbar">
      <${Field} id="statement-month" label=${t("admin.billing.statement_month")} error=${error} name="month">
        <input id="statement-month" type="month" value=${month} onInput=${(e) => e.target.value && setMonth(e.target.value)} /></${Field}>
      <div class="actions">
        <button type="button" id="statement-pdf-zh" disabled=${!statement} onClick=${() => file("pdf", "zh-CN")}>${t("admin.billing.pdf_zh")}</button>
        <button type="button" id="statement-pdf-en" disabled=${!statement} onClick=${() => file("pdf", "en")}>${t("admin.billing.pdf_en")}</button>
        <button type="button" id="statement-csv" disabled=${!statement} onClick=${() => file("csv", lang)}>${t("admin.billing.csv")}</button>
      </div>
    </div>
    ${error && error.field !== "month" ? html`<${ErrorBox} error=${error} />` : null}
    ${!statement && !error ? html`<${Loading} />` : null}
    ${statement ? html`<div class="card" id="statement">
      <h3>${t("admin.billing.statement_title", { month: statement.month })}</h3>
      <p class="muted">${t("admin.billing.statement_explain", { date: statement.as_of })}</p>
      <table class="table" id="statement-lines">
        <thead><tr><th>${t("admin.billing.date")}</th><th>${t("admin.billing.entry")}</th><th>${t("admin.billing.debit")}</th>
          <th>${t("admin.billing.credit_column")}</th><th>${t("admin.billing.running_balance")}</th></tr></thead>
        <tbody>
          <tr><td></td><td>${t("admin.billing.opening_balance")}</td><td></td><td></td><td class="num">${amount(statement.opening_balance)}</td></tr>
          ${statement.lines.map((line, i) => html`<tr key=${i} data-kind=${line.kind}><td>${line.on}</td>
            <td>${line.description}${line.memo !== null ? html` <span class="muted">(${t("admin.billing.memo")} ${amount(line.memo)})</span>` : null}</td>
            <td class="num">${cell(line.debit)}</td><td class="num">${cell(line.credit)}</td><td class="num">${amount(line.balance)}</td></tr>`)}
          <tr><th></th><th>${t("admin.billing.month_totals")}</th><td class="num">${amount(statement.total_debit)}</td>
            <td class="num">${amount(statement.total_credit)}</td><td></td></tr>
          <tr class="closing"><th>${statement.as_of}</th><th>${t("admin.billing.closing_balance")}</th><td></td><td></td>
            <td class="num" id="statement-closing">${amount(statement.closing_balance)}</td></tr>
        </tbody>
      </table>
      ${Number(statement.credit_held) ? html`<p id="statement-credit-held">${t("admin.billing.credit_held", { amount: amount(statement.credit_held) })}</p>` : null}
      ${statement.open_invoices.length ? html`<h3>${t("admin.billing.open_invoices")}</h3>
        <table class="table" id="statement-open"><thead><tr><th>${t("admin.billing.number")}</th><th>${t("admin.billing.due")}</th>
          <th>${t("admin.billing.balance")}</th></tr></thead>
          <tbody>${statement.open_invoices.map((i) => html`<tr key=${i.number}><td>${i.number}</td><td>${i.due}</td>
            <td class="num">${amount(i.open_amount)}</td></tr>`)}</tbody></table>` : null}
    </div>` : null}
  </section>`;
}

export function Customer({ user, accountId }) {
  const [account, error, reload] = useLoad(() => api.get(`/accounts/${accountId}`), [accountId]);
  const [form, setForm] = useState(null);
  const [saveError, setSaveError] = useState(null);
  const [saved, setSaved] = useState(false);
  useEffect(() => {
    if (account) setForm({ ...account.billing });
  }, [account]);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!account || !form) return html`<${Loading} />`;
  const writer = user.account_id === null;
  if (!writer) {
    return html`<section class="card" id="customer">
      <h3>${t("admin.billing.customer_title")}</h3>
      <p class="muted">${t("admin.billing.customer_readonly")}</p>
      <dl class="kv" id="customer-details">${CUSTOMER_FIELDS.map((key) => html`<dt>${t(`admin.billing.customer.${key}`)}</dt>
        <dd data-customer=${key}>${account.billing[key] || (key === "name" ? account.name : "—")}</dd>`)}</dl>
    </section>`;
  }
  async function submit(e) {
    e.preventDefault();
    setSaveError(null);
    setSaved(false);
    try {
      await api.patch(`/accounts/${accountId}`, { billing: form });
      setSaved(true);
      reload();
    } catch (err) {
      setSaveError(err);
    }
  }
  const set = (key) => (e) => setForm({ ...form, [key]: e.target.value });
  const limits = { name: 200, tax_id: 40, address: 300, contact: 200 };
  return html`<form class="card" id="customer-form" onSubmit=${submit}>
    <h3>${t("admin.billing.customer_title")}</h3>
    <p class="muted">${t("admin.billing.customer_explain", { name: account.name })}</p>
    ${CUSTOMER_FIELDS.map((key) => html`<${Field} id=${`customer-${key}`} label=${t(`admin.billing.customer.${key}`)} error=${saveError} name=${key}>
      <input id=${`customer-${key}`} value=${form[key] || ""} maxlength=${limits[key]} onInput=${set(key)} /></${Field}>`)}
    <${FormError} error=${saveError} fields=${CUSTOMER_FIELDS} />
    <div class="form-actions">
      <button type="submit" class="primary" id="customer-save">${t("admin.billing.save")}</button>
      ${saved ? html`<span class="success" role="status" id="customer-saved">${t("admin.billing.saved")}</span>` : null}
    </div>
  </form>`;
}
