// Recordings: the list with the composite's render progress, playing in the browser, download, delete, retry.
// /admin/recordings?meeting=ID shows one meeting's recordings (the link the meeting's host gets).
import { useEffect, useState } from "preact/hooks";
import { formatDateTime, t } from "../lib/i18n.js";
import { html } from "../lib/ui.js";
import { api, qs } from "./api.js";
import { ErrorBox, Loading, accountParam, label } from "./common.js";

// While a recording is being finalised or rendered the list follows its progress.
const REFRESH_MS = 1000;
const WORKING = new Set(["recording", "finalising", "rendering"]);

function meetingFilter() {
  const value = new URLSearchParams(location.search).get("meeting");
  return value && /^[0-9]+$/.test(value) ? Number(value) : null;
}

function duration(ms) {
  if (ms === null || ms === undefined) return "";
  const seconds = Math.round(ms / 1000);
  const hh = Math.floor(seconds / 3600);
  const mm = String(Math.floor((seconds % 3600) / 60)).padStart(2, "0");
  const ss = String(seconds % 60).padStart(2, "0");
  return hh ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
}

function size(bytes) {
  if (bytes >= 1e9) return t("recording.size_gb", { value: (bytes / 1e9).toFixed(2) });
  if (bytes >= 1e6) return t("recording.size_mb", { value: (bytes / 1e6).toFixed(1) });
  return t("recording.size_kb", { value: Math.max(1, Math.round(bytes / 1e3)) });
}

/** A signed link (no session needed) for the composite, or for one file of the recording. */
async function linkFor(recording, fileId = null) {
  const body = fileId === null ? {} : { file_id: fileId };
  const link = await api.post(`/recordings/${recording.id}/links`, body);
  return `/api/v1/${link.url}`;
}

function Player({ recording, onClose }) {
  const [src, setSrc] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    linkFor(recording).then(setSrc).catch(setError);
  }, [recording.id]);
  return html`<div class="card recording-player" id="recording-player" data-recording=${recording.id}>
    <div class="section-head">
      <h2>${t("recording.playing", { time: formatDateTime(recording.started_at) })}</h2>
      <button type="button" onClick=${onClose}>${t("recording.close_player")}</button>
    </div>
    <${ErrorBox} error=${error} />
    ${src ? html`<video id="recording-video" controls autoplay playsinline src=${src} style="max-width:100%"></video>` : null}
  </div>`;
}

function Progress({ recording }) {
  if (recording.state === "rendering" || recording.state === "finalising") {
    return html`<span class="recording-progress">
      <progress id=${`progress-${recording.id}`} max="100" value=${recording.progress}
        aria-label=${t("recording.progress_label")}></progress>
      <span class="mono">${t("recording.progress", { percent: recording.progress })}</span></span>`;
  }
  return null;
}

export function Recordings({ user, accountId }) {
  const account = accountParam(user, accountId);
  const meeting = meetingFilter();
  const [items, setItems] = useState(null);
  const [rooms, setRooms] = useState(new Map());
  const [error, setError] = useState(null);
  const [tick, setTick] = useState(0);
  const [playing, setPlaying] = useState(null);
  const admin = user.role === "admin";

  useEffect(() => {
    api.get(`/rooms${qs({ account_id: account, limit: 500 })}`)
      .then((list) => setRooms(new Map(list.map((r) => [r.id, r]))))
      .catch(() => {});
  }, [accountId]);

  useEffect(() => {
    let cancelled = false;
    let timer = null;
    api.get(`/recordings${qs({ account_id: account, meeting_id: meeting, limit: 200 })}`)
      .then((list) => {
        if (cancelled) return;
        setItems(list);
        setError(null);
        if (list.some((r) => WORKING.has(r.state))) timer = setTimeout(() => setTick((n) => n + 1), REFRESH_MS);
      })
      .catch((err) => !cancelled && setError(err));
    return () => {
      cancelled = true;
      if (timer) clearTimeout(timer);
    };
  }, [tick, accountId]);

  async function act(fn) {
    try {
      await fn();
      setTick((n) => n + 1);
    } catch (err) {
      setError(err);
    }
  }
  async function download(recording, fileId = null) {
    await act(async () => {
      const a = document.createElement("a");
      a.href = await linkFor(recording, fileId);
      a.download = "";
      a.click();
    });
  }
  const remove = (recording) =>
    confirm(t("recording.delete_confirm")) && act(() => api.del(`/recordings/${recording.id}`));
  const retry = (recording) => act(() => api.post(`/recordings/${recording.id}/retry`, {}));
  const roomName = (r) => rooms.get(r.room_id)?.name || t("recording.unknown_room");

  return html`<section aria-labelledby="recordings-title">
    <div class="section-head">
      <h1 id="recordings-title">${t("admin.nav.recordings")}</h1>
      ${meeting !== null ? html`<span class="pill" id="recordings-meeting">${t("recording.of_meeting", { id: meeting })}</span>` : null}
    </div>
    <${ErrorBox} error=${error} />
    ${playing ? html`<${Player} recording=${playing} onClose=${() => setPlaying(null)} />` : null}
    ${items === null && !error ? html`<${Loading} />` : null}
    ${items && items.length === 0 ? html`<p class="muted" id="recordings-none">${t("recording.none")}</p>` : null}
    ${items && items.length
      ? html`<table class="table" id="recordings-table">
      <thead><tr>
        <th scope="col">${t("recording.room")}</th><th scope="col">${t("recording.started")}</th>
        <th scope="col">${t("recording.duration")}</th><th scope="col">${t("recording.size")}</th>
        <th scope="col">${t("recording.state")}</th><th scope="col">${t("recording.retain_until")}</th>
        <th scope="col">${t("recording.actions")}</th>
      </tr></thead>
      <tbody>
        ${items.map((r) => html`<tr key=${r.id} data-recording=${r.id} data-state=${r.state}>
          <td>${roomName(r)}</td>
          <td>${formatDateTime(r.started_at)}</td>
          <td class="mono">${duration(r.duration_ms)}</td>
          <td class="mono">${r.size_bytes ? size(r.size_bytes) : ""}</td>
          <td><span class="state">${label("recording.states", r.state)}</span> <${Progress} recording=${r} />
            ${r.error ? html`<div class="error small">${r.error}</div>` : null}</td>
          <td>${r.retain_until ? formatDateTime(r.retain_until, { dateStyle: "medium" }) : t("recording.kept")}</td>
          <td class="actions">
            ${r.composite
              ? html`<button type="button" class="primary" data-action="play" onClick=${() => setPlaying(r)}>${t("recording.play")}</button>
                  <button type="button" data-action="download" onClick=${() => download(r)}>${t("recording.download")}</button>`
              : null}
            ${r.state === "failed"
              ? html`<button type="button" data-action="retry" onClick=${() => retry(r)}>${t("recording.retry")}</button>`
              : null}
            ${admin && !WORKING.has(r.state) && r.state !== "deleted"
              ? html`<button type="button" class="danger" data-action="delete" onClick=${() => remove(r)}>${t("recording.delete")}</button>`
              : null}
          </td>
        </tr>`)}
      </tbody>
    </table>`
      : null}
  </section>`;
}
