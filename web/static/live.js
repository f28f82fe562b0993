// The live viewer page at /live/{id}: a placeholder until live streams are served.
import { t } from "./lib/i18n.js";
import { LanguageSwitch, html, render, useLanguage } from "./lib/ui.js";

const root = document.getElementById("app");

function Live() {
  useLanguage();
  return html`<main class="centered"><div class="card">
    <h1>${t("live.title")}</h1>
    <p id="live-unavailable">${t("live.unavailable", { id: root.dataset.arg })}</p>
  </div><div class="corner"><${LanguageSwitch} /></div></main>`;
}

render(html`<${Live} />`, root);
