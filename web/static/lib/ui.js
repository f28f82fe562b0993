// Shared UI helpers: htm bound to Preact, the language hook and switch, small accessible widgets.
import { h, render } from "preact";
import { useEffect, useState } from "preact/hooks";
import htm from "htm";
import { Icon } from "./icons.js";
import { currentLanguage, languages, onLanguageChange, setLanguage, t } from "./i18n.js";

export const html = htm.bind(h);
export { render };

/** Re-render the calling component when the language changes. */
export function useLanguage() {
  const [language, setState] = useState(currentLanguage());
  useEffect(() => onLanguageChange(setState), []);
  return language;
}

/** A select that switches between zh-CN and en. */
export function LanguageSwitch() {
  const language = useLanguage();
  return html`<label class="language-switch">
    <span class="visually-hidden">${t("ui.language")}</span>
    <select aria-label=${t("ui.language")} value=${language} onChange=${(e) => setLanguage(e.target.value)}>
      ${languages.map((code) => html`<option value=${code} selected=${code === language}>${t(`language.${code}`)}</option>`)}
    </select>
  </label>`;
}

/** An icon-and-label button; `pressed` makes it a toggle (aria-pressed). */
export function ToolButton({ icon, label, onClick, pressed, danger, disabled, id, shortcut }) {
  const classes = ["tool", pressed ? "on" : "", danger ? "danger" : ""].join(" ");
  return html`<button type="button" id=${id} class=${classes} aria-label=${label} title=${shortcut ? `${label} (${shortcut})` : label}
    aria-pressed=${pressed === undefined ? undefined : String(Boolean(pressed))} onClick=${onClick} disabled=${disabled}>
    <span class="icon" aria-hidden="true"><${Icon} name=${icon} /></span><span class="tool-label">${label}</span>
  </button>`;
}

/** Copy text to the clipboard, falling back to a hidden textarea where the API is unavailable. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
}
