// SMS: send one now with a live part count, send a CSV of numbers as a batch with progress, the account's
// templates (checked when saved, previewed with the signature), statistics with a chart, and the history.
import { useEffect, useState } from "preact/hooks";
import { formatDateTime, formatNumber, t } from "../lib/i18n.js";
import { html } from "../lib/ui.js";
import { api, qs } from "./api.js";
import { BarChart, COLORS } from "./charts.js";
import { ErrorBox, Loading, label, useLoad } from "./common.js";

const TABS = ["send", "batches", "templates", "stats", "history"];
const LOCALES = ["zh-CN", "en"];
const STATUS_CLASS = { delivered: "pill ok", failed: "pill off", expired: "pill off", suppressed: "pill off", unknown: "pill off" };

function Status({ value }) {
  return html`<span class=${STATUS_CLASS[value] || "pill"}>${label("sms.status", value)}</span>`;
}

/** The part count of a text as sent (with the signature), asked of the server as the admin types. */
function usePreview(text, locale) {
  const [shown, setShown] = useState(null);
  useEffect(() => {
    if (!text) { setShown(null); return undefined; }
    const timer = setTimeout(() => {
      api.post("/sms/preview", { text, locale }).then(setShown).catch((error) => setShown({ error }));
    }, 250);
    return () => clearTimeout(timer);
  }, [text, locale]);
  return shown;
}

function PreviewLine({ shown, id }) {
  if (!shown) return null;
  if (shown.error) return html`<${ErrorBox} error=${shown.error} />`;
  return html`<p class="muted sms-preview" id=${id} data-parts=${shown.parts}>${t("sms.preview", {
    characters: shown.characters, encoding: label("sms.encoding", shown.encoding), parts: shown.parts,
    limit: shown.part_limit, signature: shown.signature })}</p>`;
}

function LocaleSelect({ id, value, onChange }) {
  return html`<select id=${id} value=${value} onChange=${(e) => onChange(e.target.value)}>
    ${LOCALES.map((code) => html`<option value=${code}>${t(`language.${code}`)}</option>`)}
  </select>`;
}

function TemplateSelect({ id, templates, value, onChange }) {
  return html`<select id=${id} value=${value} onChange=${(e) => onChange(e.target.value)}>
    <option value="">${t("sms.own_text")}</option>
    ${(templates || []).filter((tpl) => !tpl.shipped).map((tpl) => html`<option value=${tpl.key}>${tpl.key}</option>`)}
  </select>`;
}

function Send({ accountId }) {
  const [templates] = useLoad(() => api.get(`/accounts/${accountId}/sms/templates`), [accountId]);
  const [form, setForm] = useState({ to: "", text: "", template_key: "", locale: "zh-CN", variables: {} });
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const template = (templates || []).find((tpl) => tpl.key === form.template_key);
  const shown = usePreview(template ? "" : form.text, form.locale);
  async function submit(e) {
    e.preventDefault();
    setError(null);
    setResult(null);
    const body = { to: form.to, locale: form.locale };
    if (template) Object.assign(body, { template_key: template.key, variables: form.variables });
    else body.text = form.text;
    try {
      setResult(await api.post(`/accounts/${accountId}/sms`, body));
    } catch (err) {
      setError(err);
    }
  }
  return html`<form class="card" id="sms-send" onSubmit=${submit}>
    <h2>${t("sms.send_title")}</h2>
    <label for="sms-to">${t("sms.to")}</label>
    <input id="sms-to" required maxlength="32" value=${form.to} placeholder=${t("sms.to_hint")}
      onInput=${(e) => setForm({ ...form, to: e.target.value })} />
    <label for="sms-locale">${t("sms.locale")}</label>
    <${LocaleSelect} id="sms-locale" value=${form.locale} onChange=${(locale) => setForm({ ...form, locale })} />
    <label for="sms-template">${t("sms.template")}</label>
    <${TemplateSelect} id="sms-template" templates=${templates} value=${form.template_key}
      onChange=${(key) => setForm({ ...form, template_key: key, variables: {} })} />
    ${template
      ? template.variables.map((v) => html`<div key=${v.name}><label for=${`sms-var-${v.name}`}>${v.name}</label>
          <input id=${`sms-var-${v.name}`} maxlength=${v.max_length} value=${form.variables[v.name] || ""}
            onInput=${(e) => setForm({ ...form, variables: { ...form.variables, [v.name]: e.target.value } })} /></div>`)
      : html`<label for="sms-text">${t("sms.text")}</label>
        <textarea id="sms-text" required rows="4" maxlength="2000" value=${form.text}
          onInput=${(e) => setForm({ ...form, text: e.target.value })}></textarea>
        <${PreviewLine} shown=${shown} id="sms-text-preview" />`}
    <${ErrorBox} error=${error} />
    ${result ? html`<p class="notice" role="status" id="sms-sent">${t("sms.queued", { id: result.id, parts: result.preview.parts })}</p>` : null}
    <button type="submit" class="primary" id="sms-send-button">${t("sms.send")}</button>
  </form>`;
}

function BatchForm({ accountId, onCreated }) {
  const [templates] = useLoad(() => api.get(`/accounts/${accountId}/sms/templates`), [accountId]);
  const [form, setForm] = useState({ name: "", csv: "", text: "", template_key: "", locale: "zh-CN" });
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const shown = usePreview(form.template_key ? "" : form.text, form.locale);
  async function readFile(e) {
    const file = e.target.files[0];
    if (file) setForm({ ...form, csv: await file.text() });
  }
  async function submit(e) {
    e.preventDefault();
    setError(null);
    const body = { name: form.name, csv: form.csv, locale: form.locale };
    if (form.template_key) body.template_key = form.template_key;
    else body.text = form.text;
    try {
      const created = await api.post(`/accounts/${accountId}/sms/batches`, body);
      setResult(created);
      onCreated();
    } catch (err) {
      setError(err);
    }
  }
  return html`<form class="card" id="sms-batch-form" onSubmit=${submit}>
    <h2>${t("sms.batch_new")}</h2>
    <label for="sms-batch-name">${t("sms.batch_name")}</label>
    <input id="sms-batch-name" required maxlength="200" value=${form.name} onInput=${(e) => setForm({ ...form, name: e.target.value })} />
    <label for="sms-batch-file">${t("sms.batch_file")}</label>
    <input id="sms-batch-file" type="file" accept=".csv,text/csv,text/plain" onChange=${readFile} />
    <label for="sms-batch-csv">${t("sms.batch_csv")}</label>
    <textarea id="sms-batch-csv" required rows="5" value=${form.csv} placeholder=${t("sms.batch_csv_hint")}
      onInput=${(e) => setForm({ ...form, csv: e.target.value })}></textarea>
    <label for="sms-batch-locale">${t("sms.locale")}</label>
    <${LocaleSelect} id="sms-batch-locale" value=${form.locale} onChange=${(locale) => setForm({ ...form, locale })} />
    <label for="sms-batch-template">${t("sms.template")}</label>
    <${TemplateSelect} id="sms-batch-template" templates=${templates} value=${form.template_key}
      onChange=${(key) => setForm({ ...form, template_key: key })} />
    ${form.template_key ? html`<p class="muted">${t("sms.batch_columns")}</p>` : html`<label for="sms-batch-text">${t("sms.text")}</label>
      <textarea id="sms-batch-text" required rows="3" maxlength="2000" value=${form.text}
        onInput=${(e) => setForm({ ...form, text: e.target.value })}></textarea>
      <${PreviewLine} shown=${shown} id="sms-batch-preview" />`}
    <${ErrorBox} error=${error} />
    ${result ? html`<div class="notice" role="status" id="sms-batch-result">
      <p>${t("sms.batch_queued", { total: result.total, skipped: result.skipped })}</p>
      ${result.invalid.length ? html`<ul>${result.invalid.map((line) => html`<li key=${line.line}>${t("sms.batch_invalid", { ...line, reason: label("sms.reason", line.reason) })}</li>`)}</ul>` : null}
    </div>` : null}
    <button type="submit" class="primary" id="sms-batch-send">${t("sms.send")}</button>
  </form>`;
}

function Batches({ accountId }) {
  const [batches, error, reload] = useLoad(() => api.get(`/accounts/${accountId}/sms/batches`), [accountId]);
  const [actionError, setActionError] = useState(null);
  const running = (batches || []).some((b) => !b.cancelled_at && b.done < b.total);
  useEffect(() => {
    if (!running) return undefined;
    const timer = setInterval(reload, 2000);
    return () => clearInterval(timer);
  }, [running, reload]);
  async function cancel(batch) {
    setActionError(null);
    try {
      await api.post(`/accounts/${accountId}/sms/batches/${batch.id}/cancel`);
      reload();
    } catch (err) {
      setActionError(err);
    }
  }
  return html`<div>
    <${BatchForm} accountId=${accountId} onCreated=${reload} />
    <div class="section-head"><h2>${t("sms.batches")}</h2>
      <button type="button" class="small" id="sms-batches-refresh" onClick=${reload}>${t("sms.refresh")}</button></div>
    <${ErrorBox} error=${error || actionError} />
    ${batches === null && !error ? html`<${Loading} />` : null}
    <table class="table" id="sms-batches">
      <thead><tr><th scope="col">${t("sms.batch_name")}</th><th scope="col">${t("sms.created")}</th>
        <th scope="col">${t("sms.progress")}</th><th scope="col">${t("sms.parts")}</th><th scope="col">${t("sms.statuses")}</th><th scope="col"></th></tr></thead>
      <tbody>
        ${batches && batches.length === 0 ? html`<tr><td colspan="6" class="muted">${t("sms.no_batches")}</td></tr>` : null}
        ${(batches || []).map((b) => html`<tr key=${b.id} data-batch=${b.id}>
          <td>${b.name}</td><td>${formatDateTime(b.created_at)}</td>
          <td><progress max=${b.total} value=${b.done} aria-label=${t("sms.progress")}></progress>
            <span class="batch-done">${t("sms.done_of", { done: b.done, total: b.total })}</span></td>
          <td class="num">${formatNumber(b.parts)}</td>
          <td>${Object.entries(b.statuses).map(([s, n]) => html`<span key=${s}><${Status} value=${s} /> ${n} </span>`)}</td>
          <td>${!b.cancelled_at && b.done < b.total
            ? html`<button type="button" class="small danger" onClick=${() => confirm(t("sms.confirm_cancel")) && cancel(b)}>${t("sms.cancel")}</button>`
            : b.cancelled_at ? html`<span class="muted">${t("sms.cancelled")}</span>` : null}</td>
        </tr>`)}
      </tbody>
    </table>
  </div>`;
}

const EMPTY_TEMPLATE = { key: "", texts: { "zh-CN": "", en: "" }, variables: [], provider_code: "" };

function TemplateForm({ accountId, editing, onDone }) {
  const [form, setForm] = useState(editing || EMPTY_TEMPLATE);
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(null);
  const setText = (locale, value) => setForm({ ...form, texts: { ...form.texts, [locale]: value } });
  const setVariable = (i, change) => setForm({ ...form, variables: form.variables.map((v, k) => (k === i ? { ...v, ...change } : v)) });
  async function submit(e) {
    e.preventDefault();
    setError(null);
    try {
      const body = { texts: form.texts, variables: form.variables, provider_code: form.provider_code || null };
      setSaved(await api.put(`/accounts/${accountId}/sms/templates/${encodeURIComponent(form.key)}`, body));
      onDone();
    } catch (err) {
      setError(err);
    }
  }
  return html`<form class="card" id="sms-template-form" onSubmit=${submit}>
    <h2>${editing ? t("sms.template_edit") : t("sms.template_new")}</h2>
    <label for="sms-template-key">${t("sms.template_key")}</label>
    <input id="sms-template-key" required pattern="[a-z][a-z0-9_.\\-]*" maxlength="64" value=${form.key} readonly=${!!editing}
      onInput=${(e) => setForm({ ...form, key: e.target.value })} />
    ${LOCALES.map((code) => html`<div key=${code}><label for=${`sms-template-${code}`}>${t("sms.template_text", { language: t(`language.${code}`) })}</label>
      <textarea id=${`sms-template-${code}`} rows="3" maxlength="1000" value=${form.texts[code] || ""}
        onInput=${(e) => setText(code, e.target.value)}></textarea></div>`)}
    <fieldset><legend>${t("sms.variables")}</legend>
      <p class="muted">${t("sms.variables_hint")}</p>
      ${form.variables.map((v, i) => html`<div class="inline" key=${i}>
        <label for=${`sms-variable-${i}`}>${t("sms.variable_name")}</label>
        <input id=${`sms-variable-${i}`} required maxlength="40" value=${v.name} onInput=${(e) => setVariable(i, { name: e.target.value })} />
        <label for=${`sms-variable-length-${i}`}>${t("sms.variable_length")}</label>
        <input id=${`sms-variable-length-${i}`} type="number" min="1" max="500" value=${v.max_length}
          onInput=${(e) => setVariable(i, { max_length: Number(e.target.value) })} />
        <button type="button" class="small" onClick=${() => setForm({ ...form, variables: form.variables.filter((_, k) => k !== i) })}>${t("admin.delete")}</button>
      </div>`)}
      <button type="button" class="small" id="sms-variable-add" onClick=${() => setForm({ ...form, variables: [...form.variables, { name: "", max_length: 20 }] })}>
        ${t("sms.variable_add")}</button>
    </fieldset>
    <label for="sms-template-code">${t("sms.provider_code")}</label>
    <input id="sms-template-code" maxlength="100" value=${form.provider_code || ""} onInput=${(e) => setForm({ ...form, provider_code: e.target.value })} />
    <${ErrorBox} error=${error} />
    ${saved ? html`<div class="notice" role="status" id="sms-template-saved">${saved.previews.map((p) => html`<p key=${p.locale}>
      ${t(`language.${p.locale}`)}: ${t("sms.preview", { characters: p.preview.characters, encoding: label("sms.encoding", p.preview.encoding),
        parts: p.preview.parts, limit: p.preview.part_limit, signature: p.preview.signature })}</p>`)}</div>` : null}
    <button type="submit" class="primary" id="sms-template-save">${t("admin.save")}</button>
  </form>`;
}

function Templates({ accountId }) {
  const [templates, error, reload] = useLoad(() => api.get(`/accounts/${accountId}/sms/templates`), [accountId]);
  const [editing, setEditing] = useState(null);
  const [actionError, setActionError] = useState(null);
  async function remove(tpl) {
    setActionError(null);
    try {
      await api.del(`/accounts/${accountId}/sms/templates/${encodeURIComponent(tpl.key)}`);
      reload();
    } catch (err) {
      setActionError(err);
    }
  }
  return html`<div>
    <${TemplateForm} key=${editing ? editing.key : "new"} accountId=${accountId} editing=${editing}
      onDone=${() => { setEditing(null); reload(); }} />
    <${ErrorBox} error=${error || actionError} />
    ${templates === null && !error ? html`<${Loading} />` : null}
    <table class="table" id="sms-templates">
      <thead><tr><th scope="col">${t("sms.template_key")}</th><th scope="col">${t("sms.text")}</th>
        <th scope="col">${t("sms.parts_max")}</th><th scope="col"></th></tr></thead>
      <tbody>${(templates || []).map((tpl) => html`<tr key=${tpl.key} data-template=${tpl.key}>
        <td class="mono">${tpl.key}${tpl.shipped ? html` <span class="pill">${t("sms.shipped")}</span>` : null}</td>
        <td>${LOCALES.map((code) => html`<p key=${code}>${tpl.texts[code]}</p>`)}</td>
        <td>${tpl.previews.map((p) => html`<p key=${p.locale}>${t(`language.${p.locale}`)}: ${p.preview.parts}</p>`)}</td>
        <td><button type="button" class="small" onClick=${() => setEditing({ ...tpl, provider_code: tpl.provider_code || "" })}>${t("admin.edit")}</button>
          ${tpl.shipped ? null : html`<button type="button" class="small danger" onClick=${() => confirm(t("sms.confirm_delete")) && remove(tpl)}>${t("admin.delete")}</button>`}</td>
      </tr>`)}</tbody>
    </table>
  </div>`;
}

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

function Stats({ accountId }) {
  const today = new Date();
  const [range, setRange] = useState({ since: isoDay(new Date(today.getTime() - 29 * 86400000)), until: isoDay(today) });
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "Asia/Shanghai";
  const query = (groupBy) => qs({ group_by: groupBy, since: `${range.since}T00:00:00Z`, until: `${range.until}T23:59:59Z`, time_zone: zone });
  const [days, error] = useLoad(() => api.get(`/accounts/${accountId}/sms/stats${query("day")}`), [accountId, range.since, range.until]);
  const [byTemplate] = useLoad(() => api.get(`/accounts/${accountId}/sms/stats${query("template")}`), [accountId, range.since, range.until]);
  // Every day of the range, the quiet ones at zero.
  const byDay = new Map((days || []).map((r) => [r.key, r]));
  const rows = [];
  if (days && days.length) {
    for (let day = new Date(`${range.since}T00:00:00Z`); isoDay(day) <= range.until; day = new Date(day.getTime() + 86400000)) {
      rows.push(byDay.get(isoDay(day)) || { key: isoDay(day), accepted: 0, delivered: 0, failed: 0, parts: 0 });
    }
  }
  const labels = rows.map((r) => r.key.slice(5));
  return html`<div id="sms-stats">
    <div class="inline">
      <label for="sms-since">${t("sms.since")}</label>
      <input id="sms-since" type="date" value=${range.since} onChange=${(e) => setRange({ ...range, since: e.target.value })} />
      <label for="sms-until">${t("sms.until")}</label>
      <input id="sms-until" type="date" value=${range.until} onChange=${(e) => setRange({ ...range, until: e.target.value })} />
    </div>
    <${ErrorBox} error=${error} />
    ${days === null && !error ? html`<${Loading} />` : null}
    ${days && days.length === 0 ? html`<p class="muted">${t("sms.no_stats")}</p>` : null}
    ${rows.length ? html`<${BarChart} id="sms-chart" title=${t("sms.chart_messages")} labels=${labels}
      every=${Math.max(1, Math.ceil(labels.length / 10))}
      series=${[
        { name: t("sms.accepted"), color: COLORS[0], values: rows.map((r) => r.accepted) },
        { name: t("sms.status.delivered"), color: COLORS[1], values: rows.map((r) => r.delivered) },
        { name: t("sms.status.failed"), color: COLORS[3], values: rows.map((r) => r.failed) },
      ]} />
      <${BarChart} id="sms-parts-chart" title=${t("sms.chart_parts")} labels=${labels} every=${Math.max(1, Math.ceil(labels.length / 10))}
        series=${[{ name: t("sms.parts"), color: COLORS[4], values: rows.map((r) => r.parts) }]} />` : null}
    <h2>${t("sms.by_template")}</h2>
    <table class="table" id="sms-stats-templates">
      <thead><tr><th scope="col">${t("sms.template")}</th><th scope="col">${t("sms.messages")}</th><th scope="col">${t("sms.accepted")}</th>
        <th scope="col">${t("sms.status.delivered")}</th><th scope="col">${t("sms.status.failed")}</th><th scope="col">${t("sms.status.unknown")}</th>
        <th scope="col">${t("sms.parts")}</th></tr></thead>
      <tbody>${(byTemplate || []).map((r) => html`<tr key=${r.key}><td class="mono">${r.key}</td><td class="num">${r.messages}</td>
        <td class="num">${r.accepted}</td><td class="num">${r.delivered}</td><td class="num">${r.failed}</td><td class="num">${r.unknown}</td>
        <td class="num">${formatNumber(r.parts)}</td></tr>`)}</tbody>
    </table>
  </div>`;
}

function History({ accountId }) {
  const [rows, error, reload] = useLoad(() => api.get(`/accounts/${accountId}/sms${qs({ limit: 200 })}`), [accountId]);
  return html`<div>
    <div class="section-head"><h2>${t("sms.history")}</h2>
      <button type="button" class="small" onClick=${reload}>${t("sms.refresh")}</button></div>
    <p class="muted">${t("sms.history_kept")}</p>
    <${ErrorBox} error=${error} />
    ${rows === null && !error ? html`<${Loading} />` : null}
    <table class="table" id="sms-history">
      <thead><tr><th scope="col">${t("sms.created")}</th><th scope="col">${t("sms.to")}</th><th scope="col">${t("sms.template")}</th>
        <th scope="col">${t("sms.statuses")}</th><th scope="col">${t("sms.parts")}</th><th scope="col">${t("sms.error")}</th></tr></thead>
      <tbody>
        ${rows && rows.length === 0 ? html`<tr><td colspan="6" class="muted">${t("sms.no_messages")}</td></tr>` : null}
        ${(rows || []).map((r) => html`<tr key=${r.id} data-message=${r.id}><td>${formatDateTime(r.created_at)}</td><td class="mono">${r.to}</td>
          <td class="mono">${r.template_key}</td><td><${Status} value=${r.status} /></td><td class="num">${r.parts}</td>
          <td class="muted">${r.last_error || ""}</td></tr>`)}
      </tbody>
    </table>
  </div>`;
}

export function Sms({ accountId }) {
  const [tab, setTab] = useState("send");
  const views = { send: Send, batches: Batches, templates: Templates, stats: Stats, history: History };
  const View = views[tab];
  return html`<section class="sms" aria-labelledby="sms-title">
    <div class="section-head"><h1 id="sms-title">${t("admin.nav.sms")}</h1></div>
    <div class="tabs" role="tablist">
      ${TABS.map((name) => html`<button type="button" role="tab" id=${`sms-tab-${name}`} aria-selected=${tab === name}
        onClick=${() => setTab(name)}>${t(`sms.tab.${name}`)}</button>`)}
    </div>
    <${View} key=${`${tab}-${accountId}`} accountId=${accountId} />
  </section>`;
}
