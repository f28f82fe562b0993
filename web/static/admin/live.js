// Live meetings: who is in each one (and as what kind of participant), ending a meeting, and holding a
// participant's microphone or removing them. The live status comes from every worker (GET /live-meetings):
// a worker that does not answer is named, and its meetings keep their database rows without the actions.
import { useEffect, useState } from "preact/hooks";
import { formatDateTime, t } from "../lib/i18n.js";
import { html } from "../lib/ui.js";
import { api, qs } from "./api.js";
import { ErrorBox, Loading, accountParam, label } from "./common.js";

const REFRESH_MS = 5000;

async function loadLive(account) {
  const [meetings, rooms, status] = await Promise.all([
    api.get(`/meetings${qs({ limit: 200 })}`),
    api.get(`/rooms${qs({ account_id: account, limit: 500 })}`),
    api.get("/live-meetings").catch(() => null),
  ]);
  const liveById = new Map((status ? status.meetings : []).map((m) => [m.meeting_id, m]));
  const roomById = new Map(rooms.map((r) => [r.id, r]));
  const live = meetings.filter((m) => m.ended_at === null && roomById.has(m.room_id));
  const attendance = await Promise.all(live.map((m) => api.get(`/meetings/${m.id}/attendance?limit=500`).catch(() => [])));
  const items = live.map((m, i) => {
    const running = liveById.get(m.id) || null;
    const people = new Map((running ? running.participants : []).map((p) => [p.id, p]));
    return { meeting: m, room: roomById.get(m.room_id), running, people, present: attendance[i].filter((a) => a.left_at === null) };
  });
  return { items, silent: status ? status.workers.filter((w) => !w.reachable) : [] };
}

/** End a meeting for everyone; the API answers once participants have been told and the record is closed. */
async function endMeeting(meeting) {
  await api.post(`/meetings/${meeting.id}/end`, {});
}

/** Hold a participant's microphone or remove them; the meeting's worker does it, wherever it runs. */
async function act(meeting, participantId, action) {
  await api.post(`/meetings/${meeting.id}/participants/${encodeURIComponent(participantId)}/${action}`, {});
}

export function Live({ user, accountId }) {
  const account = accountParam(user, accountId);
  const [items, setItems] = useState(null);
  const [silent, setSilent] = useState([]);
  const [error, setError] = useState(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let cancelled = false;
    loadLive(account)
      .then((data) => !cancelled && (setItems(data.items), setSilent(data.silent), setError(null)))
      .catch((err) => !cancelled && setError(err));
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
  async function moderate(item, attendance, action) {
    if (action === "remove" && !confirm(t("workers.live.remove_confirm", { name: attendance.display_name }))) return;
    try {
      await act(item.meeting, attendance.participant_id, action);
      setTick(tick + 1);
    } catch (err) {
      setError(err);
    }
  }
  return html`<section aria-labelledby="live-title">
    <div class="section-head"><h1 id="live-title">${t("admin.nav.live")}</h1></div>
    <${ErrorBox} error=${error} />
    ${silent.map((w) => html`<p class="error" role="status" key=${w.worker} data-silent-worker=${w.worker}>
      ${t("workers.live.silent", { worker: w.worker })}</p>`)}
    ${items === null && !error ? html`<${Loading} />` : null}
    ${items && items.length === 0 ? html`<p class="muted" id="live-none">${t("admin.live.none")}</p>` : null}
    ${(items || []).map((item) => html`<article class="card" key=${item.meeting.id} data-meeting=${item.meeting.id}>
      <div class="section-head">
        <h2>${item.room.name} <span class="mono muted">${item.room.meeting_number}</span></h2>
        <button type="button" class="danger" onClick=${() => end(item)}
          aria-label=${t("admin.live.end_name", { name: item.room.name })}>${t("admin.live.end")}</button>
      </div>
      <p class="muted">${t("admin.live.started", { time: formatDateTime(item.meeting.started_at) })} ·
        ${t("admin.live.count", { count: item.present.length })}
        ${item.running ? html` · <span data-worker=${item.running.worker}>${t("workers.live.worker", { worker: item.running.worker })}</span>` : null}</p>
      <table class="table">
        <thead><tr><th scope="col">${t("admin.live.name")}</th><th scope="col">${t("admin.live.kind")}</th>
          <th scope="col">${t("admin.live.device")}</th><th scope="col">${t("admin.live.joined")}</th>
          <th scope="col">${t("workers.live.actions")}</th></tr></thead>
        <tbody>
          ${item.present.map((a) => html`<tr key=${a.id}>
            <td>${a.display_name}</td><td>${label("admin.kind", a.kind)}</td><td>${label("admin.device", a.device_class)}</td>
            <td>${formatDateTime(a.joined_at, { timeStyle: "short" })}</td>
            <td>${item.people.has(a.participant_id) ? html`
              ${item.people.get(a.participant_id).mic_held
                ? html`<span class="muted">${t("workers.live.mic_held")}</span>`
                : html`<button type="button" onClick=${() => moderate(item, a, "mute")}
                    aria-label=${t("workers.live.mute_name", { name: a.display_name })}>${t("workers.live.mute")}</button>`}
              <button type="button" class="danger" onClick=${() => moderate(item, a, "remove")}
                aria-label=${t("workers.live.remove_name", { name: a.display_name })}>${t("workers.live.remove")}</button>` : null}</td>
          </tr>`)}
        </tbody>
      </table>
    </article>`)}
  </section>`;
}
