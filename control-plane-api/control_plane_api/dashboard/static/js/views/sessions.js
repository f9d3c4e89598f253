// Lablet sessions: filters (status, definition, worker), rows updated in place from lablet.session.* events,
// and for admins a form that creates a session of an active definition for a timeslot.

import { api } from "../api.js";
import { NA, badge, h, replace, text, toast } from "../dom.js";
import { SESSION_STATUSES, debounce, definitionsPage, localInput, timeslot } from "../lablets.js";
import { fleet, session, subscribe } from "../store.js";

const COLUMNS = [["id", "Session"], ["definition", "Definition"], ["owner", "Owner"], ["status", "Status"],
  ["timeslot", "Timeslot"], ["worker", "Worker"], ["ports", "Ports"], ["note", "Note"]];
const FILTERS = ["status", "definition_id", "worker_id"];

function workerName(id) {
  return id ? fleet.get(id)?.name || id.slice(0, 12) : NA;
}

function cells(s) {
  const note = s.port_drift_detected ? badge("drift", "Port drift")
    : s.status === "pending" ? text(s.pending_reason) : s.last_error ? text(s.last_error) : "";
  const values = {
    id: h("a", { href: `#/sessions/${encodeURIComponent(s.id)}`, "aria-label": `Session ${s.id}` }, s.id.slice(0, 8)),
    definition: `${s.definition_name} v${s.definition_version}`,
    owner: s.owner,
    status: badge(s.status, "Status"),
    timeslot: timeslot(s.timeslot_start, s.timeslot_end),
    worker: s.worker_id ? h("a", { href: `#/workers/${encodeURIComponent(s.worker_id)}` }, workerName(s.worker_id)) : NA,
    ports: String(Object.keys(s.allocated_ports || {}).length),
    note,
  };
  return COLUMNS.map(([key]) => h("td", { dataset: { field: key }, class: key === "ports" ? "num" : null }, values[key]));
}

function select(id, label, options, current) {
  return h("label", { for: `filter-${id}` }, label,
    h("select", { id: `filter-${id}`, name: id },
      h("option", { value: "" }, "All"),
      options.map(([value, shown]) => h("option", { value, selected: value === current }, shown))));
}

function createForm(definitions, onCreated) {
  const error = h("p", { id: "session-error", class: "form-error", role: "alert" });
  const definition = h("select", { id: "session-definition", name: "definition_id", required: true },
    h("option", { value: "" }, definitions.length ? "Choose an active definition" : "No active definition"),
    definitions.map((d) => h("option", { value: d.id }, `${d.name} (v${d.version}, max ${d.max_duration_minutes} min)`)));
  const now = new Date();
  now.setSeconds(0, 0);
  const start = h("input", { id: "session-start", name: "timeslot_start", type: "datetime-local", required: true,
    value: localInput(now) });
  const end = h("input", { id: "session-end", name: "timeslot_end", type: "datetime-local", required: true,
    value: localInput(new Date(now.getTime() + 60 * 60000)) });
  const fitEnd = () => {
    const chosen = definitions.find((d) => d.id === definition.value);
    const begin = new Date(start.value);
    if (!chosen || Number.isNaN(begin.getTime())) return;
    end.value = localInput(new Date(begin.getTime() + Math.min(60, chosen.max_duration_minutes) * 60000));
  };
  definition.addEventListener("change", fitEnd);
  start.addEventListener("change", fitEnd);
  const owner = h("input", { id: "session-owner", name: "owner", maxlength: 200, placeholder: session.me.subject });
  const form = h("form", { id: "session-form", "aria-labelledby": "session-form-title" },
    h("h2", { id: "session-form-title", class: "visually-hidden" }, "New session"),
    h("div", { class: "grid" },
      h("label", { for: "session-definition" }, "Active definition", definition),
      h("label", { for: "session-owner" }, "Owner (student)", owner)),
    h("div", { class: "grid" },
      h("label", { for: "session-start" }, "Timeslot start", start),
      h("label", { for: "session-end" }, "Timeslot end", end)),
    error, h("button", { type: "submit" }, "Create session"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const from = new Date(start.value);
    const to = new Date(end.value);
    if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) {
      error.textContent = "Give the timeslot's start and end.";
      return;
    }
    const body = { definition_id: definition.value, timeslot_start: from.toISOString(), timeslot_end: to.toISOString() };
    if (owner.value.trim()) body.owner = owner.value.trim();
    try {
      const created = await api("/api/lablet-sessions", { method: "POST", body });
      toast(`Session ${created.id.slice(0, 8)} created (${created.status}).`, "ok");
      onCreated(created);
    } catch (failure) {
      error.textContent = `Not created: ${failure.message}`;
    }
  });
  return h("details", { class: "create-panel", id: "session-create" },
    h("summary", { role: "button", class: "secondary outline" }, "New session"), form);
}

export function mountSessions(main, params) {
  const state = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) || ""]));
  const rows = new Map();
  const tbody = h("tbody", {});
  const count = h("p", { class: "hint", role: "status", "aria-live": "polite" });
  const filters = h("form", { class: "filters filters-3", role: "search", "aria-label": "Filter sessions" });
  const create = h("div", {});
  const table = h("table", { class: "striped lablets", id: "sessions-table" },
    h("caption", { class: "visually-hidden" }, "Lablet sessions, newest first"),
    h("thead", {}, h("tr", {}, COLUMNS.map(([key, label]) => h("th", { scope: "col", dataset: { field: key },
      class: key === "ports" ? "num" : null }, label)))), tbody);
  replace(main, h("h1", {}, "Lablet sessions"), create, filters, count, h("div", { class: "table-scroll" }, table));
  let definitions = [];
  let total = 0;

  const drawFilters = () => {
    const workers = [...fleet.values()].map((w) => [w.id, w.name]).sort((a, b) => a[1].localeCompare(b[1]));
    const defs = definitions.map((d) => [d.id, d.name]).sort((a, b) => a[1].localeCompare(b[1]));
    replace(filters,
      select("status", "Status", SESSION_STATUSES.map((s) => [s, s]), state.status),
      select("definition_id", "Definition", defs, state.definition_id),
      select("worker_id", "Worker", workers, state.worker_id));
  };
  filters.addEventListener("change", (event) => {
    state[event.target.name] = event.target.value;
    const query = new URLSearchParams(Object.entries(state).filter(([, v]) => v)).toString();
    history.replaceState(null, "", `#/sessions${query ? `?${query}` : ""}`);
    load();
  });
  filters.addEventListener("submit", (event) => event.preventDefault());

  const matches = (s) => FILTERS.every((k) => !state[k] || s[k] === state[k]);
  const fill = (s) => {
    let tr = rows.get(s.id);
    if (!tr) {
      tr = h("tr", { dataset: { sessionId: s.id } });
      rows.set(s.id, tr);
    }
    tr.replaceChildren(...cells(s));
    tr.dataset.status = s.status;
    return tr;
  };
  const drawCount = () => {
    count.textContent = `${rows.size} of ${total} session${total === 1 ? "" : "s"}`;
  };

  async function load() {
    const query = new URLSearchParams({ limit: "200", sort: "created_at", order: "desc" });
    for (const k of FILTERS) if (state[k]) query.set(k, state[k]);
    let page;
    try {
      page = await api(`/api/lablet-sessions?${query}`);
    } catch (failure) {
      replace(tbody, h("tr", {}, h("td", { colspan: COLUMNS.length, role: "alert" }, `Sessions unavailable: ${failure.message}`)));
      return;
    }
    rows.clear();
    total = page.total;
    replace(tbody, page.items.length ? page.items.map(fill) : h("tr", {}, h("td", { colspan: COLUMNS.length },
      FILTERS.some((k) => state[k]) ? "No session matches the filters." : "No sessions yet.")));
    drawCount();
  }

  // One read per session named by a burst of events; an unknown session re-reads the page.
  const pending = new Set();
  const refreshRows = debounce(async () => {
    const ids = [...pending];
    pending.clear();
    for (const id of ids) {
      if (!rows.has(id)) {
        reloadPage();
        continue;
      }
      try {
        const s = await api(`/api/lablet-sessions/${encodeURIComponent(id)}`);
        if (matches(s)) fill(s);
        else reloadPage();
      } catch {
        reloadPage();
      }
    }
  }, 250);
  const reloadPage = debounce(load, 300);

  const drawCreate = () => {
    if (!session.isAdmin || create.querySelector("details[open]")) return; // never under the admin's hands
    replace(create, createForm(definitions.filter((d) => d.status === "active"), (created) => {
      if (matches(created)) reloadPage();
    }));
  };
  // Definitions activated, deactivated or created meanwhile change the filter and the form's choices.
  const readDefinitions = debounce(async () => {
    try {
      definitions = await definitionsPage();
    } catch (failure) {
      toast(`Definitions unavailable: ${failure.message}`, "bad");
      return;
    }
    if (!filters.contains(document.activeElement)) drawFilters();
    drawCreate();
  }, 300);

  async function start() {
    try {
      definitions = await definitionsPage();
    } catch (failure) {
      toast(`Definitions unavailable: ${failure.message}`, "bad");
    }
    drawFilters();
    drawCreate();
    await load();
  }

  start();
  const off = subscribe((kind, detail) => {
    if (kind === "workers" && detail.snapshot && !filters.contains(document.activeElement)) drawFilters();
    if (kind !== "lablet") return;
    const data = detail.envelope.data || {};
    if (detail.type.startsWith("lablet.definition.")) readDefinitions();
    if (detail.type.startsWith("lablet.session.") && data.session_id) {
      pending.add(data.session_id);
      refreshRows();
    }
  });
  return () => {
    off();
    refreshRows.cancel();
    reloadPage.cancel();
    readDefinitions.cancel();
  };
}
