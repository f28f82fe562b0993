// The guided start: the first account (platform admin only), the first room, then its link and invitation.
// It is what a new admin sees after the password change while there is nothing yet, and it can be reopened.
import { useState } from "preact/hooks";
import { t } from "../lib/i18n.js";
import { html } from "../lib/ui.js";
import { api } from "./api.js";
import { ErrorBox } from "./common.js";
import { RoomShare } from "./rooms.js";

function Steps({ steps, current }) {
  return html`<ol class="steps">
    ${steps.map((name, i) => html`<li key=${name} class=${i < steps.indexOf(current) ? "done" : ""}
      aria-current=${name === current ? "step" : undefined}>${t(`firstrun.step.${name}`)}</li>`)}
  </ol>`;
}

function AccountStep({ accounts, accountId, onAccount }) {
  const [name, setName] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const current = accounts.find((a) => a.id === accountId);
  async function submit(e) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onAccount(await api.post("/accounts", { name: name.trim() }), true);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  return html`<form class="form-grid" onSubmit=${submit} aria-labelledby="firstrun-account-title">
    <h2 id="firstrun-account-title">${t("firstrun.account.title")}</h2>
    <p class="explain">${t("firstrun.account.explain")}</p>
    <label for="firstrun-account-name">${t("firstrun.account.name")}</label>
    <input id="firstrun-account-name" required maxlength="200" value=${name} onInput=${(e) => setName(e.target.value)}
      placeholder=${t("firstrun.account.name_hint")} />
    <${ErrorBox} error=${error} />
    <div class="actions">
      <button type="submit" class="primary" disabled=${busy || !name.trim()}>${t("firstrun.account.create")}</button>
      ${current
        ? html`<button type="button" onClick=${() => onAccount(current, false)}>${t("firstrun.account.use", { name: current.name })}</button>`
        : null}
    </div>
  </form>`;
}

function RoomStep({ account, platform, onRoom }) {
  const [name, setName] = useState("");
  const [passcode, setPasscode] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  async function submit(e) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = { name: name.trim(), passcode: passcode || null };
      if (platform) body.account_id = account.id;
      onRoom(await api.post("/rooms", body));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  return html`<form class="form-grid" onSubmit=${submit} aria-labelledby="firstrun-room-title">
    <h2 id="firstrun-room-title">${t("firstrun.room.title")}</h2>
    <p class="explain">${account ? t("firstrun.room.explain", { account: account.name }) : t("firstrun.room.explain_own")}</p>
    <label for="firstrun-room-name">${t("firstrun.room.name")}</label>
    <input id="firstrun-room-name" required maxlength="200" value=${name} onInput=${(e) => setName(e.target.value)}
      placeholder=${t("firstrun.room.name_hint")} />
    <label for="firstrun-room-passcode">${t("firstrun.room.passcode")}</label>
    <input id="firstrun-room-passcode" inputmode="numeric" pattern="[0-9]{6,10}" value=${passcode}
      title=${t("admin.rooms.passcode_hint")} placeholder=${t("firstrun.room.passcode_hint")}
      onInput=${(e) => setPasscode(e.target.value)} />
    <${ErrorBox} error=${error} />
    <div class="actions">
      <button type="submit" class="primary" disabled=${busy || !name.trim()}>${t("firstrun.room.create")}</button>
    </div>
  </form>`;
}

/** props: user, accountId, accounts, onAccount(account) (made or chosen), onDone({account, room}), onSkip. */
export function GuidedStart({ user, accountId, accounts, onAccount, onDone, onSkip }) {
  const platform = user.account_id === null;
  const steps = platform ? ["account", "room", "invite"] : ["room", "invite"];
  const [step, setStep] = useState(steps[0]);
  const [account, setAccount] = useState(null);
  const [created, setCreated] = useState(false);
  const [room, setRoom] = useState(null);
  return html`<section class="guided card" aria-labelledby="firstrun-title">
    <div class="section-head">
      <h1 id="firstrun-title">${t("firstrun.title")}</h1>
      <button type="button" class="link" onClick=${onSkip}>${t("firstrun.skip")}</button>
    </div>
    <p>${t("firstrun.intro")}</p>
    <${Steps} steps=${steps} current=${step} />
    ${step === "account"
      ? html`<${AccountStep} accounts=${accounts} accountId=${accountId} onAccount=${(a, isNew) => {
          setAccount(a);
          setCreated(isNew);
          onAccount(a);
          setStep("room");
        }} />`
      : null}
    ${step === "room"
      ? html`<${RoomStep} account=${account} platform=${platform} onRoom=${(r) => {
          setRoom(r);
          setStep("invite");
        }} />`
      : null}
    ${step === "invite"
      ? html`<div class="invite-step">
          <h2>${t("firstrun.invite.title")}</h2>
          <p class="explain">${t("firstrun.invite.explain", { number: room.meeting_number })}</p>
          <${RoomShare} room=${room} />
          <div class="actions">
            <button type="button" class="primary" onClick=${() => onDone({ account: created || platform ? account : null, room })}>
              ${t("firstrun.done")}</button>
          </div>
          <p class="muted">${t("firstrun.next")}</p>
        </div>`
      : null}
  </section>`;
}
