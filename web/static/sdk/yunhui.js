// Yunhui JavaScript SDK: the meeting protocol (docs/protocol.md) and the two RTCPeerConnections of a participant.
// No UI. Documented in docs/sdk.md. Depends only on socket.io-client (import-mapped as "socket.io-client").
import { io } from "socket.io-client";
import { HELD, Publisher, SIMULCAST_LAYERS, Subscriber, parseSections } from "./media.js";

export { SIMULCAST_LAYERS, parseSections };

const STATS_INTERVAL_MS = 2_000;
// Each track's video_size goes out at most this often (see setVideoSize).
const VIDEO_SIZE_INTERVAL_MS = 500;

/** A join that the server refused (wrong passcode, full, locked, ...). `code` is a RefusalCode of the protocol. */
export class JoinError extends Error {
  constructor(code, message) {
    super(message || code);
    this.name = "JoinError";
    this.code = code;
  }
}

/** denied | missing | failed: why getUserMedia could not open a device ("lost": a device went away). */
export function deviceErrorCode(error) {
  if (error?.name === "NotAllowedError" || error?.name === "SecurityError") return "denied";
  if (error?.name === "NotFoundError" || error?.name === "OverconstrainedError") return "missing";
  return "failed";
}

/** The getUserMedia constraints that reopen the device `track` captures from, with the same settings. */
function constraintsOf(track) {
  const constraints = { ...track.getConstraints() };
  const deviceId = track.getSettings().deviceId;
  if (deviceId) constraints.deviceId = { exact: deviceId };
  return constraints;
}

/** good | fair | poor from a round-trip time (seconds) and a packet-loss fraction. */
export function qualityLevel(rtt, loss) {
  if ((rtt ?? 0) < 0.3 && loss < 0.02) return "good";
  if ((rtt ?? 0) < 0.6 && loss < 0.08) return "fair";
  return "poor";
}

/**
 * One participant's connection to a meeting.
 *
 * Events (CustomEvent, payload in `detail`): state, joined, lobby, refused, participants, self, tracks,
 * local-media, active-speaker, meeting, lobby-changed, warning, ended, left, chat, reaction, media-request,
 * media-allowed, unmute-asked,
 * media, quality, protocol-error, device-error. See docs/sdk.md.
 */
/** The rejoin key a meeting gave this browser (docs/protocol.md, "Who a removal keeps out"). */
function rejoinKey(slot) {
  try {
    return localStorage.getItem(`yunhui.rejoin.${slot}`);
  } catch {
    return null;
  }
}

function rememberRejoinKey(slot, key) {
  try {
    localStorage.setItem(`yunhui.rejoin.${slot}`, key);
  } catch {
    // No storage (a private window may refuse it): a rejoin after a removal of someone on this link waits in
    // the lobby, like any newcomer.
  }
}

/**
 * This browser's random id for passcode joins (kept in localStorage). Sent for older servers; it is not an
 * identity (bans use the rejoin key the meeting signs).
 * Without storage (private windows may refuse it) every join gets a new one.
 */
function deviceId() {
  const key = "yunhui.deviceId";
  try {
    let id = localStorage.getItem(key);
    if (!id || !/^[A-Za-z0-9_-]{16,64}$/.test(id)) {
      id = randomId();
      localStorage.setItem(key, id);
    }
    return id;
  } catch {
    return randomId();
  }
}

function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(18));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_");
}

export class MeetingClient extends EventTarget {
  /**
   * @param {object} [options]
   * @param {string} [options.url] server origin (default: the page's)
   * @param {string} [options.path] Socket.IO path (default "/socket.io")
   * @param {RTCIceServer[]} [options.iceServers] STUN/TURN servers (default none)
   * @param {boolean} [options.simulcast] publish the camera in three layers (default true)
   * @param {string} [options.videoCodec] "h264": publish the camera in H.264 (Constrained Baseline, mode 1)
   *   where the browser can, so SIP room terminals in the meeting get it forwarded (docs/sip.md); default: the
   *   browser's own preference (VP8)
   */
  constructor(options = {}) {
    super();
    this.url = options.url || location.origin;
    this.path = options.path || "/socket.io";
    this._homePath = this.path; // a join that followed wrong_worker to /w/{k}/ starts from here again
    this.iceServers = options.iceServers || [];
    this.simulcast = options.simulcast !== false;
    this.videoCodec = options.videoCodec === "h264" ? "h264" : null;
    this.state = "idle"; // idle | connecting | lobby | joined | reconnecting | ended | left
    this.self = null; // { id, role }
    this.meeting = null;
    this.participants = new Map(); // participant id -> ParticipantInfo (others only)
    this.lobby = [];
    this.chat = [];
    this.activeSpeaker = null;
    this.uploadUrl = null;
    this.remoteTracks = new Map(); // subscriber mid -> { mid, participantId, trackId, kind, source, track, stream }
    this.local = { mic: null, camera: null, screen: null }; // MediaStreamTracks
    this.muted = { mic: false, camera: false };
    // The device each source captures from ("" when the browser does not say); kept while the camera is off.
    this.devices = { mic: null, camera: null };
    this._constraints = { mic: null, camera: null }; // how to reopen each source's device
    this._devicesChain = Promise.resolve(); // camera on/off and device switches, one at a time
    this.quality = null;
    this.endReason = null;
    this._socket = null;
    this._credentials = null;
    this._reconnectToken = null;
    this._publisher = null;
    this._subscriber = null;
    this._sentSizes = new Map();
    this._pendingSizes = new Map(); // trackId -> { size }: a size to send when its interval ends
    this._recovering = new Set(); // "publish" | "subscribe": restarted on a new PeerConnection, not connected yet
    this._statsTimer = null;
    this._lastStats = null;
    this._closing = false;
  }

  get publishPc() {
    return this._publisher?.pc || null;
  }

  get subscribePc() {
    return this._subscriber?.pc || null;
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this._emit("state", state);
  }

  // --- joining and leaving ---------------------------------------------------------------------------------

  /**
   * Join a meeting. `credentials` is one of
   * { meetingNumber, passcode, displayName } | { token, displayName } | { meetingNumber, accessToken, displayName }.
   * Resolves with "joined" or "lobby"; rejects with JoinError when the server refuses.
   */
  join(credentials) {
    if (this._socket) throw new Error("already joined; call leave() first");
    this._credentials = credentials;
    this._closing = false;
    this._followedWorker = false;
    this.path = this._homePath;
    this._setState("connecting");
    const outcome = new Promise((resolve, reject) => {
      this._settle = { resolve, reject };
    });
    this._connect();
    return outcome;
  }

  _connect() {
    const socket = io(this.url, {
      path: this.path,
      transports: ["websocket"],
      reconnectionDelay: 500,
      reconnectionDelayMax: 3000,
      auth: (cb) => cb(this._auth()),
    });
    this._socket = socket;
    socket.on("connect_error", (err) => this._onConnectError(err));
    socket.on("disconnect", (reason) => this._onDisconnect(reason));
    const handlers = {
      joined: (d) => this._onJoined(d),
      lobby_waiting: (d) => this._onLobby(d),
      lobby_rejected: (d) => this._finish("ended", { reason: "rejected", code: d.code, message: d.message }),
      lobby_changed: (d) => {
        this.lobby = d.waiting;
        this._emit("lobby-changed", this.lobby);
      },
      participant_joined: (d) => this._upsert(d.participant),
      participant_changed: (d) => this._upsert(d.participant),
      participant_left: (d) => {
        this.participants.delete(d.participant_id);
        this._emit("participants", this.participants);
      },
      active_speaker: (d) => {
        this.activeSpeaker = d.participant_id;
        this._emit("active-speaker", this.activeSpeaker);
      },
      meeting_changed: (d) => {
        const wasRecording = Boolean(this.meeting?.recording);
        this.meeting = d.meeting;
        this._emit("meeting", this.meeting);
        if (wasRecording !== Boolean(d.meeting.recording)) this._emit("recording", { recording: d.meeting.recording });
      },
      meeting_warning: (d) => this._emit("warning", d),
      // A platform notice (a maintenance window ahead): shown as a banner over the meeting.
      announcement: (d) => this._emit("announcement", d),
      // Roles themselves change through the participant_changed that follows.
      host_changed: (d) => this._emit("host-changed", d),
      meeting_ended: (d) => this._finish("ended", { reason: d.reason }),
      // The meeting goes on in another worker (docs/protocol.md): rejoin there, without the user doing anything.
      meeting_moved: (d) => this._onMoved(d),
      // reason "media_failed": our media stayed dead past the server's timeout (not a moderator).
      removed: (d) =>
        this._finish("ended", { reason: d.reason === "media_failed" ? "media_failed" : "removed", leaveReason: d.reason }),
      publish_answer: (d) => this._publisher?.answered(d.sdp),
      subscribe_offer: (d) => this._onSubscribeOffer(d),
      media_request: (d) => this._onMediaRequest(d.source),
      // A moderator released its hold on our source: we may unmute (we stay muted until we do).
      media_allowed: (d) => this._emit("media-allowed", d.source),
      // To moderators: someone asks to have a hold released (also in its ParticipantInfo.unmute_asked).
      unmute_asked: (d) => this._emit("unmute-asked", d),
      media_failed: (d) => this._onMedia(d.pc, "failed", true),
      // To moderators when recording stops: the watch page, which plays it once rendered (no sign-in).
      recording_link: (d) => this._emit("recording-link", { url: d.url }),
      publish_layers: (d) => this._publisher?.setLayers(d.mid, d.rids).catch(() => {}),
      chat: (d) => {
        this.chat.push(d.entry);
        this._emit("chat", d.entry);
      },
      reaction: (d) => this._emit("reaction", d),
      error: (d) => this._emit("protocol-error", d),
    };
    for (const [event, handler] of Object.entries(handlers)) socket.on(event, handler);
  }

  /** The meeting lives in another worker process (docs/protocol.md, wrong_worker): connect there, once. */
  _followWorker(worker) {
    if (this._followedWorker || !/^[A-Za-z0-9_-]{1,64}$/.test(worker)) return false;
    this._followedWorker = true;
    this._socket.removeAllListeners();
    this._socket.close();
    this._socket = null;
    this.path = `/w/${worker}/socket.io`;
    this._connect();
    return true;
  }

  /** meeting_moved: leave this worker and join the same meeting again where it went (or where locating
   * it says: the home path, following wrong_worker). The seat here is gone, so the join is a fresh one. */
  _onMoved(d) {
    const worker = typeof d.worker === "string" && /^[A-Za-z0-9_-]{1,64}$/.test(d.worker) ? d.worker : null;
    const socket = this._socket;
    this._socket = null;
    if (socket) {
      socket.removeAllListeners();
      socket.disconnect();
    }
    this._closePeerConnections();
    this._stopStats();
    this._reconnectToken = null;
    this._followedWorker = worker !== null; // a wrong_worker answer from there is followed only when not sent there
    this.path = worker ? `/w/${worker}/socket.io` : this._homePath;
    this._setState("reconnecting");
    this._emit("moved", { worker });
    this._connect();
  }

  _auth() {
    if (this._reconnectToken) return { reconnect_token: this._reconnectToken };
    const c = this._credentials || {};
    const name = c.displayName || null;
    if (c.accessToken) return { meeting_number: c.meetingNumber, access_token: c.accessToken, display_name: name };
    const key = rejoinKey(this._rejoinSlot());
    const rejoin = key ? { rejoin_key: key } : {};
    if (c.token) return { token: c.token, display_name: name, ...rejoin };
    const guest = { meeting_number: c.meetingNumber, passcode: c.passcode || "", display_name: name };
    return { ...guest, device_id: deviceId(), ...rejoin };
  }

  /** Where this meeting's rejoin key is kept: per join token, or per meeting number for passcode joins. */
  _rejoinSlot() {
    const c = this._credentials || {};
    return c.token ? `t.${c.token.slice(-24)}` : `m.${c.meetingNumber}`;
  }

  _onConnectError(err) {
    const refused = err && (err.data !== undefined || err.type !== "TransportError");
    if (!refused) return; // the server is unreachable: socket.io keeps retrying
    const data = err.data && typeof err.data === "object" ? err.data : {};
    const code = data.code || (typeof err.data === "string" ? err.data : err.message);
    const message = data.message || err.message;
    if (code === "wrong_worker" && typeof data.worker === "string" && this._followWorker(data.worker)) return;
    if (this._reconnectToken && this.state === "reconnecting") {
      // The seat expired during the outage: join afresh with the original credentials.
      this._reconnectToken = null;
      this._socket.connect();
      return;
    }
    const error = new JoinError(code, message);
    this._teardown();
    this._setState("idle");
    this._emit("refused", error);
    this._settle?.reject(error);
    this._settle = null;
  }

  _onDisconnect(reason) {
    if (this._closing || this.state === "ended" || this.state === "left") return;
    this._setState("reconnecting");
    this._closePeerConnections();
    // After "io server disconnect" socket.io does not retry on its own; a meeting end or removal would have
    // arrived first, so anything else is a dropped connection and we retry.
    if (reason === "io server disconnect") setTimeout(() => this._socket?.connect(), 500);
  }

  _onLobby(d) {
    this._setState("lobby");
    this._emit("lobby", d);
    this._settle?.resolve("lobby");
    this._settle = null;
  }

  _onJoined(d) {
    this.self = { id: d.participant_id, role: d.role };
    this._reconnectToken = d.reconnect_token;
    this.meeting = d.meeting;
    this.participants = new Map(d.participants.filter((p) => p.participant_id !== d.participant_id).map((p) => [p.participant_id, p]));
    this.activeSpeaker = d.active_speaker;
    this.chat = [...d.chat];
    this.lobby = d.lobby;
    this.uploadUrl = d.upload_url;
    // The server's STUN/TURN servers (a TURN credential per participant, time-limited) after the app's own.
    this._joinedIceServers = (d.ice_servers || []).map(({ urls, username, credential }) =>
      username ? { urls, username, credential } : { urls });
    if (d.rejoin_key) rememberRejoinKey(this._rejoinSlot(), d.rejoin_key);
    const own = d.participants.find((p) => p.participant_id === d.participant_id);
    if (own) this._ownState(own);
    this._closePeerConnections();
    this._openPeerConnections();
    this._setState("joined");
    this._emit("joined", d);
    this._emit("participants", this.participants);
    this._emit("meeting", this.meeting);
    // A late joiner of a meeting being recorded is told at once (the UI shows the consent notice).
    if (d.meeting.recording) this._emit("recording", { recording: true });
    this._emit("lobby-changed", this.lobby);
    this._startStats();
    this._send("subscribe", {}); // offers follow now and whenever the tracks change
    this._publish();
    for (const source of ["mic", "camera"]) {
      if (this.muted[source]) this._send("media_state", { source, muted: true });
    }
    this._settle?.resolve("joined");
    this._settle = null;
  }

  _upsert(info) {
    if (this.self && info.participant_id === this.self.id) {
      this._ownState(info);
      this._emit("self", this.self);
      return;
    }
    this.participants.set(info.participant_id, info);
    this._subscriber?.relabel(this.participants);
    this._emit("participants", this.participants);
  }

  _ownState(info) {
    this.self.role = info.role;
    this.self.handRaised = info.hand_raised;
    // Sources a moderator holds (hard mute): only a moderator's release lets them through the SFU again.
    this.self.held = info.held || [];
    this.self.unmuteAsked = info.unmute_asked || [];
  }

  _finish(state, detail) {
    this.endReason = detail;
    this._teardown();
    this._setState(state);
    this._emit(state === "ended" ? "ended" : "left", detail);
    this._settle?.resolve(state);
    this._settle = null;
  }

  /** Leave the meeting and release the connection (the local tracks stay; stop them yourself). */
  leave() {
    if (!this._socket) return;
    this._send("leave", {});
    this._finish("left", { reason: "left" });
  }

  _teardown() {
    this._closing = true;
    this._stopStats();
    this._closePeerConnections();
    const socket = this._socket;
    this._socket = null;
    if (socket) {
      socket.removeAllListeners();
      socket.disconnect();
    }
  }

  _openPeerConnections() {
    const send = (event, data) => this._send(event, data);
    const iceServers = [...this.iceServers, ...(this._joinedIceServers || [])];
    this._publisher = new Publisher({
      iceServers,
      simulcast: this.simulcast,
      videoCodec: this.videoCodec,
      send,
      onMedia: (state) => this._onMedia("publish", state, false),
    });
    this._subscriber = new Subscriber({
      iceServers,
      send,
      onMedia: (state) => this._onMedia("subscribe", state, false),
      onChange: (tracks) => {
        this.remoteTracks = tracks;
        // A renegotiation may rebind tracks in the SFU: let every tile state its size again.
        this._sentSizes.clear();
        this._emit("tracks", tracks);
      },
    });
  }

  /**
   * A PeerConnection ("publish" | "subscribe") failed — our own RTCPeerConnection said so, or the server
   * (media_failed) — or connected again. A failed one is replaced by a new one without leaving the meeting
   * (the server keeps our seat for media_failed_timeout_seconds). Emits "media" {pc, state: "reconnecting" |
   * "connected"}.
   */
  _onMedia(pc, state, fromServer) {
    if (state === "connected") {
      if (this._recovering.delete(pc)) this._emit("media", { pc, state: "connected" });
      return;
    }
    if (this.state !== "joined") return; // a reconnect replaces both connections anyway
    // The server's news may be about the connection we already replaced; ours is always about the current one.
    if (fromServer && this._recovering.has(pc)) return;
    const target = pc === "publish" ? this._publisher : this._subscriber;
    if (!target) return;
    this._recovering.add(pc);
    this._emit("media", { pc, state: "reconnecting" });
    if (pc === "publish") {
      target.restart().catch((err) => {
        if (target === this._publisher && this.state === "joined") {
          this._emit("protocol-error", { code: "negotiation_failed", message: String(err), event: "restart_media" });
        }
      });
    } else {
      this._sentSizes.clear();
      target.restart();
    }
  }

  _closePeerConnections() {
    this._recovering.clear();
    this._publisher?.close();
    this._subscriber?.close();
    this._publisher = this._subscriber = null;
    this._sentSizes.clear();
    if (this.remoteTracks.size) {
      this.remoteTracks = new Map();
      this._emit("tracks", this.remoteTracks);
    }
  }

  _send(event, data) {
    this._socket?.emit(event, data);
  }

  // --- publishing -------------------------------------------------------------------------------------

  /**
   * Set the microphone and camera tracks to publish (null: none; omitted: unchanged); renegotiates when joined.
   * A camera track given while the camera is muted is stopped at once (its device is remembered).
   */
  setLocalMedia(tracks = {}) {
    for (const source of ["mic", "camera"]) {
      const track = tracks[source];
      if (track === undefined || (track && track === this.local[source])) continue;
      this.local[source] = track;
      if (track) this._watchDevice(source, track);
      this.devices[source] = track ? track.getSettings().deviceId || "" : null;
      this._constraints[source] = track ? constraintsOf(track) : null;
    }
    if (this.local.mic) this.local.mic.enabled = !this.muted.mic;
    if (this.muted.camera) this._releaseCamera();
    this._emit("local-media", this.local);
    if (this.state === "joined") this._publish();
  }

  /**
   * Mute or unmute the microphone ("mic") or the camera ("camera"). The microphone keeps its device and only
   * stops sending (instant: its sender's track is swapped out, nothing is renegotiated). The camera is
   * released (its light goes off) and reopened on the same device when turned on again; if that fails it
   * stays off, a device-error event fires and the promise rejects.
   */
  setMuted(source, muted) {
    if (source !== "camera") {
      this.muted[source] = muted;
      if (this.local[source]) this.local[source].enabled = !muted;
      if (this.state === "joined") this._send("media_state", { source, muted });
      this._emit("local-media", this.local);
      // Swapping the sender's track to and from none needs no renegotiation (media.js, HELD).
      return this.state === "joined" ? this._publish() : Promise.resolve();
    }
    return this._queue(async () => {
      if (!muted && !this.local.camera && this._constraints.camera) {
        this.local.camera = this._watchDevice("camera", await this._open("camera", this._constraints.camera));
      }
      this.muted.camera = muted;
      if (muted) this._releaseCamera();
      if (this.state === "joined") this._send("media_state", { source, muted });
      this._emit("local-media", this.local);
      await this._publish();
    });
  }

  /**
   * Capture `source` ("mic" | "camera") from another device (a deviceId of enumerateDevices) and send it in
   * place of the current track, without renegotiating. While the camera is off the choice is only remembered.
   * Resolves with the new track (null when only remembered); on failure the current track stays, a
   * device-error event fires and the promise rejects.
   */
  switchDevice(source, deviceId) {
    if (source !== "mic" && source !== "camera") return Promise.reject(new Error(`unknown source ${source}`));
    return this._queue(async () => {
      const constraints = { ...(this._constraints[source] || {}), deviceId: { exact: deviceId } };
      if (source === "camera" && this.muted.camera && !this.local.camera) {
        this._constraints.camera = constraints;
        this.devices.camera = deviceId;
        this._emit("local-media", this.local);
        return null;
      }
      const track = this._watchDevice(source, await this._open(source, constraints));
      const old = this.local[source];
      this.local[source] = track;
      this.devices[source] = track.getSettings().deviceId || deviceId;
      this._constraints[source] = constraintsOf(track);
      if (source === "mic") track.enabled = !this.muted.mic;
      this._emit("local-media", this.local);
      await this._publish();
      if (old && old !== track) old.stop();
      return track;
    });
  }

  /** The RTCRtpSender that publishes `source` ("mic" | "camera" | "screen"), or null. */
  sender(source) {
    return this._publisher?.sender(source) || null;
  }

  /** Run device operations one at a time, in call order (a failed one does not stop the next). */
  _queue(operation) {
    const run = this._devicesChain.then(operation);
    this._devicesChain = run.catch(() => {});
    return run;
  }

  async _open(source, constraints) {
    try {
      const request = source === "mic" ? { audio: constraints } : { video: constraints };
      const stream = await navigator.mediaDevices.getUserMedia(request);
      return stream.getTracks()[0];
    } catch (error) {
      this._emit("device-error", { source, code: deviceErrorCode(error), error });
      throw error;
    }
  }

  /**
   * A device that goes away (unplugged, taken by the system) ends its track: mute that source, tell the
   * others, and say so with a device-error event (code "lost"). Our own stop() does not fire "ended".
   */
  _watchDevice(source, track) {
    track.addEventListener("ended", () => {
      if (this.local[source] !== track) return;
      this._emit("device-error", { source, code: "lost", error: new Error(`${source} disconnected`) });
      this.setMuted(source, true).catch(() => {});
    });
    return track;
  }

  /** Stop the camera (its light goes off); `devices` and the constraints remember it for turning it back on. */
  _releaseCamera() {
    const track = this.local.camera;
    if (!track) return;
    this.local.camera = null;
    track.stop();
  }

  /**
   * What the Publisher sends: the camera stays published (HELD) while it is off, so turning it on is instant.
   * A muted microphone is HELD too: the sender has no track, so the browser sends no packets at all (with
   * track.enabled = false it would send 50 packets a second of silence, which the SFU would have to drop).
   */
  _wanted() {
    const heldCamera = this.muted.camera && this._constraints.camera ? HELD : null;
    const mic = this.local.mic && this.muted.mic ? HELD : this.local.mic;
    return { mic, camera: this.local.camera || heldCamera, screen: this.local.screen };
  }

  /** Share a screen: `track` from getDisplayMedia (asked for here when omitted). */
  async startScreenShare(track) {
    if (!track) {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
      track = stream.getVideoTracks()[0];
    }
    track.contentHint = "detail";
    track.addEventListener("ended", () => this.stopScreenShare());
    this.local.screen = track;
    this._emit("local-media", this.local);
    if (this.state === "joined") this._publish();
    return track;
  }

  stopScreenShare() {
    const track = this.local.screen;
    if (!track) return;
    this.local.screen = null;
    track.stop();
    this._emit("local-media", this.local);
    if (this.state === "joined") this._publish();
  }

  /** Resolves once the Publisher sends the current tracks (never rejects: failures are protocol-error events). */
  _publish() {
    const publisher = this._publisher;
    if (!publisher) return Promise.resolve();
    return publisher.update(this._wanted()).catch((err) => {
      // A negotiation cut short by a dropped connection is redone after the reconnect; report real failures.
      if (publisher === this._publisher && this.state === "joined") {
        this._emit("protocol-error", { code: "negotiation_failed", message: String(err), event: "publish_offer" });
      }
    });
  }

  _onMediaRequest(source) {
    // A moderator stopped our `source`; the SFU already stopped forwarding it.
    if (source === "screen") {
      this.stopScreenShare();
      this._emit("media-request", source);
    } else this.setMuted(source, true).finally(() => this._emit("media-request", source)).catch(() => {});
  }

  // --- subscribing ------------------------------------------------------------------------------------

  async _onSubscribeOffer(offer) {
    const subscriber = this._subscriber;
    if (!subscriber) return;
    try {
      await subscriber.offered(offer, this.participants);
    } catch (err) {
      if (subscriber === this._subscriber) {
        this._emit("protocol-error", { code: "negotiation_failed", message: String(err), event: "subscribe_answer" });
      }
    }
  }

  /** Tell the SFU how large a video is shown so it forwards the simulcast layer that fits.
   * At most one video_size per track every VIDEO_SIZE_INTERVAL_MS (the server rate-limits the event, and a
   * window being resized reports every frame): the first at once, the latest size at the interval's end. */
  setVideoSize(trackId, width, height) {
    if (!trackId || this.state !== "joined") return;
    const w = Math.max(0, Math.round(width));
    const h = Math.max(0, Math.round(height));
    const pending = this._pendingSizes.get(trackId);
    if (pending) {
      pending.size = [w, h];
      return;
    }
    this._sendVideoSize(trackId, w, h);
    const entry = { size: null };
    this._pendingSizes.set(trackId, entry);
    setTimeout(() => {
      this._pendingSizes.delete(trackId);
      if (entry.size && this.state === "joined") this.setVideoSize(trackId, ...entry.size);
    }, VIDEO_SIZE_INTERVAL_MS);
  }

  _sendVideoSize(trackId, w, h) {
    const key = `${w}x${h}`;
    if (this._sentSizes.get(trackId) === key) return;
    this._sentSizes.set(trackId, key);
    this._send("video_size", { track_id: trackId, width: w, height: h });
  }

  // --- meeting actions ----------------------------------------------------------------------------------

  /** Send a chat message to everyone, or privately to one participant. */
  sendChat(text, to = null) {
    this._send("chat_send", { text, to });
  }

  raiseHand(raised) {
    this._send("hand", { raised });
  }

  /** thumbs_up | clap | heart | laugh | surprised | party */
  react(reaction) {
    this._send("reaction", { reaction });
  }

  /** Ask the moderators to release their hold on `source` (mic, camera, screen). */
  askUnmute(source = "mic") {
    this._send("ask_unmute", { source });
  }

  /** Become host with the room's host key; a wrong key comes back as a protocol-error (wrong_host_key). */
  claimHost(hostKey) {
    this._send("claim_host", { host_key: String(hostKey).trim() });
  }

  /** Start recording the meeting (host and co-hosts). Everyone gets a `recording` event; a refusal comes back
   * as a protocol-error (not_allowed, bad_state, recording_failed). */
  startRecording() {
    this._send("start_recording", {});
  }

  /** Stop recording; the server finalises the files and renders the composite afterwards. */
  stopRecording() {
    this._send("stop_recording", {});
  }

  /** A moderator action: mute, mute_all, stop_camera, stop_screen, unmute, allow_camera, allow_screen, remove,
   * lock, unlock, admit, reject, end, make_cohost, revoke_cohost. */
  moderate(action, participantId = null) {
    this._send("moderate", { action, participant_id: participantId });
  }

  /** Upload a file into the meeting; it is announced in the public chat. Resolves with the server's reply. */
  async uploadFile(file) {
    if (!this.uploadUrl) throw new Error("uploads are not allowed");
    const form = new FormData();
    form.append("file", file, file.name);
    const response = await fetch(new URL(this.uploadUrl, this.url), { method: "POST", body: form });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error?.message || response.statusText);
    return body;
  }

  get isModerator() {
    return this.self?.role === "host" || this.self?.role === "cohost";
  }

  // --- statistics -------------------------------------------------------------------------------------

  _startStats() {
    this._stopStats();
    this._statsTimer = setInterval(() => this._sampleStats().catch(() => {}), STATS_INTERVAL_MS);
  }

  _stopStats() {
    clearInterval(this._statsTimer);
    this._statsTimer = null;
    this._lastStats = null;
  }

  async _sampleStats() {
    let rtt = null;
    let lost = 0;
    let received = 0;
    for (const pc of [this.publishPc, this.subscribePc]) {
      if (!pc) continue;
      const report = await pc.getStats();
      report.forEach((s) => {
        if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) {
          rtt = Math.max(rtt ?? 0, s.currentRoundTripTime);
        }
        if (s.type === "inbound-rtp") {
          lost += s.packetsLost || 0;
          received += s.packetsReceived || 0;
        }
        if (s.type === "remote-inbound-rtp" && s.roundTripTime !== undefined) rtt = Math.max(rtt ?? 0, s.roundTripTime);
      });
    }
    const previous = this._lastStats || { lost: 0, received: 0 };
    this._lastStats = { lost, received };
    const dLost = Math.max(0, lost - previous.lost);
    const dReceived = Math.max(0, received - previous.received);
    const loss = dLost + dReceived > 0 ? dLost / (dLost + dReceived) : 0;
    if (rtt === null && dReceived === 0) return;
    this.quality = { level: qualityLevel(rtt, loss), rtt, loss };
    this._emit("quality", this.quality);
  }
}
