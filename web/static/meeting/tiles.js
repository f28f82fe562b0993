// Video tiles and layouts: grid, speaker, and the stage a screen share takes over.
import { useEffect, useRef, useState } from "preact/hooks";
import { Icon } from "../lib/icons.js";
import { t } from "../lib/i18n.js";
import { html } from "../lib/ui.js";

function initials(name) {
  return (name || "?").trim().slice(0, 2).toUpperCase();
}

/**
 * Reports the element's shown size to `onSize` so the SFU forwards the layer that fits, and 0x0 while it is
 * scrolled out of view or gone, so the SFU forwards nothing for it.
 */
function useShownSize(ref, onSize) {
  // The latest callback, so the observers below live as long as the element, not one render.
  const report = useRef(onSize);
  report.current = onSize;
  const resend = useRef(null);
  useEffect(() => {
    const element = ref.current;
    if (!element || !report.current) return undefined;
    let visible = false;
    let size = null; // not measured yet: nothing to say until it is
    const send = () => {
      if (!visible) report.current?.(0, 0);
      else if (size) report.current?.(...size);
    };
    resend.current = send;
    const resize = new ResizeObserver(([entry]) => {
      const ratio = window.devicePixelRatio || 1;
      size = [entry.contentRect.width * ratio, entry.contentRect.height * ratio];
      if (visible) send();
    });
    const intersection = new IntersectionObserver(([entry]) => {
      visible = entry.isIntersecting;
      send();
    });
    resize.observe(element);
    intersection.observe(element);
    return () => {
      resize.disconnect();
      intersection.disconnect();
      resend.current = null;
      report.current?.(0, 0);
    };
  }, [Boolean(onSize)]);
  // After a renegotiation the SDK forgets what it said (the SFU may have rebound the track): say it again.
  // setVideoSize drops a repeat of what it last sent, so this costs nothing otherwise.
  useEffect(() => resend.current?.());
}

/** A <video> bound to a track, reporting its shown size (useShownSize). */
function Video({ track, mirror, onSize, label }) {
  const ref = useRef(null);
  useEffect(() => {
    const element = ref.current;
    if (!element) return;
    element.srcObject = track ? new MediaStream([track]) : null;
  }, [track]);
  useShownSize(ref, onSize);
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

/**
 * Initials where a video would be. For a camera the SFU has not sent yet (in a large meeting it gives one an
 * m-section only once a tile shows it) the size is reported too, which asks for it.
 */
function Avatar({ name, onSize }) {
  const ref = useRef(null);
  useShownSize(ref, onSize);
  return html`<div ref=${ref} class="avatar" aria-hidden="true">${initials(name)}</div>`;
}

/** One participant's tile: video (or initials), name, role, muted and raised-hand badges. */
export function Tile({ person, video, client, speaking, large, local, screen }) {
  const label = screen ? t("tile.screen_of", { name: person.name }) : person.name;
  const onSize = video && video.trackId && !local ? (w, h) => client.setVideoSize(video.trackId, w, h) : null;
  const classes = ["tile", speaking ? "speaking" : "", large ? "large" : "", screen ? "screen" : ""].join(" ");
  return html`<figure class=${classes} data-participant=${person.id} data-source=${screen ? "screen" : "camera"}>
    ${video && video.track && !(person.cameraMuted && !screen)
      ? html`<${Video} track=${video.track} mirror=${local && !screen} onSize=${onSize} label=${label} />`
      : html`<${Avatar} name=${person.name} onSize=${video && !video.track && !person.cameraMuted ? onSize : null} />`}
    <figcaption>
      ${person.micMuted && !screen ? html`<span class="badge" role="img" aria-label=${t("tile.muted")}><${Icon} name="micOff" size="16" /></span>` : null}
      ${person.hand && !screen ? html`<span class="badge" role="img" aria-label=${t("tile.hand_raised")}><${Icon} name="hand" size="16" /></span>` : null}
      <span class="name">${label}</span>
      ${local && !screen ? html`<span class="you">${t("tile.you")}</span>` : null}
      ${person.role === "host" || person.role === "cohost" ? html`<span class="role">${t(`role.${person.role}`)}</span>` : null}
    </figcaption>
  </figure>`;
}

/** Tiles on one grid page: 3×3, or 4×4 on a large screen (the SFU forwards no video for the other pages). */
export function pageSize(width = window.innerWidth, height = window.innerHeight) {
  return width >= 1600 && height >= 900 ? 16 : 9;
}

/**
 * The grid's order: you first, then whoever spoke most recently, then the rest in the order they joined, so a
 * speaker is on the first page.
 */
export function gridOrder(people, recent) {
  const rank = new Map(recent.map((id, i) => [id, i]));
  const score = (p) => (p.local ? -1 : rank.has(p.id) ? rank.get(p.id) : recent.length);
  return people.map((p, i) => [p, i]).sort((a, b) => score(a[0]) - score(b[0]) || a[1] - b[1]).map(([p]) => p);
}

/** Remote videos that are not drawn on this render: 0x0 to the SFU, which then forwards nothing for them. */
function useHidden(client, people, shown) {
  useEffect(() => {
    for (const person of people) {
      if (person.local) continue;
      for (const source of ["camera", "screen"]) {
        const video = person[source];
        if (video?.trackId && !shown.has(`${person.id}-${source}`)) client.setVideoSize(video.trackId, 0, 0);
      }
    }
  });
}

function PageControls({ page, pages, setPage }) {
  return html`<nav class="pages" aria-label=${t("grid.pages")}>
    <button type="button" class="small" id="page-previous" disabled=${page === 0} onClick=${() => setPage(page - 1)}
      aria-label=${t("grid.previous")}><${Icon} name="chevronLeft" size="16" /></button>
    <span role="status">${t("grid.page_of", { page: page + 1, pages })}</span>
    <button type="button" class="small" id="page-next" disabled=${page >= pages - 1} onClick=${() => setPage(page + 1)}
      aria-label=${t("grid.next")}><${Icon} name="chevronRight" size="16" /></button>
  </nav>`;
}

/**
 * Arrange the tiles: a screen share (or, in speaker view, the active speaker) on the stage with the others in a
 * filmstrip; otherwise a grid in pages. Only the videos on screen are forwarded: another page's tiles are not
 * drawn, and a filmstrip tile scrolled out of view reports 0x0.
 */
export function Layout({ people, client, activeSpeaker, view }) {
  const recent = useRef([]);
  if (activeSpeaker && recent.current[0] !== activeSpeaker) {
    recent.current = [activeSpeaker, ...recent.current.filter((id) => id !== activeSpeaker)];
  }
  const [page, setPage] = useState(0);
  const tile = (p) => html`<${Tile} key=${p.id} person=${p} video=${p.camera} client=${client} local=${p.local}
      speaking=${p.id === activeSpeaker} />`;
  const shown = new Set();
  const showAll = (list) => list.forEach((p) => shown.add(`${p.id}-camera`));
  const screens = people.filter((p) => p.screen);
  let body;
  if (screens.length) {
    const sharer = screens[0];
    shown.add(`${sharer.id}-screen`);
    showAll(people);
    body = html`<div class="layout stage-layout">
      <div class="stage"><${Tile} key=${`${sharer.id}-screen`} person=${sharer} video=${sharer.screen} client=${client}
        local=${sharer.local} large screen /></div>
      <div class="filmstrip">${people.map(tile)}</div>
    </div>`;
  } else if (view === "speaker" && people.length > 1) {
    const focus = people.find((p) => p.id === activeSpeaker && !p.local) || people.find((p) => !p.local) || people[0];
    showAll(people);
    body = html`<div class="layout stage-layout">
      <div class="stage"><${Tile} key=${`${focus.id}-focus`} person=${focus} video=${focus.camera} client=${client}
        local=${focus.local} speaking=${focus.id === activeSpeaker} large /></div>
      <div class="filmstrip">${people.filter((p) => p !== focus).map(tile)}</div>
    </div>`;
  } else {
    const size = pageSize();
    const pages = Math.max(1, Math.ceil(people.length / size));
    const current = Math.min(page, pages - 1);
    const onPage = gridOrder(people, recent.current).slice(current * size, (current + 1) * size);
    showAll(onPage);
    const columns = Math.ceil(Math.sqrt(onPage.length));
    body = html`<div class="layout grid-pages">
      <div class="layout grid" style=${`--columns:${columns};--rows:${Math.ceil(onPage.length / columns)}`}>
        ${onPage.map(tile)}
      </div>
      ${pages > 1 ? html`<${PageControls} page=${current} pages=${pages} setPage=${setPage} />` : null}
    </div>`;
  }
  useHidden(client, people, shown);
  return body;
}
