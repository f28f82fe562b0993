// Maintenance notices over the meeting: those announced before it started (GET /api/v1/announcements) and
// those the server pushes to the live meeting (the `announcement` event, at T−60 and T−10 min).
import { useEffect } from "preact/hooks";
import { AnnouncementBanners, mergeAnnouncement, useAnnouncements } from "../lib/announcements.js";
import { html } from "../lib/ui.js";

export function MeetingAnnouncements({ client }) {
  const [items, setItems] = useAnnouncements();
  useEffect(() => {
    const onAnnouncement = (e) => setItems((list) => mergeAnnouncement(list, e.detail));
    client.addEventListener("announcement", onAnnouncement);
    return () => client.removeEventListener("announcement", onAnnouncement);
  }, [client]);
  return html`<${AnnouncementBanners} items=${items} />`;
}
