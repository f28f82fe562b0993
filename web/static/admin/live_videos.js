// Pre-recorded videos of live channels: resumable upload with a progress bar, the library with each check's
// result and a refusal's reason, normalisation progress, and a channel's playlist (reorder, skip, insert).
// VideoLibrary and Playlist are exported for the channel console (channels.js); LiveVideos is the section.
import { useEffect, useRef, useState } from "preact/hooks";
import { t } from "../lib/i18n.js";
import { html } from "../lib/ui.js";
import { ApiError, api, qs, token } from "./api.js";
import { ErrorBox as CommonErrorBox, Loading, accountParam, label } from "./common.js";

const REFRESH_MS = 1000;
const WORKING = new Set(["checking", "normalising"]);
const CHUNK_BYTES = 8 * 1024 * 1024;
const RETRIES = 5;
const ROW = "display:flex;flex-wrap:wrap;align-items:center;gap:0.25rem 0.75rem;list-style:none;padding:0;margin:0";

/** An API error in the user's language: this feature's codes have their own texts. */
function ErrorBox({ error }) {
  if (error instanceof ApiError) {
    const key = `livevideo.error.${error.code}`;
    const text = t(key);
    if (text !== key) return html`<${CommonErrorBox} error=${text} />`;
  }
  return html`<${CommonErrorBox} error=${error} />`;
}

function duration(ms) {
  if (ms === null || ms === undefined) return "";
  const seconds = Math.round(ms / 1000);
  const mm = String(Math.floor(seconds / 60)).padStart(2, "0");
  return `${mm}:${String(seconds % 60).padStart(2, "0")}`;
}

function megabytes(bytes) {
  return t("livevideo.size_mb", { value: (bytes / 1024 / 1024).toFixed(1) });
}

/** One tus request; resolves with the XMLHttpRequest (any status), rejects on a network error. */
function send(method, url, { offset, body, onProgress } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, `/api/v1/${url}`);
    xhr.setRequestHeader("Authorization", `Bearer ${token()}`);
    xhr.setRequestHeader("Tus-Resumable", "1.0.0");
    if (body !== undefined) {
      xhr.setRequestHeader("Upload-Offset", String(offset));
      xhr.setRequestHeader("Content-Type", "application/offset+octet-stream");
    }
    if (onProgress) xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onload = () => resolve(xhr);
    xhr.onerror = () => reject(new Error("network"));
    xhr.send(body);
  });
}

function failure(xhr) {
  let parsed = null;
  try {
    parsed = JSON.parse(xhr.responseText);
  } catch {
    parsed = null;
  }
  return new ApiError(xhr.status, parsed);
}

/** Upload `file` in chunks from where the server is (HEAD), resuming after a dropped connection. */
async function upload(url, file, onProgress) {
  let failures = 0;
  for (;;) {
    let offset;
    try {
      const head = await send("HEAD", url);
      if (head.status !== 204) throw failure(head);
      offset = Number(head.getResponseHeader("Upload-Offset"));
      if (offset >= file.size) return;
      const chunk = file.slice(offset, offset + CHUNK_BYTES);
      const patch = await send("PATCH", url, { offset, body: chunk, onProgress: (n) => onProgress(offset + n) });
      if (patch.status === 204) {
        failures = 0;
        onProgress(Number(patch.getResponseHeader("Upload-Offset")));
        continue;
      }
      if (patch.status !== 409) throw failure(patch);
    } catch (err) {
      if (err instanceof ApiError || ++failures > RETRIES) throw err;
    }
  }
}

function Uploader({ account, onUploaded }) {
  const input = useRef(null);
  const [job, setJob] = useState(null);
  const [error, setError] = useState(null);

  async function start(event) {
    event.preventDefault();
    const file = input.current?.files?.[0];
    if (!file) return;
    setError(null);
    setJob({ name: file.name, sent: 0, size: file.size });
    try {
      const name = file.name.replace(/\.[^.]+$/, "").slice(0, 200) || file.name;
      const video = await api.post("/live/videos", { name, size_bytes: file.size, account_id: account });
      onUploaded();
      await upload(video.upload_url, file, (sent) => setJob((j) => j && { ...j, sent: Math.max(j.sent, sent) }));
      setJob(null);
      input.current.value = "";
      onUploaded();
    } catch (err) {
      setJob(null);
      setError(err instanceof ApiError ? err : t("livevideo.upload_failed"));
    }
  }

  const percent = job && job.size ? Math.floor((job.sent / job.size) * 100) : 0;
  return html`<form class="card form-row" id="livevideo-upload" onSubmit=${start}>
    <label>${t("livevideo.file")}
      <input type="file" id="livevideo-file" ref=${input} accept="video/*,.mp4,.mov,.mkv,.ts,.flv" disabled=${!!job} /></label>
    <button type="submit" class="primary" disabled=${!!job}>${t("livevideo.upload")}</button>
    ${job
      ? html`<span class="upload-progress"><progress id="livevideo-upload-progress" max="100" value=${percent}
            aria-label=${t("livevideo.upload_progress")}></progress>
          <span class="mono">${t("livevideo.percent", { percent })}</span></span>`
      : null}
    <${ErrorBox} error=${error} />
  </form>`;
}

function Checks({ video }) {
  if (!video.checks.length) return null;
  return html`<ul class="checks small" style=${ROW}>
    ${video.checks.map((c) => html`<li key=${c.name} data-check=${c.name}
        data-ok=${c.ok === null ? "skipped" : String(c.ok)}>
      <span aria-hidden="true">${c.ok === null ? "·" : c.ok ? "✓" : "✗"}</span>
      ${" "}${label("livevideo.check", c.name)}${c.value ? html` <span class="mono">${c.value}</span>` : null}
    </li>`)}
  </ul>`;
}

function State({ video }) {
  if (video.state === "normalising") {
    return html`<span class="state">${label("livevideo.state", video.state)}</span>
      <progress id=${`livevideo-progress-${video.id}`} max="100" value=${video.progress}
        aria-label=${t("livevideo.normalise_progress")}></progress>
      <span class="mono">${t("livevideo.percent", { percent: video.progress })}</span>`;
  }
  if (video.state === "uploading") {
    const percent = Math.floor((video.received_bytes / video.size_bytes) * 100);
    return html`<span class="state">${label("livevideo.state", video.state)}</span>${" "}
      <span class="mono">${t("livevideo.percent", { percent })}</span>`;
  }
  return html`<span class="state">${label("livevideo.state", video.state)}</span>`;
}

/** The account's videos: upload, checks, progress; `onAdd(video, next)` puts a ready one into a playlist. */
export function VideoLibrary({ user, accountId, onAdd = null, refresh = 0 }) {
  const account = accountParam(user, accountId);
  const [videos, setVideos] = useState(null);
  const [error, setError] = useState(null);
  const [tick, setTick] = useState(0);
  const editor = user.role === "admin" || user.role === "organizer";

  useEffect(() => {
    let cancelled = false;
    let timer = null;
    api.get(`/live/videos${qs({ account_id: account, limit: 200 })}`)
      .then((list) => {
        if (cancelled) return;
        setVideos(list);
        setError(null);
        if (list.some((v) => WORKING.has(v.state))) timer = setTimeout(() => setTick((n) => n + 1), REFRESH_MS);
      })
      .catch((err) => !cancelled && setError(err));
    return () => {
      cancelled = true;
      if (timer) clearTimeout(timer);
    };
  }, [tick, accountId, refresh]);

  async function remove(video) {
    if (!confirm(t("livevideo.delete_confirm"))) return;
    try {
      await api.del(`/live/videos/${video.id}`);
      setTick((n) => n + 1);
    } catch (err) {
      setError(err);
    }
  }

  return html`<div id="livevideo-library">
    ${editor ? html`<${Uploader} account=${account} onUploaded=${() => setTick((n) => n + 1)} />` : null}
    <${ErrorBox} error=${error} />
    ${videos === null && !error ? html`<${Loading} />` : null}
    ${videos && videos.length === 0 ? html`<p class="muted" id="livevideo-none">${t("livevideo.none")}</p>` : null}
    ${videos && videos.length
      ? html`<table class="table" id="livevideo-table">
      <thead><tr>
        <th scope="col">${t("livevideo.name")}</th><th scope="col">${t("livevideo.duration")}</th>
        <th scope="col">${t("livevideo.size")}</th><th scope="col">${t("livevideo.state_title")}</th>
        <th scope="col">${t("livevideo.checks")}</th><th scope="col">${t("livevideo.actions")}</th>
      </tr></thead>
      <tbody>
        ${videos.map((v) => html`<tr key=${v.id} data-video=${v.id} data-state=${v.state}>
          <td>${v.name}</td>
          <td class="mono">${duration(v.duration_ms)}</td>
          <td class="mono">${megabytes(v.size_bytes)}</td>
          <td><${State} video=${v} />
            ${v.reason
              ? html`<div class="error small" data-reason=${v.reason}>${label("livevideo.reason", v.reason)}
                  <div class="muted mono">${v.detail}</div></div>`
              : null}</td>
          <td><${Checks} video=${v} /></td>
          <td class="actions">
            ${onAdd && v.state === "ready" && editor
              ? html`<button type="button" data-action="add" onClick=${() => onAdd(v, false)}>${t("livevideo.add")}</button>
                  <button type="button" data-action="next" onClick=${() => onAdd(v, true)}>${t("livevideo.play_next")}</button>`
              : null}
            ${editor ? html`<button type="button" class="danger" data-action="delete" onClick=${() => remove(v)}>${t("livevideo.delete")}</button>` : null}
          </td>
        </tr>`)}
      </tbody>
    </table>`
      : null}
  </div>`;
}

/** A channel's playlist in order: the queued items move up and down, skip, remove; `refresh` reloads it. */
export function Playlist({ user, channelId, refresh = 0, onChange = () => {} }) {
  const [items, setItems] = useState(null);
  const [error, setError] = useState(null);
  const [tick, setTick] = useState(0);
  const editor = user.role === "admin" || user.role === "organizer";
  const base = `/live/${channelId}/playlist`;

  useEffect(() => {
    let cancelled = false;
    let timer = null;
    api.get(base)
      .then((list) => {
        if (cancelled) return;
        setItems(list);
        setError(null);
        if (list.some((i) => i.state === "playing")) timer = setTimeout(() => setTick((n) => n + 1), REFRESH_MS);
      })
      .catch((err) => !cancelled && setError(err));
    return () => {
      cancelled = true;
      if (timer) clearTimeout(timer);
    };
  }, [channelId, tick, refresh]);

  async function act(fn) {
    try {
      const list = await fn();
      if (Array.isArray(list)) setItems(list);
      else setTick((n) => n + 1);
      setError(null);
      onChange();
    } catch (err) {
      setError(err);
      setTick((n) => n + 1);
    }
  }
  const queued = (items || []).filter((i) => i.state === "queued");
  function move(item, by) {
    const ids = queued.map((i) => i.id);
    const at = ids.indexOf(item.id);
    const to = at + by;
    if (at < 0 || to < 0 || to >= ids.length) return;
    [ids[at], ids[to]] = [ids[to], ids[at]];
    act(() => api.put(`${base}/order`, { item_ids: ids }));
  }

  return html`<div class="card" id="livevideo-playlist" data-channel=${channelId}>
    <div class="section-head">
      <h2>${t("livevideo.playlist")}</h2>
      ${editor && queued.length
        ? html`<button type="button" class="primary" id="livevideo-play"
            onClick=${() => act(() => api.post(`${base}/play`, {}))}>${t("livevideo.play")}</button>`
        : null}
    </div>
    <${ErrorBox} error=${error} />
    ${items === null && !error ? html`<${Loading} />` : null}
    ${items && items.length === 0 ? html`<p class="muted" id="livevideo-playlist-empty">${t("livevideo.playlist_empty")}</p>` : null}
    ${items && items.length
      ? html`<ol class="playlist" id="livevideo-playlist-items" style="display:grid;gap:0.5rem;padding:0">
      ${items.map((item, n) => {
        const index = queued.indexOf(item);
        return html`<li key=${item.id} data-item=${item.id} data-state=${item.state} style=${ROW}>
          <span class="mono">${n + 1}.</span><strong class="name">${item.video_name}</strong>
          <span class="mono">${duration(item.duration_ms)}</span>
          <span class="pill">${label("livevideo.item", item.state)}</span>
          ${editor && item.state === "queued"
            ? html`<button type="button" data-action="up" disabled=${index <= 0} aria-label=${t("livevideo.up")}
                  onClick=${() => move(item, -1)}>↑</button>
                <button type="button" data-action="down" disabled=${index === queued.length - 1}
                  aria-label=${t("livevideo.down")} onClick=${() => move(item, 1)}>↓</button>`
            : null}
          ${editor && (item.state === "queued" || item.state === "playing")
            ? html`<button type="button" data-action="skip" onClick=${() => act(() => api.post(`${base}/${item.id}/skip`, {}))}>${t("livevideo.skip")}</button>`
            : null}
          ${editor && item.state !== "playing"
            ? html`<button type="button" class="danger" data-action="remove" onClick=${() => act(() => api.del(`${base}/${item.id}`))}>${t("livevideo.remove")}</button>`
            : null}
        </li>`;
      })}
    </ol>`
      : null}
  </div>`;
}

/** The section: a channel to edit the playlist of, its playlist, and the video library. */
export function LiveVideos({ user, accountId }) {
  const account = accountParam(user, accountId);
  const [channels, setChannels] = useState(null);
  const [channelId, setChannelId] = useState(null);
  const [refresh, setRefresh] = useState(0);
  const [error, setError] = useState(null);

  useEffect(() => {
    api.get(`/live${qs({ account_id: account, limit: 200 })}`)
      .then((list) => {
        setChannels(list);
        setChannelId((current) => current ?? (list.length ? list[0].id : null));
      })
      .catch(setError);
  }, [accountId]);

  async function add(video, next) {
    if (channelId === null) return;
    try {
      await api.post(`/live/${channelId}/playlist`, { video_id: video.id, next });
      setError(null);
      setRefresh((n) => n + 1);
    } catch (err) {
      setError(err);
    }
  }

  return html`<section aria-labelledby="livevideo-title">
    <div class="section-head">
      <h1 id="livevideo-title">${t("admin.nav.livevideos")}</h1>
      ${channels && channels.length
        ? html`<label>${t("livevideo.channel")}
            <select id="livevideo-channel" value=${channelId ?? ""}
              onChange=${(e) => setChannelId(Number(e.currentTarget.value))}>
              ${channels.map((c) => html`<option key=${c.id} value=${c.id}>${c.title}</option>`)}
            </select></label>`
        : null}
    </div>
    <${ErrorBox} error=${error} />
    ${channels && !channels.length ? html`<p class="muted" id="livevideo-no-channel">${t("livevideo.no_channel")}</p>` : null}
    ${channelId !== null ? html`<${Playlist} user=${user} channelId=${channelId} refresh=${refresh} />` : null}
    <h2>${t("livevideo.library")}</h2>
    <${VideoLibrary} user=${user} accountId=${accountId} onAdd=${channelId !== null ? add : null} />
  </section>`;
}
