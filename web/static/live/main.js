// The live viewer page at /live/{id}: title, state (starting soon, live, ended — watch the replay), the
// player (hls.js, or native HLS on Safari) and the viewer count when the channel shows it.
import { useEffect, useRef, useState } from "preact/hooks";
import { t } from "../lib/i18n.js";
import { LanguageSwitch, html, render, useLanguage } from "../lib/ui.js";
import { LivePlayer, channelInfo } from "../sdk/live.js";

const root = document.getElementById("app");
const channelId = root.dataset.arg;
const staffToken = new URLSearchParams(location.search).get("staff");
// The viewer count and the state shown beside the video are refreshed this often.
const INFO_MS = 15_000;

function Badge({ info, phase }) {
  if (phase === "rehearsal") return html`<span class="badge rehearsal" id="live-badge">${t("live.page.rehearsal")}</span>`;
  if (info?.state === "live") return html`<span class="badge on-air" id="live-badge">${t("live.page.on_air")}</span>`;
  if (info?.state === "replay") return html`<span class="badge replay" id="live-badge">${t("live.page.replay")}</span>`;
  return null;
}

function Status({ info, state, error }) {
  if (error === "archived") return html`<p id="live-status">${t("live.page.archived")}</p>`;
  if (error === "not_found") return html`<p id="live-status">${t("live.page.not_found")}</p>`;
  if (state === "error") return html`<p id="live-status" class="error">${t("live.page.error")}</p>`;
  if (info?.state === "replay") return html`<p id="live-status" class="muted">${t("live.page.ended_replay")}</p>`;
  if (state === "waiting" || info?.state === "starting_soon") {
    return html`<div id="live-status" class="starting"><div class="spinner" aria-hidden="true"></div>
      <p><strong>${t("live.page.starting_soon")}</strong></p><p class="muted">${t("live.page.starting_hint")}</p></div>`;
  }
  return null;
}

function Live() {
  useLanguage();
  const video = useRef(null);
  const player = useRef(null);
  const [info, setInfo] = useState(null);
  const [state, setState] = useState("waiting");
  const [phase, setPhase] = useState(null);
  const [problem, setProblem] = useState(null);

  useEffect(() => {
    if (!/^[0-9]{1,10}$/.test(channelId)) {
      setState("error");
      setProblem("not_found");
      return undefined;
    }
    const live = new LivePlayer(video.current, channelId, { staffToken });
    player.current = live;
    window.yunhuiLive = live; // for the browser tests and the console: programDate(), hls
    live.addEventListener("info", (e) => setInfo(e.detail));
    live.addEventListener("state", (e) => {
      setState(e.detail.state);
      setPhase(e.detail.phase);
    });
    live.addEventListener("error", (e) => {
      if (e.detail.fatal) setProblem(e.detail.code);
    });
    live.start().then(() => setPhase(live.session?.phase ?? null));
    const timer = setInterval(() => {
      channelInfo(channelId).then(setInfo).catch(() => {});
    }, INFO_MS);
    return () => {
      clearInterval(timer);
      live.close();
    };
  }, []);

  useEffect(() => {
    if (info?.title) document.title = `${info.title} · ${t("app.name")}`;
  }, [info?.title]);

  const showVideo = state === "playing" || Boolean(player.current?.session);
  return html`<main class="live-page">
    <header class="live-head">
      <h1 id="live-title">${info?.title || t("live.title")}</h1>
      <${Badge} info=${info} phase=${phase} />
      ${info?.viewers != null ? html`<span class="viewers" id="live-viewers">${t("live.page.viewers", { count: info.viewers })}</span>` : null}
      <div class="corner"><${LanguageSwitch} /></div>
    </header>
    <div class="stage">
      <video ref=${video} id="live-video" class=${showVideo ? "" : "hidden"} controls autoplay muted playsinline
        aria-label=${t("live.page.player")}></video>
      <${Status} info=${info} state=${state} error=${problem} />
    </div>
  </main>`;
}

render(html`<${Live} />`, root);
