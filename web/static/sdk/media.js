// The two RTCPeerConnections of a participant: Publisher (the client offers) and Subscriber (the server offers).
// Part of the Yunhui JavaScript SDK (docs/sdk.md); no UI.

/** Simulcast layers of the camera: quarter, half and full resolution (the SFU picks one per subscriber). */
export const SIMULCAST_LAYERS = [
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

// A screen share in two layers: the SFU's allocator forwards the half-size one to subscribers whose downlink
// cannot carry the full one (and pauses a layer nobody watches), as it does with the camera's three.
export const SCREEN_LAYERS = [
  { rid: "q", scaleResolutionDownBy: 2, maxBitrate: 300_000 },
  { rid: "f", scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

const ANSWER_TIMEOUT_MS = 15_000;
/** A connection "disconnected" this long is treated as failed (browsers often recover from a short one). */
export const DISCONNECTED_GRACE_MS = 5_000;

/**
 * In `Publisher.update`: keep the source's m-section published but send nothing (the camera while it is off).
 * Going from a track to HELD and back only swaps the sender's track: no renegotiation.
 */
export const HELD = "held";

const KIND = { mic: "audio", camera: "video", screen: "video" };

/** The m-sections of an SDP: { mid, kind, direction, streamId }. */
export function parseSections(sdp) {
  const sections = [];
  let current = null;
  for (const raw of sdp.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith("m=")) {
      current = { kind: line.slice(2).split(" ")[0], mid: null, streamId: null, direction: "sendrecv" };
      sections.push(current);
    } else if (current && line.startsWith("a=mid:")) {
      current.mid = line.slice(6);
    } else if (current && line.startsWith("a=msid:")) {
      current.streamId = line.slice(7).split(" ")[0];
    } else if (current && /^a=(sendrecv|sendonly|recvonly|inactive)$/.test(line)) {
      current.direction = line.slice(2);
    }
  }
  return sections.filter((s) => s.mid !== null);
}

function midOrder(a, b) {
  const na = Number(a);
  const nb = Number(b);
  return Number.isFinite(na) && Number.isFinite(nb) ? na - nb : String(a).localeCompare(String(b));
}

/** The ICE username fragment of an SDP (one per connection: aiortc has no ICE restart), or null. */
export function iceUfrag(sdp) {
  const match = /^a=ice-ufrag:(\S+)/m.exec(sdp || "");
  return match ? match[1] : null;
}

/**
 * Call `onState(pc, "failed")` when `pc` fails (or stays "disconnected" for DISCONNECTED_GRACE_MS) and
 * `onState(pc, "connected")` when it connects. Our own close() fires no event, so only real deaths report.
 */
export function watchConnection(pc, onState, graceMs = DISCONNECTED_GRACE_MS) {
  let timer = null;
  const check = () => {
    clearTimeout(timer);
    timer = null;
    const state = pc.connectionState;
    if (state === "failed" || pc.iceConnectionState === "failed") onState(pc, "failed");
    else if (state === "connected") onState(pc, "connected");
    else if (state === "disconnected") {
      timer = setTimeout(() => {
        if (pc.connectionState === "disconnected") onState(pc, "failed");
      }, graceMs);
    }
  };
  pc.addEventListener("connectionstatechange", check);
  pc.addEventListener("iceconnectionstatechange", check);
}

/**
 * A PeerConnection whose ICE candidates trickle to the server as `candidate {pc: name, ...}`, and whose
 * state changes go to `onState(pc, "failed" | "connected")`.
 */
function trickling(name, iceServers, send, onState) {
  const pc = new RTCPeerConnection({ iceServers, bundlePolicy: "max-bundle" });
  if (onState) watchConnection(pc, onState);
  pc.addEventListener("icecandidate", (e) => {
    if (!e.candidate) return; // the server needs no end-of-candidates marker
    send("candidate", {
      pc: name,
      candidate: e.candidate.candidate,
      sdp_mid: e.candidate.sdpMid,
      sdp_mline_index: e.candidate.sdpMLineIndex,
    });
  });
  return pc;
}

async function setAllLayersActive(sender) {
  const params = sender.getParameters();
  if (!params.encodings?.some((e) => e.rid && !e.active)) return;
  for (const encoding of params.encodings) encoding.active = true;
  await sender.setParameters(params);
}

/**
 * H.264 first in the camera's offer (Constrained Baseline 42e01f in packetization-mode 1 before other
 * H.264), the browser's other codecs after it: the SFU answers with the first one it takes, and SIP room
 * terminals decode only H.264. A browser without an H.264 encoder keeps its own order.
 */
export function preferH264(transceiver) {
  const codecs = globalThis.RTCRtpSender?.getCapabilities?.("video")?.codecs;
  if (!codecs || typeof transceiver.setCodecPreferences !== "function") return false;
  const fmtp = (c) => c.sdpFmtpLine || "";
  const rank = (c) => {
    if (c.mimeType.toLowerCase() !== "video/h264") return 3;
    if (!fmtp(c).includes("packetization-mode=1")) return 2;
    return fmtp(c).includes("profile-level-id=42e01f") ? 0 : 1;
  };
  if (!codecs.some((c) => rank(c) < 2)) return false;
  transceiver.setCodecPreferences([...codecs].sort((a, b) => rank(a) - rank(b)));
  return true;
}

/** The publish PeerConnection: one sendonly transceiver per source (mic, camera, screen). */
export class Publisher {
  /** `onMedia(state)`: the current PeerConnection "failed" or "connected" (see watchConnection). */
  constructor({ iceServers, simulcast, videoCodec, send, onMedia }) {
    this._iceServers = iceServers;
    this._simulcast = simulcast;
    this._videoCodec = videoCodec || null;
    this._send = send;
    this._onMedia = onMedia || (() => {});
    this.pc = null;
    this._transceivers = { mic: null, camera: null, screen: null };
    this._wanted = { mic: null, camera: null, screen: null };
    this._dirty = false;
    this._chain = Promise.resolve();
    this._answer = null;
  }

  /**
   * Publish these tracks (null: not that source; HELD: published, sending nothing). Negotiations run one at a
   * time; resolves when this one is done.
   */
  update(wanted) {
    this._wanted = { ...wanted };
    this._dirty = true;
    return this._then(() => this._negotiate());
  }

  /** Run `step` after the queued ones; its failure is the caller's, never the next step's. */
  _then(step) {
    const run = this._chain.then(step);
    this._chain = run.catch(() => {});
    return run;
  }

  /** The RTCRtpSender of a source (null before it was first published). */
  sender(source) {
    return this._transceivers[source]?.sender || null;
  }

  /**
   * Send only the simulcast layers `rids` of the m-section `mid` (the server's publish_layers: nobody
   * watches the others). Runs in the negotiation chain, so it applies to the encodings that chain left.
   */
  setLayers(mid, rids) {
    if (!Array.isArray(rids)) return Promise.reject(new TypeError("publish_layers: rids must be an array"));
    return this._then(async () => {
      const transceiver = Object.values(this._transceivers).find((t) => t && t.mid === mid);
      if (!transceiver) return;
      const params = transceiver.sender.getParameters();
      if (!params.encodings?.some((e) => e.rid)) return;
      let changed = false;
      for (const encoding of params.encodings) {
        const active = rids.includes(encoding.rid);
        if (encoding.active !== active) {
          encoding.active = active;
          changed = true;
        }
      }
      if (changed) await transceiver.sender.setParameters(params);
    });
  }

  /** The server's publish_answer. */
  answered(sdp) {
    this._answer?.resolve(sdp);
  }

  close() {
    this.pc?.close();
    this.pc = null;
    this._answer?.reject(new Error("connection closed"));
    this._answer = null;
  }

  /**
   * Publish again on a new PeerConnection (the old one died; aiortc cannot restart ICE): in the negotiation
   * chain, close it, tell the server (restart_media) and offer the same sources afresh.
   */
  restart() {
    return this._then(async () => {
      this.pc?.close();
      this.pc = null;
      this._transceivers = { mic: null, camera: null, screen: null };
      this._send("restart_media", { pc: "publish" });
      this._dirty = true;
      await this._negotiate();
    });
  }

  _stateOf(pc, state) {
    if (pc === this.pc) this._onMedia(state); // a replaced connection's news is stale
  }

  async _negotiate() {
    if (!this._dirty) return;
    this._dirty = false;
    const wanted = this._wanted;
    if (!this.pc && !Object.values(wanted).some(Boolean)) return;
    if (!this.pc) this.pc = trickling("publish", this._iceServers, this._send, (p, s) => this._stateOf(p, s));
    const pc = this.pc;
    let changed = false;
    for (const [source, want] of Object.entries(wanted)) {
      const track = want === HELD ? null : want;
      const transceiver = this._transceivers[source];
      if (want && !transceiver) {
        const init = { direction: "sendonly", streams: [] };
        if (source === "camera" && this._simulcast) init.sendEncodings = SIMULCAST_LAYERS.map((l) => ({ ...l }));
        if (source === "screen" && this._simulcast) init.sendEncodings = SCREEN_LAYERS.map((l) => ({ ...l }));
        this._transceivers[source] = pc.addTransceiver(track || KIND[source], init);
        // Camera and screen: a live channel copies whichever is on air (research/recording.md §3.2).
        if (source !== "mic" && this._videoCodec === "h264") preferH264(this._transceivers[source]);
        changed = true;
      } else if (transceiver) {
        // replaceTrack keeps the sender's parameters (the simulcast encodings) and needs no new offer.
        if (transceiver.sender.track !== track) await transceiver.sender.replaceTrack(track);
        const direction = want ? "sendonly" : "inactive";
        if (transceiver.direction !== direction) {
          // Starting again is a new track at the SFU: every layer on until it says otherwise.
          if (direction === "sendonly") await setAllLayersActive(transceiver.sender);
          transceiver.direction = direction;
          changed = true;
        }
      }
    }
    if (!changed && pc.remoteDescription) return;
    await pc.setLocalDescription(await pc.createOffer());
    const sources = {};
    for (const [source, transceiver] of Object.entries(this._transceivers)) {
      if (transceiver?.mid != null && transceiver.direction === "sendonly") sources[transceiver.mid] = source;
    }
    const answer = new Promise((resolve, reject) => {
      this._answer = { resolve, reject };
      setTimeout(() => reject(new Error("no publish answer")), ANSWER_TIMEOUT_MS);
    });
    this._send("publish_offer", { sdp: pc.localDescription.sdp, sources });
    const sdp = await answer;
    this._answer = null;
    if (pc === this.pc) await pc.setRemoteDescription({ type: "answer", sdp });
  }
}

/** The subscribe PeerConnection: answers the server's offers and labels what each m-section carries. */
export class Subscriber {
  /** `onMedia(state)`: the current PeerConnection "failed" or "connected" (see watchConnection). */
  constructor({ iceServers, send, onChange, onMedia }) {
    this._iceServers = iceServers;
    this._send = send;
    this._onChange = onChange;
    this._onMedia = onMedia || (() => {});
    this._deadUfrags = new Set(); // ICE ufrags of the connections we replaced: late offers for them are stale
    this.pc = null;
    this._sections = null;
    this._trackMap = {}; // mid -> track id, when the server sends it with the offer
    this.tracks = new Map(); // mid -> { mid, participantId, trackId, kind, source, track, stream }
  }

  /** Answer a subscribe_offer; `participants` (id -> ParticipantInfo) labels the tracks. */
  async offered(offer, participants) {
    if (this._deadUfrags.has(iceUfrag(offer.sdp))) return; // sent for a connection we already replaced
    if (parseSections(offer.sdp).length === 0) {
      // Nothing to receive yet. Browsers reject an offer without m-sections, but the server waits for an
      // answer before it offers again: echo the empty session back (the bare BUNDLE line is what they refuse).
      const empty = offer.sdp.split(/\r?\n/).filter((l) => l && !l.startsWith("a=group:BUNDLE")).join("\r\n");
      this._send("subscribe_answer", { sdp: `${empty}\r\n` });
      return;
    }
    if (!this.pc) {
      this.pc = trickling("subscribe", this._iceServers, this._send, (p, s) => {
        if (p === this.pc) this._onMedia(s);
      });
      this.pc.addEventListener("track", () => this.relabel(participants));
    }
    const pc = this.pc;
    const map = offer.tracks || offer.mids; // mid -> track id, if the server names them
    if (map && typeof map === "object") this._trackMap = { ...map };
    await pc.setRemoteDescription({ type: "offer", sdp: offer.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    if (pc !== this.pc) return; // replaced meanwhile: the server expects the new connection's answer
    this._send("subscribe_answer", { sdp: pc.localDescription.sdp });
    this._sections = parseSections(offer.sdp);
    this.relabel(participants);
  }

  /** Rebuild `tracks`: which participant, and which of its tracks, each receiving m-section carries. */
  relabel(participants) {
    const pc = this.pc;
    if (!pc || !this._sections) return;
    const byMid = new Map(pc.getTransceivers().filter((t) => t.mid != null).map((t) => [t.mid, t]));
    const next = new Map();
    const perParticipant = new Map();
    for (const section of this._sections) {
      const transceiver = byMid.get(section.mid);
      if (!transceiver || section.direction !== "sendonly" || !section.streamId) continue;
      const entry = {
        mid: section.mid,
        participantId: section.streamId, // the SFU names each participant's stream after it
        kind: section.kind,
        track: transceiver.receiver.track,
        trackId: this._trackMap[section.mid] || null,
        source: null,
      };
      next.set(section.mid, entry);
      if (!perParticipant.has(entry.participantId)) perParticipant.set(entry.participantId, []);
      perParticipant.get(entry.participantId).push(entry);
    }
    for (const [participantId, entries] of perParticipant) {
      const infos = participants.get(participantId)?.tracks || [];
      for (const kind of ["audio", "video"]) {
        const mine = entries.filter((e) => e.kind === kind).sort((a, b) => midOrder(a.mid, b.mid));
        const theirs = infos
          .filter((i) => i.kind === kind)
          .sort((a, b) => midOrder(a.track_id.split(":").pop(), b.track_id.split(":").pop()));
        mine.forEach((entry, i) => {
          // Without the server's mid -> track map, pair the m-sections with the tracks in publication order.
          const info = entry.trackId ? infos.find((x) => x.track_id === entry.trackId) : theirs[i];
          if (info) {
            entry.trackId = info.track_id;
            entry.source = info.source;
          } else entry.source = kind === "audio" ? "mic" : "camera";
        });
      }
    }
    for (const entry of next.values()) {
      // One MediaStream per track keeps each <video>/<audio> element independent of the others.
      const old = this.tracks.get(entry.mid);
      entry.stream = old && old.track === entry.track && old.stream ? old.stream : new MediaStream([entry.track]);
    }
    this.tracks = next;
    this._onChange(next);
  }

  /**
   * Receive again on a new PeerConnection (the old one died): close it and tell the server (restart_media),
   * whose next subscribe_offer builds the new one.
   */
  restart() {
    const ufrag = iceUfrag(this.pc?.remoteDescription?.sdp);
    if (ufrag) this._deadUfrags.add(ufrag);
    this.close();
    this._send("restart_media", { pc: "subscribe" });
  }

  close() {
    this.pc?.close();
    this.pc = null;
    this._sections = null;
    this._trackMap = {};
    if (this.tracks.size) {
      this.tracks = new Map();
      this._onChange(this.tracks);
    }
  }
}
