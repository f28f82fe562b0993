// RTMP ingest of a live channel (issue #18): the server URL and stream key an encoder (OBS, ffmpeg) is set
// up with, copied from here, and rotating the key (the encoder's next connection needs the new one).
import { useState } from "preact/hooks";
import { t } from "../lib/i18n.js";
import { copyText, html } from "../lib/ui.js";
import { api } from "./api.js";
import { ErrorBox, Loading, useLoad } from "./common.js";

export function Ingest({ channel }) {
  const [ingest, loadError, reload] = useLoad(() => api.get(`/live/${channel.id}/ingest`), [channel.id]);
  const [shown, setShown] = useState(false);
  const [error, setError] = useState(null);
  async function rotate() {
    if (!confirm(t("liveingest.rotate_confirm"))) return;
    setError(null);
    try {
      await api.post(`/live/${channel.id}/ingest/key`, {});
      reload();
    } catch (err) {
      setError(err);
    }
  }
  if (loadError) return html`<${ErrorBox} error=${loadError} />`;
  if (!ingest) return html`<${Loading} />`;
  return html`<fieldset id="channel-ingest"><legend>${t("liveingest.title")}</legend>
    <p class="small">${t("liveingest.help")}</p>
    <dl class="facts">
      <dt>${t("liveingest.server")}</dt>
      <dd><span class="mono" id="ingest-server">${ingest.server_url}</span>
        <button type="button" onClick=${() => copyText(ingest.server_url)}>${t("channels.copy")}</button></dd>
      <dt>${t("liveingest.key")}</dt>
      <dd><span class="mono" id="ingest-key">${shown ? ingest.stream_key : "••••••••••••"}</span>
        <button type="button" id="ingest-show" onClick=${() => setShown(!shown)}>${t(shown ? "liveingest.hide" : "liveingest.show")}</button>
        <button type="button" onClick=${() => copyText(ingest.stream_key)}>${t("channels.copy")}</button>
        <button type="button" id="ingest-rotate" class="danger" onClick=${rotate}>${t("liveingest.rotate")}</button></dd>
    </dl>
    <${ErrorBox} error=${error} />
  </fieldset>`;
}
