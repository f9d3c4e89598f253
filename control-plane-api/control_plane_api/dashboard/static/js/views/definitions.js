// Lablet definitions: the list (status filter, live on lablet.definition.* events) and, for admins, the
// form that creates one from a pasted or uploaded CML lab YAML (the CPA's 422 message is shown as it is).

import { api } from "../api.js";
import { badge, h, replace, text, toast } from "../dom.js";
import { DEFINITION_STATUSES, debounce, definitionsPage, requirements } from "../lablets.js";
import { session, subscribe } from "../store.js";

const COLUMNS = ["Name", "Version", "Status", "Track", "Resource requirements", "Ports", "Review"];

function row(d) {
  return h("tr", { dataset: { definitionId: d.id } },
    h("td", { dataset: { field: "name" } }, h("a", { href: `#/definitions/${encodeURIComponent(d.id)}` }, d.name)),
    h("td", { class: "num", dataset: { field: "version" } }, String(d.version)),
    h("td", { dataset: { field: "status" } }, badge(d.status, "Status")),
    h("td", { dataset: { field: "lab_track" } }, text(d.lab_track)),
    h("td", { dataset: { field: "resource_requirements" } }, requirements(d.resource_requirements)),
    h("td", { class: "num", dataset: { field: "ports" } }, String(d.port_template.length)),
    h("td", { dataset: { field: "observation_review" } }, d.observation_review
      ? h("span", { class: "badge tone-warn", title: d.review_reason || "" }, "review") : "—"));
}

function createForm(onCreated) {
  const error = h("p", { id: "definition-error", class: "form-error", role: "alert" });
  const yaml = h("textarea", { id: "definition-yaml", name: "lab_topology_yaml", rows: 10, required: true,
    spellcheck: "false", class: "code", "aria-describedby": "definition-yaml-hint" });
  const file = h("input", { id: "definition-file", type: "file", accept: ".yaml,.yml,text/yaml,application/x-yaml" });
  file.addEventListener("change", async () => {
    const chosen = file.files[0];
    if (!chosen) return;
    yaml.value = await chosen.text();
    const name = form.querySelector("#definition-name");
    if (!name.value) name.value = chosen.name.replace(/\.ya?ml$/i, "").replace(/[^A-Za-z0-9 _.:-]/g, "-");
  });
  const form = h("form", { id: "definition-form", "aria-labelledby": "definition-form-title" },
    h("h2", { id: "definition-form-title", class: "visually-hidden" }, "New definition"),
    h("div", { class: "grid" },
      h("label", { for: "definition-name" }, "Name",
        h("input", { id: "definition-name", name: "name", required: true, maxlength: 100,
          pattern: "[A-Za-z0-9][A-Za-z0-9 _.:\\-]*" })),
      h("label", { for: "definition-track" }, "Lab track",
        h("input", { id: "definition-track", name: "lab_track", maxlength: 64, placeholder: "e.g. ccna" })),
      h("label", { for: "definition-duration" }, "Max duration (minutes)",
        h("input", { id: "definition-duration", name: "max_duration_minutes", type: "number", min: 5,
          max: 10080, value: 120, required: true }))),
    h("label", { for: "definition-description" }, "Description",
      h("input", { id: "definition-description", name: "description", maxlength: 2000 })),
    h("label", { for: "definition-file" }, "Upload a CML lab YAML", file),
    h("label", { for: "definition-yaml" }, "… or paste it", yaml,
      h("small", { id: "definition-yaml-hint" },
        "Node tags such as serial:5041 or vnc:5044 become the port template; requirements are estimated from the nodes.")),
    h("label", { for: "definition-activate" },
      h("input", { id: "definition-activate", name: "activate", type: "checkbox", role: "switch" }),
      " Activate now (accept sessions)"),
    error,
    h("div", { class: "button-row" },
      h("button", { type: "submit" }, "Create definition"),
      h("button", { type: "reset", class: "secondary outline" }, "Clear")));
  form.addEventListener("reset", () => { error.textContent = ""; });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const value = (id) => form.querySelector(`#${id}`).value.trim();
    const body = {
      name: value("definition-name"), lab_topology_yaml: yaml.value,
      max_duration_minutes: Number(value("definition-duration")),
      activate: form.querySelector("#definition-activate").checked,
    };
    if (value("definition-track")) body.lab_track = value("definition-track");
    if (value("definition-description")) body.description = value("definition-description");
    const submit = form.querySelector("button[type=submit]");
    submit.setAttribute("aria-busy", "true");
    try {
      const created = await api("/api/lablet-definitions", { method: "POST", body });
      toast(`Definition ${created.name} created (version ${created.version}, ${created.status}).`, "ok");
      form.reset();
      onCreated(created);
    } catch (failure) {
      const kind = { 422: "The CPA refused this definition", 409: "Conflict" }[failure.status] || "Not created";
      error.textContent = `${kind}: ${failure.message}`;
      (failure.status === 422 && /topology/.test(failure.message) ? yaml : submit).focus();
    } finally {
      submit.removeAttribute("aria-busy");
    }
  });
  return h("details", { class: "create-panel", id: "definition-create" },
    h("summary", { role: "button", class: "secondary outline" }, "New definition from a CML lab YAML"), form);
}

export function mountDefinitions(main, params) {
  const state = { status: params.get("status") || "" };
  const tbody = h("tbody", {});
  const count = h("p", { class: "hint", role: "status", "aria-live": "polite" });
  const statusSelect = h("select", { id: "definition-status", name: "status" },
    h("option", { value: "" }, "All"),
    DEFINITION_STATUSES.map((s) => h("option", { value: s, selected: s === state.status }, s)));
  const filters = h("form", { class: "filters filters-narrow", role: "search", "aria-label": "Filter definitions" },
    h("label", { for: "definition-status" }, "Status", statusSelect));
  const table = h("table", { class: "striped lablets", id: "definitions-table" },
    h("caption", { class: "visually-hidden" }, "Lablet definitions"),
    h("thead", {}, h("tr", {}, COLUMNS.map((c) => h("th", { scope: "col",
      class: ["Version", "Ports"].includes(c) ? "num" : null }, c)))), tbody);
  replace(main, h("h1", {}, "Lablet definitions"),
    session.isAdmin ? createForm((created) => { location.hash = `#/definitions/${encodeURIComponent(created.id)}`; }) : null,
    filters, count, h("div", { class: "table-scroll" }, table));
  filters.addEventListener("submit", (event) => event.preventDefault());
  statusSelect.addEventListener("change", () => {
    state.status = statusSelect.value;
    history.replaceState(null, "", `#/definitions${state.status ? `?status=${state.status}` : ""}`);
    load();
  });

  async function load() {
    let items;
    try {
      items = await definitionsPage(state.status ? { status: state.status } : {});
    } catch (failure) {
      replace(tbody, h("tr", {}, h("td", { colspan: COLUMNS.length, role: "alert" },
        `Definitions unavailable: ${failure.message}`)));
      return;
    }
    items.sort((a, b) => a.name.localeCompare(b.name));
    replace(tbody, items.length ? items.map(row) : h("tr", {}, h("td", { colspan: COLUMNS.length },
      state.status ? "No definition has this status." : "No definitions yet.")));
    count.textContent = `${items.length} definition${items.length === 1 ? "" : "s"}`;
  }

  const reload = debounce(load, 300);
  load();
  const off = subscribe((kind, detail) => {
    if (kind === "lablet" && detail.type.startsWith("lablet.definition.")) reload();
  });
  return () => {
    off();
    reload.cancel();
  };
}
