// The recording's watch page at /recordings/watch?token=…: the link the meeting's host gets when recording
// stops, and the "recording ready" e-mail's. It follows the rendering, then plays the composite; no sign-in.
import { useEffect, useState } from "preact/hooks";
import { t } from "../lib/i18n.js";
import { LanguageSwitch, html, render, useLanguage } from "../lib/ui.js";

const root = document.getElementById("app");
const token = new URLSearchParams(location.search).get("token") || "";
// While the composite renders, its progress is asked for this often.
const POLL_MS = 2000;

async function fetchState() {
  const response = await fetch(`/api/v1/recordings/watch?token=${encodeURIComponent(token)}`);
  if (response.status === 404) return { missing: true };
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}

function Watch() {
  useLanguage();
  const [info, setInfo] = useState(null);
  const [problem, setProblem] = useState(token ? null : "missing");

  useEffect(() => {
    if (!token) return undefined;
    let timer = null;
    let stopped = false;
    const poll = async () => {
      try {
        const next = await fetchState();
        if (stopped) return;
        if (next.missing) {
          setProblem("missing");
          return;
        }
        setProblem(null);
        setInfo(next);
        if (next.state === "ready" || next.state === "failed") return;
      } catch {
        if (!stopped) setProblem("offline");
      }
      timer = setTimeout(poll, POLL_MS);
    };
    poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, []);

  let body;
  if (problem === "missing") body = html`<p id="watch-status" class="error">${t("watch.missing")}</p>`;
  else if (info?.state === "failed") body = html`<p id="watch-status" class="error">${t("watch.failed")}</p>`;
  else if (info?.video_url) {
    body = html`<video id="watch-video" src=${`/api/v1/${info.video_url}`} controls playsinline
      aria-label=${t("watch.player")}></video>`;
  } else {
    const progress = info?.state === "rendering" ? info.progress : 0;
    body = html`<div id="watch-status" class="starting"><div class="spinner" aria-hidden="true"></div>
      <p><strong>${t("watch.preparing")}</strong></p>
      <progress id="watch-progress" max="100" value=${progress} aria-label=${t("watch.progress")}></progress>
      <p class="muted">${t("watch.progress_value", { percent: progress })}</p>
      ${problem === "offline" ? html`<p class="muted">${t("watch.offline")}</p>` : null}</div>`;
  }
  return html`<main class="live-page">
    <header class="live-head">
      <h1 id="watch-title">${info?.title || t("watch.title")}</h1>
      <div class="corner"><${LanguageSwitch} /></div>
    </header>
    <div class="stage">${body}</div>
  </main>`;
}

render(html`<${Watch} />`, root);
