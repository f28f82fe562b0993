// Bookings: a week calendar and a list, single and recurring bookings, conflicts inline, .ics, invitations.
import { useEffect, useState } from "preact/hooks";
import { currentLanguage, formatDateTime, t } from "../lib/i18n.js";
import { copyText, html } from "../lib/ui.js";
import { api, download, qs } from "./api.js";
import { ErrorBox, Loading, accountParam, errorText, useLoad } from "./common.js";
import { CopyButton, invitationLines, joinLink } from "./rooms.js";
import { addWallDays, coveringRange, formatInZone, formatWall, myZone, toWall, wallWeekStart, zoneLabel, zoneOffset } from "./zones.js";

const DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];
const HOUR_PX = 40;

function pad(n) {
  return String(n).padStart(2, "0");
}

function addDays(date, days) {
  const d = new Date(date);
  d.setDate(d.getDate() + days);
  return d;
}

function localDate(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** An RFC 5545 RRULE from the form's repeat fields, or null for a single booking. */
export function buildRrule({ repeat, interval, days, endKind, count, until }) {
  if (repeat === "none") return null;
  const parts = [`FREQ=${repeat.toUpperCase()}`];
  if (Number(interval) > 1) parts.push(`INTERVAL=${Number(interval)}`);
  if (repeat === "weekly" && days.length) parts.push(`BYDAY=${DAYS.filter((d) => days.includes(d)).join(",")}`);
  if (endKind === "count") parts.push(`COUNT=${Number(count)}`);
  else if (endKind === "until" && until) parts.push(`UNTIL=${until.replaceAll("-", "")}T235959Z`);
  return parts.join(";");
}

/** A readable description of an RRULE produced by buildRrule. */
function describeRrule(rrule) {
  if (!rrule) return t("admin.bookings.once");
  const rule = Object.fromEntries(rrule.split(";").map((p) => p.split("=")));
  const freq = (rule.FREQ || "").toLowerCase();
  const n = Number(rule.INTERVAL || 1);
  let text = n === 1 ? t(`admin.bookings.repeat_${freq}`) : t(`admin.bookings.every_${freq}`, { n });
  if (rule.BYDAY) text += ` (${rule.BYDAY.split(",").map((d) => t(`admin.day.${d}`)).join(", ")})`;
  if (rule.COUNT) text += ` · ${t("admin.bookings.times", { n: rule.COUNT })}`;
  if (rule.UNTIL) text += ` · ${t("admin.bookings.until_date", { date: rule.UNTIL.slice(0, 8).replace(/(\d{4})(\d{2})(\d{2})/, "$1-$2-$3") })}`;
  return text;
}

/** The invitation text: join link, meeting number, passcode and the SIP dial string for room terminals. */
export function invitationText(booking, room, when, embed = true) {
  const passcode = booking.passcode || room.passcode;
  return invitationLines({ title: booking.title, when, room, passcode, embed });
}

function Invitation({ booking, room, onClose }) {
  const [copied, setCopied] = useState(false);
  const [embed, setEmbed] = useState(true);
  // Shown in the booking's own time zone, which the invitation names.
  const start = formatDateTime(booking.first_start, { dateStyle: "medium", timeStyle: "short", timeZone: booking.time_zone });
  const when = `${start} (${describeRrule(booking.rrule)}, ${booking.time_zone})`;
  const text = invitationText(booking, room, when, embed);
  const link = joinLink(room, embed ? booking.passcode || room.passcode : null);
  async function copy() {
    await copyText(text);
    setCopied(true);
  }
  return html`<div class="card invitation share" role="dialog" aria-label=${t("admin.invite.title")}>
    <h2>${t("admin.invite.title")}</h2>
    ${booking.passcode || room.passcode
      ? html`<label class="check"><input type="checkbox" checked=${embed} onChange=${(e) => { setEmbed(e.target.checked); setCopied(false); }} />
          ${t("share.embed_passcode")}</label>`
      : null}
    <label for="invitation-link">${t("share.link")}</label>
    <div class="inline copy-row">
      <input id="invitation-link" class="mono link-field" readonly value=${link} onFocus=${(e) => e.target.select()} />
      <${CopyButton} text=${link} label=${t("share.copy_link")} copiedLabel=${t("share.copied")} />
    </div>
    <textarea id="invitation-text" readonly rows="7" aria-label=${t("admin.invite.title")}>${text}</textarea>
    <div class="actions">
      <button type="button" class="primary" id="invitation-copy" onClick=${copy}>${copied ? t("admin.invite.copied") : t("admin.invite.copy")}</button>
      <button type="button" onClick=${onClose}>${t("ui.close")}</button>
    </div>
  </div>`;
}

function defaultForm(rooms) {
  const start = new Date(Date.now() + 3600_000);
  start.setMinutes(0, 0, 0);
  const end = new Date(start.getTime() + 3600_000);
  return {
    room_id: rooms[0]?.id ?? "",
    title: "",
    date: localDate(start),
    start: `${pad(start.getHours())}:00`,
    end: `${pad(end.getHours())}:00`,
    time_zone: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
    repeat: "none",
    interval: 1,
    days: [DAYS[(start.getDay() + 6) % 7]],
    endKind: "count",
    count: 10,
    until: "",
    invitees: "",
    passcode: "",
  };
}

function BookingForm({ rooms, user, accountId, onSaved, onCancel }) {
  const [form, setForm] = useState(() => defaultForm(rooms));
  const [error, setError] = useState(null);
  const [conflict, setConflict] = useState(null);
  const weekday = (iso) => DAYS[(new Date(`${iso}T00:00`).getDay() + 6) % 7];
  const set = (name) => (e) => {
    const next = { ...form, [name]: e.target.value };
    // A weekly series starts on its first date's weekday: keep that day ticked as the date or repeat changes.
    if (name === "repeat" && next.repeat === "weekly" && form.repeat !== "weekly") next.days = [weekday(next.date)];
    if (name === "date" && next.date) {
      const before = weekday(form.date);
      next.days = [...new Set([...next.days.filter((d) => d !== before), weekday(next.date)])];
    }
    setForm(next);
  };
  const toggleDay = (day) =>
    setForm({ ...form, days: form.days.includes(day) ? form.days.filter((d) => d !== day) : [...form.days, day] });

  async function submit(e) {
    e.preventDefault();
    setError(null);
    setConflict(null);
    const endDate = form.end <= form.start ? localDate(addDays(new Date(`${form.date}T00:00`), 1)) : form.date;
    const body = {
      room_id: Number(form.room_id),
      title: form.title,
      start: `${form.date}T${form.start}:00`,
      end: `${endDate}T${form.end}:00`,
      time_zone: form.time_zone,
      rrule: buildRrule(form),
      invitees: form.invitees.split(/[,;\s]+/).filter(Boolean).map((email) => ({ email })),
      passcode: form.passcode || null,
    };
    try {
      const booking = await api.post("/bookings", body);
      onSaved(booking);
    } catch (err) {
      if (err.status === 409 && err.bookingId) {
        const other = await api.get(`/bookings/${err.bookingId}`).catch(() => null);
        setConflict({ err, other });
      } else setError(err);
    }
  }
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  return html`<form class="card form-grid booking-form" onSubmit=${submit} aria-label=${t("admin.bookings.new")}>
    <h2>${t("admin.bookings.new")}</h2>
    <label for="booking-room">${t("admin.bookings.room")}</label>
    <select id="booking-room" required value=${form.room_id} onChange=${set("room_id")}>
      ${rooms.map((r) => html`<option value=${r.id} selected=${r.id === Number(form.room_id)}>${r.name} (${r.meeting_number})</option>`)}
    </select>
    <label for="booking-title">${t("admin.bookings.title_field")}</label>
    <input id="booking-title" required maxlength="200" value=${form.title} onInput=${set("title")} />
    <label for="booking-date">${t("admin.bookings.date")}</label>
    <input id="booking-date" type="date" required value=${form.date} onInput=${set("date")} />
    <label for="booking-start">${t("admin.bookings.start")}</label>
    <div class="inline">
      <input id="booking-start" type="time" required value=${form.start} onInput=${set("start")} />
      <label for="booking-end">${t("admin.bookings.end")}</label>
      <input id="booking-end" type="time" required value=${form.end} onInput=${set("end")} />
    </div>
    <label for="booking-zone">${t("admin.bookings.time_zone")}</label>
    <input id="booking-zone" list="zones" required value=${form.time_zone} onInput=${set("time_zone")} />
    <datalist id="zones">${zones.map((z) => html`<option value=${z} />`)}</datalist>
    <label for="booking-repeat">${t("admin.bookings.repeat")}</label>
    <div class="inline">
      <select id="booking-repeat" value=${form.repeat} onChange=${set("repeat")}>
        ${["none", "daily", "weekly", "monthly"].map((r) => html`<option value=${r} selected=${form.repeat === r}>${t(`admin.bookings.repeat_${r}`)}</option>`)}
      </select>
      ${form.repeat !== "none"
        ? html`<label for="booking-interval">${t("admin.bookings.interval")}</label>
            <input id="booking-interval" type="number" min="1" max="12" value=${form.interval} onInput=${set("interval")} class="narrow" />`
        : null}
    </div>
    ${form.repeat === "weekly"
      ? html`<span class="label">${t("admin.bookings.on_days")}</span>
          <div class="inline days" role="group" aria-label=${t("admin.bookings.on_days")}>
            ${DAYS.map((d) => html`<label class="day"><input type="checkbox" checked=${form.days.includes(d)} onChange=${() => toggleDay(d)}
              data-day=${d} />${t(`admin.day.${d}`)}</label>`)}
          </div>`
      : null}
    ${form.repeat !== "none"
      ? html`<label for="booking-end-kind">${t("admin.bookings.ends")}</label>
          <div class="inline">
            <select id="booking-end-kind" value=${form.endKind} onChange=${set("endKind")}>
              <option value="count" selected=${form.endKind === "count"}>${t("admin.bookings.ends_count")}</option>
              <option value="until" selected=${form.endKind === "until"}>${t("admin.bookings.ends_until")}</option>
            </select>
            ${form.endKind === "count"
              ? html`<input id="booking-count" type="number" min="1" max="50" value=${form.count} onInput=${set("count")} class="narrow"
                  aria-label=${t("admin.bookings.ends_count")} />`
              : html`<input id="booking-until" type="date" value=${form.until} onInput=${set("until")} aria-label=${t("admin.bookings.ends_until")} />`}
          </div>`
      : null}
    <label for="booking-passcode">${t("admin.bookings.passcode")}</label>
    <input id="booking-passcode" inputmode="numeric" pattern="[0-9]{6,10}" value=${form.passcode} onInput=${set("passcode")}
      placeholder=${t("admin.bookings.passcode_hint")} />
    <label for="booking-invitees">${t("admin.bookings.invitees")}</label>
    <input id="booking-invitees" value=${form.invitees} onInput=${set("invitees")} placeholder=${t("admin.bookings.invitees_hint")} />
    ${conflict
      ? html`<div class="conflict" role="alert" id="booking-conflict">
          <strong>${t("admin.bookings.conflict")}</strong>
          <span>${conflict.other
            ? t("admin.bookings.conflict_with", {
                title: conflict.other.title,
                id: conflict.other.id,
                time: `${formatDateTime(conflict.other.first_start, { dateStyle: "medium", timeStyle: "short", timeZone: conflict.other.time_zone })} ${conflict.other.time_zone}`,
              })
            : conflict.err.message}</span>
        </div>`
      : null}
    <${ErrorBox} error=${error} />
    <div class="actions">
      <button type="submit" class="primary" id="booking-save">${t("admin.save")}</button>
      <button type="button" onClick=${onCancel}>${t("admin.cancel")}</button>
    </div>
  </form>`;
}

/** The week of wall days from `start` (a wall value, see zones.js) in `zone`; each event also says the time
 * in its booking's own zone when that is another. */
function WeekCalendar({ bookings, rooms, start, zone, onPick }) {
  const [occurrences, setOccurrences] = useState(null);
  const end = addWallDays(start, 7);
  useEffect(() => {
    let cancelled = false;
    const covering = coveringRange(start, end);
    const range = qs({ from: covering.from.toISOString(), to: covering.to.toISOString() });
    Promise.all(bookings.map((b) => api.get(`/bookings/${b.id}/occurrences${range}`).catch(() => [])))
      .then((lists) => !cancelled && setOccurrences(lists.flat()))
      .catch(() => !cancelled && setOccurrences([]));
    return () => {
      cancelled = true;
    };
  }, [bookings, start.getTime(), zone]);
  if (occurrences === null) return html`<${Loading} />`;
  const byId = new Map(bookings.map((b) => [b.id, b]));
  const roomName = (id) => rooms.find((r) => r.id === id)?.name || "";
  const days = [...Array(7).keys()].map((i) => addWallDays(start, i));
  const dayOptions = { weekday: "short", month: "numeric", day: "numeric" };
  // 24-hour, like the hour labels of the grid.
  const timeOptions = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  const placed = occurrences.map((o) => ({ ...o, wallStart: toWall(new Date(o.start), zone), wallEnd: toWall(new Date(o.end), zone) }));
  return html`<div class="week" id="week-calendar" role="grid" aria-label=${t("admin.bookings.week")}>
    <div class="week-hours" aria-hidden="true">
      <div class="week-day-head"></div>
      ${[...Array(24).keys()].map((h) => html`<div class="hour-label" style=${`height:${HOUR_PX}px`}>${pad(h)}:00</div>`)}
    </div>
    ${days.map((day) => {
      const next = addWallDays(day, 1);
      const items = placed.filter((o) => o.wallStart < next && o.wallEnd > day);
      return html`<div class="week-day" role="gridcell" key=${day.getTime()}>
        <div class="week-day-head">${formatWall(day, dayOptions)}</div>
        <div class="week-day-body" style=${`height:${24 * HOUR_PX}px`}>
          ${items.map((o) => {
            const s = Math.max(o.wallStart.getTime(), day.getTime());
            const e = Math.min(o.wallEnd.getTime(), next.getTime());
            const top = ((s - day.getTime()) / 3600_000) * HOUR_PX;
            const height = Math.max(18, ((e - s) / 3600_000) * HOUR_PX);
            const booking = byId.get(o.booking_id);
            const time = formatWall(o.wallStart, timeOptions);
            const own = booking && booking.time_zone !== zone
              ? `${new Intl.DateTimeFormat(currentLanguage(), { ...timeOptions, timeZone: booking.time_zone }).format(new Date(o.start))} ${booking.time_zone}`
              : null;
            return html`<button type="button" class="event" style=${`top:${top}px;height:${Math.max(height, 18)}px`}
              data-booking=${o.booking_id} onClick=${() => onPick(booking)}
              aria-label=${t("admin.bookings.event_label", {
                title: booking?.title || "",
                time: `${time} ${zoneOffset(zone, new Date(o.start))}${own ? `, ${t("tz.booking_time", { time: own })}` : ""}`,
              })}>
              <span class="event-head"><span class="event-time">${time}</span> <span class="event-title">${booking?.title}</span></span>
              ${own ? html`<span class="event-zone" title=${t("tz.booking_time", { time: own })}>${own}</span>` : null}
              <span class="event-room">${roomName(booking?.room_id)}</span>
            </button>`;
          })}
        </div>
      </div>`;
    })}
  </div>`;
}

/** Which zone the booking views show times in: mine (the browser's) or one of the bookings' own zones. */
function ZoneSwitch({ zone, zones, onChange }) {
  const mine = myZone();
  return html`<div class="inline zone-switch">
    <label for="zone-switch">${t("tz.shown_in")}</label>
    <select id="zone-switch" value=${zone} onChange=${(e) => onChange(e.target.value)}>
      <option value=${mine} selected=${zone === mine}>${t("tz.mine", { zone: zoneLabel(mine) })}</option>
      ${zones.filter((z) => z !== mine).map((z) => html`<option value=${z} selected=${zone === z}>${t("tz.booking", { zone: zoneLabel(z) })}</option>`)}
    </select>
  </div>`;
}

export function Bookings({ user, accountId }) {
  const account = accountParam(user, accountId);
  const [rooms] = useLoad(() => api.get(`/rooms${qs({ account_id: account, limit: 500 })}`), [accountId]);
  const [bookings, error, reload] = useLoad(() => api.get(`/bookings${qs({ limit: 500 })}`), [accountId]);
  const [view, setView] = useState("week");
  const [zone, setZoneState] = useState(myZone());
  const [week, setWeek] = useState(() => wallWeekStart(new Date(), myZone()));
  const [creating, setCreating] = useState(false);
  const [inviting, setInviting] = useState(null);
  const [actionError, setActionError] = useState(null);
  const [savedNote, setSavedNote] = useState(null);
  if (!rooms || (!bookings && !error)) return html`<${Loading} />`;
  const roomIds = new Set(rooms.map((r) => r.id));
  const visible = (bookings || []).filter((b) => roomIds.has(b.room_id) && !b.cancelled && b.parent_id === null);
  const roomOf = (b) => rooms.find((r) => r.id === b.room_id);
  const zones = [...new Set(visible.map((b) => b.time_zone))].sort();
  function setZone(next) {
    // The same week, seen on the other zone's calendar.
    // Mid-week in the old zone's wall time is within a day of the same instant: the same week, re-cut.
    setWeek(wallWeekStart(addWallDays(week, 3.5), next));
    setZoneState(next);
  }

  async function cancel(booking) {
    if (!confirm(t("admin.bookings.cancel_confirm", { title: booking.title }))) return;
    try {
      await api.del(`/bookings/${booking.id}`);
      reload();
    } catch (err) {
      setActionError(err);
    }
  }
  async function ics(booking) {
    try {
      await download(`/bookings/${booking.id}/invite.ics`, `booking-${booking.id}.ics`);
    } catch (err) {
      setActionError(err);
    }
  }
  function saved(booking) {
    setCreating(false);
    setSavedNote(t("admin.bookings.saved", { title: booking.title }));
    setInviting(booking);
    reload();
  }
  return html`<section aria-labelledby="bookings-title">
    <div class="section-head">
      <h1 id="bookings-title">${t("admin.nav.bookings")}</h1>
      <div class="inline">
        <div class="segmented" role="group" aria-label=${t("admin.bookings.view")}>
          <button type="button" aria-pressed=${String(view === "week")} id="view-week" onClick=${() => setView("week")}>${t("admin.bookings.week")}</button>
          <button type="button" aria-pressed=${String(view === "list")} id="view-list" onClick=${() => setView("list")}>${t("admin.bookings.list")}</button>
        </div>
        <button type="button" class="primary" id="booking-new" disabled=${rooms.length === 0} onClick=${() => setCreating(true)}>${t("admin.bookings.new")}</button>
      </div>
    </div>
    ${rooms.length === 0 ? html`<p class="notice">${t("admin.bookings.no_rooms")}</p>` : null}
    ${creating ? html`<${BookingForm} rooms=${rooms} user=${user} accountId=${accountId} onSaved=${saved} onCancel=${() => setCreating(false)} />` : null}
    ${savedNote ? html`<p class="success" role="status">${savedNote}</p>` : null}
    ${inviting && roomOf(inviting) ? html`<${Invitation} booking=${inviting} room=${roomOf(inviting)} onClose=${() => setInviting(null)} />` : null}
    <${ErrorBox} error=${error || actionError} />
    ${view === "week"
      ? html`<div class="week-nav">
            <button type="button" onClick=${() => setWeek(addWallDays(week, -7))} aria-label=${t("admin.bookings.prev_week")}>‹</button>
            <button type="button" onClick=${() => setWeek(wallWeekStart(new Date(), zone))}>${t("admin.bookings.this_week")}</button>
            <button type="button" onClick=${() => setWeek(addWallDays(week, 7))} aria-label=${t("admin.bookings.next_week")}>›</button>
            <span class="muted">${formatWall(week, { dateStyle: "long" })}</span>
            <${ZoneSwitch} zone=${zone} zones=${zones} onChange=${setZone} />
          </div>
          <p class="zone-note muted" id="zone-note">${t("tz.note", { zone: zoneLabel(zone, week) })}</p>
          <${WeekCalendar} bookings=${visible} rooms=${rooms} start=${week} zone=${zone} onPick=${setInviting} />`
      : html`<${ZoneSwitch} zone=${zone} zones=${zones} onChange=${setZone} />
        <table class="table" id="bookings-table">
          <thead><tr>
            <th scope="col">${t("admin.bookings.title_field")}</th><th scope="col">${t("admin.bookings.room")}</th>
            <th scope="col">${t("admin.bookings.first")}</th><th scope="col">${t("admin.bookings.time_zone")}</th>
            <th scope="col">${t("admin.bookings.repeat")}</th>
            <th scope="col"><span class="visually-hidden">${t("admin.actions")}</span></th>
          </tr></thead>
          <tbody>
            ${visible.length === 0 ? html`<tr><td colspan="6" class="muted">${t("admin.bookings.none")}</td></tr>` : null}
            ${visible.map((b) => html`<tr key=${b.id} data-booking=${b.id}>
              <td>${b.title}</td>
              <td>${roomOf(b)?.name}</td>
              <td class="first-start">${formatInZone(b.first_start, zone)}</td>
              <td>${b.time_zone}</td>
              <td>${describeRrule(b.rrule)}</td>
              <td class="row-actions">
                <button type="button" class="small ics" onClick=${() => ics(b)} aria-label=${t("admin.bookings.ics_for", { title: b.title })}>${t("admin.bookings.ics")}</button>
                <button type="button" class="small" onClick=${() => setInviting(b)}>${t("admin.invite.title")}</button>
                <button type="button" class="small danger" onClick=${() => cancel(b)}>${t("admin.bookings.cancel")}</button>
              </td>
            </tr>`)}
          </tbody>
        </table>`}
  </section>`;
}

export { errorText };
