// The audit log: who changed what, when and from where; filters and pages over GET /audit.
import { useState } from "preact/hooks";
import { formatDateTime, formatNumber, t } from "../lib/i18n.js";
import { html } from "../lib/ui.js";
import { api, qs } from "./api.js";
import { ErrorBox, Loading, accountParam, label, useLoad } from "./common.js";

const PAGE = 50;
const TYPES = ["room", "booking", "site", "endpoint", "user", "account", "contract", "service_change", "outage",
  "invoice", "payment", "credit_note", "webhook", "participant", "meeting"];
const ACTIONS = ["create", "update", "delete", "remove", "end"];

/** One line per changed field: "name: old → new", or "name: value" for a created object. */
export function describe(changes) {
  return Object.entries(changes || {}).map(([key, value]) =>
    Array.isArray(value) ? `${key}: ${value[0] ?? "∅"} → ${value[1] ?? "∅"}` : `${key}: ${value ?? "∅"}`);
}

function localDay(value, end) {
  if (!value) return null;
  const d = new Date(`${value}T00:00:00`);
  if (end) d.setDate(d.getDate() + 1);
  return d.toISOString();
}

export function Audit({ user, accountId }) {
  const account = accountParam(user, accountId);
  const [filters, setFilters] = useState({ object_type: "", action: "", q: "", since: "", until: "" });
  const [applied, setApplied] = useState(filters);
  const [offset, setOffset] = useState(0);
  const [page, error] = useLoad(() => api.get(`/audit${qs({
    account_id: account, object_type: applied.object_type, action: applied.action, q: applied.q,
    since: localDay(applied.since, false), until: localDay(applied.until, true), limit: PAGE, offset,
  })}`), [accountId, applied, offset]);
  const set = (key) => (e) => setFilters({ ...filters, [key]: e.target.value });
  function search(e) {
    e.preventDefault();
    setOffset(0);
    setApplied({ ...filters });
  }
  return html`<section aria-labelledby="audit-title" class="audit">
    <div class="section-head"><h1 id="audit-title">${t("admin.nav.audit")}</h1></div>
    <form class="card inline" id="audit-form" onSubmit=${search}>
      <label for="audit-type">${t("ops2.audit.object_type")}</label>
      <select id="audit-type" value=${filters.object_type} onChange=${set("object_type")}>
        <option value="">${t("ops2.audit.any")}</option>
        ${TYPES.map((k) => html`<option value=${k} key=${k}>${label("ops2.audit.type", k)}</option>`)}
      </select>
      <label for="audit-action">${t("ops2.audit.action")}</label>
      <select id="audit-action" value=${filters.action} onChange=${set("action")}>
        <option value="">${t("ops2.audit.any")}</option>
        ${ACTIONS.map((k) => html`<option value=${k} key=${k}>${label("ops2.audit.act", k)}</option>`)}
      </select>
      <label for="audit-q">${t("ops2.audit.search")}</label>
      <input id="audit-q" maxlength="100" value=${filters.q} placeholder=${t("ops2.audit.search_hint")} onInput=${set("q")} />
      <label for="audit-since">${t("admin.reports.from")}</label>
      <input id="audit-since" type="date" value=${filters.since} onInput=${set("since")} />
      <label for="audit-until">${t("admin.reports.to")}</label>
      <input id="audit-until" type="date" value=${filters.until} onInput=${set("until")} />
      <button type="submit" class="primary" id="audit-run">${t("ops2.audit.run")}</button>
    </form>
    <${ErrorBox} error=${error} />
    ${page === null && !error ? html`<${Loading} />` : null}
    ${page ? html`<p class="muted" id="audit-total">${t("ops2.audit.total", { count: formatNumber(page.total) })}</p>
      <table class="table" id="audit-table">
        <thead><tr>
          <th scope="col">${t("ops2.audit.at")}</th><th scope="col">${t("ops2.audit.actor")}</th>
          <th scope="col">${t("ops2.audit.address")}</th><th scope="col">${t("ops2.audit.action")}</th>
          <th scope="col">${t("ops2.audit.object")}</th><th scope="col">${t("ops2.audit.changes")}</th>
        </tr></thead>
        <tbody>
          ${page.entries.length === 0 ? html`<tr><td colspan="6" class="muted">${t("ops2.audit.none")}</td></tr>` : null}
          ${page.entries.map((e) => html`<tr key=${e.id} data-audit=${e.id}>
            <td>${formatDateTime(e.at, { dateStyle: "short", timeStyle: "medium" })}</td><td>${e.actor}</td>
            <td class="mono">${e.address}</td><td>${label("ops2.audit.act", e.action)}</td>
            <td>${label("ops2.audit.type", e.object_type)} <span class="mono muted">${e.object_id}</span></td>
            <td><ul class="plain">${describe(e.changes).map((line) => html`<li class="mono">${line}</li>`)}</ul></td>
          </tr>`)}
        </tbody>
      </table>
      <div class="actions">
        <button type="button" disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - PAGE))}>${t("ops2.audit.newer")}</button>
        <button type="button" disabled=${offset + PAGE >= page.total} onClick=${() => setOffset(offset + PAGE)}>${t("ops2.audit.older")}</button>
      </div>` : null}
  </section>`;
}
