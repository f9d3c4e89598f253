// A worker's detail page: header with phase badge and admin actions, then accessible tabs
// (AWS, CML, Monitoring, Events). Refreshed when an event about this worker arrives. Its cost over the last
// 24 hours (running and stopped) is re-read every 30 s and soon after its status changes.

import { actionButtons, refreshButtons } from "../actions.js";
import { api } from "../api.js";
import { costFacts, readCosts, throttle } from "../costs.js";
import { badge, h, replace, toast, when } from "../dom.js";
import { session, subscribe } from "../store.js";
import { mountMonitoring } from "./monitoring.js";
import { awsTab, cmlTab, eventsTab } from "./worker-tabs.js";

// Why the worker's health is what it is: its telemetry's reasons (they change with every report).
function reasons(worker) {
  return worker.telemetry?.health_reasons || [];
}

const COST_REFRESH_MS = 30_000;
const COST_THROTTLE_MS = 3_000;
// This worker's events after which it costs differently (a metrics report does not change it).
const COSTLY_EVENTS = new Set(["worker.status.updated", "worker.paused", "worker.resumed", "worker.terminated",
  "worker.pool.changed"]);

/** The worker's cost section; `load()` re-reads it (throttled), `destroy()` on leaving. */
function workerCost(id) {
  const box = h("div", { id: "worker-cost" }, h("p", { class: "hint" }, "Loading…"));
  const section = h("section", { class: "detail-section", "aria-labelledby": "worker-cost-title" },
    h("h3", { id: "worker-cost-title" }, "Cost", h("a", { href: "#/costs?period=24h&group_by=worker",
      class: "sessions-link" }, "All costs")), box);
  const read = async () => {
    try {
      replace(box, costFacts(await readCosts({ hoursBack: 24, groupBy: "worker", filters: { worker_id: id } })));
    } catch (failure) {
      replace(box, h("p", { role: "alert" }, `Cost unavailable: ${failure.message}`));
    }
  };
  const load = throttle(read, COST_THROTTLE_MS);
  const timer = setInterval(load, COST_REFRESH_MS);
  load();
  return { section, load, destroy: () => { clearInterval(timer); load.cancel(); } };
}

const TABS = [["aws", "AWS"], ["cml", "CML"], ["monitoring", "Monitoring"], ["events", "Events"]];

function adminControls(worker, reload) {
  const idle = worker.activity?.idle_detection_enabled;
  const licensed = ["registered", "registering", "evaluation"].includes(worker.license?.status);
  const toggle = h("button", { type: "button", class: "compact secondary outline", dataset: { action: "idle" } },
    idle ? "Disable idle detection" : "Enable idle detection");
  toggle.addEventListener("click", async () => {
    try {
      await api(`/api/workers/${encodeURIComponent(worker.id)}/idle-detection`, { method: "PUT", body: { enabled: !idle } });
      toast(`Idle detection ${idle ? "disabled" : "enabled"} for ${worker.name}.`, "ok");
      reload();
    } catch (failure) {
      toast(`Idle detection change failed: ${failure.message}`, "bad");
    }
  });
  const action = licensed ? "deregister" : "register";
  const licence = h("button", { type: "button", class: "compact secondary outline", dataset: { action: "licence" } },
    licensed ? "Deregister licence" : "Register licence");
  licence.disabled = !["running", "draining"].includes(worker.status) || Boolean(worker.license?.pending_action);
  licence.addEventListener("click", async () => {
    if (!window.confirm(`${worker.name}: ${licence.textContent}?`)) return;
    try {
      await api(`/api/workers/${encodeURIComponent(worker.id)}/license/${action}`, { method: "POST" });
      toast(`Licence ${action} requested for ${worker.name}.`, "ok");
      reload();
    } catch (failure) {
      toast(`Licence ${action} failed: ${failure.message}`, "bad");
    }
  });
  return h("div", { class: "button-row" },
    actionButtons(worker, undefined, reload), toggle, licence);
}

function tabList(id, current, onSelect) {
  const tabs = TABS.map(([key, label]) => h("button", {
    type: "button", role: "tab", id: `tab-${key}`, "aria-controls": "tab-panel", "aria-selected": String(key === current),
    tabindex: key === current ? "0" : "-1", dataset: { tab: key },
  }, label));
  const list = h("div", { role: "tablist", "aria-label": "Worker details", class: "tabs" }, tabs);
  list.addEventListener("click", (event) => {
    const tab = event.target.closest("[role=tab]");
    if (tab) onSelect(tab.dataset.tab);
  });
  list.addEventListener("keydown", (event) => {
    const index = TABS.findIndex(([key]) => key === current);
    const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: TABS.length - 1 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const next = TABS[(moves[event.key] + TABS.length) % TABS.length][0];
    onSelect(next, true);
  });
  return list;
}

// What an operator must know before acting: an instance that cannot be launched, a drain under way, sessions
// held, a duplicate instance, a licence that was not released.
function notices(worker) {
  const lines = [];
  const failure = worker.launch_failure;
  if (failure) {
    lines.push(`Launch failed ${failure.attempts} time(s) since ${when(failure.since)}, last at `
      + `${when(failure.last_at)} (retried with backoff): ${failure.error}`);
  }
  if (worker.drain) {
    const then = { stopped: "stop", terminated: "terminate", running: "stay running, drained" }[worker.drain.then];
    lines.push(worker.drain.completed_at ? `Drained: no session left; it will ${then}.`
      : `Draining: takes no new session; ${worker.sessions} session(s) left, then it will ${then}.`);
  } else if (worker.sessions) {
    lines.push(`Holds ${worker.sessions} lablet session(s): stop and terminate need a drain (or force).`);
  }
  if (worker.instance_conflict) lines.push(`Duplicate instance: ${worker.instance_conflict}`);
  if (worker.license?.last_error) lines.push(`Licence: ${worker.license.last_error}`);
  if (!lines.length) return null;
  return h("ul", { class: "notices", dataset: { field: "notices" }, role: "status" },
    lines.map((line) => h("li", {}, line)));
}

// The pool a worker belongs to, as a link (its name once read; its id until then, or if it cannot be read).
const poolNames = new Map();

function poolLink(poolId, redraw) {
  if (!poolNames.has(poolId)) {
    poolNames.set(poolId, null);
    api(`/api/pools/${encodeURIComponent(poolId)}`).then((detail) => {
      poolNames.set(poolId, detail.pool.name);
      redraw();
    }).catch(() => {});
  }
  return h("a", { href: `#/pools/${encodeURIComponent(poolId)}`, dataset: { field: "pool" } },
    poolNames.get(poolId) || poolId);
}

export function mountWorkerDetail(main, id, initialTab) {
  let tab = TABS.some(([key]) => key === initialTab) ? initialTab : "aws";
  let worker = null;
  let monitoring = null;
  let timer = null;
  let headerKey = null;
  const header = h("div", { class: "detail-header" });
  const tabs = h("div", {});
  const panel = h("div", { id: "tab-panel", role: "tabpanel", tabindex: "0" });
  const cost = workerCost(id);
  replace(main, h("p", {}, h("a", { href: "#/workers" }, "← All workers")), header, cost.section, tabs, panel);

  const drawHeader = () => {
    replace(header,
      h("h1", {}, worker.name),
      h("p", { class: "badges" },
        h("span", { class: "badge-label" }, "Status "), h("span", { dataset: { field: "status" } }, badge(worker.status, "Status")),
        h("span", { class: "badge-label" }, " Phase "), h("span", { dataset: { field: "phase" } }, badge(worker.phase, "Lifecycle phase")),
        h("span", { class: "badge-label" }, " Health "), badge(worker.health_status, "Health"),
        reasons(worker).length ? h("span", { class: "hint" }, ` (${reasons(worker).join("; ")})`) : null,
        worker.pool_id ? [h("span", { class: "badge-label" }, " Pool "), poolLink(worker.pool_id, () => {
          if (worker) drawHeader();
        })] : null),
      notices(worker),
      session.isAdmin ? adminControls(worker, load) : null);
  };
  const drawTabs = () => replace(tabs, tabList(id, tab, (next, focus) => {
    tab = next;
    history.replaceState(null, "", `#/workers/${encodeURIComponent(id)}/${next}`);
    drawTabs();
    drawPanel();
    if (focus) tabs.querySelector(`[data-tab=${next}]`).focus();
  }));
  const drawPanel = () => {
    panel.setAttribute("aria-labelledby", `tab-${tab}`);
    if (tab === "monitoring") {
      if (!monitoring) monitoring = mountMonitoring(panel, worker);
      else monitoring.update(worker);
      return;
    }
    if (monitoring) monitoring.destroy();
    monitoring = null;
    replace(panel, tab === "cml" ? cmlTab(worker) : tab === "events" ? eventsTab(worker) : awsTab(worker));
  };

  async function load() {
    try {
      worker = await api(`/api/workers/${encodeURIComponent(id)}`);
    } catch (failure) {
      replace(header, h("h1", {}, "Worker"), h("p", { role: "alert" }, failure.status === 404
        ? "This worker does not exist (any more)." : `Could not load the worker: ${failure.message}`));
      return;
    }
    // Redraw the header only when what it shows changed: keyboard focus on its buttons survives metrics.
    const key = JSON.stringify([worker.name, worker.status, worker.phase, worker.health_status, reasons(worker),
      worker.activity?.idle_detection_enabled, worker.license?.status, worker.license?.pending_action,
      worker.drain, worker.sessions, worker.instance_conflict, worker.license?.last_error, worker.pool_id,
      worker.launch_failure]);
    if (key !== headerKey) drawHeader();
    headerKey = key;
    const buttons = header.querySelector(".button-row");
    if (buttons) refreshButtons(buttons, worker);
    if (!tabs.firstChild) drawTabs();
    drawPanel();
  }

  load();
  const off = subscribe((kind, detail) => {
    if (kind !== "worker-event" || detail.envelope.data?.worker_id !== id) return;
    if (detail.type === "worker.metrics.updated" && monitoring) monitoring.metrics(detail.envelope.data.summary);
    if (COSTLY_EVENTS.has(detail.type)) cost.load();
    clearTimeout(timer);
    timer = setTimeout(load, 400); // coalesce a burst of events into one read
  });
  return () => {
    off();
    clearTimeout(timer);
    cost.destroy();
    if (monitoring) monitoring.destroy();
  };
}
