// A lablet definition: status and (admin) activate/deactivate, facts, topology summary (nodes, links, port
// template), the observation panel, versions and history. Re-read on events about this definition.

import { api } from "../api.js";
import { badge, definitionList, h, replace, text, toast, when } from "../dom.js";
import { debounce, num, requirements } from "../lablets.js";
import { session, subscribe } from "../store.js";
import { observationPanel } from "./observations.js";

function statusButtons(definition, reload) {
  const make = (action, label, enabled) => {
    const button = h("button", { type: "button", class: "compact secondary outline", dataset: { action } }, label);
    button.disabled = !enabled;
    button.addEventListener("click", async () => {
      button.setAttribute("aria-busy", "true");
      try {
        await api(`/api/lablet-definitions/${encodeURIComponent(definition.id)}/${action}`, { method: "POST" });
        toast(`${definition.name}: ${action === "activate" ? "activated" : "deactivated"}.`, "ok");
        reload();
      } catch (failure) {
        toast(`${label} failed: ${failure.message}`, "bad");
      } finally {
        button.removeAttribute("aria-busy");
      }
    });
    return button;
  };
  return h("div", { class: "button-row" },
    make("activate", "Activate", !["active", "archived"].includes(definition.status)),
    make("deactivate", "Deactivate", definition.status === "active"));
}

function topologySection(topology) {
  const nodes = h("table", { class: "striped compact-table", id: "topology-nodes" },
    h("caption", {}, `Nodes (${topology.node_count})`),
    h("thead", {}, h("tr", {}, ["Label", "Node definition", "CPUs", "RAM (MB)", "Disk (GB)", "Interfaces", "Ports"]
      .map((c, i) => h("th", { scope: "col", class: i >= 2 && i <= 5 ? "num" : null }, c)))),
    h("tbody", {}, topology.nodes.map((n) => h("tr", { dataset: { node: n.label } },
      h("th", { scope: "row" }, n.label),
      h("td", {}, n.node_definition, n.counts_against_node_limit ? null
        : h("span", { class: "hint" }, " (outside the node limit)")),
      h("td", { class: "num" }, String(n.cpus)), h("td", { class: "num" }, String(n.ram_mb)),
      h("td", { class: "num" }, num(n.disk_gb)), h("td", { class: "num" }, String(n.interfaces)),
      h("td", {}, n.ports.length ? n.ports.map((p) => `${p.name} (${p.template_port})`).join(", ") : "—")))));
  const ports = h("table", { class: "striped compact-table", id: "port-template" },
    h("caption", {}, `Port template (${topology.port_template.length})`),
    h("thead", {}, h("tr", {}, ["Name", "Node", "Kind", "Template port"].map((c, i) =>
      h("th", { scope: "col", class: i === 3 ? "num" : null }, c)))),
    h("tbody", {}, topology.port_template.length ? topology.port_template.map((p) => h("tr", { dataset: { port: p.name } },
      h("th", { scope: "row" }, p.name), h("td", {}, p.node_label), h("td", {}, p.kind),
      h("td", { class: "num" }, String(p.template_port))))
      : h("tr", {}, h("td", { colspan: 4 }, "No port tags in this topology."))));
  const links = topology.links.length
    ? h("ul", { class: "plain links-list" }, topology.links.map((l) => h("li", {}, `${l.from} — ${l.to}`,
      l.label ? h("span", { class: "hint" }, l.label) : null)))
    : h("p", { class: "hint" }, "No links.");
  return h("section", { class: "detail-section", "aria-labelledby": "topology-title" },
    h("h3", { id: "topology-title" }, `Topology${topology.title ? `: ${topology.title}` : ""}`),
    h("div", { class: "table-scroll" }, nodes),
    h("div", { class: "facts-grid" }, h("div", { class: "table-scroll" }, ports),
      h("div", {}, h("h4", {}, `Links (${topology.links.length})`), links)));
}

function versionsSection(versions, current) {
  return h("section", { class: "detail-section", "aria-labelledby": "versions-title" },
    h("h3", { id: "versions-title" }, "Versions"),
    h("div", { class: "table-scroll" }, h("table", { class: "striped compact-table", id: "definition-versions" },
      h("thead", {}, h("tr", {}, ["Version", "Resource requirements", "Ports", "Review", "Stored"]
        .map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, [...versions].sort((a, b) => b.version - a.version).map((v) => h("tr", { dataset: { version: v.version } },
        h("td", {}, String(v.version), v.version === current ? h("span", { class: "hint" }, " (current)") : null),
        h("td", {}, requirements(v.resource_requirements)), h("td", {}, String(v.port_template.length)),
        h("td", {}, v.observation_review ? badge("review") : "—"), h("td", {}, when(v.updated_at))))))));
}

function historySection(history) {
  return h("section", { class: "detail-section", "aria-labelledby": "definition-history-title" },
    h("h3", { id: "definition-history-title" }, "History"),
    h("div", { class: "table-scroll" }, h("table", { class: "striped compact-table" },
      h("thead", {}, h("tr", {}, ["When", "Field", "From", "To", "Reason", "By"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, [...history].reverse().map((c) => h("tr", {},
        h("td", {}, when(c.at)), h("td", {}, text(c.field)), h("td", {}, text(c.from)), h("td", {}, text(c.to)),
        h("td", { class: "wrap" }, text(c.reason)), h("td", {}, text(c.by))))))));
}

export function mountDefinitionDetail(main, id) {
  const header = h("div", { class: "detail-header" });
  const facts = h("section", { class: "detail-section" });
  const topology = h("div", {});
  const observations = observationPanel(() => load());
  const rest = h("div", {});
  replace(main, h("p", {}, h("a", { href: "#/definitions" }, "← All definitions")), header, facts, topology,
    observations.element, rest);
  let headerKey = null;
  const path = `/api/lablet-definitions/${encodeURIComponent(id)}`;

  async function load() {
    let definition;
    let summary;
    let versions;
    let obs;
    try {
      [definition, summary, versions, obs] = await Promise.all([api(path), api(`${path}/topology`),
        api(`${path}/versions`), api(`${path}/resource-observations`)]);
    } catch (failure) {
      replace(header, h("h1", {}, "Lablet definition"), h("p", { role: "alert" }, failure.status === 404
        ? "This definition does not exist." : `Could not load the definition: ${failure.message}`));
      return;
    }
    const key = JSON.stringify([definition.name, definition.status, definition.version, definition.observation_review]);
    if (key !== headerKey) {
      replace(header, h("h1", {}, definition.name),
        h("p", { class: "badges" },
          h("span", { class: "badge-label" }, "Status "), h("span", { dataset: { field: "status" } }, badge(definition.status, "Status")),
          h("span", { class: "badge-label" }, " Version "), h("span", { dataset: { field: "version" } }, String(definition.version)),
          definition.observation_review ? [" ", badge("review", "Observation review")] : null,
          h("a", { href: `#/sessions?definition_id=${encodeURIComponent(definition.id)}`, class: "sessions-link" },
            "Sessions of this definition")),
        session.isAdmin ? statusButtons(definition, load) : null);
      headerKey = key;
    }
    replace(facts, h("div", { class: "facts-grid" },
      definitionList([
        ["Lab track", text(definition.lab_track)],
        ["Licence affinity", definition.license_affinity.join(", ") || "—"],
        ["Max duration", `${definition.max_duration_minutes} min`],
        ["Description", text(definition.description)],
      ]),
      definitionList([
        ["Declared requirements", requirements(definition.resource_requirements)],
        ["Estimated from topology", requirements(definition.estimated_requirements)],
        ["Created", `${when(definition.created_at)}${definition.created_by ? ` by ${definition.created_by}` : ""}`],
        ["Updated", when(definition.updated_at)],
      ])));
    replace(topology, topologySection(summary));
    observations.update(obs, definition);
    replace(rest, versionsSection(versions, definition.version), historySection(definition.state_history));
  }

  const reload = debounce(load, 300);
  load();
  const off = subscribe((kind, detail) => {
    if (kind !== "lablet") return;
    const data = detail.envelope.data || {};
    if (data.definition_id === id) reload();
  });
  return () => {
    off();
    reload.cancel();
  };
}
