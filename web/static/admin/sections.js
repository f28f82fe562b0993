// The admin UI's sections, one line each: the navigation and the router are built from this list.
// group: the navigation groups them (meetings, sites, billing, operations); platform: only the platform
// admin sees it (an account admin's user has account_id set).
import { Audit } from "./audit.js";
import { Availability } from "./availability.js";
import { Bookings } from "./bookings.js";
import { Channels } from "./channels.js";
import { Billing } from "./contracts.js";
import { Incidents } from "./incidents.js";
import { Live } from "./live.js";
import { LiveVideos } from "./live_videos.js";
import { Maintenance } from "./maintenance.js";
import { Recordings } from "./recordings.js";
import { Reports } from "./reports.js";
import { Rooms } from "./rooms.js";
import { Sites } from "./sites.js";
import { Sms } from "./sms.js";
import { Webhooks } from "./webhooks.js";

export const SECTIONS = [
  { name: "rooms", group: "meetings", view: Rooms },
  { name: "bookings", group: "meetings", view: Bookings },
  { name: "live", group: "meetings", view: Live },
  { name: "channels", group: "meetings", view: Channels },
  { name: "livevideos", group: "meetings", view: LiveVideos },
  { name: "recordings", group: "meetings", view: Recordings },
  { name: "sites", group: "sites", view: Sites },
  { name: "reports", group: "operations", view: Reports },
  { name: "sms", group: "operations", view: Sms },
  { name: "webhooks", group: "operations", view: Webhooks },
  { name: "audit", group: "operations", view: Audit },
  { name: "availability", group: "operations", view: Availability },
  { name: "incidents", group: "operations", view: Incidents },
  { name: "maintenance", group: "operations", platform: true, view: Maintenance },
  { name: "billing", group: "billing", view: Billing },
];
