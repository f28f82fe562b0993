// Webhooks: an account's subscriptions, the signing secret shown once, a test ping, and the delivery log
// with redelivery.
import { useState } from "preact/hooks";
import { formatDateTime, t } from "../lib/i18n.js";
import { copyText, html } from "../lib/ui.js";
import { api, qs } from "./api.js";
import { ErrorBox, Loading, accountParam, label, useLoad } from "./common.js";

export const EVENTS = [
  "meeting.started", "meeting.ended", "participant.joined", "participant.left",
  "recording.ready", "live.started", "live.ended", "invoice.issued",
];

function SecretOnce({ hook, onClose }) {
  const [copied, setCopied] = useState(false);
  return html`<div class="card secret" role="alertdialog" aria-labelledby="webhook-secret-title" id="webhook-secret">
    <h2 id="webhook-secret-title">${t("ops2.webhooks.secret_title")}</h2>
    <p class="warning">${t("ops2.webhooks.secret_once")}</p>
    <p class="mono" id="webhook-secret-value">${hook.secret}</p>
    <div class="actions">
      <button type="button" class="primary" onClick=${async () => { await copyText(hook.secret); setCopied(true); }}>
        ${copied ? t("admin.invite.copied") : t("ops2.webhooks.copy_secret")}</button>
      <button type="button" onClick=${onClose}>${t("admin.endpoints.secret_done")}</button>
    </div>
  </div>`;
}

function Deliveries({ hook }) {
  const [status, setStatus] = useState("");
  const [rows, error, reload] = useLoad(
    () => api.get(`/webhooks/${hook.id}/deliveries${qs({ status, limit: 100 })}`), [hook.id, status]);
  const [actionError, setActionError] = useState(null);
  async function redeliver(delivery) {
    setActionError(null);
    try {
      await api.post(`/webhook-deliveries/${delivery.id}/redeliver`);
      reload();
    } catch (err) {
      setActionError(err);
    }
  }
  return html`<div class="deliveries" id=${`deliveries-${hook.id}`}>
    <h3>${t("ops2.webhooks.log")}</h3>
    <div class="inline">
      <label for=${`delivery-status-${hook.id}`}>${t("ops2.webhooks.status")}</label>
      <select id=${`delivery-status-${hook.id}`} value=${status} onChange=${(e) => setStatus(e.target.value)}>
        <option value="">${t("ops2.webhooks.all")}</option>
        ${["pending", "delivered", "failed"].map((s) => html`<option value=${s}>${t(`ops2.webhooks.status_${s}`)}</option>`)}
      </select>
      <button type="button" class="small" onClick=${reload}>${t("ops2.webhooks.refresh")}</button>
    </div>
    <${ErrorBox} error=${error || actionError} />
    ${rows === null && !error ? html`<${Loading} />` : null}
    <table class="table">
      <thead><tr>
        <th scope="col">${t("ops2.webhooks.col_created")}</th><th scope="col">${t("ops2.webhooks.col_event")}</th>
        <th scope="col">${t("ops2.webhooks.status")}</th><th scope="col">${t("ops2.webhooks.col_attempts")}</th>
        <th scope="col">${t("ops2.webhooks.col_code")}</th><th scope="col">${t("ops2.webhooks.col_error")}</th><th scope="col"></th>
      </tr></thead>
      <tbody>
        ${rows && rows.length === 0 ? html`<tr><td colspan="7" class="muted">${t("ops2.webhooks.no_deliveries")}</td></tr>` : null}
        ${(rows || []).map((d) => html`<tr key=${d.id} data-delivery=${d.id}>
          <td>${formatDateTime(d.created_at)}</td><td class="mono">${d.event}</td>
          <td><span class=${d.status === "delivered" ? "pill ok" : d.status === "failed" ? "pill off" : "pill"}>${t(`ops2.webhooks.status_${d.status}`)}</span></td>
          <td>${d.attempts}</td><td>${d.response_code ?? ""}</td><td class="muted">${d.last_error}</td>
          <td><button type="button" class="small" onClick=${() => redeliver(d)}>${t("ops2.webhooks.redeliver")}</button></td>
        </tr>`)}
      </tbody>
    </table>
  </div>`;
}

export function Webhooks({ user, accountId }) {
  const account = accountParam(user, accountId);
  const [hooks, error, reload] = useLoad(() => api.get(`/webhooks${qs({ account_id: account, limit: 500 })}`), [accountId]);
  const [form, setForm] = useState({ url: "", description: "", events: ["meeting.started", "meeting.ended"] });
  const [secret, setSecret] = useState(null);
  const [open, setOpen] = useState(null);
  const [actionError, setActionError] = useState(null);
  async function act(fn) {
    setActionError(null);
    try {
      await fn();
      reload();
    } catch (err) {
      setActionError(err);
    }
  }
  function toggleEvent(name) {
    const events = form.events.includes(name) ? form.events.filter((e) => e !== name) : [...form.events, name];
    setForm({ ...form, events });
  }
  const create = (e) => {
    e.preventDefault();
    act(async () => {
      const created = await api.post("/webhooks", { ...form, account_id: account ?? undefined });
      setSecret(created);
      setForm({ ...form, url: "", description: "" });
    });
  };
  return html`<section aria-labelledby="webhooks-title" class="webhooks">
    <div class="section-head"><h1 id="webhooks-title">${t("admin.nav.webhooks")}</h1></div>
    <p class="muted">${t("ops2.webhooks.intro")}</p>
    ${secret ? html`<${SecretOnce} hook=${secret} onClose=${() => setSecret(null)} />` : null}
    <form class="card" id="webhook-form" onSubmit=${create}>
      <h2>${t("ops2.webhooks.new")}</h2>
      <label for="webhook-url">${t("ops2.webhooks.url")}</label>
      <input id="webhook-url" type="url" required maxlength="2000" value=${form.url} placeholder=${t("ops2.webhooks.url_hint")}
        onInput=${(e) => setForm({ ...form, url: e.target.value })} />
      <label for="webhook-description">${t("ops2.webhooks.description")}</label>
      <input id="webhook-description" maxlength="200" value=${form.description} onInput=${(e) => setForm({ ...form, description: e.target.value })} />
      <fieldset><legend>${t("ops2.webhooks.events")}</legend>
        ${EVENTS.map((name) => html`<label class="check" key=${name}><input type="checkbox" checked=${form.events.includes(name)}
          onChange=${() => toggleEvent(name)} /> ${label("ops2.event", name)}</label>`)}
      </fieldset>
      <button type="submit" class="primary" id="webhook-create">${t("admin.create")}</button>
    </form>
    <${ErrorBox} error=${error || actionError} />
    ${hooks === null && !error ? html`<${Loading} />` : null}
    ${(hooks || []).length === 0 && hooks ? html`<p class="muted">${t("ops2.webhooks.none")}</p>` : null}
    ${(hooks || []).map((hook) => html`<div class="card" key=${hook.id} data-webhook=${hook.id}>
      <h2 class="mono">${hook.url}</h2>
      <p class="muted">${hook.description} ${hook.events.map((e) => label("ops2.event", e)).join(" · ")}</p>
      <div class="actions">
        <span class=${hook.active ? "pill ok" : "pill off"}>${hook.active ? t("ops2.webhooks.active") : t("ops2.webhooks.paused")}</span>
        <button type="button" class="small" onClick=${() => act(() => api.patch(`/webhooks/${hook.id}`, { active: !hook.active }))}>
          ${hook.active ? t("ops2.webhooks.pause") : t("ops2.webhooks.resume")}</button>
        <button type="button" class="small" onClick=${() => act(() => api.post(`/webhooks/${hook.id}/ping`))}>${t("ops2.webhooks.ping")}</button>
        <button type="button" class="small" onClick=${() => act(async () => setSecret(await api.patch(`/webhooks/${hook.id}`, { rotate_secret: true })))}>
          ${t("ops2.webhooks.rotate")}</button>
        <button type="button" class="small" aria-expanded=${open === hook.id} onClick=${() => setOpen(open === hook.id ? null : hook.id)}>
          ${t("ops2.webhooks.log")}</button>
        <button type="button" class="small danger" onClick=${() => confirm(t("ops2.webhooks.confirm_delete")) && act(() => api.del(`/webhooks/${hook.id}`))}>
          ${t("admin.delete")}</button>
      </div>
      ${open === hook.id ? html`<${Deliveries} hook=${hook} />` : null}
    </div>`)}
  </section>`;
}
