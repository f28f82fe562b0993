// Wall-clock time in a named IANA time zone, for the booking views: they show every time in one zone and
// say which. A "wall" value is a Date whose UTC fields are the zone's local date and time: arithmetic on it
// (days, hours) is plain and free of the browser's own zone.
import { currentLanguage } from "../lib/i18n.js";

const DAY_MS = 86_400_000;
const partsFormats = new Map();

/** The browser's time zone (Playwright's timezone_id, or the operating system's). */
export function myZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

function partsFormat(zone) {
  let format = partsFormats.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    });
    partsFormats.set(zone, format);
  }
  return format;
}

/** The wall-clock value of the instant `date` in `zone`. */
export function toWall(date, zone) {
  const p = Object.fromEntries(partsFormat(zone).formatToParts(date).map((x) => [x.type, x.value]));
  return new Date(Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour) % 24, Number(p.minute)));
}

/** Monday 00:00 (wall) of the week that contains the instant `date` in `zone`. */
export function wallWeekStart(date, zone) {
  const wall = toWall(date, zone);
  const day = Date.UTC(wall.getUTCFullYear(), wall.getUTCMonth(), wall.getUTCDate());
  return new Date(day - ((new Date(day).getUTCDay() + 6) % 7) * DAY_MS);
}

export function addWallDays(wall, days) {
  return new Date(wall.getTime() + days * DAY_MS);
}

/** Instants that surely cover the wall range [from, to) in any zone (offsets are within ±14 h). */
export function coveringRange(fromWall, toWall_) {
  const pad = 15 * 3_600_000;
  return { from: new Date(fromWall.getTime() - pad), to: new Date(toWall_.getTime() + pad) };
}

/** A wall value formatted as such (its UTC fields), in the UI's language. */
export function formatWall(wall, options) {
  return new Intl.DateTimeFormat(currentLanguage(), { ...options, timeZone: "UTC" }).format(wall);
}

/** The zone's UTC offset at `date`, e.g. "GMT+8" ("UTC" itself for UTC). */
export function zoneOffset(zone, date = new Date()) {
  const parts = new Intl.DateTimeFormat("en-US", { timeZone: zone, timeZoneName: "shortOffset" }).formatToParts(date);
  return parts.find((p) => p.type === "timeZoneName")?.value || zone;
}

/** "Asia/Shanghai (GMT+8)": the zone and its offset, the label the booking views show. */
export function zoneLabel(zone, date = new Date()) {
  return `${zone} (${zoneOffset(zone, date)})`;
}

/** An instant formatted in `zone`, followed by the zone's offset so the reader knows which clock it is. */
export function formatInZone(value, zone, options = { dateStyle: "medium", timeStyle: "short" }) {
  const date = value instanceof Date ? value : new Date(value);
  const text = new Intl.DateTimeFormat(currentLanguage(), { ...options, timeZone: zone }).format(date);
  return `${text} ${zoneOffset(zone, date)}`;
}
