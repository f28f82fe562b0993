// Message catalogues (zh-CN and en) embedded in the page by web/ui.py; every visible string goes through t().
const LANGUAGES = ["zh-CN", "en"];
const STORAGE_KEY = "yunhui.language";

const catalogues = JSON.parse(document.getElementById("yunhui-i18n")?.textContent || "{}");

function pick() {
  const query = new URLSearchParams(location.search).get("lang");
  if (LANGUAGES.includes(query)) return query;
  const saved = localStorage.getItem(STORAGE_KEY);
  if (LANGUAGES.includes(saved)) return saved;
  for (const tag of navigator.languages || [navigator.language]) {
    const lower = String(tag).toLowerCase();
    if (lower.startsWith("zh")) return "zh-CN";
    if (lower.startsWith("en")) return "en";
  }
  return "en";
}

let language = pick();
const listeners = new Set();
document.documentElement.lang = language;

/** The current language code. */
export function currentLanguage() {
  return language;
}

export const languages = LANGUAGES;

/** Switch the language (remembered in localStorage) and re-render subscribers. */
export function setLanguage(code) {
  if (!LANGUAGES.includes(code) || code === language) return;
  language = code;
  localStorage.setItem(STORAGE_KEY, code);
  document.documentElement.lang = code;
  for (const listener of listeners) listener(code);
}

export function onLanguageChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Translate `key`, replacing `{name}` placeholders from `vars`. A missing key shows itself (and is a test failure). */
export function t(key, vars) {
  const text = catalogues[language]?.[key] ?? catalogues.en?.[key] ?? key;
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

export function formatDateTime(value, options = { dateStyle: "medium", timeStyle: "short" }) {
  const date = value instanceof Date ? value : new Date(value);
  return new Intl.DateTimeFormat(language, options).format(date);
}

export function formatNumber(value, options) {
  return new Intl.NumberFormat(language, options).format(value);
}
