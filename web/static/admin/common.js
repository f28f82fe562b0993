// Helpers shared by the admin views: loading, error text, the account filter.
import { useCallback, useEffect, useState } from "preact/hooks";
import { t } from "../lib/i18n.js";
import { html } from "../lib/ui.js";

/** A translated error message for an ApiError (the server's message names the field). */
export function errorText(err) {
  const key = `admin.error.${err.code}`;
  const known = t(key);
  if (known !== key) return known;
  return t("admin.error.other", { message: err.message });
}

/** Load data with `fn`; returns [data, error, reload]. */
export function useLoad(fn, deps) {
  const [state, setState] = useState({ data: null, error: null });
  const reload = useCallback(() => {
    fn().then((data) => setState({ data, error: null })).catch((error) => setState({ data: null, error }));
  }, deps);
  useEffect(reload, [reload]);
  return [state.data, state.error, reload];
}

/** account_id to send with create and list calls: only a platform admin names one. */
export function accountParam(user, accountId) {
  return user.account_id === null ? accountId : null;
}

export function ErrorBox({ error }) {
  return error ? html`<p class="error" role="alert">${typeof error === "string" ? error : errorText(error)}</p>` : null;
}

export function Loading() {
  return html`<p class="muted" role="status">${t("admin.loading")}</p>`;
}

/** The translation of `${prefix}.${value}`, or the raw value for one the catalogue does not know. */
export function label(prefix, value) {
  const key = `${prefix}.${value}`;
  const text = t(key);
  return text === key ? value : text;
}
