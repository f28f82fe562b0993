// Sites and their endpoints (SIP room terminals); an endpoint's SIP secret is shown once, right after creation.
import { useState } from "preact/hooks";
import { formatDateTime, t } from "../lib/i18n.js";
import { copyText, html } from "../lib/ui.js";
import { api, qs } from "./api.js";
import { ErrorBox, Loading, accountParam, useLoad } from "./common.js";
import { SipStatus } from "./sip_status.js";

function SecretOnce({ endpoint, onClose }) {
  const [copied, setCopied] = useState(false);
  return html`<div class="card secret" role="alertdialog" aria-labelledby="secret-title" id="endpoint-secret">
    <h2 id="secret-title">${t("admin.endpoints.secret_title", { name: endpoint.display_name })}</h2>
    <p class="warning">${t("admin.endpoints.secret_once")}</p>
    <dl class="kv">
      <dt>${t("admin.endpoints.sip_username")}</dt><dd class="mono">${endpoint.sip_username}</dd>
      <dt>${t("admin.endpoints.sip_secret")}</dt><dd class="mono" id="sip-secret">${endpoint.sip_secret}</dd>
      <dt>${t("admin.endpoints.registrar")}</dt><dd class="mono">${location.hostname}</dd>
    </dl>
    <div class="actions">
      <button type="button" class="primary" onClick=${async () => { await copyText(endpoint.sip_secret); setCopied(true); }}>
        ${copied ? t("admin.invite.copied") : t("admin.endpoints.copy_secret")}</button>
      <button type="button" onClick=${onClose}>${t("admin.endpoints.secret_done")}</button>
    </div>
  </div>`;
}

function Endpoints({ site, account, onSecret }) {
  // The list is per account; this site's endpoints are picked out here.
  const [endpoints, error, reload] = useLoad(() => api.get(`/endpoints${qs({ account_id: account, limit: 500 })}`), [site.id]);
  const [name, setName] = useState("");
  const [actionError, setActionError] = useState(null);
  async function create(e) {
    e.preventDefault();
    setActionError(null);
    try {
      const created = await api.post("/endpoints", { site_id: site.id, display_name: name });
      setName("");
      onSecret(created);
      reload();
    } catch (err) {
      setActionError(err);
    }
  }
  async function toggle(endpoint) {
    try {
      await api.patch(`/endpoints/${endpoint.id}`, { enabled: !endpoint.enabled });
      reload();
    } catch (err) {
      setActionError(err);
    }
  }
  const mine = (endpoints || []).filter((e) => e.site_id === site.id);
  return html`<div class="endpoints">
    <h3>${t("admin.endpoints.title")}</h3>
    <${ErrorBox} error=${error || actionError} />
    <ul class="plain">
      ${mine.length === 0 ? html`<li class="muted">${t("admin.endpoints.none")}</li>` : null}
      ${mine.map((e) => html`<li key=${e.id} data-endpoint=${e.id}>
        <span>${e.display_name}</span> <span class="mono muted">${e.sip_username}</span>
        <span class=${e.enabled ? "pill ok" : "pill off"}>${e.enabled ? t("admin.endpoints.enabled") : t("admin.endpoints.disabled")}</span>
        <button type="button" class="small" onClick=${() => toggle(e)}>${e.enabled ? t("admin.endpoints.disable") : t("admin.endpoints.enable")}</button>
      </li>`)}
    </ul>
    <form class="inline" onSubmit=${create}>
      <label for=${`endpoint-name-${site.id}`}>${t("admin.endpoints.new")}</label>
      <input id=${`endpoint-name-${site.id}`} required maxlength="200" value=${name} onInput=${(e) => setName(e.target.value)}
        placeholder=${t("admin.endpoints.name_hint")} />
      <button type="submit">${t("admin.create")}</button>
    </form>
  </div>`;
}

export function Sites({ user, accountId }) {
  const account = accountParam(user, accountId);
  const [sites, error, reload] = useLoad(() => api.get(`/sites${qs({ account_id: account, limit: 500 })}`), [accountId]);
  const [form, setForm] = useState({ name: "", address: "" });
  const [secret, setSecret] = useState(null);
  const [actionError, setActionError] = useState(null);
  async function create(e) {
    e.preventDefault();
    setActionError(null);
    try {
      await api.post("/sites", { ...form, account_id: account });
      setForm({ name: "", address: "" });
      reload();
    } catch (err) {
      setActionError(err);
    }
  }
  return html`<section aria-labelledby="sites-title">
    <div class="section-head"><h1 id="sites-title">${t("admin.nav.sites")}</h1></div>
    ${secret ? html`<${SecretOnce} endpoint=${secret} onClose=${() => setSecret(null)} />` : null}
    <form class="card inline" onSubmit=${create} aria-label=${t("admin.sites.new")}>
      <label for="site-name">${t("admin.sites.name")}</label>
      <input id="site-name" required maxlength="200" value=${form.name} onInput=${(e) => setForm({ ...form, name: e.target.value })} />
      <label for="site-address">${t("admin.sites.address")}</label>
      <input id="site-address" maxlength="500" value=${form.address} onInput=${(e) => setForm({ ...form, address: e.target.value })} />
      <button type="submit" class="primary">${t("admin.sites.new")}</button>
    </form>
    <${ErrorBox} error=${error || actionError} />
    ${sites === null && !error ? html`<${Loading} />` : null}
    ${(sites || []).length === 0 && sites ? html`<p class="muted">${t("admin.sites.none")}</p>` : null}
    ${(sites || []).map((site) => html`<article class="card site" key=${site.id} data-site=${site.id}>
      <h2>${site.name}</h2>
      <p class="muted">${site.address}</p>
      ${site.suspended_at ? html`<p class="warning">${t("admin.sites.suspended", { date: formatDateTime(site.suspended_at) })}</p>` : null}
      <${Endpoints} site=${site} account=${account} onSecret=${setSecret} />
      <${SipStatus} site=${site} account=${account} />
    </article>`)}
  </section>`;
}
