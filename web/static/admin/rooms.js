// Rooms: list, create, edit (name, passcode, capacity, max length, lobby), delete; join links and invitations.
import { useState } from "preact/hooks";
import { t } from "../lib/i18n.js";
import { copyText, html } from "../lib/ui.js";
import { api, qs } from "./api.js";
import { ErrorBox, Loading, accountParam, useLoad } from "./common.js";

/** The browser join link of a room; `passcode` (when given) is embedded so a guest need not type it. */
export function joinLink(room, passcode) {
  const base = `${location.origin}/m/${room.meeting_number}`;
  return passcode ? `${base}?pwd=${encodeURIComponent(passcode)}` : base;
}

/** The SIP dial string for room terminals: number.passcode@host, or number@host for the keypad prompt. */
export function dialString(room, passcode) {
  return `${room.meeting_number}${passcode ? `.${passcode}` : ""}@${location.hostname}`;
}

/**
 * An invitation to a room: title, optional time, join link, meeting number, passcode, SIP dial string.
 * `embed` false leaves the passcode out of the link, the dial string and the text (sent another way).
 */
export function invitationLines({ title, when, room, passcode, embed }) {
  const shown = embed ? passcode : null;
  const lines = [t("admin.invite.line_title", { title })];
  if (when) lines.push(t("admin.invite.line_time", { time: when }));
  lines.push(t("admin.invite.line_link", { link: joinLink(room, shown) }), t("admin.invite.line_number", { number: room.meeting_number }));
  if (shown) lines.push(t("admin.invite.line_passcode", { passcode: shown }));
  lines.push(t("admin.invite.line_sip", { sip: dialString(room, shown) }));
  return lines.join("\n");
}

/** A button that copies `text` and says so for a moment (role=status: read out by screen readers). */
export function CopyButton({ text, label, copiedLabel, id, primary, small, name }) {
  const [copied, setCopied] = useState(false);
  async function copy() {
    await copyText(text);
    setCopied(true);
    setTimeout(() => setCopied(false), 2500);
  }
  return html`<button type="button" id=${id} class=${[primary ? "primary" : "", small ? "small" : ""].join(" ")} onClick=${copy} aria-label=${name || label}>
    ${copied ? copiedLabel : label}</button>${copied ? html`<span class="visually-hidden" role="status">${copiedLabel}</span>` : null}`;
}

/**
 * The join link and the invitation of one room, ready to copy. `booking` (optional) adds its title and time
 * and its own passcode; the organiser chooses whether the passcode goes into the link.
 */
export function RoomShare({ room, booking, when, onClose }) {
  const passcode = booking?.passcode || room.passcode || null;
  const [embed, setEmbed] = useState(true);
  const link = joinLink(room, embed ? passcode : null);
  const text = invitationLines({ title: booking?.title || room.name, when, room, passcode, embed });
  const id = `share-${booking ? `b${booking.id}` : room.id}`;
  return html`<section class="card invitation share" aria-label=${t("share.title_for", { name: booking?.title || room.name })}>
    <h2>${t("share.title_for", { name: booking?.title || room.name })}</h2>
    ${passcode
      ? html`<label class="check"><input type="checkbox" checked=${embed} onChange=${(e) => setEmbed(e.target.checked)} />
          ${t("share.embed_passcode")}</label>`
      : null}
    <label for=${`${id}-link`}>${t("share.link")}</label>
    <div class="inline copy-row">
      <input id=${`${id}-link`} class="mono link-field" readonly value=${link} onFocus=${(e) => e.target.select()} />
      <${CopyButton} text=${link} label=${t("share.copy_link")} copiedLabel=${t("share.copied")} primary />
      <a href=${link} target="_blank" rel="noopener">${t("admin.rooms.open")}</a>
    </div>
    <label for=${`${id}-text`}>${t("admin.invite.title")}</label>
    <textarea id=${`${id}-text`} readonly rows="7">${text}</textarea>
    <div class="actions">
      <${CopyButton} text=${text} label=${t("admin.invite.copy")} copiedLabel=${t("admin.invite.copied")} />
      ${onClose ? html`<button type="button" onClick=${onClose}>${t("ui.close")}</button>` : null}
    </div>
  </section>`;
}

const EMPTY = { name: "", passcode: "", capacity: "", max_session_minutes: "", lobby: false, auto_record: false };

export function RoomForm({ room, user, accountId, onSaved, onCancel }) {
  const [form, setForm] = useState(room ? { ...EMPTY, ...room, passcode: room.passcode || "", capacity: room.capacity ?? "",
    max_session_minutes: room.max_session_minutes ?? "" } : EMPTY);
  const [error, setError] = useState(null);
  const set = (name) => (e) => setForm({ ...form, [name]: e.target.type === "checkbox" ? e.target.checked : e.target.value });
  async function submit(e) {
    e.preventDefault();
    setError(null);
    const body = {
      name: form.name,
      passcode: form.passcode || null,
      capacity: form.capacity === "" ? null : Number(form.capacity),
      max_session_minutes: form.max_session_minutes === "" ? null : Number(form.max_session_minutes),
      lobby: form.lobby,
      auto_record: form.auto_record,
    };
    try {
      if (room) await api.patch(`/rooms/${room.id}`, body);
      else await api.post("/rooms", { ...body, account_id: accountParam(user, accountId) });
      onSaved();
    } catch (err) {
      setError(err);
    }
  }
  return html`<form class="card form-grid" onSubmit=${submit} aria-label=${room ? t("admin.rooms.edit") : t("admin.rooms.new")}>
    <h2>${room ? t("admin.rooms.edit") : t("admin.rooms.new")}</h2>
    <label for="room-name">${t("admin.rooms.name")}</label>
    <input id="room-name" required maxlength="200" value=${form.name} onInput=${set("name")} />
    <label for="room-passcode">${t("admin.rooms.passcode")}</label>
    <input id="room-passcode" inputmode="numeric" pattern="[0-9]{6,10}" title=${t("admin.rooms.passcode_hint")}
      value=${form.passcode} onInput=${set("passcode")} />
    <label for="room-capacity">${t("admin.rooms.capacity")}</label>
    <input id="room-capacity" type="number" min="1" max="10000" value=${form.capacity} onInput=${set("capacity")}
      placeholder=${t("admin.rooms.default")} />
    <label for="room-max">${t("admin.rooms.max_minutes")}</label>
    <input id="room-max" type="number" min="1" max="10080" value=${form.max_session_minutes} onInput=${set("max_session_minutes")}
      placeholder=${t("admin.rooms.unlimited")} />
    <label for="room-lobby">${t("admin.rooms.lobby")}</label>
    <input id="room-lobby" type="checkbox" checked=${form.lobby} onChange=${set("lobby")} />
    <label for="room-auto-record">${t("recording.auto_record")}</label>
    <input id="room-auto-record" type="checkbox" checked=${form.auto_record} onChange=${set("auto_record")} />
    <${ErrorBox} error=${error} />
    <div class="actions">
      <button type="submit" class="primary" id="room-save">${t("admin.save")}</button>
      <button type="button" onClick=${onCancel}>${t("admin.cancel")}</button>
    </div>
  </form>`;
}

export function Rooms({ user, accountId }) {
  const [rooms, error, reload] = useLoad(() => api.get(`/rooms${qs({ account_id: accountParam(user, accountId), limit: 500 })}`), [accountId]);
  const [editing, setEditing] = useState(null); // null | "new" | room
  const [sharing, setSharing] = useState(null); // the room whose link and invitation are shown
  const [actionError, setActionError] = useState(null);
  async function remove(room) {
    if (!confirm(t("admin.rooms.delete_confirm", { name: room.name }))) return;
    try {
      await api.del(`/rooms/${room.id}`);
      reload();
    } catch (err) {
      setActionError(err);
    }
  }
  const saved = () => {
    setEditing(null);
    reload();
  };
  return html`<section aria-labelledby="rooms-title">
    <div class="section-head">
      <h1 id="rooms-title">${t("admin.nav.rooms")}</h1>
      <button type="button" class="primary" id="room-new" onClick=${() => setEditing("new")}>${t("admin.rooms.new")}</button>
    </div>
    ${editing
      ? html`<${RoomForm} room=${editing === "new" ? null : editing} user=${user} accountId=${accountId} onSaved=${saved}
          onCancel=${() => setEditing(null)} />`
      : null}
    ${sharing ? html`<${RoomShare} key=${sharing.id} room=${sharing} onClose=${() => setSharing(null)} />` : null}
    <${ErrorBox} error=${error || actionError} />
    ${rooms === null && !error
      ? html`<${Loading} />`
      : html`<table class="table" id="rooms-table">
          <thead><tr>
            <th scope="col">${t("admin.rooms.name")}</th><th scope="col">${t("admin.rooms.number")}</th>
            <th scope="col">${t("admin.rooms.passcode")}</th><th scope="col">${t("admin.rooms.host_key")}</th>
            <th scope="col">${t("admin.rooms.capacity")}</th>
            <th scope="col">${t("admin.rooms.max_minutes")}</th><th scope="col">${t("admin.rooms.lobby")}</th>
            <th scope="col"><span class="visually-hidden">${t("admin.actions")}</span></th>
          </tr></thead>
          <tbody>
            ${(rooms || []).length === 0 ? html`<tr><td colspan="8" class="muted">${t("admin.rooms.none")}</td></tr>` : null}
            ${(rooms || []).map((room) => html`<tr key=${room.id} data-room=${room.id}>
              <td>${room.name}</td>
              <td class="mono meeting-number">${room.meeting_number}</td>
              <td class="mono">${room.passcode || "–"}</td>
              <td class="mono host-key" title=${t("admin.rooms.host_key_hint")}>${room.host_key}</td>
              <td>${room.capacity}</td>
              <td>${room.max_session_minutes ?? t("admin.rooms.unlimited")}</td>
              <td>${room.lobby ? t("admin.yes") : t("admin.no")}</td>
              <td class="row-actions">
                <a href=${`/m/${room.meeting_number}`} target="_blank" rel="noopener">${t("admin.rooms.open")}</a>
                <${CopyButton} text=${joinLink(room, room.passcode)} label=${t("share.copy_link")} copiedLabel=${t("share.copied")} small
                  name=${t("share.copy_link_of", { name: room.name })} />
                <button type="button" class="small" onClick=${() => setSharing(room)}
                  aria-label=${t("share.invite_to", { name: room.name })}>${t("share.invite")}</button>
                <button type="button" class="small" onClick=${() => setEditing(room)}
                  aria-label=${t("admin.rooms.edit_name", { name: room.name })}>${t("admin.edit")}</button>
                <button type="button" class="small danger" onClick=${() => remove(room)}
                  aria-label=${t("admin.rooms.delete_name", { name: room.name })}>${t("admin.delete")}</button>
              </td>
            </tr>`)}
          </tbody>
        </table>`}
  </section>`;
}
