// SIP state of a site's endpoints: each one's registrations and live call (GET /sip/endpoints), refreshed on
// demand and every 15 s while the page is open.
import { useEffect } from "preact/hooks";
import { formatDateTime, t } from "../lib/i18n.js";
import { html } from "../lib/ui.js";
import { api, qs } from "./api.js";
import { ErrorBox, useLoad } from "./common.js";

const REFRESH_MS = 15000;

function Registration({ endpoint }) {
  if (!endpoint.registered) {
    return html`<span class="pill off" data-sip-state="unregistered">${t("sip.admin.unregistered")}</span>`;
  }
  const r = endpoint.registrations[0];
  return html`<span class="pill ok" data-sip-state="registered">${t("sip.admin.registered")}</span>
    <span class="mono muted">${r.transport.toUpperCase()} ${r.source}</span>
    <span class="muted">${t("sip.admin.expires", { date: formatDateTime(r.expires_at) })}</span>`;
}

function Call({ call }) {
  const media = [call.audio_codec, call.video_codec].filter(Boolean).join(" · ");
  return html`<span class="pill live" data-sip-call=${call.state}>${t(`sip.admin.state.${call.state}`)}</span>
    ${call.meeting_number ? html`<span>${t("sip.admin.meeting", { number: call.meeting_number })}</span>` : null}
    <span class="mono muted">${media}</span>
    ${call.srtp ? html`<span class="pill ok">${t("sip.admin.srtp")}</span>` : null}`;
}

export function SipStatus({ site, account }) {
  const [rows, error, reload] = useLoad(
    () => api.get(`/sip/endpoints${qs({ account_id: account, site_id: site.id, limit: 500 })}`),
    [site.id, account],
  );
  useEffect(() => {
    const timer = setInterval(reload, REFRESH_MS);
    return () => clearInterval(timer);
  }, [reload]);
  if (!rows || rows.length === 0) return html`<${ErrorBox} error=${error} />`;
  return html`<div class="sip-status" data-site=${site.id}>
    <h4>${t("sip.admin.title")} <button type="button" class="small" onClick=${reload}>${t("sip.admin.refresh")}</button></h4>
    <${ErrorBox} error=${error} />
    <ul class="plain">
      ${rows.map((e) => html`<li key=${e.endpoint_id} data-sip-endpoint=${e.endpoint_id}>
        <span>${e.display_name}</span> <${Registration} endpoint=${e} />
        ${e.calls.length === 0
          ? html`<span class="muted">${t("sip.admin.idle")}</span>`
          : e.calls.map((c) => html`<${Call} key=${c.call_id} call=${c} />`)}
      </li>`)}
    </ul>
  </div>`;
}
