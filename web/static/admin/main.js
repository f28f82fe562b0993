// The admin UI at /admin: login, then rooms, bookings, sites and endpoints, live meetings, reports.
import { useEffect, useState } from "preact/hooks";
import { t } from "../lib/i18n.js";
import { LanguageSwitch, html, render, useLanguage } from "../lib/ui.js";
import { api, handleUnauthorized, setToken, token } from "./api.js";
import { errorText } from "./common.js";
import { SECTIONS } from "./sections.js";

const VIEWS = Object.fromEntries(SECTIONS.map((s) => [s.name, s.view]));

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

/** A platform admin works inside one account at a time; other users are bound to theirs. */
function AccountPicker({ user, accountId, setAccountId }) {
  const [accounts, setAccounts] = useState([]);
  const [name, setName] = useState("");
  useEffect(() => {
    if (user.account_id !== null) return;
    api.get("/accounts?limit=500").then((list) => {
      setAccounts(list);
      if (accountId === null && list.length) setAccountId(list[0].id);
    });
  }, [user]);
  if (user.account_id !== null) return null;
  async function create(e) {
    e.preventDefault();
    const account = await api.post("/accounts", { name });
    setAccounts([...accounts, account]);
    setAccountId(account.id);
    setName("");
  }
  return html`<div class="account-picker">
    <label for="account">${t("admin.account")}</label>
    <select id="account" value=${accountId ?? ""} onChange=${(e) => setAccountId(Number(e.target.value))}>
      ${accounts.map((a) => html`<option value=${a.id} selected=${a.id === accountId}>${a.name}</option>`)}
    </select>
    ${accounts.length === 0
      ? html`<form onSubmit=${create} class="inline">
          <input aria-label=${t("admin.account_new")} placeholder=${t("admin.account_new")} value=${name} required
            onInput=${(e) => setName(e.target.value)} />
          <button type="submit">${t("admin.create")}</button>
        </form>`
      : null}
  </div>`;
}

function App() {
  useLanguage();
  const [user, setUser] = useState(null);
  const [checked, setChecked] = useState(false);
  const [section, setSection] = useState(sectionFromPath());
  const [accountId, setAccountId] = useState(null);

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
    if (user && user.account_id !== null) setAccountId(user.account_id);
  }, [user]);

  if (!checked) return null;
  if (!user) return html`<${Login} onLogin=${setUser} />`;
  if (user.must_change_password) return html`<${ChangePassword} user=${user} onChanged=${setUser} />`;

  function go(e, name) {
    e.preventDefault();
    history.pushState(null, "", `/admin/${name}`);
    setSection(name);
  }
  function logout() {
    setToken(null);
    setUser(null);
  }
  const View = VIEWS[section];
  return html`<div class="admin">
    <header class="topbar">
      <a class="brand" href="/admin">${t("app.name")} · ${t("admin.title")}</a>
      <nav aria-label=${t("admin.nav")}>
        ${SECTIONS.filter((s) => !s.platform || user.account_id === null).map(({ name }) => html`<a href=${`/admin/${name}`} id=${`nav-${name}`} aria-current=${section === name ? "page" : undefined}
          onClick=${(e) => go(e, name)}>${t(`admin.nav.${name}`)}</a>`)}
      </nav>
      <div class="topbar-tools">
        <${AccountPicker} user=${user} accountId=${accountId} setAccountId=${setAccountId} />
        <span class="muted">${user.email}</span>
        <${LanguageSwitch} />
        <button type="button" onClick=${logout}>${t("admin.logout")}</button>
      </div>
    </header>
    <main class="content">
      ${accountId === null && user.account_id === null
        ? html`<p class="notice">${t("admin.pick_account")}</p>`
        : html`<${View} key=${`${section}-${accountId}`} user=${user} accountId=${accountId} />`}
    </main>
  </div>`;
}

render(html`<${App} />`, document.getElementById("app"));
