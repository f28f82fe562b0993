// Live meetings: who is in each one (and as what kind of participant), and ending a meeting.
import { useEffect, useState } from "preact/hooks";
import { formatDateTime, t } from "../lib/i18n.js";
import { html } from "../lib/ui.js";
import { api, qs } from "./api.js";
import { ErrorBox, Loading, accountParam, label } from "./common.js";

const REFRESH_MS = 5000;

async function loadLive(account) {
  const [meetings, rooms] = await Promise.all([
    api.get(`/meetings${qs({ limit: 200 })}`),
    api.get(`/rooms${qs({ account_id: account, limit: 500 })}`),
  ]);
  const roomById = new Map(rooms.map((r) => [r.id, r]));
  const live = meetings.filter((m) => m.ended_at === null && roomById.has(m.room_id));
  const attendance = await Promise.all(live.map((m) => api.get(`/meetings/${m.id}/attendance?limit=500`).catch(() => [])));
  return live.map((m, i) => ({ meeting: m, room: roomById.get(m.room_id), present: attendance[i].filter((a) => a.left_at === null) }));
}

/** End a meeting for everyone; the API answers once participants have been told and the record is closed. */
async function endMeeting(meeting) {
  await api.post(`/meetings/${meeting.id}/end`, {});
}

export function Live({ user, accountId }) {
  const account = accountParam(user, accountId);
  const [items, setItems] = useState(null);
  const [error, setError] = useState(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let cancelled = false;
    loadLive(account).then((data) => !cancelled && (setItems(data), setError(null))).catch((err) => !cancelled && setError(err));
    const timer = setTimeout(() => setTick(tick + 1), REFRESH_MS);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [tick, accountId]);

  async function end(item) {
    if (!confirm(t("admin.live.end_confirm", { name: item.room.name }))) return;
    try {
      await endMeeting(item.meeting);
      setTick(tick + 1);
    } catch (err) {
      setError(err);
    }
  }
  return html`<section aria-labelledby="live-title">
    <div class="section-head"><h1 id="live-title">${t("admin.nav.live")}</h1></div>
    <${ErrorBox} error=${error} />
    ${items === null && !error ? html`<${Loading} />` : null}
    ${items && items.length === 0 ? html`<p class="muted" id="live-none">${t("admin.live.none")}</p>` : null}
    ${(items || []).map((item) => html`<article class="card" key=${item.meeting.id} data-meeting=${item.meeting.id}>
      <div class="section-head">
        <h2>${item.room.name} <span class="mono muted">${item.room.meeting_number}</span></h2>
        <button type="button" class="danger" onClick=${() => end(item)}
          aria-label=${t("admin.live.end_name", { name: item.room.name })}>${t("admin.live.end")}</button>
      </div>
      <p class="muted">${t("admin.live.started", { time: formatDateTime(item.meeting.started_at) })} ·
        ${t("admin.live.count", { count: item.present.length })}</p>
      <table class="table">
        <thead><tr><th scope="col">${t("admin.live.name")}</th><th scope="col">${t("admin.live.kind")}</th>
          <th scope="col">${t("admin.live.device")}</th><th scope="col">${t("admin.live.joined")}</th></tr></thead>
        <tbody>
          ${item.present.map((a) => html`<tr key=${a.id}>
            <td>${a.display_name}</td><td>${label("admin.kind", a.kind)}</td><td>${label("admin.device", a.device_class)}</td>
            <td>${formatDateTime(a.joined_at, { timeStyle: "short" })}</td>
          </tr>`)}
        </tbody>
      </table>
    </article>`)}
  </section>`;
}
