// Live channels (直播间): the list, create and edit, the console (state actions, source, hot standby override,
// the staff link of the rehearsal, the playlist of pre-recorded videos from live_videos.js) and the statistics
// with the concurrency chart and CSV export.
// Not the "live" section, which lists the meetings running now.
import { useEffect, useState } from "preact/hooks";
import { formatDateTime, formatNumber, t } from "../lib/i18n.js";
import { copyText, html } from "../lib/ui.js";
import { api, download, qs } from "./api.js";
import { BarChart, LineChart } from "./charts.js";
import { ErrorBox, Loading, accountParam, label, useLoad } from "./common.js";
import { Ingest } from "./live_ingest.js";
import { Playlist } from "./live_videos.js";

// The console follows the engine (segments written, source on air) while the channel runs.
const CONSOLE_REFRESH_MS = 5000;
const ACTION_PATHS = { rehearse: "rehearse", go_live: "go-live", stop: "stop", archive: "archive" };
const EMPTY = { title: "", language: "zh-CN", source_kind: "meeting", room_id: "", audio_participant: "",
  standby_kind: "none", standby_video_id: "", rtmp_url: "", show_viewer_count: false };

function ChannelForm({ channel, user, accountId, rooms, onSaved, onCancel }) {
  const [form, setForm] = useState(channel ? { ...EMPTY, ...channel, room_id: channel.room_id ?? "",
    standby_video_id: channel.standby_video_id ?? "", rtmp_url: "" } : EMPTY);
  const [videos] = useLoad(() => api.get(`/live/videos${qs({ state: "ready", account_id: accountParam(user, accountId) })}`),
    [accountId]);
  const standbyVideo = () => (form.standby_kind === "video" && form.standby_video_id ? Number(form.standby_video_id) : null);
  const [error, setError] = useState(null);
  const set = (name) => (e) => setForm({ ...form, [name]: e.target.type === "checkbox" ? e.target.checked : e.target.value });
  async function submit(e) {
    e.preventDefault();
    setError(null);
    try {
      if (channel) {
        const body = { title: form.title, language: form.language, standby_kind: form.standby_kind,
          standby_video_id: standbyVideo(), show_viewer_count: form.show_viewer_count };
        if (form.rtmp_url) body.rtmp_url = form.rtmp_url;
        await api.patch(`/live/${channel.id}`, body);
      } else {
        await api.post("/live", {
          title: form.title, language: form.language, source_kind: form.source_kind,
          room_id: form.source_kind === "meeting" && form.room_id ? Number(form.room_id) : null,
          audio_participant: form.audio_participant, standby_kind: form.standby_kind, standby_video_id: standbyVideo(),
          rtmp_url: form.rtmp_url || null, show_viewer_count: form.show_viewer_count,
          account_id: accountParam(user, accountId),
        });
      }
      onSaved();
    } catch (err) {
      setError(err);
    }
  }
  const heading = channel ? t("channels.edit") : t("channels.new");
  return html`<form class="card form-grid" id="channel-form" onSubmit=${submit} aria-label=${heading}>
    <h2>${heading}</h2>
    <label for="channel-title">${t("channels.title")}</label>
    <input id="channel-title" required maxlength="200" value=${form.title} onInput=${set("title")} />
    <label for="channel-language">${t("channels.language")}</label>
    <select id="channel-language" value=${form.language} onChange=${set("language")}>
      <option value="zh-CN">${t("language.zh-CN")}</option><option value="en">${t("language.en")}</option>
    </select>
    ${channel ? null : html`
      <label for="channel-source">${t("channels.source")}</label>
      <select id="channel-source" value=${form.source_kind} onChange=${set("source_kind")}>
        ${["meeting", "encoder", "playlist", "rtmp"].map((k) => html`<option value=${k}>${t(`channels.sources.${k}`)}</option>`)}
      </select>
      ${form.source_kind === "meeting" ? html`
        <label for="channel-room">${t("channels.room")}</label>
        <select id="channel-room" required value=${form.room_id} onChange=${set("room_id")}>
          <option value="">${t("channels.choose_room")}</option>
          ${rooms.map((r) => html`<option value=${r.id}>${r.name} (${r.meeting_number})</option>`)}
        </select>
        <label for="channel-audio">${t("channels.audio_participant")}</label>
        <input id="channel-audio" maxlength="200" value=${form.audio_participant} onInput=${set("audio_participant")}
          placeholder=${t("channels.audio_everyone")} />` : null}`}
    <label for="channel-standby">${t("channels.standby")}</label>
    <select id="channel-standby" value=${form.standby_kind} onChange=${set("standby_kind")}>
      ${["none", "video", "encoder"].map((k) => html`<option value=${k}>${t(`channels.standby_kinds.${k}`)}</option>`)}
    </select>
    ${form.standby_kind === "video" ? html`
      <label for="channel-standby-video">${t("channels.standby_video")}</label>
      <select id="channel-standby-video" value=${form.standby_video_id} onChange=${set("standby_video_id")}>
        <option value="">${t("channels.choose_video")}</option>
        ${(videos || []).map((v) => html`<option value=${v.id}>${v.name}</option>`)}
      </select>` : null}
    <label for="channel-rtmp">${t("channels.rtmp_url")}</label>
    <input id="channel-rtmp" maxlength="1000" value=${form.rtmp_url} onInput=${set("rtmp_url")}
      placeholder=${channel?.rtmp_url || t("channels.rtmp_none")} />
    <label for="channel-count">${t("channels.show_viewer_count")}</label>
    <input id="channel-count" type="checkbox" checked=${form.show_viewer_count} onChange=${set("show_viewer_count")} />
    <${ErrorBox} error=${error} />
    <div class="actions">
      <button type="submit" class="primary" id="channel-save">${t("admin.save")}</button>
      <button type="button" onClick=${onCancel}>${t("admin.cancel")}</button>
    </div>
  </form>`;
}

function Engine({ engine }) {
  if (!engine) return html`<p class="muted" id="channel-engine">${t("channels.engine_idle")}</p>`;
  return html`<dl class="facts" id="channel-engine">
    <dt>${t("channels.on_air")}</dt><dd>${label("channels.on_air_values", engine.on_air)} ${engine.source}</dd>
    <dt>${t("channels.segments")}</dt><dd class="mono">${engine.segments} / ${engine.public_segments}</dd>
    <dt>${t("channels.duration")}</dt><dd class="mono">${t("channels.seconds", { value: formatNumber(engine.public_duration_s, { maximumFractionDigits: 0 }) })}</dd>
    ${engine.rtmp ? html`<dt>${t("channels.rtmp")}</dt><dd>${engine.rtmp}</dd>` : null}
    ${engine.transcoding ? html`<dt>${t("channels.transcoding")}</dt><dd>✓</dd>` : null}
  </dl>`;
}

function Console({ user, channel, onChanged }) {
  const [error, setError] = useState(null);
  const [staff, setStaff] = useState(null);
  async function act(fn) {
    setError(null);
    try {
      await fn();
      onChanged();
    } catch (err) {
      setError(err);
    }
  }
  const running = channel.state === "rehearsal" || channel.state === "live";
  const go = (action) => act(() => api.post(`/live/${channel.id}/${ACTION_PATHS[action]}`, {}));
  const override = (value) => act(() => api.put(`/live/${channel.id}/standby`, { override: value }));
  const staffLink = () => act(async () => setStaff(await api.post(`/live/${channel.id}/staff-token`, {})));
  return html`<div class="card" id="channel-console" data-state=${channel.state}>
    <div class="section-head">
      <h2>${t("channels.console")}: ${channel.title}</h2>
      <span class="pill" id="channel-state">${label("channels.states", channel.state)}</span>
    </div>
    <div class="actions" id="channel-actions">
      ${channel.actions.map((a) => html`<button type="button" class=${a === "go_live" ? "primary" : a === "stop" ? "danger" : ""}
        data-action=${a} onClick=${() => go(a)}>${t(`channels.actions.${a}`)}</button>`)}
      <a href=${channel.viewer_url} target="_blank" rel="noopener">${t("channels.viewer_page")}</a>
      ${channel.state === "rehearsal" ? html`<button type="button" id="channel-staff" onClick=${staffLink}>${t("channels.staff_link")}</button>` : null}
    </div>
    ${staff ? html`<p class="small"><span class="mono">${location.origin}${staff.url}</span>
      <button type="button" onClick=${() => copyText(location.origin + staff.url)}>${t("channels.copy")}</button></p>` : null}
    <${ErrorBox} error=${error} />
    <dl class="facts">
      <dt>${t("channels.source")}</dt><dd>${t(`channels.sources.${channel.source_kind}`)}
        ${channel.audio_participant ? html` · ${t("channels.audio_of", { name: channel.audio_participant })}` : null}</dd>
      <dt>${t("channels.standby")}</dt><dd>${t(`channels.standby_kinds.${channel.standby_kind}`)}</dd>
    </dl>
    <${Engine} engine=${channel.engine} />
    ${running && channel.standby_kind !== "none" ? html`<fieldset id="channel-override"><legend>${t("channels.override")}</legend>
      ${["auto", "primary", "standby"].map((v) => html`<label><input type="radio" name="override" value=${v}
        checked=${channel.standby_override === v} onChange=${() => override(v)} /> ${t(`channels.overrides.${v}`)}</label>`)}
    </fieldset>` : null}
    ${channel.source_kind === "rtmp" ? html`<${Ingest} channel=${channel} />` : null}
    ${channel.source_kind === "playlist" ? html`<div id="channel-playlist-slot" data-channel=${channel.id}>
      <${Playlist} user=${user} channelId=${channel.id} /></div>` : null}
  </div>`;
}

function Statistics({ channel }) {
  const [phase, setPhase] = useState("public");
  const [stats, error] = useLoad(() => api.get(`/live/${channel.id}/statistics${qs({ phase })}`), [channel.id, phase]);
  const csv = () => download(`/live/${channel.id}/statistics/csv${qs({ phase })}`, `live-${channel.id}-statistics.csv`);
  const time = (iso) => formatDateTime(iso, { timeStyle: "short" });
  const devices = stats ? Object.keys(stats.devices) : [];
  return html`<div class="card" id="channel-statistics">
    <div class="section-head">
      <h2>${t("channels.statistics")}</h2>
      <select aria-label=${t("channels.phase")} value=${phase} onChange=${(e) => setPhase(e.target.value)}>
        ${["public", "live", "replay", "rehearsal"].map((p) => html`<option value=${p}>${t(`channels.phases.${p}`)}</option>`)}
      </select>
      <button type="button" id="channel-csv" onClick=${csv}>${t("channels.csv")}</button>
    </div>
    <${ErrorBox} error=${error} />
    ${stats ? html`
      <dl class="facts" id="channel-figures">
        <dt>${t("channels.peak")}</dt><dd class="mono" id="stat-peak">${stats.peak_concurrency}</dd>
        <dt>${t("channels.unique_viewers")}</dt><dd class="mono" id="stat-uv">${stats.unique_viewers}</dd>
        <dt>${t("channels.views")}</dt><dd class="mono" id="stat-pv">${stats.views}</dd>
        <dt>${t("channels.watch_minutes")}</dt><dd class="mono">${formatNumber(stats.watch_minutes)}</dd>
      </dl>
      <${LineChart} id="channel-concurrency" title=${t("channels.concurrency_chart")} labels=${stats.series.map((p) => time(p.start))}
        values=${stats.series.map((p) => p.peak)} every=${Math.max(1, Math.ceil(stats.series.length / 8))} />
      ${devices.length ? html`<${BarChart} id="channel-devices" title=${t("channels.devices")}
        labels=${devices.map((d) => t(`channels.device_classes.${d}`))}
        series=${[{ name: t("channels.views"), color: "#3b7cff", values: devices.map((d) => stats.devices[d]) }]} />` : null}
      <p class="small muted">${Object.entries(stats.browsers).map(([name, n]) => `${name} ${n}`).join(" · ")}</p>
    ` : html`<${Loading} />`}
  </div>`;
}

export function Channels({ user, accountId }) {
  const account = accountParam(user, accountId);
  const [channels, error, reload] = useLoad(() => api.get(`/live${qs({ account_id: account, limit: 500 })}`), [accountId]);
  const [rooms] = useLoad(() => api.get(`/rooms${qs({ account_id: account, limit: 500 })}`), [accountId]);
  const [editing, setEditing] = useState(null); // null | "new" | channel
  const [open, setOpen] = useState(null); // the id of the channel whose console is shown
  const [tick, setTick] = useState(0);
  const [actionError, setActionError] = useState(null);
  const current = channels?.find((c) => c.id === open) || null;
  useEffect(() => {
    if (!current || !(current.state === "rehearsal" || current.state === "live")) return undefined;
    const timer = setTimeout(() => {
      reload();
      setTick((n) => n + 1);
    }, CONSOLE_REFRESH_MS);
    return () => clearTimeout(timer);
  }, [current, tick]);
  const saved = () => {
    setEditing(null);
    reload();
  };
  async function remove(channel) {
    if (!confirm(t("channels.delete_confirm", { title: channel.title }))) return;
    try {
      await api.del(`/live/${channel.id}`);
      if (open === channel.id) setOpen(null);
      reload();
    } catch (err) {
      setActionError(err);
    }
  }
  const roomName = (id) => rooms?.find((r) => r.id === id)?.name || "";
  return html`<section aria-labelledby="channels-title">
    <div class="section-head">
      <h1 id="channels-title">${t("admin.nav.channels")}</h1>
      <button type="button" class="primary" id="channel-new" onClick=${() => setEditing("new")}>${t("channels.new")}</button>
    </div>
    ${editing ? html`<${ChannelForm} channel=${editing === "new" ? null : editing} user=${user} accountId=${accountId}
      rooms=${rooms || []} onSaved=${saved} onCancel=${() => setEditing(null)} />` : null}
    <${ErrorBox} error=${error || actionError} />
    ${channels === null && !error ? html`<${Loading} />` : null}
    ${channels && channels.length === 0 ? html`<p class="muted" id="channels-none">${t("channels.none")}</p>` : null}
    ${channels && channels.length ? html`<table class="table" id="channels-table">
      <thead><tr>
        <th scope="col">${t("channels.title")}</th><th scope="col">${t("channels.language")}</th>
        <th scope="col">${t("channels.source")}</th><th scope="col">${t("channels.state")}</th>
        <th scope="col">${t("channels.started")}</th><th scope="col">${t("recording.actions")}</th>
      </tr></thead>
      <tbody>${channels.map((c) => html`<tr key=${c.id} data-channel=${c.id} data-state=${c.state}>
        <td>${c.title}</td><td>${t(`language.${c.language}`)}</td>
        <td>${t(`channels.sources.${c.source_kind}`)}${c.room_id ? ` · ${roomName(c.room_id)}` : ""}</td>
        <td><span class="state">${label("channels.states", c.state)}</span></td>
        <td>${c.started_at ? formatDateTime(c.started_at) : ""}</td>
        <td class="actions">
          <button type="button" class="primary" data-action="console" onClick=${() => setOpen(c.id)}>${t("channels.open_console")}</button>
          ${c.state === "draft" || c.state === "rehearsal" || c.state === "live"
            ? html`<button type="button" data-action="edit" onClick=${() => setEditing(c)}>${t("channels.edit")}</button>` : null}
          ${user.role === "admin" && !(c.state === "rehearsal" || c.state === "live")
            ? html`<button type="button" class="danger" data-action="delete" onClick=${() => remove(c)}>${t("channels.delete")}</button>` : null}
        </td>
      </tr>`)}</tbody>
    </table>` : null}
    ${current ? html`<${Console} user=${user} channel=${current} onChanged=${reload} /><${Statistics} key=${current.id} channel=${current} />` : null}
  </section>`;
}
