// Side panels: participants (with the lobby and the moderator menu), chat (public, private, files) and devices.
import { useEffect, useRef, useState } from "preact/hooks";
import { Icon } from "../lib/icons.js";
import { formatDateTime, t } from "../lib/i18n.js";
import { html } from "../lib/ui.js";
import { DevicePicker, saveDevice } from "./prejoin.js";

function ModeratorMenu({ person, client, selfRole }) {
  const [open, setOpen] = useState(false);
  const act = (action) => {
    client.moderate(action, person.id);
    setOpen(false);
  };
  if (person.role === "host" && selfRole !== "host") return null;
  const held = person.held || [];
  const items = [
    held.includes("mic") ? ["unmute", t("moderate.unmute")] : ["mute", t("moderate.mute")],
    held.includes("camera") ? ["allow_camera", t("moderate.allow_camera")] : ["stop_camera", t("moderate.stop_camera")],
    ["remove", t("moderate.remove")],
  ];
  if (selfRole === "host") {
    items.push(person.role === "cohost" ? ["revoke_cohost", t("moderate.revoke_cohost")] : ["make_cohost", t("moderate.make_cohost")]);
  }
  return html`<div class="menu">
    <button type="button" class="icon-button" aria-haspopup="menu" aria-expanded=${String(open)}
      aria-label=${t("moderate.menu_for", { name: person.name })} onClick=${() => setOpen(!open)}><${Icon} name="more" /></button>
    ${open
      ? html`<ul role="menu" class="menu-list" onKeyDown=${(e) => e.key === "Escape" && setOpen(false)}>
          ${items.map(
            ([action, label]) => html`<li role="none"><button type="button" role="menuitem" data-action=${action}
              onClick=${() => act(action)}>${label}</button></li>`,
          )}
        </ul>`
      : null}
  </div>`;
}

/** A host key from the organizer makes anyone host (a meeting joined by guests only gets one this way). */
function ClaimHost({ client }) {
  const [key, setKey] = useState("");
  const submit = (e) => {
    e.preventDefault();
    if (key.trim()) client.claimHost(key);
    setKey("");
  };
  return html`<form class="claim-host" onSubmit=${submit}>
    <label for="host-key">${t("host_key.label")}</label>
    <input id="host-key" inputmode="numeric" autocomplete="off" maxlength="20" title=${t("host_key.hint")}
      value=${key} onInput=${(e) => setKey(e.target.value)} />
    <button type="submit" class="small" id="claim-host">${t("host_key.claim")}</button>
  </form>`;
}

// The participant list gets a search box from this many people on.
const SEARCH_FROM = 8;

/** Raised hands first, then everyone else (each in the meeting's order), filtered by a name search. */
export function listedPeople(people, query) {
  const needle = query.trim().toLocaleLowerCase();
  const matching = needle ? people.filter((p) => p.name.toLocaleLowerCase().includes(needle)) : people;
  return [...matching.filter((p) => p.hand), ...matching.filter((p) => !p.hand)];
}

export function ParticipantsPanel({ people, client, lobby, locked }) {
  const selfRole = client.self?.role;
  const moderator = client.isModerator;
  const [query, setQuery] = useState("");
  const listed = listedPeople(people, query);
  return html`<section class="panel" aria-label=${t("panel.participants")}>
    <h2>${t("panel.participants_count", { count: people.length })}</h2>
    ${moderator
      ? html`<div class="panel-actions">
          <button type="button" id="mute-all" onClick=${() => client.moderate("mute_all")}>${t("moderate.mute_all")}</button>
          <button type="button" id="lock" aria-pressed=${String(Boolean(locked))}
            onClick=${() => client.moderate(locked ? "unlock" : "lock")}>${locked ? t("moderate.unlock") : t("moderate.lock")}</button>
        </div>`
      : null}
    ${selfRole !== "host" && client.self ? html`<${ClaimHost} client=${client} />` : null}
    ${moderator && lobby.length
      ? html`<div class="lobby-list" aria-label=${t("panel.lobby")}>
          <h3>${t("panel.lobby_count", { count: lobby.length })}</h3>
          <ul>
            ${lobby.map(
              (entry) => html`<li key=${entry.participant_id} data-lobby=${entry.participant_id}>
                <span class="name">${entry.display_name}</span>
                <button type="button" class="small primary" onClick=${() => client.moderate("admit", entry.participant_id)}
                  aria-label=${t("moderate.admit_name", { name: entry.display_name })}>${t("moderate.admit")}</button>
                <button type="button" class="small" onClick=${() => client.moderate("reject", entry.participant_id)}
                  aria-label=${t("moderate.reject_name", { name: entry.display_name })}>${t("moderate.reject")}</button>
              </li>`,
            )}
          </ul>
        </div>`
      : null}
    ${people.length > SEARCH_FROM
      ? html`<input type="search" class="people-search" aria-label=${t("people.search")} placeholder=${t("people.search")}
          value=${query} onInput=${(e) => setQuery(e.target.value)} />`
      : null}
    ${listed.length === 0 ? html`<p class="muted">${t("people.none_found")}</p>` : null}
    <ul class="people">
      ${listed.map(
        (p) => html`<li key=${p.id} data-participant=${p.id}>
          <span class="name">${p.name}${p.local ? html` <span class="you">${t("tile.you")}</span>` : null}</span>
          <span class="role">${t(`role.${p.role}`)}</span>
          ${p.hand ? html`<span role="img" aria-label=${t("tile.hand_raised")}><${Icon} name="hand" size="16" /></span>` : null}
          <span role="img" aria-label=${p.micMuted ? t("tile.muted") : t("tile.unmuted")}><${Icon} name=${p.micMuted ? "micOff" : "mic"} size="16" /></span>
          ${moderator && !p.local ? html`<${ModeratorMenu} person=${p} client=${client} selfRole=${selfRole} />` : null}
        </li>`,
      )}
    </ul>
  </section>`;
}

function formatSize(bytes) {
  if (bytes < 1024) return t("file.bytes", { n: bytes });
  if (bytes < 1024 * 1024) return t("file.kb", { n: (bytes / 1024).toFixed(1) });
  return t("file.mb", { n: (bytes / 1024 / 1024).toFixed(1) });
}

export function ChatPanel({ client, messages, people, onError }) {
  const [text, setText] = useState("");
  const [to, setTo] = useState("");
  const [uploading, setUploading] = useState(false);
  const list = useRef(null);
  useEffect(() => {
    if (list.current) list.current.scrollTop = list.current.scrollHeight;
  }, [messages.length]);
  const nameOf = (id) => people.find((p) => p.id === id)?.name || "";

  function send(e) {
    e.preventDefault();
    const value = text.trim();
    if (!value) return;
    client.sendChat(value, to || null);
    setText("");
  }

  async function upload(e) {
    const file = e.target.files[0];
    e.target.value = "";
    if (!file) return;
    setUploading(true);
    try {
      await client.uploadFile(file);
    } catch (err) {
      onError(t("chat.upload_failed", { error: err.message }));
    } finally {
      setUploading(false);
    }
  }

  return html`<section class="panel chat" aria-label=${t("panel.chat")}>
    <h2>${t("panel.chat")}</h2>
    <ol class="messages" ref=${list} aria-live="polite">
      ${messages.map(
        (m) => html`<li key=${m.message_id} class=${m.to ? "private" : ""}>
          <div class="meta">
            <span class="sender">${m.sender_id === client.self?.id ? t("chat.me") : m.sender_name}</span>
            ${m.to ? html`<span class="tag">${t("chat.private_to", { name: m.to === client.self?.id ? t("chat.me") : nameOf(m.to) })}</span>` : null}
            <time datetime=${m.sent_at}>${formatDateTime(m.sent_at, { timeStyle: "short" })}</time>
          </div>
          ${m.file
            ? html`<div class="file"><${Icon} name="attach" size="16" /> ${m.file.url
                ? html`<a href=${m.file.url} download=${m.file.name} target="_blank" rel="noopener">${m.file.name}</a>`
                : html`<span>${m.file.name}</span>`} <span class="muted">${formatSize(m.file.size)}</span></div>`
            : html`<div class="text">${m.text}</div>`}
        </li>`,
      )}
    </ol>
    <form class="chat-form" onSubmit=${send}>
      <label class="visually-hidden" for="chat-to">${t("chat.to")}</label>
      <select id="chat-to" value=${to} onChange=${(e) => setTo(e.target.value)} aria-label=${t("chat.to")}>
        <option value="">${t("chat.everyone")}</option>
        ${people.filter((p) => !p.local).map((p) => html`<option value=${p.id}>${p.name}</option>`)}
      </select>
      <div class="chat-row">
        <input id="chat-text" value=${text} maxlength="2000" autocomplete="off" aria-label=${t("chat.message")}
          placeholder=${t("chat.placeholder")} onInput=${(e) => setText(e.target.value)} />
        <button type="submit" class="primary">${t("chat.send")}</button>
      </div>
      ${client.uploadUrl
        ? html`<label class="upload">
            <input type="file" class="visually-hidden" onChange=${upload} disabled=${uploading} aria-label=${t("chat.attach")} />
            <${Icon} name="attach" size="16" /> ${uploading ? t("chat.uploading") : t("chat.attach")}
          </label>`
        : null}
    </form>
  </section>`;
}

/** Microphone, camera and speaker pickers; a switch swaps the sent track without leaving the meeting. */
export function DevicesPanel({ client, speaker, onSpeaker }) {
  const [devices, setDevices] = useState([]);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    const media = navigator.mediaDevices;
    const refresh = () => media.enumerateDevices().then(setDevices).catch(() => {});
    refresh();
    media.addEventListener("devicechange", refresh);
    return () => media.removeEventListener("devicechange", refresh);
  }, []);

  async function choose(kind, deviceId) {
    if (kind === "speaker") {
      saveDevice(kind, deviceId);
      onSpeaker(deviceId);
      return;
    }
    setBusy(true);
    try {
      await client.switchDevice(kind, deviceId);
      saveDevice(kind, deviceId);
    } catch {
      // The client's device-error event tells the user; the previous device stays in use.
    } finally {
      setBusy(false);
    }
  }

  const speakerSupported = "setSinkId" in HTMLMediaElement.prototype;
  return html`<section class="panel devices" aria-label=${t("panel.devices")} aria-busy=${String(busy)}>
    <h2>${t("panel.devices")}</h2>
    <${DevicePicker} id="device-mic" label=${t("prejoin.microphone")} kind="audioinput" devices=${devices}
      value=${client.devices.mic} onChange=${(v) => choose("mic", v)} />
    <${DevicePicker} id="device-camera" label=${t("prejoin.camera")} kind="videoinput" devices=${devices}
      value=${client.devices.camera} onChange=${(v) => choose("camera", v)} />
    ${speakerSupported
      ? html`<${DevicePicker} id="device-speaker" label=${t("prejoin.speaker")} kind="audiooutput" devices=${devices}
          value=${speaker} onChange=${(v) => choose("speaker", v)} />`
      : null}
    ${client.muted.camera && client.devices.camera !== null ? html`<p class="muted">${t("device.camera_off_note")}</p>` : null}
  </section>`;
}
