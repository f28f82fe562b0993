// Small SVG charts for the reports page, without a build step or a chart library: a line over time and bars.
// Presentation attributes only (no inline style), so the pages' Content-Security-Policy applies unchanged.
import { formatNumber } from "../lib/i18n.js";
import { html } from "../lib/ui.js";

const WIDTH = 640;
const HEIGHT = 220;
const PAD = { left: 44, right: 12, top: 12, bottom: 30 };
const ACCENT = "#3b7cff";
const GRID = "#d8dde8";
const INK = "#4a5568";

/** A "nice" upper bound for the y axis, at least `max`: 1, 2, 4, 6 or 8 times a power of ten, so that half
 * of it (the middle grid line) is a round number too. */
export function niceMax(max) {
  if (!(max > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 4, 6, 8, 10]) {
    if (step * power >= max) return step * power;
  }
  return 10 * power;
}

function YAxis({ top, digits, width }) {
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  return [0, top / 2, top].map((v) => {
    const y = PAD.top + innerH - (innerH * v) / top;
    return html`<g key=${v}>
      <line x1=${PAD.left} x2=${width - PAD.right} y1=${y} y2=${y} stroke=${GRID} stroke-width="1" />
      <text x=${PAD.left - 6} y=${y + 4} text-anchor="end" font-size="11" fill=${INK}>${formatNumber(v, { maximumFractionDigits: digits })}</text>
    </g>`;
  });
}

/** The SVG path of a step line: value i holds from edge i to edge i+1 (each value is a whole step's peak). */
export function stepPath(values, top, width = WIDTH) {
  const innerW = width - PAD.left - PAD.right;
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  const x = (i) => (PAD.left + (innerW * i) / Math.max(1, values.length)).toFixed(1);
  const y = (v) => (PAD.top + innerH - (innerH * v) / top).toFixed(1);
  return values.map((v, i) => `${i ? "V" : `M${x(0)},`}${y(v)} H${x(i + 1)}`).join(" ");
}

/** Concurrency-like series over time: one value per label (a step of the day), drawn as steps. */
export function LineChart({ id, title, labels, values, every = 8, width = WIDTH }) {
  const top = Math.max(2, niceMax(Math.max(0, ...values)));
  const path = stepPath(values, top, width);
  const base = HEIGHT - PAD.bottom;
  const innerW = width - PAD.left - PAD.right;
  const area = values.length ? `${path} V${base} H${PAD.left} Z` : "";
  return html`<figure class="chart" id=${id}>
    <figcaption>${title}</figcaption>
    <svg viewBox="0 0 ${width} ${HEIGHT}" width="100%" role="img" aria-label=${title} data-points=${values.length}
      data-values=${values.join(",")}>
      <${YAxis} top=${top} digits=${0} width=${width} />
      <path class="area" d=${area} fill=${ACCENT} fill-opacity="0.12" stroke="none" />
      <path class="series" d=${path} fill="none" stroke=${ACCENT} stroke-width="2" stroke-linejoin="round" />
      ${labels.map((label, i) => (i % every === 0
        ? html`<text key=${i} x=${PAD.left + (innerW * i) / Math.max(1, labels.length)} y=${HEIGHT - 10} text-anchor="middle"
            font-size="11" fill=${INK}>${label}</text>`
        : null))}
    </svg>
  </figure>`;
}

/** Vertical bars, one per label; several `series` ({name, color, values}) make grouped bars. */
export function BarChart({ id, title, labels, series, every = 1, width = WIDTH }) {
  const all = series.flatMap((s) => s.values);
  const top = niceMax(Math.max(0, ...all));
  const innerW = width - PAD.left - PAD.right;
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  const slot = innerW / Math.max(1, labels.length);
  const bar = Math.max(2, (slot * 0.7) / series.length);
  return html`<figure class="chart" id=${id}>
    <figcaption>${title}${series.length > 1
      ? series.map((s) => html` <span class="legend"><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" fill=${s.color} /></svg> ${s.name}</span>`)
      : null}</figcaption>
    <svg viewBox="0 0 ${width} ${HEIGHT}" width="100%" role="img" aria-label=${title} data-bars=${labels.length}>
      <${YAxis} top=${top} digits=${1} width=${width} />
      ${series.map((s, k) => s.values.map((v, i) => {
        const h = (innerH * v) / top;
        const x = PAD.left + slot * i + slot * 0.15 + bar * k;
        return html`<rect key=${`${k}-${i}`} class="bar" x=${x} y=${PAD.top + innerH - h} width=${bar} height=${h} fill=${s.color}>
          <title>${labels[i]}: ${formatNumber(v, { maximumFractionDigits: 1 })}</title>
        </rect>`;
      }))}
      ${labels.map((label, i) =>
        i % every === 0
          ? html`<text key=${i} x=${PAD.left + slot * (i + 0.5)} y=${HEIGHT - 10} text-anchor="middle" font-size="11" fill=${INK}>${label}</text>`
          : null,
      )}
    </svg>
  </figure>`;
}

export const COLORS = [ACCENT, "#30a46c", "#f5a524", "#e5484d", "#8e4ec6", "#12a594"];
