// The pre-join page: camera preview, microphone level, device pickers, display name, passcode, language.
import { useEffect, useRef, useState } from "preact/hooks";
import { Icon } from "../lib/icons.js";
import { t } from "../lib/i18n.js";
import { LanguageSwitch, html, useLanguage } from "../lib/ui.js";

const NAME_KEY = "yunhui.displayName";
const DEVICES_KEY = "yunhui.devices";

function savedDevices() {
  try {
    return JSON.parse(localStorage.getItem(DEVICES_KEY) || "{}");
  } catch {
    return {};
  }
}

/** Remember a device choice ("mic" | "camera" | "speaker") for the next pre-join. */
export function saveDevice(kind, deviceId) {
  localStorage.setItem(DEVICES_KEY, JSON.stringify({ ...savedDevices(), [kind]: deviceId }));
}

/** Ask for camera and microphone; either may be missing or refused. */
export async function openMedia({ micId, cameraId, wantMic = true, wantCamera = true }) {
  const result = { mic: null, camera: null, error: null };
  const audio = wantMic ? { deviceId: micId ? { exact: micId } : undefined, echoCancellation: true, noiseSuppression: true } : false;
  const video = wantCamera ? { deviceId: cameraId ? { exact: cameraId } : undefined, width: { ideal: 1280 }, height: { ideal: 720 } } : false;
  if (!audio && !video) return result;
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio, video });
    result.mic = stream.getAudioTracks()[0] || null;
    result.camera = stream.getVideoTracks()[0] || null;
  } catch (err) {
    result.error = err.name === "NotAllowedError" ? "denied" : err.name === "NotFoundError" ? "missing" : "failed";
    // One device failing must not cost the other: try them one at a time.
    if (audio && video) {
      const mic = await openMedia({ micId, wantMic: true, wantCamera: false });
      const camera = await openMedia({ cameraId, wantMic: false, wantCamera: true });
      result.mic = mic.mic;
      result.camera = camera.camera;
    }
  }
  return result;
}

/** 0..1 microphone level from an AnalyserNode, sampled every animation frame. */
function useLevel(track) {
  const [level, setLevel] = useState(0);
  useEffect(() => {
    if (!track) return undefined;
    const context = new AudioContext();
    context.resume().catch(() => {});
    const source = context.createMediaStreamSource(new MediaStream([track]));
    const analyser = context.createAnalyser();
    analyser.fftSize = 1024;
    source.connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    let frame = 0;
    let shown = 0;
    const tick = () => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      const rms = Math.sqrt(sum / samples.length);
      shown = Math.max(rms * 3, shown * 0.92); // quick attack, slow decay
      setLevel(Math.min(1, shown));
      frame = requestAnimationFrame(tick);
    };
    tick();
    return () => {
      cancelAnimationFrame(frame);
      context.close();
    };
  }, [track]);
  return level;
}

/** A labelled select of the devices of one `kind` (audioinput | videoinput | audiooutput). */
export function DevicePicker({ id, label, kind, devices, value, onChange }) {
  const list = devices.filter((d) => d.kind === kind);
  return html`<div class="field">
    <label for=${id}>${label}</label>
    <select id=${id} value=${value} onChange=${(e) => onChange(e.target.value)} disabled=${list.length === 0}>
      ${list.length === 0 ? html`<option value="">${t("prejoin.no_device")}</option>` : null}
      ${list.map((d, i) => html`<option value=${d.deviceId} selected=${d.deviceId === value}>${d.label || t("prejoin.device_n", { n: i + 1 })}</option>`)}
    </select>
  </div>`;
}

/**
 * props: meetingNumber, media ({mic, camera}), setMedia, onJoin({displayName, passcode, muted}), busy, error,
 * needsPasscode, host (signed in as a host).
 */
export function PreJoin({ meetingNumber, media, setMedia, onJoin, busy, error, needsPasscode, host }) {
  useLanguage();
  const video = useRef(null);
  const [devices, setDevices] = useState([]);
  const [chosen, setChosen] = useState(savedDevices());
  const [name, setName] = useState(localStorage.getItem(NAME_KEY) || "");
  const [passcode, setPasscode] = useState(new URLSearchParams(location.search).get("pwd") || "");
  const [micOff, setMicOff] = useState(false);
  const [cameraOff, setCameraOff] = useState(false);
  const [mediaError, setMediaError] = useState(null);
  const [mediaReady, setMediaReady] = useState(false);
  const level = useLevel(micOff ? null : media.mic);

  async function reopen(next) {
    for (const track of [media.mic, media.camera]) track?.stop();
    const opened = await openMedia({ micId: next.mic, cameraId: next.camera });
    setMediaError(opened.error && !opened.mic && !opened.camera ? opened.error : null);
    setMedia({ mic: opened.mic, camera: opened.camera });
    setDevices(await navigator.mediaDevices.enumerateDevices());
    setMediaReady(true);
  }

  useEffect(() => {
    reopen(chosen);
  }, []);

  useEffect(() => {
    if (video.current) video.current.srcObject = media.camera && !cameraOff ? new MediaStream([media.camera]) : null;
  }, [media.camera, cameraOff]);

  function choose(kind, deviceId) {
    const next = { ...chosen, [kind]: deviceId };
    setChosen(next);
    localStorage.setItem(DEVICES_KEY, JSON.stringify(next));
    if (kind !== "speaker") reopen(next);
  }

  function submit(e) {
    e.preventDefault();
    const displayName = name.trim();
    if (!displayName && !host) return;
    localStorage.setItem(NAME_KEY, displayName);
    onJoin({ displayName, passcode, muted: { mic: micOff, camera: cameraOff }, speaker: chosen.speaker });
  }

  const speakerSupported = "setSinkId" in HTMLMediaElement.prototype;
  return html`<main class="prejoin">
    <header class="prejoin-header">
      <h1>${t("app.name")}</h1>
      <${LanguageSwitch} />
    </header>
    <div class="prejoin-body">
      <section class="preview" aria-label=${t("prejoin.preview")}>
        <video ref=${video} autoplay playsinline muted class="mirror" aria-label=${t("prejoin.preview")}></video>
        ${!media.camera || cameraOff
          ? html`<div class="preview-off">${mediaError ? t(`prejoin.media_${mediaError}`) : t("prejoin.camera_off")}</div>`
          : null}
        <div class="preview-tools">
          <button type="button" class=${micOff ? "tool danger" : "tool"} aria-pressed=${String(micOff)}
            aria-label=${micOff ? t("controls.unmute_mic") : t("controls.mute_mic")} onClick=${() => setMicOff(!micOff)}>
            <${Icon} name=${micOff ? "micOff" : "mic"} />
          </button>
          <button type="button" class=${cameraOff ? "tool danger" : "tool"} aria-pressed=${String(cameraOff)}
            aria-label=${cameraOff ? t("controls.start_camera") : t("controls.stop_camera")} onClick=${() => setCameraOff(!cameraOff)}>
            <${Icon} name=${cameraOff ? "cameraOff" : "camera"} />
          </button>
        </div>
        <div class="level" role="meter" aria-label=${t("prejoin.mic_level")} aria-valuemin="0" aria-valuemax="100"
          aria-valuenow=${Math.round(level * 100)}>
          <div class="level-bar" style=${`width:${Math.round(level * 100)}%`}></div>
        </div>
      </section>
      <form class="prejoin-form" onSubmit=${submit}>
        <h2>${t("prejoin.title")}</h2>
        <p class="muted">${t("prejoin.meeting_number", { number: meetingNumber })}</p>
        <div class="field">
          <label for="display-name">${t("prejoin.display_name")}</label>
          <input id="display-name" value=${name} maxlength="64" required=${!host} autocomplete="name"
            onInput=${(e) => setName(e.target.value)} placeholder=${t("prejoin.display_name_hint")} />
        </div>
        ${needsPasscode && !host
          ? html`<div class="field">
              <label for="passcode">${t("prejoin.passcode")}</label>
              <input id="passcode" value=${passcode} maxlength="20" autocomplete="off" inputmode="numeric" required
                aria-describedby="passcode-hint" onInput=${(e) => setPasscode(e.target.value)} />
              <p class="muted hint" id="passcode-hint">${t("share.passcode_needed")}</p>
            </div>`
          : null}
        <${DevicePicker} id="pick-mic" label=${t("prejoin.microphone")} kind="audioinput" devices=${devices} value=${chosen.mic}
          onChange=${(v) => choose("mic", v)} />
        <${DevicePicker} id="pick-camera" label=${t("prejoin.camera")} kind="videoinput" devices=${devices} value=${chosen.camera}
          onChange=${(v) => choose("camera", v)} />
        ${speakerSupported
          ? html`<${DevicePicker} id="pick-speaker" label=${t("prejoin.speaker")} kind="audiooutput" devices=${devices}
              value=${chosen.speaker} onChange=${(v) => choose("speaker", v)} />`
          : null}
        ${host ? html`<p class="note">${t("prejoin.as_host")}</p>` : null}
        ${error ? html`<p class="error" role="alert">${error}</p>` : null}
        <button type="submit" class="primary" id="join" disabled=${busy || !mediaReady}>${busy ? t("prejoin.joining") : t("prejoin.join")}</button>
      </form>
    </div>
  </main>`;
}
