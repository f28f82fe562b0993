// The meeting view: layout, toolbar, panels, banners (time left, recording, quality), reactions, overlays.
import { useEffect, useState } from "preact/hooks";
import { Icon, REACTION_NAMES, ReactionIcon } from "../lib/icons.js";
import { t } from "../lib/i18n.js";
import { LanguageSwitch, ToolButton, html, useLanguage } from "../lib/ui.js";
import { MeetingAnnouncements } from "./announcements.js";
import { ChatPanel, DevicesPanel, ParticipantsPanel } from "./panels.js";
import { Layout, RemoteAudio } from "./tiles.js";

// Drawn as SVG (lib/icons.js), not as emoji characters: they must not depend on the viewer's fonts.
export const REACTIONS = REACTION_NAMES;

/** Re-render on any of the client's events. */
function useClient(client, events) {
  const [, setTick] = useState(0);
  useEffect(() => {
    const bump = () => setTick((n) => n + 1);
    for (const e of events) client.addEventListener(e, bump);
    return () => events.forEach((e) => client.removeEventListener(e, bump));
  }, [client]);
}

/** A published video this client has no stream of yet (the SFU sends it once a tile asks, by its size). */
function unsent(p, source) {
  const track = p.tracks.find((x) => x.source === source && x.kind === "video");
  return track ? { trackId: track.track_id, track: null } : null;
}

/** Everyone as the UI shows them: the local participant first, then the others, with their tracks. */
function peopleOf(client, selfName) {
  const tracks = [...client.remoteTracks.values()];
  const self = {
    id: client.self?.id || "self",
    name: selfName,
    role: client.self?.role || "participant",
    local: true,
    hand: Boolean(client.self?.handRaised),
    micMuted: client.muted.mic || !client.local.mic,
    cameraMuted: client.muted.camera,
    camera: client.local.camera ? { track: client.local.camera } : null,
    screen: client.local.screen ? { track: client.local.screen } : null,
  };
  const others = [...client.participants.values()]
    .filter((p) => p.role !== "recorder" && p.role !== "viewer")
    .map((p) => {
      const mine = tracks.filter((e) => e.participantId === p.participant_id && e.kind === "video");
      return {
        id: p.participant_id,
        name: p.display_name,
        role: p.role,
        hand: p.hand_raised,
        micMuted: p.muted.includes("mic") || !p.tracks.some((x) => x.source === "mic"),
        cameraMuted: p.muted.includes("camera"),
        held: p.held || [],
        unmuteAsked: p.unmute_asked || [],
        camera: mine.find((e) => e.source === "camera") || unsent(p, "camera"),
        screen: mine.find((e) => e.source === "screen") || null, // never deferred: it comes with the offer
      };
    });
  return [self, ...others];
}

function TimeLeft({ endsAt }) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  const seconds = Math.max(0, Math.round((new Date(endsAt).getTime() - now) / 1000));
  const text = seconds >= 60
    ? t("banner.time_left_minutes", { minutes: Math.ceil(seconds / 60) })
    : t("banner.time_left_seconds", { seconds });
  return html`<div class="banner warning" role="status" id="time-left"><${Icon} name="timer" /> ${text}</div>`;
}

export function MeetingRoom({ client, selfName, speaker, onLeave }) {
  useLanguage();
  useClient(client, ["participants", "tracks", "active-speaker", "meeting", "lobby-changed", "local-media", "quality", "self", "state", "chat"]);
  const [view, setView] = useState("grid");
  const [panel, setPanel] = useState(null);
  const [warning, setWarning] = useState(null);
  const [floating, setFloating] = useState([]);
  const [notice, setNotice] = useState(null);
  const [unread, setUnread] = useState(0);
  const [reactionsOpen, setReactionsOpen] = useState(false);
  const [speakerId, setSpeakerId] = useState(speaker);
  // PeerConnections the SDK is replacing after a failure ("media" events): the meeting goes on meanwhile.
  const [recovering, setRecovering] = useState(() => new Set());
  // Recording: the consent notice (everyone, also late joiners) and, after a stop, the host's link.
  const [recordingNotice, setRecordingNotice] = useState(false);
  const [recordingLink, setRecordingLink] = useState(null);

  useEffect(() => {
    const onWarning = (e) => setWarning(e.detail);
    const onReaction = (e) => {
      const item = { id: `${Date.now()}-${Math.random()}`, ...e.detail };
      setFloating((list) => [...list, item]);
      setTimeout(() => setFloating((list) => list.filter((x) => x.id !== item.id)), 4000);
    };
    const onMediaRequest = (e) => setNotice(t(`notice.moderator_${e.detail}`));
    const onError = (e) => {
      const code = e.detail.code;
      if (code === "wrong_host_key" || code === "host_key_locked") setNotice(t(`notice.${code}`));
      else setNotice(t("notice.request_failed", { message: e.detail.message }));
    };
    const onAllowed = () => setNotice(t("notice.media_allowed"));
    const onAsked = (e) => setNotice(t("notice.unmute_asked", { name: e.detail.display_name }));
    const onHost = (e) => e.detail.participant_id === client.self?.id && setNotice(t("notice.host_claimed"));
    const onChat = () => setUnread((n) => n + 1);
    const onDeviceError = (e) => setNotice(t(`device.${e.detail.source}_${e.detail.code}`));
    const onMedia = (e) =>
      setRecovering((pcs) => {
        const next = new Set(pcs);
        if (e.detail.state === "reconnecting") next.add(e.detail.pc);
        else next.delete(e.detail.pc);
        return next;
      });
    const onRecording = (e) => {
      setRecordingNotice(e.detail.recording);
      if (!e.detail.recording && client.isModerator && client.meeting?.meeting_id) {
        setRecordingLink(`/admin/recordings?meeting=${encodeURIComponent(client.meeting.meeting_id)}`);
      }
    };
    const onRecordingLink = (e) => setRecordingLink(e.detail.url);
    client.addEventListener("recording", onRecording);
    client.addEventListener("recording-link", onRecordingLink);
    client.addEventListener("media", onMedia);
    client.addEventListener("device-error", onDeviceError);
    client.addEventListener("warning", onWarning);
    client.addEventListener("reaction", onReaction);
    client.addEventListener("media-request", onMediaRequest);
    client.addEventListener("protocol-error", onError);
    client.addEventListener("chat", onChat);
    client.addEventListener("media-allowed", onAllowed);
    client.addEventListener("unmute-asked", onAsked);
    client.addEventListener("host-changed", onHost);
    return () => {
      client.removeEventListener("media-allowed", onAllowed);
      client.removeEventListener("unmute-asked", onAsked);
      client.removeEventListener("host-changed", onHost);
      client.removeEventListener("warning", onWarning);
      client.removeEventListener("reaction", onReaction);
      client.removeEventListener("media-request", onMediaRequest);
      client.removeEventListener("protocol-error", onError);
      client.removeEventListener("chat", onChat);
      client.removeEventListener("device-error", onDeviceError);
      client.removeEventListener("media", onMedia);
      client.removeEventListener("recording", onRecording);
      client.removeEventListener("recording-link", onRecordingLink);
    };
  }, [client]);

  useEffect(() => {
    if (panel === "chat") setUnread(0);
  }, [panel, client.chat.length]);

  useEffect(() => {
    // Keyboard shortcuts (Alt+key so typing in chat is never taken over).
    const onKey = (e) => {
      if (!e.altKey) return;
      const actions = { a: toggleMic, v: toggleCamera, h: toggleHand, c: () => togglePanel("chat"), p: () => togglePanel("people") };
      const action = actions[e.key.toLowerCase()];
      if (action) {
        e.preventDefault();
        action();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  });

  const people = peopleOf(client, selfName);
  const nameOf = (id) => people.find((p) => p.id === id)?.name || "";
  const meeting = client.meeting || {};
  const moderator = client.isModerator;
  const toggleMic = () => client.setMuted("mic", !client.muted.mic);
  // A camera that cannot be reopened stays off; the device-error event shows why.
  const toggleCamera = () => client.setMuted("camera", !client.muted.camera).catch(() => {});
  const toggleHand = () => client.raiseHand(!client.self?.handRaised);
  const togglePanel = (name) => setPanel(panel === name ? null : name);

  async function toggleScreen() {
    if (client.local.screen) client.stopScreenShare();
    else {
      try {
        await client.startScreenShare();
      } catch (err) {
        if (err.name !== "NotAllowedError") setNotice(t("notice.screen_failed"));
      }
    }
  }

  const quality = client.quality?.level;
  const audioTracks = [...client.remoteTracks.values()].filter((e) => e.kind === "audio");
  return html`<div class="meeting ${panel ? "with-panel" : ""}">
    <header class="meeting-header">
      <div class="title">
        <h1>${meeting.room_name || t("meeting.title")}</h1>
        <span class="muted">${t("meeting.number_short", { number: meeting.meeting_number || "" })}</span>
      </div>
      <div class="status">
        ${meeting.recording ? html`<span class="recording" role="status" id="recording-indicator"><span class="dot" aria-hidden="true"></span>${t("meeting.recording")}</span>` : null}
        ${meeting.locked ? html`<span class="pill"><${Icon} name="lock" size="14" /> ${t("meeting.locked")}</span>` : null}
        ${quality
          ? html`<span class=${`quality ${quality}`} role="status" id="quality" title=${t("quality.title")}>
              <span class="bars" aria-hidden="true"><i></i><i></i><i></i></span>${t(`quality.${quality}`)}</span>`
          : null}
        <button type="button" class="small" aria-pressed=${String(view === "speaker")}
          onClick=${() => setView(view === "grid" ? "speaker" : "grid")}>${view === "grid" ? t("view.speaker") : t("view.grid")}</button>
        <${LanguageSwitch} />
      </div>
    </header>
    <div class="banners">
    <${MeetingAnnouncements} client=${client} />
    ${warning ? html`<${TimeLeft} endsAt=${warning.ends_at} />` : null}
    ${recovering.size
      ? html`<div class="banner warning" role="status" id="media-reconnecting">${t("meeting.media_reconnecting")}</div>`
      : null}
    ${recordingNotice && meeting.recording
      ? html`<div class="banner info" role="status" id="recording-notice"><${Icon} name="record" size="16" /> ${t("recording.consent")}
          <button type="button" class="icon-button" aria-label=${t("ui.close")} onClick=${() => setRecordingNotice(false)}><${Icon} name="close" size="16" /></button></div>`
      : null}
    ${recordingLink && !meeting.recording
      ? html`<div class="banner info" role="status" id="recording-link">${t("recording.stopped_notice")}
          <a href=${recordingLink} target="_blank" rel="noopener">${t("recording.open_list")}</a>
          <button type="button" class="icon-button" aria-label=${t("ui.close")} onClick=${() => setRecordingLink(null)}><${Icon} name="close" size="16" /></button></div>`
      : null}
    ${notice ? html`<div class="banner info" role="status">${notice}
      <button type="button" class="icon-button" aria-label=${t("ui.close")} onClick=${() => setNotice(null)}><${Icon} name="close" size="16" /></button></div>` : null}
    ${(client.self?.held || []).map((source) => html`<div class="banner warning" role="status" id=${`held-${source}`} key=${source}>
        ${t(`held.${source}`)}
        ${(client.self?.unmuteAsked || []).includes(source)
          ? html`<span class="pill" id=${`asked-${source}`}>${t("held.asked")}</span>`
          : html`<button type="button" class="small" id=${`ask-unmute-${source}`} onClick=${() => client.askUnmute(source)}>${t("held.ask")}</button>`}
      </div>`)}
    ${moderator
      ? people.flatMap((p) => (p.unmuteAsked || []).map((source) => html`<div class="banner info" role="status"
          key=${`${p.id}-${source}`} data-unmute-request=${p.id}>
          <${Icon} name="hand" size="16" /> ${t(`unmute.asks_${source}`, { name: p.name })}
          <button type="button" class="small primary" aria-label=${t("unmute.allow_name", { name: p.name })}
            onClick=${() => client.moderate({ mic: "unmute", camera: "allow_camera", screen: "allow_screen" }[source], p.id)}>${t("unmute.allow")}</button>
        </div>`))
      : null}
    ${moderator && client.lobby.length && panel !== "people"
      ? html`<div class="banner info" role="status">${t("lobby.waiting_count", { count: client.lobby.length })}
          <button type="button" class="small" onClick=${() => setPanel("people")}>${t("lobby.review")}</button></div>`
      : null}
    </div>
    <main class="stage-area" aria-label=${t("meeting.videos")}>
      <${Layout} people=${people} client=${client} activeSpeaker=${client.activeSpeaker} view=${view} />
      <div class="reactions-overlay" aria-live="polite">
        ${floating.map((r) => html`<div class="floating-reaction" key=${r.id}>
          <${ReactionIcon} name=${r.reaction} size=${28} />
          <span class="who">${r.participant_id === client.self?.id ? t("chat.me") : nameOf(r.participant_id)}</span></div>`)}
      </div>
    </main>
    ${panel === "people" ? html`<${ParticipantsPanel} people=${people} client=${client} lobby=${client.lobby} locked=${meeting.locked} />` : null}
    ${panel === "chat" ? html`<${ChatPanel} client=${client} messages=${client.chat} people=${people} onError=${setNotice} />` : null}
    ${panel === "devices" ? html`<${DevicesPanel} client=${client} speaker=${speakerId} onSpeaker=${setSpeakerId} />` : null}
    <${RemoteAudio} tracks=${audioTracks} speaker=${speakerId} />
    <nav class="toolbar" aria-label=${t("controls.toolbar")}>
      <${ToolButton} id="toggle-mic" icon=${client.muted.mic ? "micOff" : "mic"} pressed=${client.muted.mic} shortcut="Alt+A"
        label=${client.muted.mic ? t("controls.unmute_mic") : t("controls.mute_mic")} onClick=${toggleMic} disabled=${!client.local.mic} />
      <${ToolButton} id="toggle-camera" icon=${client.muted.camera ? "cameraOff" : "camera"} pressed=${client.muted.camera} shortcut="Alt+V"
        label=${client.muted.camera ? t("controls.start_camera") : t("controls.stop_camera")} onClick=${toggleCamera} disabled=${client.devices.camera === null} />
      <${ToolButton} id="toggle-screen" icon="screen" pressed=${Boolean(client.local.screen)}
        label=${client.local.screen ? t("controls.stop_share") : t("controls.share_screen")} onClick=${toggleScreen} />
      <${ToolButton} id="toggle-hand" icon="hand" pressed=${Boolean(client.self?.handRaised)} shortcut="Alt+H"
        label=${client.self?.handRaised ? t("controls.lower_hand") : t("controls.raise_hand")} onClick=${toggleHand} />
      <div class="menu reactions-menu">
        <${ToolButton} id="toggle-reactions" icon="smile" pressed=${reactionsOpen} label=${t("controls.reactions")}
          onClick=${() => setReactionsOpen(!reactionsOpen)} />
        ${reactionsOpen
          ? html`<div class="reaction-picker" role="group" aria-label=${t("controls.reactions")}
              onKeyDown=${(e) => e.key === "Escape" && setReactionsOpen(false)}>
              ${REACTIONS.map((name) => html`<button type="button" class="reaction" data-reaction=${name}
                aria-label=${t(`reaction.${name}`)} title=${t(`reaction.${name}`)}
                onClick=${() => { client.react(name); setReactionsOpen(false); }}><${ReactionIcon} name=${name} size=${26} /></button>`)}
            </div>`
          : null}
      </div>
      <${ToolButton} id="toggle-people" icon="people" pressed=${panel === "people"} shortcut="Alt+P"
        label=${t("controls.participants", { count: people.length })} onClick=${() => togglePanel("people")} />
      <${ToolButton} id="toggle-chat" icon="chat" pressed=${panel === "chat"} shortcut="Alt+C"
        label=${unread ? t("controls.chat_unread", { count: unread }) : t("controls.chat")} onClick=${() => togglePanel("chat")} />
      <${ToolButton} id="toggle-devices" icon="settings" pressed=${panel === "devices"}
        label=${t("controls.devices")} onClick=${() => togglePanel("devices")} />
      ${moderator
        ? html`<${ToolButton} id="toggle-recording" icon="record" pressed=${Boolean(meeting.recording)}
            label=${meeting.recording ? t("recording.stop") : t("recording.start")}
            onClick=${() => (meeting.recording ? client.stopRecording() : client.startRecording())} />`
        : null}
      ${moderator
        ? html`<${ToolButton} id="end-meeting" icon="stop" danger label=${t("moderate.end")}
            onClick=${() => confirm(t("moderate.end_confirm")) && client.moderate("end")} />`
        : null}
      <${ToolButton} id="leave" icon="leave" danger label=${t("controls.leave")} onClick=${onLeave} />
    </nav>
  </div>`;
}
