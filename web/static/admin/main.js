// The admin UI at /admin: login, the password change, the guided start, then the sections of sections.js
// under a one-row top bar and a grouped side navigation.
import { useEffect, useState } from "preact/hooks";
import { t } from "../lib/i18n.js";
import { LanguageSwitch, html, render, useLanguage } from "../lib/ui.js";
import { api, handleUnauthorized, setToken, token } from "./api.js";
import { errorText } from "./common.js";
import { GuidedStart } from "./firstrun.js";
import { MaintenanceBanner } from "./maintenance.js";
import { ForgotPassword } from "./password_reset.js";
import { SECTIONS } from "./sections.js";

const VIEWS = Object.fromEntries(SECTIONS.map((s) => [s.name, s.view]));
// The navigation's groups, in this order; a section of another group goes last, under its own heading.
const GROUPS = ["meetings", "sites", "billing", "operations"];
const ACCOUNT_KEY = "yunhui.admin.account";

function sectionFromPath() {
  const name = location.pathname.replace(/^\/admin\/?/, "").split("/")[0];
  return name in VIEWS ? name : "rooms";
}

function Login({ onLogin }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  async function submit(e) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const result = await api.post("/auth/login", { email, password });
      setToken(result.token);
      onLogin(result.user);
    } catch (err) {
      setError(err.code === "bad_credentials" ? t("admin.login.bad_credentials") : errorText(err));
    } finally {
      setBusy(false);
    }
  }
  return html`<main class="login">
    <form class="card" onSubmit=${submit}>
      <div class="login-head"><h1>${t("app.name")} · ${t("admin.title")}</h1><${LanguageSwitch} /></div>
      <label for="login-email">${t("admin.login.email")}</label>
      <input id="login-email" type="email" autocomplete="username" required value=${email} onInput=${(e) => setEmail(e.target.value)} />
      <label for="login-password">${t("admin.login.password")}</label>
      <input id="login-password" type="password" autocomplete="current-password" required value=${password}
        onInput=${(e) => setPassword(e.target.value)} />
      ${error ? html`<p class="error" role="alert">${error}</p>` : null}
      <button type="submit" class="primary" disabled=${busy}>${t("admin.login.submit")}</button>
      <${ForgotPassword} email=${email} />
    </form>
  </main>`;
}

/** After a one-time password the API refuses everything else until the user picks their own. */
function ChangePassword({ user, onChanged }) {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  async function submit(e) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onChanged(await api.post("/auth/password", { current_password: current, new_password: next }));
    } catch (err) {
      setError(err.code === "bad_credentials" ? t("admin.password.wrong_current") : errorText(err));
    } finally {
      setBusy(false);
    }
  }
  return html`<main class="login">
    <form class="card" onSubmit=${submit}>
      <div class="login-head"><h1>${t("admin.password.title")}</h1><${LanguageSwitch} /></div>
      <p>${t("admin.password.explain", { email: user.email })}</p>
      <label for="password-current">${t("admin.password.current")}</label>
      <input id="password-current" type="password" autocomplete="current-password" required value=${current}
        onInput=${(e) => setCurrent(e.target.value)} />
      <label for="password-new">${t("admin.password.new")}</label>
      <input id="password-new" type="password" autocomplete="new-password" required minlength="8" value=${next}
        onInput=${(e) => setNext(e.target.value)} />
      ${error ? html`<p class="error" role="alert">${error}</p>` : null}
      <button type="submit" class="primary" disabled=${busy}>${t("admin.password.submit")}</button>
    </form>
  </main>`;
}

/** A platform admin works inside one account at a time; "New account" opens the guided start. */
function AccountPicker({ accounts, accountId, setAccountId, onNew }) {
  return html`<div class="account-picker">
    <label for="account">${t("admin.account")}</label>
    <select id="account" value=${accountId ?? ""} disabled=${accounts.length === 0}
      onChange=${(e) => setAccountId(Number(e.target.value))}>
      ${accounts.length === 0 ? html`<option value="">${t("firstrun.no_account")}</option>` : null}
      ${accounts.map((a) => html`<option value=${a.id} selected=${a.id === accountId}>${a.name}</option>`)}
    </select>
    <button type="button" class="small" onClick=${onNew}>${t("firstrun.new_account")}</button>
  </div>`;
}

/** The sections of sections.js under their group headings; platform-only ones for the platform admin. */
function SideNav({ user, section, go, onGuide }) {
  const visible = SECTIONS.filter((s) => !s.platform || user.account_id === null);
  const groups = [...GROUPS, ...new Set(visible.map((s) => s.group).filter((g) => !GROUPS.includes(g)))];
  return html`<nav class="sidenav" aria-label=${t("admin.nav")}>
    ${groups.map((group) => {
      const items = visible.filter((s) => s.group === group);
      if (!items.length) return null;
      return html`<div class="nav-group" key=${group}>
        <h2 class="nav-group-title" id=${`nav-group-${group}`}>${t(`admin.group.${group}`)}</h2>
        <ul aria-labelledby=${`nav-group-${group}`}>
          ${items.map(({ name }) => html`<li key=${name}><a href=${`/admin/${name}`} id=${`nav-${name}`}
            aria-current=${section === name ? "page" : undefined} onClick=${(e) => go(e, name)}>${t(`admin.nav.${name}`)}</a></li>`)}
        </ul>
      </div>`;
    })}
    <div class="nav-group nav-help">
      <button type="button" class="link" onClick=${onGuide}>${t("firstrun.open_guide")}</button>
    </div>
  </nav>`;
}

function App() {
  useLanguage();
  const [user, setUser] = useState(null);
  const [checked, setChecked] = useState(false);
  const [section, setSection] = useState(sectionFromPath());
  const [accountId, setAccountIdState] = useState(null);
  // Platform admin: the accounts to pick from (null until loaded). Account users have exactly one.
  const [accounts, setAccounts] = useState(null);
  // The guided start: "auto" until it is known whether there is anything yet; then true or false.
  const [guide, setGuide] = useState("auto");

  function setAccountId(id) {
    setAccountIdState(id);
    if (id !== null) localStorage.setItem(ACCOUNT_KEY, String(id));
  }

  useEffect(() => {
    handleUnauthorized(() => {
      setToken(null);
      setUser(null);
    });
    const onPop = () => setSection(sectionFromPath());
    window.addEventListener("popstate", onPop);
    if (token()) {
      api.get("/auth/me").then(setUser).catch(() => setToken(null)).finally(() => setChecked(true));
    } else setChecked(true);
    return () => window.removeEventListener("popstate", onPop);
  }, []);

  useEffect(() => {
    if (!user || user.must_change_password) return;
    if (user.account_id !== null) {
      setAccountId(user.account_id);
      // An account with no room yet starts with the guide (its account exists already).
      api.get("/rooms?limit=1").then((rooms) => setGuide((g) => (g === "auto" ? rooms.length === 0 : g))).catch(() => setGuide(false));
      return;
    }
    api.get("/accounts?limit=500").then((list) => {
      setAccounts(list);
      const saved = Number(localStorage.getItem(ACCOUNT_KEY));
      const pick = list.find((a) => a.id === saved) || list[0];
      if (pick) setAccountId(pick.id);
      setGuide((g) => (g === "auto" ? list.length === 0 : g));
    }).catch(() => setGuide(false));
  }, [user]);

  if (!checked) return null;
  if (!user) return html`<${Login} onLogin=${setUser} />`;
  if (user.must_change_password) return html`<${ChangePassword} user=${user} onChanged=${setUser} />`;

  function go(e, name) {
    e.preventDefault();
    history.pushState(null, "", `/admin/${name}`);
    setGuide(false);
    setSection(name);
  }
  function logout() {
    setToken(null);
    setUser(null);
    setGuide("auto");
  }
  function pickAccount(account) {
    // The guide made (or chose) an account: the top bar's picker shows it at once.
    setAccounts((list) => [...(list || []).filter((a) => a.id !== account.id), account]);
    setAccountId(account.id);
  }
  function guided(result) {
    // The guide made a room (and for a platform admin an account): show them in the Rooms section.
    if (result?.account) pickAccount(result.account);
    setGuide(false);
    history.pushState(null, "", "/admin/rooms");
    setSection("rooms");
  }
  const platform = user.account_id === null;
  const View = VIEWS[section];
  let content;
  if (guide === "auto") content = null;
  else if (guide) content = html`<${GuidedStart} user=${user} accountId=${accountId} accounts=${accounts || []}
    onAccount=${pickAccount} onDone=${guided} onSkip=${() => setGuide(false)} />`;
  else if (accountId === null) {
    content = html`<div class="notice">${t("admin.pick_account")}
      <button type="button" class="small primary" onClick=${() => setGuide(true)}>${t("firstrun.open_guide")}</button></div>`;
  } else content = html`<${View} key=${`${section}-${accountId}`} user=${user} accountId=${accountId} />`;
  return html`<div class="admin">
    <header class="topbar">
      <a class="brand" href="/admin">${t("app.name")} · ${t("admin.title")}</a>
      ${platform
        ? html`<${AccountPicker} accounts=${accounts || []} accountId=${accountId} setAccountId=${setAccountId}
            onNew=${() => setGuide(true)} />`
        : null}
      <div class="topbar-tools">
        <span class="muted user-email" title=${user.email}>${user.email}</span>
        <${LanguageSwitch} />
        <button type="button" onClick=${logout}>${t("admin.logout")}</button>
      </div>
    </header>
    <div class="admin-body">
      <${SideNav} user=${user} section=${guide === false ? section : null} go=${go} onGuide=${() => setGuide(true)} />
      <main class="content"><${MaintenanceBanner} />${content}</main>
    </div>
  </div>`;
}

render(html`<${App} />`, document.getElementById("app"));
