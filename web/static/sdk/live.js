// Yunhui live player: plays a live channel (or its replay) in a <video> with a viewer session. No UI.
// Documented in docs/sdk.md and docs/live.md. hls.js (import-mapped as "hls.js") plays it wherever Media Source
// Extensions exist; without them (iPhone Safari, WeChat on iOS) the browser's own HLS does.

const VIEWER_KEY = "yunhui.live.viewer";
// While the channel has not started, its state is asked for this often.
const WAIT_MS = 5_000;
// hls.js network errors are retried this many times (with WAIT_MS between) before the error is fatal.
const NETWORK_RETRIES = 6;

/** A refused session or media request: `code` is the API's error code (not_started, archived, ...). */
export class LiveError extends Error {
  constructor(code, message, status) {
    super(message || code);
    this.name = "LiveError";
    this.code = code;
    this.status = status;
  }
}

/** This browser's viewer id (kept in localStorage), so that two tabs or reloads count as one viewer. */
export function viewerId() {
  try {
    let id = localStorage.getItem(VIEWER_KEY);
    if (!id || !/^[A-Za-z0-9_-]{8,64}$/.test(id)) {
      const bytes = crypto.getRandomValues(new Uint8Array(18));
      id = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
      localStorage.setItem(VIEWER_KEY, id);
    }
    return id;
  } catch {
    return null; // storage blocked: the server counts address + agent as the viewer
  }
}

async function call(base, method, path, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const code = data?.error?.code || (response.status === 404 ? "not_found" : "http_error");
    throw new LiveError(code, data?.error?.message, response.status);
  }
  return data;
}

/** The channel as its viewers see it: {id, title, language, state, started_at, ended_at, viewers}. */
export function channelInfo(channelId, { base = "/api/v1" } = {}) {
  return call(base, "GET", `/live/${channelId}/public`);
}

/** Open a viewer session: {s, phase, playlist, expires_at}; a staff token opens the rehearsal. */
export function openSession(channelId, { base = "/api/v1", staffToken = null } = {}) {
  const body = {};
  const id = viewerId();
  if (id) body.viewer_id = id;
  if (staffToken) body.staff_token = staffToken;
  return call(base, "POST", `/live/${channelId}/sessions`, body);
}

/** Whether the browser plays HLS itself (Safari, iOS, WeChat on iOS). */
export function nativeHls(video) {
  return Boolean(video.canPlayType("application/vnd.apple.mpegurl"));
}

/**
 * Plays a live channel in `video`. Events (CustomEvent, payload in `detail`):
 * - `state` {state: "waiting" | "playing" | "ended" | "error", phase} — waiting: not started yet;
 * - `info` — the channel's public state (every WAIT_MS while waiting);
 * - `error` {code, fatal} — code: not_started, archived, invalid_token, media, network, unsupported.
 * `programDate()` is the PROGRAM-DATE-TIME of what is shown (for latency), null when unknown.
 */
export class LivePlayer extends EventTarget {
  constructor(video, channelId, { base = "/api/v1", staffToken = null, Hls = null } = {}) {
    super();
    this.video = video;
    this.channelId = channelId;
    this.base = base;
    this.staffToken = staffToken;
    this.hls = null;
    this.session = null;
    this.state = "waiting";
    this._Hls = Hls;
    this._timer = null;
    this._retries = 0;
    this._closed = false;
    this._onEnded = () => this._set("ended");
    video.addEventListener("ended", this._onEnded);
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _set(state) {
    if (this.state === state) return;
    this.state = state;
    this._emit("state", { state, phase: this.session?.phase ?? null });
  }

  /** Wait for the channel to start (or its replay), then play; resolves once playback is attached. */
  async start() {
    while (!this._closed) {
      let info;
      try {
        info = await channelInfo(this.channelId, { base: this.base });
        this._emit("info", info);
      } catch (error) {
        if (error.status === 404) {
          this._set("error");
          this._emit("error", { code: "not_found", fatal: true });
          return;
        }
        this._emit("error", { code: error.code || "network", fatal: false });
        await this._wait();
        continue;
      }
      if (info.state === "unavailable") {
        this._set("error");
        this._emit("error", { code: "archived", fatal: true });
        return;
      }
      if (info.state === "live" || info.state === "replay" || this.staffToken) {
        try {
          this.session = await openSession(this.channelId, { base: this.base, staffToken: this.staffToken });
          await this._attach(`${this.base}/${this.session.playlist}`);
          return;
        } catch (error) {
          if (error.code !== "not_started") {
            this._set("error");
            this._emit("error", { code: error.code || "media", fatal: true });
            return;
          }
        }
      }
      this._set("waiting");
      await this._wait();
    }
  }

  _wait() {
    return new Promise((resolve) => {
      this._timer = setTimeout(resolve, WAIT_MS);
    });
  }

  async _attach(url) {
    const video = this.video;
    const onPlaying = () => this._set("playing");
    video.addEventListener("playing", onPlaying);
    // hls.js wherever Media Source Extensions exist (its reload and error handling are the same everywhere);
    // the browser's own HLS where they do not (iPhone Safari, WeChat on iOS).
    const Hls = this._Hls || (await import("hls.js")).default;
    if (!Hls.isSupported()) {
      if (nativeHls(video)) {
        video.src = url;
        return;
      }
      this._set("error");
      this._emit("error", { code: "unsupported", fatal: true });
      return;
    }
    // No worker: the page's Content-Security-Policy allows scripts from this origin only (no blob: workers).
    const hls = new Hls({ enableWorker: false, lowLatencyMode: false, liveSyncDurationCount: 3 });
    this.hls = hls;
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.NETWORK_ERROR && this._retries < NETWORK_RETRIES) {
        // A playlist answering "starting" (409) or a dropped connection: try again shortly.
        this._retries += 1;
        this._emit("error", { code: "network", fatal: false });
        setTimeout(() => {
          if (this._closed) return;
          if (hls.levels?.length) hls.startLoad();
          else hls.loadSource(url);
        }, WAIT_MS);
        return;
      }
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
        hls.recoverMediaError();
        return;
      }
      this._set("error");
      this._emit("error", { code: data.type === Hls.ErrorTypes.NETWORK_ERROR ? "network" : "media", fatal: true });
    });
    hls.on(Hls.Events.FRAG_LOADED, () => {
      this._retries = 0;
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  }

  /** The PROGRAM-DATE-TIME of the frame on screen, as a Date, or null. */
  programDate() {
    if (this.hls) return this.hls.playingDate || null;
    const date = this.video.getStartDate?.();
    if (date && !Number.isNaN(date.getTime())) return new Date(date.getTime() + this.video.currentTime * 1000);
    return null;
  }

  /** Stop playing and release hls.js (idempotent). */
  close() {
    if (this._closed) return;
    this._closed = true;
    clearTimeout(this._timer);
    this.video.removeEventListener("ended", this._onEnded);
    if (this.hls) this.hls.destroy();
    this.hls = null;
  }
}
