// Inline SVG icons (24×24 paths, Material Design shapes): no icon font, no emoji font needed.
import { h } from "preact";
import htm from "htm";

const html = htm.bind(h);

const PATHS = {
  mic: "M12 14c1.66 0 3-1.34 3-3V5c0-1.66-1.34-3-3-3S9 3.34 9 5v6c0 1.66 1.34 3 3 3zm5.3-3c0 3-2.54 5.1-5.3 5.1S6.7 14 6.7 11H5c0 3.41 2.72 6.23 6 6.72V21h2v-3.28c3.28-.48 6-3.3 6-6.72h-1.7z",
  micOff: "M19 11h-1.7c0 .74-.16 1.43-.43 2.05l1.23 1.23c.56-.98.9-2.09.9-3.28zm-4.02.17c0-.06.02-.11.02-.17V5c0-1.66-1.34-3-3-3S9 3.34 9 5v.18l5.98 5.99zM4.27 3L3 4.27l6.01 6.01V11c0 1.66 1.33 3 2.99 3 .22 0 .44-.03.65-.08l1.66 1.66c-.71.33-1.5.52-2.31.52-2.76 0-5.3-2.1-5.3-5.1H5c0 3.41 2.72 6.23 6 6.72V21h2v-3.28c.91-.13 1.77-.45 2.54-.9L19.73 21 21 19.73 4.27 3z",
  camera: "M17 10.5V7c0-.55-.45-1-1-1H4c-.55 0-1 .45-1 1v10c0 .55.45 1 1 1h12c.55 0 1-.45 1-1v-3.5l4 4v-11l-4 4z",
  cameraOff: "M21 6.5l-4 4V7c0-.55-.45-1-1-1H9.82L21 17.18V6.5zM3.27 2L2 3.27 4.73 6H4c-.55 0-1 .45-1 1v10c0 .55.45 1 1 1h12c.21 0 .39-.08.54-.18L19.73 21 21 19.73 3.27 2z",
  screen: "M20 18c1.1 0 1.99-.9 1.99-2L22 6c0-1.11-.9-2-2-2H4c-1.11 0-2 .89-2 2v10c0 1.1.89 2 2 2H0v2h24v-2h-4zM4 16V6h16v10.01L4 16z",
  hand: "M13 24c-3.26 0-6.19-1.99-7.4-5.02l-3.03-7.61C2.26 10.58 3 9.79 3.81 10.05l.79.26c.56.18 1.02.61 1.24 1.16L7.25 15H8V3.25C8 2.56 8.56 2 9.25 2s1.25.56 1.25 1.25V12h1V1.25c0-.69.56-1.25 1.25-1.25S14 .56 14 1.25V12h1V2.75c0-.69.56-1.25 1.25-1.25s1.25.56 1.25 1.25V12h1V5.75c0-.69.56-1.25 1.25-1.25S21 5.06 21 5.75V16c0 4.42-3.58 8-8 8z",
  people: "M16 11c1.66 0 2.99-1.34 2.99-3S17.66 5 16 5c-1.66 0-3 1.34-3 3s1.34 3 3 3zm-8 0c1.66 0 2.99-1.34 2.99-3S9.66 5 8 5C6.34 5 5 6.34 5 8s1.34 3 3 3zm0 2c-2.33 0-7 1.17-7 3.5V19h14v-2.5c0-2.33-4.67-3.5-7-3.5zm8 0c-.29 0-.62.02-.97.05 1.16.84 1.97 1.97 1.97 3.45V19h6v-2.5c0-2.33-4.67-3.5-7-3.5z",
  chat: "M20 2H4c-1.1 0-1.99.9-1.99 2L2 22l4-4h14c1.1 0 2-.9 2-2V4c0-1.1-.9-2-2-2zM6 9h12v2H6V9zm8 5H6v-2h8v2zm4-6H6V6h12v2z",
  leave: "M12 9c-1.6 0-3.15.25-4.6.72v3.1c0 .39-.23.74-.56.9-.98.49-1.87 1.12-2.66 1.85-.18.18-.43.28-.7.28-.28 0-.53-.11-.71-.29L.29 13.08c-.18-.17-.29-.42-.29-.7 0-.28.11-.53.29-.71C3.34 8.78 7.46 7 12 7s8.66 1.78 11.71 4.67c.18.18.29.43.29.71 0 .28-.11.53-.29.71l-2.48 2.48c-.18.18-.43.29-.71.29-.27 0-.52-.11-.7-.28-.79-.74-1.69-1.36-2.67-1.85-.33-.16-.56-.5-.56-.9v-3.1C15.15 9.25 13.6 9 12 9z",
  stop: "M6 6h12v12H6z",
  more: "M6 10c-1.1 0-2 .9-2 2s.9 2 2 2 2-.9 2-2-.9-2-2-2zm12 0c-1.1 0-2 .9-2 2s.9 2 2 2 2-.9 2-2-.9-2-2-2zm-6 0c-1.1 0-2 .9-2 2s.9 2 2 2 2-.9 2-2-.9-2-2-2z",
  // Material "tune": sliders, for the audio and video settings.
  settings: "M3 17v2h6v-2H3zM3 5v2h10V5H3zm10 16v-2h8v-2h-8v-2h-2v6h2zM7 9v2H3v2h4v2h2V9H7zm14 4v-2H11v2h10zm-6-4h2V7h4V5h-4V3h-2v6z",
  lock: "M18 8h-1V6c0-2.76-2.24-5-5-5S7 3.24 7 6v2H6c-1.1 0-2 .9-2 2v10c0 1.1.9 2 2 2h12c1.1 0 2-.9 2-2V10c0-1.1-.9-2-2-2zm-6 9c-1.1 0-2-.9-2-2s.9-2 2-2 2 .9 2 2-.9 2-2 2zm3.1-9H8.9V6c0-1.71 1.39-3.1 3.1-3.1 1.71 0 3.1 1.39 3.1 3.1v2z",
  close: "M19 6.41L17.59 5 12 10.59 6.41 5 5 6.41 10.59 12 5 17.59 6.41 19 12 13.41 17.59 19 19 17.59 13.41 12z",
  attach: "M16.5 6v11.5c0 2.21-1.79 4-4 4s-4-1.79-4-4V5c0-1.38 1.12-2.5 2.5-2.5s2.5 1.12 2.5 2.5v10.5c0 .55-.45 1-1 1s-1-.45-1-1V6H10v9.5c0 1.38 1.12 2.5 2.5 2.5s2.5-1.12 2.5-2.5V5c0-2.21-1.79-4-4-4S7 2.79 7 5v12.5c0 3.04 2.46 5.5 5.5 5.5s5.5-2.46 5.5-5.5V6h-1.5z",
  timer: "M12 2a10 10 0 100 20 10 10 0 000-20zm1 11H7v-2h4V6h2v7z",
  smile: "M12 2a10 10 0 100 20 10 10 0 000-20zM8.5 8a1.5 1.5 0 110 3 1.5 1.5 0 010-3zm7 0a1.5 1.5 0 110 3 1.5 1.5 0 010-3zM12 17.5c-2.33 0-4.31-1.46-5.11-3.5h10.22c-.8 2.04-2.78 3.5-5.11 3.5z",
  layout: "M3 3h8v8H3zm10 0h8v8h-8zM3 13h8v8H3zm10 0h8v8h-8z",
  chevronLeft: "M15.41 7.41L14 6l-6 6 6 6 1.41-1.41L10.83 12z",
  chevronRight: "M8.59 16.59L10 18l6-6-6-6-1.41 1.41L13.17 12z",
  record: "M12 2a10 10 0 100 20 10 10 0 000-20zm0 5a5 5 0 110 10 5 5 0 010-10z",
};

export function Icon({ name, size = 20 }) {
  return html`<svg class="svg-icon" width=${size} height=${size} viewBox="0 0 24 24" aria-hidden="true" focusable="false">
    <path fill="currentColor" d=${PATHS[name] || ""} /></svg>`;
}

// The reactions (signaling.messages.Reaction) as colour SVG drawings: a viewer without a colour emoji font
// sees the same pictures as everyone else, never an empty box. Each is a list of [element, attributes].
const SKIN = "#FFC83D";
const SKIN_DARK = "#E39B00";
const FACE = [["circle", { cx: 12, cy: 12, r: 10, fill: SKIN, stroke: SKIN_DARK, "stroke-width": 0.8 }]];
const REACTION_SHAPES = {
  thumbs_up: [
    ["rect", { x: 1.5, y: 9.5, width: 4.5, height: 12, rx: 1, fill: "#3B7CFF" }],
    ["path", { d: "M7 10.2 12.6 3.4c.9-1.1 2.7-.5 2.7 1 0 .3 0 .5-.1.8L14.3 9H20c1.2 0 2.1 1.1 1.9 2.3l-1.3 7.6c-.2 1.2-1.2 2.1-2.4 2.1H9c-1.1 0-2-.9-2-2z", fill: SKIN, stroke: SKIN_DARK, "stroke-width": 0.8 }],
  ],
  clap: [
    ["path", { d: "M2.6 3.2 4 5.1M5.8 1.6l.4 2.3M1.2 6.9l2.2.5", stroke: "#F5A524", "stroke-width": 1.3, "stroke-linecap": "round" }],
    ["rect", { x: 5.5, y: 5, width: 8, height: 14, rx: 4, transform: "rotate(-28 9.5 12)", fill: SKIN_DARK }],
    ["rect", { x: 10, y: 5.5, width: 8, height: 15, rx: 4, transform: "rotate(22 14 13)", fill: SKIN, stroke: SKIN_DARK, "stroke-width": 0.8 }],
  ],
  heart: [
    ["path", { d: "M12 21.35l-1.45-1.32C5.4 15.36 2 12.28 2 8.5 2 5.42 4.42 3 7.5 3c1.74 0 3.41.81 4.5 2.09C13.09 3.81 14.76 3 16.5 3 19.58 3 22 5.42 22 8.5c0 3.78-3.4 6.86-8.55 11.54L12 21.35z", fill: "#E5484D" }],
    ["ellipse", { cx: 7.2, cy: 7.6, rx: 2, ry: 1.3, transform: "rotate(-35 7.2 7.6)", fill: "#FF9EA1" }],
  ],
  laugh: [
    ...FACE,
    ["path", { d: "M6.5 9.5q1.6-2 3.2 0M14.3 9.5q1.6-2 3.2 0", fill: "none", stroke: "#5B3A00", "stroke-width": 1.3, "stroke-linecap": "round" }],
    ["path", { d: "M6 13h12c0 3.3-2.7 6-6 6s-6-2.7-6-6z", fill: "#7A2E0E" }],
    ["path", { d: "M8 13h8v1.4H8z", fill: "#FFFFFF" }],
    ["path", { d: "M3.2 11.3c-1 1.4-1.3 2.6-.6 3.3.7.7 1.8.3 2.2-.7.3-.8-.3-1.8-1.6-2.6zM20.8 11.3c1 1.4 1.3 2.6.6 3.3-.7.7-1.8.3-2.2-.7-.3-.8.3-1.8 1.6-2.6z", fill: "#4FB3FF" }],
  ],
  surprised: [
    ...FACE,
    ["ellipse", { cx: 8.5, cy: 9.5, rx: 1.3, ry: 1.8, fill: "#5B3A00" }],
    ["ellipse", { cx: 15.5, cy: 9.5, rx: 1.3, ry: 1.8, fill: "#5B3A00" }],
    ["ellipse", { cx: 12, cy: 16, rx: 2.4, ry: 3, fill: "#7A2E0E" }],
  ],
  party: [
    ["path", { d: "M2.5 21.5 7.2 8.3l8.5 8.5z", fill: "#F5A524", stroke: "#C26A00", "stroke-width": 0.8, "stroke-linejoin": "round" }],
    ["path", { d: "M4.3 16.4l3.3 3.3M5.8 12.2l6 6", stroke: "#E5484D", "stroke-width": 1.4 }],
    ["circle", { cx: 15.5, cy: 4, r: 1.3, fill: "#3B7CFF" }],
    ["circle", { cx: 20, cy: 9, r: 1.3, fill: "#30A46C" }],
    ["circle", { cx: 19.5, cy: 3.5, r: 1, fill: "#E5484D" }],
    ["path", { d: "M11.5 6.5c.8-1.6.2-3-.8-4M17.5 12.5c1.6-.8 3-.2 4 .8", fill: "none", stroke: "#9B5DE5", "stroke-width": 1.4, "stroke-linecap": "round" }],
  ],
};

/** The names of the reactions, in the picker's order. */
export const REACTION_NAMES = Object.keys(REACTION_SHAPES);

export function ReactionIcon({ name, size = 24 }) {
  const shapes = REACTION_SHAPES[name] || [];
  return html`<svg class="reaction-icon" width=${size} height=${size} viewBox="0 0 24 24" aria-hidden="true" focusable="false">
    ${shapes.map(([tag, attributes]) => h(tag, attributes))}</svg>`;
}
