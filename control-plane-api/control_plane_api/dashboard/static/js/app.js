// Entry point: who is logged in, the hash router, the header (connection state, user, logout).

import { api, whenUnauthenticated } from "./api.js";
import { h, replace, toast } from "./dom.js";
import { LiveStream } from "./live.js";
import { showDriftNotice } from "./notices.js";
import { fleet, session, subscribe } from "./store.js";
import { mountCosts } from "./views/costs.js";
import { mountDefinitionDetail } from "./views/definition-detail.js";
import { mountDefinitions } from "./views/definitions.js";
import { mountOverview } from "./views/overview.js";
import { mountPoolDetail } from "./views/pool-detail.js";
import { mountPools } from "./views/pools.js";
import { mountSessionDetail } from "./views/session-detail.js";
import { mountSessions } from "./views/sessions.js";
import { mountSettings } from "./views/settings.js";
import { mountWorkerDetail } from "./views/worker-detail.js";
import { mountWorkers } from "./views/workers.js";

const main = document.getElementById("main");
const live = new LiveStream();
let unmount = () => {};

const CONNECTION_TEXT = {
  idle: "Not connected", connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…",
  offline: "Disconnected",
};

subscribe((kind, detail) => {
  if (kind === "port-drift") showDriftNotice(detail);
  if (kind !== "connection") return;
  const badge = document.getElementById("connection");
  badge.dataset.state = detail.state;
  badge.textContent = CONNECTION_TEXT[detail.state] + (detail.detail ? ` (${detail.detail})` : "");
});

function route() {
  const [path, query = ""] = (location.hash || "#/overview").split("?");
  const [, page = "overview", id, tab] = path.split("/");
  return { page, id: id ? decodeURIComponent(id) : null, tab: tab || null, params: new URLSearchParams(query) };
}

function render() {
  if (!session.me) return;
  unmount();
  const { page, id, tab, params } = route();
  for (const link of document.querySelectorAll("[data-nav]")) {
    const current = link.dataset.nav === page;
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  replace(main);
  if (page === "workers" && id) unmount = mountWorkerDetail(main, id, tab);
  else if (page === "workers") unmount = mountWorkers(main, params);
  else if (page === "pools" && id) unmount = mountPoolDetail(main, id);
  else if (page === "pools") unmount = mountPools(main, params);
  else if (page === "definitions" && id) unmount = mountDefinitionDetail(main, id);
  else if (page === "definitions") unmount = mountDefinitions(main, params);
  else if (page === "sessions" && id) unmount = mountSessionDetail(main, id);
  else if (page === "sessions") unmount = mountSessions(main, params);
  else if (page === "costs") unmount = mountCosts(main, params);
  else if (page === "settings") unmount = mountSettings(main);
  else unmount = mountOverview(main);
}

const LOGIN_ERRORS = {
  sso_unavailable: "Single sign-on is not available right now.",
  sso_denied: "Single sign-on was cancelled or refused.",
  sso_failed: "Single sign-on did not complete; please try again.",
  no_role: "Your account has no LCM role (admin or viewer); ask an administrator.",
};

async function loginOptions() {
  try {
    return await api("/api/auth/options");
  } catch {
    return { local_users: true, sso: false };
  }
}

async function showLogin(message) {
  unmount();
  unmount = () => {};
  session.me = null;
  live.stop();
  fleet.clear();
  document.getElementById("nav-links").hidden = true;
  replace(document.getElementById("notices")).hidden = true;
  document.getElementById("user-box").hidden = true;
  const error = h("p", { id: "login-error", class: "form-error", role: "alert" }, message || "");
  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const password = h("input", { id: "password", name: "password", type: "password",
    autocomplete: "current-password", required: true });
  const options = await loginOptions();
  const sso = options.sso ? h("a", { href: "/api/auth/oidc/start", role: "button", class: "sso" }, "Sign in with SSO")
    : null;
  const form = h("form", { class: "login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Sign in"),
    sso,
    options.local_users || !options.sso ? [
      sso ? h("p", { class: "hint" }, "or with a local account:") : null,
      h("label", { for: "username" }, "Username", username),
      h("label", { for: "password" }, "Password", password),
      error,
      h("button", { type: "submit" }, "Log in")] : error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      await api("/api/auth/login", { method: "POST", body: { username: username.value, password: password.value } });
      await start();
    } catch (failure) {
      error.textContent = failure.status === 401 ? "Wrong username or password." : failure.message;
      password.select();
    }
  });
  replace(main, h("article", { class: "login-card" }, form));
  if (username.isConnected) username.focus();
}

async function start(message = null) {
  let me;
  try {
    me = await api("/api/auth/me");
  } catch (failure) {
    if (failure.status === 401) return showLogin(message);
    replace(main, h("p", { role: "alert" }, `The control plane did not answer: ${failure.message}`));
    return;
  }
  session.me = me;
  session.isAdmin = me.roles.includes("admin");
  document.body.dataset.role = session.isAdmin ? "admin" : "viewer";
  document.getElementById("nav-links").hidden = false;
  document.getElementById("user-box").hidden = false;
  document.getElementById("user-name").textContent = `${me.subject} (${me.roles.join(", ")})`;
  for (const el of document.querySelectorAll("[data-role=admin]")) el.hidden = !session.isAdmin;
  live.start();
  render();
  main.focus();
}

document.getElementById("logout").addEventListener("click", async () => {
  try {
    await api("/api/auth/logout", { method: "POST" });
  } catch (failure) {
    if (failure.status !== 401) toast(`Logout failed: ${failure.message}`, "bad");
  }
  showLogin("You are logged out.");
});

whenUnauthenticated(() => {
  if (session.me) showLogin("Your session has ended; please log in again.");
});
window.addEventListener("hashchange", () => {
  render();
  main.focus();
});
const loginError = new URLSearchParams(location.search).get("login_error");
if (loginError) history.replaceState(null, "", `/${location.hash}`); // the SSO callback's verdict, shown once
start(LOGIN_ERRORS[loginError] || null);
