// The meeting client at /m/{meeting_number}: pre-join, lobby, meeting, reconnecting, ended.
import { useEffect, useState } from "preact/hooks";
import { MeetingClient } from "../sdk/yunhui.js";
import { t } from "../lib/i18n.js";
import { LanguageSwitch, html, render, useLanguage } from "../lib/ui.js";
import { PreJoin } from "./prejoin.js";
import { MeetingRoom } from "./room.js";

const root = document.getElementById("app");
const meetingNumber = root.dataset.arg;
const query = new URLSearchParams(location.search);
const ACCESS_TOKEN_KEY = "yunhui.accessToken";

function Centered({ children }) {
  return html`<main class="centered"><div class="card">${children}</div><div class="corner"><${LanguageSwitch} /></div></main>`;
}

function refusalText(error) {
  const key = `refusal.${error.code}`;
  const text = t(key);
  return text === key ? t("refusal.other", { message: error.message }) : text;
}

function endedText(detail) {
  const key = `ended.${detail?.reason || "other"}`;
  const text = t(key);
  return text === key ? t("ended.other") : text;
}

function App() {
  useLanguage();
  // ?codec=h264 (or the page's data-video-codec): the camera in H.264, which SIP room terminals can take.
  const videoCodec = query.get("codec") || root.dataset.videoCodec;
  const [client] = useState(() => new MeetingClient({ simulcast: query.get("simulcast") !== "0", videoCodec }));
  const [state, setState] = useState(client.state);
  const [media, setMedia] = useState({ mic: null, camera: null });
  const [error, setError] = useState(null);
  // The server says beforehand whether the room needs a passcode (web/ui.py): "required", "none", "unknown".
  const [needsPasscode, setNeedsPasscode] = useState(query.has("pwd") || root.dataset.passcode === "required");
  const [choices, setChoices] = useState(null);
  const [ended, setEnded] = useState(null);
  const joinToken = query.get("token");
  // Signed in to the admin UI: join as the host, unless that login cannot host this meeting.
  const [accessToken, setAccessToken] = useState(localStorage.getItem(ACCESS_TOKEN_KEY));
  const host = Boolean(accessToken || joinToken);

  useEffect(() => {
    window.yunhui = { client };
    const onState = (e) => setState(e.detail);
    const onEnded = (e) => setEnded(e.detail);
    client.addEventListener("state", onState);
    client.addEventListener("ended", onEnded);
    client.addEventListener("left", onEnded);
    window.addEventListener("pagehide", () => client.leave());
    return () => client.removeEventListener("state", onState);
  }, []);

  async function join({ displayName, passcode, muted, speaker }) {
    setError(null);
    setChoices({ displayName, speaker });
    client.muted = { ...muted };
    client.setLocalMedia({ mic: media.mic, camera: media.camera });
    let credentials = { meetingNumber, passcode, displayName };
    if (joinToken) credentials = { token: joinToken, displayName };
    else if (accessToken) credentials = { meetingNumber, accessToken, displayName };
    try {
      await client.join(credentials);
    } catch (err) {
      if (err.code === "wrong_passcode") setNeedsPasscode(true);
      if (accessToken && (err.code === "bad_token" || err.code === "not_authorised")) {
        if (err.code === "bad_token") localStorage.removeItem(ACCESS_TOKEN_KEY);
        setAccessToken(null); // join as a guest next time
        setNeedsPasscode(true);
      }
      setError(refusalText(err));
    }
  }

  function leave() {
    client.leave();
  }

  function stopMedia() {
    // A device switched in the meeting replaced the pre-join tracks in client.local.
    for (const track of [media.mic, media.camera, ...Object.values(client.local)]) track?.stop();
  }

  if (state === "ended" || state === "left") {
    stopMedia();
    return html`<${Centered}>
      <h1>${state === "left" ? t("ended.you_left") : t("ended.title")}</h1>
      <p id="ended-reason" data-reason=${ended?.reason || ""}>${state === "left" ? t("ended.left") : endedText(ended)}</p>
      <button type="button" class="primary" onClick=${() => location.reload()}>${t("ended.rejoin")}</button>
    <//>`;
  }
  if (state === "lobby") {
    return html`<${Centered}>
      <div class="spinner" aria-hidden="true"></div>
      <h1 id="lobby-title">${t("lobby.title")}</h1>
      <p>${t("lobby.text")}</p>
      <button type="button" onClick=${leave}>${t("controls.leave")}</button>
    <//>`;
  }
  if (state === "joined" || state === "reconnecting") {
    return html`<${MeetingRoom} client=${client} selfName=${choices?.displayName || ""} speaker=${choices?.speaker} onLeave=${leave} />
      ${state === "reconnecting"
        ? html`<div class="overlay" role="alertdialog" aria-live="assertive" id="reconnecting">
            <div class="card"><div class="spinner" aria-hidden="true"></div><p>${t("meeting.reconnecting")}</p></div>
          </div>`
        : null}`;
  }
  return html`<${PreJoin} meetingNumber=${meetingNumber} media=${media} setMedia=${setMedia} onJoin=${join}
    busy=${state === "connecting"} error=${error} needsPasscode=${needsPasscode} host=${host} />`;
}

render(html`<${App} />`, root);
