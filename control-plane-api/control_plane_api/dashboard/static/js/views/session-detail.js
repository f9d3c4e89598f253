// A lablet session: status, timeslot, worker, CML lab, allocated vs observed ports (drift highlighted),
// observed resources, state history; admins observe (ready/running) and terminate. Re-read on its events.

import { api } from "../api.js";
import { NA, badge, definitionList, h, replace, text, toast, when } from "../dom.js";
import { FINISHED, OBSERVABLE, debounce, num, requirements, timeslot } from "../lablets.js";
import { fleet, session, subscribe } from "../store.js";

function actions(s, reload) {
  const observe = h("button", { type: "button", class: "compact secondary outline", dataset: { action: "observe" } },
    "Observe resources");
  observe.disabled = !OBSERVABLE.has(s.status) || s.observe_requested;
  observe.title = OBSERVABLE.has(s.status) ? "" : "Only a ready or running session can be observed";
  observe.addEventListener("click", async () => {
    try {
      await api(`/api/lablet-sessions/${encodeURIComponent(s.id)}/observe-resources`, { method: "POST" });
      toast("Observation requested: the lablet-controller observes the live lab and reports back.", "ok");
      reload();
    } catch (failure) {
      toast(`Observation not requested: ${failure.message}`, "bad");
    }
  });
  const terminate = h("button", { type: "button", class: "compact danger", dataset: { action: "terminate" } },
    "Terminate");
  terminate.disabled = FINISHED.has(s.status) || s.terminate_requested;
  terminate.addEventListener("click", async () => {
    if (!window.confirm(`Terminate session ${s.id.slice(0, 8)} of ${s.owner}? Its lab is torn down.`)) return;
    try {
      await api(`/api/lablet-sessions/${encodeURIComponent(s.id)}/terminate`, { method: "POST",
        body: { reason: `terminated from the dashboard by ${session.me.subject}` } });
      toast("Termination requested.", "ok");
      reload();
    } catch (failure) {
      toast(`Terminate failed: ${failure.message}`, "bad");
    }
  });
  return h("div", { class: "button-row" }, observe, terminate);
}

// Allocated vs observed, compared by port name (never by position), as the CPA does.
function portsSection(s) {
  const allocated = s.allocated_ports || {};
  const observed = s.observed_ports;
  const names = [...new Set([...Object.keys(allocated), ...Object.keys(observed || {})])].sort();
  const verdict = (name) => {
    if (!observed) return ["not observed yet", null];
    if (!(name in allocated)) return ["unexpected: observed, never allocated", "drift"];
    if (!(name in observed)) return ["missing: allocated, not observed", "drift"];
    if (observed[name] !== allocated[name]) return ["changed on CML", "drift"];
    return ["matches", null];
  };
  return h("section", { class: "detail-section", "aria-labelledby": "ports-title" },
    h("h3", { id: "ports-title" }, "Ports"),
    s.port_drift_detected ? h("p", { class: "flag-bad", role: "note", id: "drift-flag" },
      "Port drift detected: CML uses ports this session was not allocated (they are kept out of other sessions "
      + "on this worker).") : null,
    names.length ? h("div", { class: "table-scroll" }, h("table", { class: "striped compact-table", id: "session-ports" },
      h("thead", {}, h("tr", {}, ["Port name", "Allocated", "Observed", "Comparison"].map((c, i) =>
        h("th", { scope: "col", class: i === 1 || i === 2 ? "num" : null }, c)))),
      h("tbody", {}, names.map((name) => {
        const [says, tone] = verdict(name);
        return h("tr", { dataset: { port: name, drift: tone ? "true" : "false" }, class: tone ? "row-drift" : null },
          h("th", { scope: "row" }, name),
          h("td", { class: "num" }, text(allocated[name])),
          h("td", { class: "num" }, observed ? text(observed[name]) : NA),
          h("td", {}, tone ? badge("drift", "Port comparison") : null, tone ? ` ${says}` : says));
      }))))
      : h("p", { class: "hint" }, "No ports allocated yet (they are reserved when the session is scheduled)."));
}

function observedSection(s) {
  const o = s.observed_resources;
  if (!o) {
    return h("section", { class: "detail-section" }, h("h3", {}, "Observed resources"),
      h("p", { class: "hint" }, s.observe_requested ? "Observation requested; waiting for the lablet-controller."
        : "Not observed yet."));
  }
  return h("section", { class: "detail-section", "aria-labelledby": "observed-title" },
    h("h3", { id: "observed-title" }, "Observed resources"),
    h("div", { class: "facts-grid" },
      definitionList([
        ["Observed", `${when(o.observed_at)} by ${o.observer}`],
        ["Observations", String(s.observation_count)],
        ["CPU cores", `${num(o.total_cpu_cores)} (declared ${num(s.resource_requirements.cpu_cores)})`],
        ["Memory", `${num(o.total_memory_mb / 1024)} GB (declared ${num(s.resource_requirements.memory_gb)} GB)`],
      ]),
      definitionList([
        ["Storage", typeof o.total_storage_mb === "number" ? `${num(o.total_storage_mb / 1024)} GB` : NA],
        ["Nodes", `${o.actual_node_count} (declared ${s.resource_requirements.node_count})`],
        ["Node definitions", o.node_definitions_used.join(", ") || NA],
      ])),
    o.nodes.length ? h("div", { class: "table-scroll" }, h("table", { class: "striped compact-table" },
      h("caption", {}, "Nodes as observed"),
      h("thead", {}, h("tr", {}, ["Label", "Definition", "State", "CPU limit", "RAM (MB)", "Tags"].map((c) =>
        h("th", { scope: "col" }, c)))),
      h("tbody", {}, o.nodes.map((n) => h("tr", {}, h("th", { scope: "row" }, n.label), h("td", {}, n.node_definition),
        h("td", {}, badge(n.state)), h("td", {}, text(n.cpu_limit)), h("td", {}, text(n.ram_mb)),
        h("td", {}, n.tags.join(", ") || "—")))))) : null);
}

function historySection(s) {
  return h("section", { class: "detail-section", "aria-labelledby": "session-history-title" },
    h("h3", { id: "session-history-title" }, "State history"),
    h("div", { class: "table-scroll" }, h("table", { class: "striped compact-table", id: "session-history" },
      h("thead", {}, h("tr", {}, ["When", "From", "To", "Reason", "By"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, [...s.state_history].reverse().map((c) => h("tr", {},
        h("td", {}, when(c.at)), h("td", {}, text(c.from)), h("td", {}, badge(c.to)), h("td", { class: "wrap" }, text(c.reason)),
        h("td", {}, text(c.by))))))));
}

export function mountSessionDetail(main, id) {
  const header = h("div", { class: "detail-header" });
  const body = h("div", {});
  replace(main, h("p", {}, h("a", { href: "#/sessions" }, "← All sessions")), header, body);
  let headerKey = null;

  async function load() {
    let s;
    try {
      s = await api(`/api/lablet-sessions/${encodeURIComponent(id)}`);
    } catch (failure) {
      replace(header, h("h1", {}, "Lablet session"), h("p", { role: "alert" }, failure.status === 404
        ? "This session does not exist." : `Could not load the session: ${failure.message}`));
      return;
    }
    const key = JSON.stringify([s.status, s.observe_requested, s.terminate_requested, s.port_drift_detected]);
    if (key !== headerKey) {
      replace(header, h("h1", {}, `Session ${s.id.slice(0, 8)}`),
        h("p", { class: "badges" },
          h("span", { class: "badge-label" }, "Status "), h("span", { dataset: { field: "status" } }, badge(s.status, "Status")),
          s.terminate_requested ? [" ", badge("stopping", "Terminate requested")] : null,
          s.port_drift_detected ? [" ", badge("drift", "Port drift")] : null),
        session.isAdmin ? actions(s, load) : null);
      headerKey = key;
    }
    const worker = s.worker_id ? h("a", { href: `#/workers/${encodeURIComponent(s.worker_id)}` },
      fleet.get(s.worker_id)?.name || s.worker_id) : NA;
    replace(body,
      h("section", { class: "detail-section facts-grid" },
        definitionList([
          ["Session id", s.id],
          ["Definition", h("a", { href: `#/definitions/${encodeURIComponent(s.definition_id)}` },
            `${s.definition_name} (version ${s.definition_version})`)],
          ["Owner", s.owner],
          ["Timeslot", timeslot(s.timeslot_start, s.timeslot_end, true)],
        ]),
        definitionList([
          ["Worker", worker],
          ["CML lab id", text(s.cml_lab_id)],
          ["Requirements", requirements(s.resource_requirements)],
          [s.status === "pending" ? "Pending because" : "Last error", text(s.status === "pending"
            ? s.pending_reason : s.last_error)],
        ])),
      portsSection(s), observedSection(s), historySection(s));
  }

  const reload = debounce(load, 250);
  load();
  const off = subscribe((kind, detail) => {
    if (kind === "lablet" && detail.envelope.data?.session_id === id) reload();
  });
  return () => {
    off();
    reload.cancel();
  };
}
