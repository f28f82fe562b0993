// "Forgot password?" under the sign-in form: the server mails a one-time password to the address typed
// above (and says the same whether or not it has such a user).
import { useState } from "preact/hooks";
import { t } from "../lib/i18n.js";
import { html } from "../lib/ui.js";
import { api } from "./api.js";
import { errorText } from "./common.js";

export function ForgotPassword({ email }) {
  const [state, setState] = useState(null);
  async function ask() {
    if (!email.includes("@")) {
      setState({ error: t("notify.reset.need_email") });
      return;
    }
    try {
      await api.post("/auth/password-reset", { email });
      setState({ sent: true });
    } catch (err) {
      setState({ error: errorText(err) });
    }
  }
  return html`<div class="forgot-password">
    <button type="button" class="link" id="login-forgot" onClick=${ask}>${t("notify.reset.link")}</button>
    ${state?.sent ? html`<p class="muted" role="status" id="login-reset-sent">${t("notify.reset.sent", { email })}</p>` : null}
    ${state?.error ? html`<p class="error" role="alert">${state.error}</p>` : null}
  </div>`;
}
