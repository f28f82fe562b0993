// Maintenance windows (platform admins): schedule one at least 48 h ahead (or give an emergency reason),
// see the proof of every notice it sent, cancel it. The banner above every admin page comes from here too.
import { useState } from "preact/hooks";
import { formatDateTime, t } from "../lib/i18n.js";
import { AnnouncementBanners, useAnnouncements } from "../lib/announcements.js";
import { html } from "../lib/ui.js";
import { api, qs, token } from "./api.js";
import { ErrorBox, Loading, errorText, label, useLoad } from "./common.js";

const EMPTY = { starts_at: "", ends_at: "", title_zh: "", title_en: "", text_zh: "", text_en: "", emergency_reason: "" };

/** The banner above the admin pages: upcoming and running windows for this user. */
export function MaintenanceBanner() {
  const [items] = useAnnouncements(token() ? { Authorization: `Bearer ${token()}` } : {});
  return html`<div class="banners admin-banners"><${AnnouncementBanners} items=${items} /></div>`;
}

function Field({ id, name, error, children }) {
  return html`<label for=${id}>${t(`maintenance.field.${name}`)}</label>
    ${children}
    ${error?.field === name ? html`<p class="error field-error" role="alert" id=${`${id}-error`}>${errorText(error)}</p>` : null}`;
}

function ScheduleForm({ onDone }) {
  const [form, setForm] = useState(EMPTY);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (key) => (e) => setForm({ ...form, [key]: e.target.value });
  async function submit(e) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = {
        scope: "platform",
        starts_at: new Date(form.starts_at).toISOString(),
        ends_at: new Date(form.ends_at).toISOString(),
        title: { "zh-CN": form.title_zh, en: form.title_en },
        text: { "zh-CN": form.text_zh, en: form.text_en },
      };
      if (form.emergency_reason.trim()) body.emergency_reason = form.emergency_reason.trim();
      const created = await api.post("/maintenance", body);
      setForm(EMPTY);
      onDone(created);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  const general = error && !["starts_at", "ends_at", "emergency_reason"].includes(error.field) ? error : null;
  return html`<form class="card form-grid" id="maintenance-form" onSubmit=${submit}>
    <h2>${t("maintenance.schedule")}</h2>
    <p class="muted form-note">${t("maintenance.rule")}</p>
    <${Field} id="maintenance-starts" name="starts_at" error=${error}>
      <input id="maintenance-starts" type="datetime-local" required value=${form.starts_at} onInput=${set("starts_at")} /><//>
    <${Field} id="maintenance-ends" name="ends_at" error=${error}>
      <input id="maintenance-ends" type="datetime-local" required value=${form.ends_at} onInput=${set("ends_at")} /><//>
    <label for="maintenance-title-zh">${t("maintenance.field.title_zh")}</label>
    <input id="maintenance-title-zh" required maxlength="200" value=${form.title_zh} onInput=${set("title_zh")} />
    <label for="maintenance-title-en">${t("maintenance.field.title_en")}</label>
    <input id="maintenance-title-en" required maxlength="200" value=${form.title_en} onInput=${set("title_en")} />
    <label for="maintenance-text-zh">${t("maintenance.field.text_zh")}</label>
    <textarea id="maintenance-text-zh" rows="2" required maxlength="4000" value=${form.text_zh} onInput=${set("text_zh")}></textarea>
    <label for="maintenance-text-en">${t("maintenance.field.text_en")}</label>
    <textarea id="maintenance-text-en" rows="2" required maxlength="4000" value=${form.text_en} onInput=${set("text_en")}></textarea>
    <${Field} id="maintenance-emergency" name="emergency_reason" error=${error}>
      <input id="maintenance-emergency" maxlength="1000" placeholder=${t("maintenance.emergency_hint")}
        value=${form.emergency_reason} onInput=${set("emergency_reason")} /><//>
    <${ErrorBox} error=${general} />
    <div class="actions"><button type="submit" class="primary" id="maintenance-submit" disabled=${busy}>${t("maintenance.submit")}</button></div>
  </form>`;
}

function Detail({ id, onChanged }) {
  const [detail, error, reload] = useLoad(() => api.get(`/maintenance/${id}`), [id]);
  const [failure, setFailure] = useState(null);
  async function cancel() {
    if (!confirm(t("maintenance.cancel_confirm"))) return;
    try {
      await api.del(`/maintenance/${id}`);
      reload();
      onChanged();
    } catch (err) {
      setFailure(err);
    }
  }
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!detail) return html`<${Loading} />`;
  return html`<article class="card" id="maintenance-detail" data-window=${detail.id}>
    <div class="section-head">
      <h2>${detail.title[document.documentElement.lang] || detail.title.en}</h2>
      ${detail.cancelled ? html`<span class="pill">${t("maintenance.cancelled")}</span>`
        : html`<button type="button" class="danger" id="maintenance-cancel" onClick=${cancel}>${t("maintenance.cancel")}</button>`}
    </div>
    <p class="muted">${formatDateTime(detail.starts_at)} – ${formatDateTime(detail.ends_at)}
      ${" · "}${t("maintenance.notice_hours", { hours: detail.notice_hours })}
      ${detail.emergency_reason ? html` · ${t("maintenance.emergency", { reason: detail.emergency_reason })}` : null}</p>
    <${ErrorBox} error=${failure} />
    <h3>${t("maintenance.proof")}</h3>
    <table class="table" id="maintenance-notices">
      <thead><tr><th scope="col">${t("maintenance.notice.kind")}</th><th scope="col">${t("maintenance.notice.recipient")}</th>
        <th scope="col">${t("maintenance.notice.locale")}</th><th scope="col">${t("maintenance.notice.queued")}</th>
        <th scope="col">${t("maintenance.notice.sent")}</th><th scope="col">${t("maintenance.notice.status")}</th></tr></thead>
      <tbody>
        ${detail.notices.map((n) => html`<tr key=${n.id} data-notice=${n.kind}>
          <td>${label("maintenance.kind", n.kind)}</td><td>${n.recipient === "all" ? t("maintenance.all_meetings") : n.recipient}</td>
          <td>${n.locale === "*" ? "" : n.locale}</td><td>${formatDateTime(n.queued_at)}</td>
          <td>${n.sent_at ? formatDateTime(n.sent_at) : "—"}</td><td>${label("maintenance.status", n.status)}</td>
        </tr>`)}
      </tbody>
    </table>
  </article>`;
}

export function Maintenance() {
  const [includePast, setIncludePast] = useState(false);
  const [windows, error, reload] = useLoad(() => api.get(`/maintenance${qs({ include_past: includePast || null })}`), [includePast]);
  const [selected, setSelected] = useState(null);
  return html`<section aria-labelledby="maintenance-title">
    <div class="section-head"><h1 id="maintenance-title">${t("admin.nav.maintenance")}</h1>
      <label class="inline"><input type="checkbox" checked=${includePast} onChange=${(e) => setIncludePast(e.target.checked)} />
        ${t("maintenance.include_past")}</label></div>
    <${ScheduleForm} onDone=${(created) => { reload(); setSelected(created.id); }} />
    <${ErrorBox} error=${error} />
    ${windows === null && !error ? html`<${Loading} />` : null}
    ${windows && windows.length === 0 ? html`<p class="muted" id="maintenance-none">${t("maintenance.none")}</p>` : null}
    ${windows && windows.length
      ? html`<table class="table" id="maintenance-list">
        <thead><tr><th scope="col">${t("maintenance.field.title_en")}</th><th scope="col">${t("maintenance.field.starts_at")}</th>
          <th scope="col">${t("maintenance.field.ends_at")}</th><th scope="col">${t("maintenance.notice.status")}</th><th></th></tr></thead>
        <tbody>${windows.map((w) => html`<tr key=${w.id} data-window=${w.id}>
          <td>${w.title[document.documentElement.lang] || w.title.en}</td><td>${formatDateTime(w.starts_at)}</td>
          <td>${formatDateTime(w.ends_at)}</td>
          <td>${w.cancelled ? t("maintenance.cancelled") : w.emergency_reason ? t("maintenance.short_notice") : t("maintenance.planned")}</td>
          <td><button type="button" class="small" onClick=${() => setSelected(w.id)}>${t("maintenance.show")}</button></td>
        </tr>`)}</tbody></table>`
      : null}
    ${selected ? html`<${Detail} key=${selected} id=${selected} onChanged=${reload} />` : null}
  </section>`;
}
