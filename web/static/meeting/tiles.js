// Video tiles and layouts: grid, speaker, and the stage a screen share takes over.
import { useEffect, useRef } from "preact/hooks";
import { Icon } from "../lib/icons.js";
import { t } from "../lib/i18n.js";
import { html } from "../lib/ui.js";

function initials(name) {
  return (name || "?").trim().slice(0, 2).toUpperCase();
}

/** A <video> bound to a track; reports its shown size so the SFU forwards the layer that fits. */
function Video({ track, mirror, onSize, label }) {
  const ref = useRef(null);
  useEffect(() => {
    const element = ref.current;
    if (!element) return;
    element.srcObject = track ? new MediaStream([track]) : null;
  }, [track]);
  useEffect(() => {
    const element = ref.current;
    if (!element || !onSize) return undefined;
    const observer = new ResizeObserver(([entry]) => {
      const ratio = window.devicePixelRatio || 1;
      onSize(entry.contentRect.width * ratio, entry.contentRect.height * ratio);
    });
    observer.observe(element);
    return () => observer.disconnect();
  }, [onSize]);
  return html`<video ref=${ref} autoplay playsinline muted class=${mirror ? "mirror" : ""} aria-label=${label}></video>`;
}

/** Remote audio: one hidden element per track, routed to the chosen speaker when the browser allows. */
export function RemoteAudio({ tracks, speaker }) {
  return html`<div class="audio-sinks" aria-hidden="true">
    ${tracks.map((entry) => html`<${AudioSink} key=${entry.mid} track=${entry.track} speaker=${speaker} />`)}
  </div>`;
}

function AudioSink({ track, speaker }) {
  const ref = useRef(null);
  useEffect(() => {
    ref.current.srcObject = new MediaStream([track]);
    ref.current.play().catch(() => {});
  }, [track]);
  useEffect(() => {
    if (speaker && ref.current.setSinkId) ref.current.setSinkId(speaker).catch(() => {});
  }, [speaker]);
  return html`<audio ref=${ref} autoplay></audio>`;
}

/** One participant's tile: video (or initials), name, role, muted and raised-hand badges. */
export function Tile({ person, video, client, speaking, large, local, screen }) {
  const label = screen ? t("tile.screen_of", { name: person.name }) : person.name;
  const onSize = video && video.trackId && !local ? (w, h) => client.setVideoSize(video.trackId, w, h) : null;
  const classes = ["tile", speaking ? "speaking" : "", large ? "large" : "", screen ? "screen" : ""].join(" ");
  return html`<figure class=${classes} data-participant=${person.id} data-source=${screen ? "screen" : "camera"}>
    ${video && video.track && !(person.cameraMuted && !screen)
      ? html`<${Video} track=${video.track} mirror=${local && !screen} onSize=${onSize} label=${label} />`
      : html`<div class="avatar" aria-hidden="true">${initials(person.name)}</div>`}
    <figcaption>
      ${person.micMuted && !screen ? html`<span class="badge" role="img" aria-label=${t("tile.muted")}><${Icon} name="micOff" size="16" /></span>` : null}
      ${person.hand && !screen ? html`<span class="badge" role="img" aria-label=${t("tile.hand_raised")}><${Icon} name="hand" size="16" /></span>` : null}
      <span class="name">${label}</span>
      ${local && !screen ? html`<span class="you">${t("tile.you")}</span>` : null}
      ${person.role === "host" || person.role === "cohost" ? html`<span class="role">${t(`role.${person.role}`)}</span>` : null}
    </figcaption>
  </figure>`;
}

/**
 * Arrange the tiles: a screen share (or, in speaker view, the active speaker) on the stage with the others in a
 * filmstrip; otherwise a grid.
 */
export function Layout({ people, client, activeSpeaker, view }) {
  const screens = people.filter((p) => p.screen);
  const tiles = people.map(
    (p) => html`<${Tile} key=${p.id} person=${p} video=${p.camera} client=${client} local=${p.local}
      speaking=${p.id === activeSpeaker} />`,
  );
  if (screens.length) {
    const sharer = screens[0];
    return html`<div class="layout stage-layout">
      <div class="stage"><${Tile} key=${`${sharer.id}-screen`} person=${sharer} video=${sharer.screen} client=${client}
        local=${sharer.local} large screen /></div>
      <div class="filmstrip">${tiles}</div>
    </div>`;
  }
  if (view === "speaker" && people.length > 1) {
    const focus = people.find((p) => p.id === activeSpeaker && !p.local) || people.find((p) => !p.local) || people[0];
    return html`<div class="layout stage-layout">
      <div class="stage"><${Tile} key=${`${focus.id}-focus`} person=${focus} video=${focus.camera} client=${client}
        local=${focus.local} speaking=${focus.id === activeSpeaker} large /></div>
      <div class="filmstrip">${tiles.filter((_, i) => people[i] !== focus)}</div>
    </div>`;
  }
  const columns = Math.ceil(Math.sqrt(people.length));
  return html`<div class="layout grid" style=${`--columns:${columns};--rows:${Math.ceil(people.length / columns)}`}>${tiles}</div>`;
}
