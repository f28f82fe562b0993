// The maintenance banner shared by the admin UI and the meeting client: the announcements of
// GET /api/v1/announcements (platform-wide ones without sign-in) plus any the meeting pushes live.
import { useEffect, useState } from "preact/hooks";
import { currentLanguage, formatDateTime, t } from "./i18n.js";
import { Icon } from "./icons.js";
import { html } from "./ui.js";

const REFRESH_MS = 5 * 60 * 1000;

function localized(texts) {
  return texts?.[currentLanguage()] || texts?.en || texts?.["zh-CN"] || "";
}

/** Fetch the announcements now and every few minutes; `headers` carries the admin's bearer token. */
export function useAnnouncements(headers) {
  const [items, setItems] = useState([]);
  useEffect(() => {
    let cancelled = false;
    const load = () =>
      fetch("/api/v1/announcements", { headers: headers || {} })
        .then((r) => (r.ok ? r.json() : []))
        .then((list) => !cancelled && setItems(list))
        .catch(() => {});
    load();
    const timer = setInterval(load, REFRESH_MS);
    return () => {
      cancelled = true;
      clearInterval(timer);
    };
  }, []);
  return [items, setItems];
}

/** Merge a pushed announcement (the meeting's `announcement` event) into the list, by id. */
export function mergeAnnouncement(list, item) {
  const rest = list.filter((a) => a.id !== item.id);
  return [...rest, { active: false, ...item }].sort((a, b) => String(a.starts_at).localeCompare(String(b.starts_at)));
}

/** One banner per announcement; each can be dismissed for this page view. */
export function AnnouncementBanners({ items }) {
  const [dismissed, setDismissed] = useState(() => new Set());
  const now = Date.now();
  const shown = items.filter((a) => !dismissed.has(a.id) && new Date(a.ends_at).getTime() > now);
  return shown.map((a) => {
    const key = a.active || new Date(a.starts_at).getTime() <= now ? "announce.active" : "announce.planned";
    return html`<div class="banner warning announcement" role="status" key=${a.id} data-announcement=${a.id}>
      <strong>${t(key)}</strong>
      ${" "}${localized(a.title)} · ${t("announce.window", { starts: formatDateTime(a.starts_at), ends: formatDateTime(a.ends_at) })}
      ${localized(a.text) ? html`<span class="announcement-text"> — ${localized(a.text)}</span>` : null}
      <button type="button" class="icon-button" aria-label=${t("announce.dismiss")}
        onClick=${() => setDismissed(new Set([...dismissed, a.id]))}><${Icon} name="close" size="16" /></button>
    </div>`;
  });
}
