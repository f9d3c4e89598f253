// Workers table: search, filters (region, status, health), sortable columns, rows updated in place by SSE.

import { actionButtons, refreshButtons } from "../actions.js";
import { badge, coalesce, h, pct, replace, text } from "../dom.js";
import { fleet, session, subscribe } from "../store.js";

const COLUMNS = [
  { key: "name", label: "Name" },
  { key: "aws_region", label: "Region" },
  { key: "aws_instance_id", label: "Instance" },
  { key: "status", label: "Status" },
  { key: "phase", label: "Phase" },
  { key: "health_status", label: "Health" },
  { key: "license_status", label: "Licence" },
  { key: "cpu_percent", label: "CPU", numeric: true },
  { key: "memory_percent", label: "Memory", numeric: true },
  { key: "disk_percent", label: "Disk", numeric: true },
  { key: "labs_count", label: "Labs", numeric: true },
];
const TABLE_ACTIONS = ["start", "stop", "refresh", "terminate"];

function cell(worker, key) {
  const value = worker[key];
  if (key === "name") return h("a", { href: `#/workers/${encodeURIComponent(worker.id)}` }, text(value));
  if (["status", "health_status", "license_status"].includes(key)) return badge(value);
  if (key === "phase") return badge(value, "Lifecycle phase");
  if (key.endsWith("_percent")) return pct(value);
  return text(value);
}

function select(id, label, values, current) {
  return h("label", { for: id }, label,
    h("select", { id, name: id },
      h("option", { value: "" }, "All"),
      [...values].sort().map((v) => h("option", { value: v, selected: v === current }, v))));
}

export function mountWorkers(main, params) {
  const state = {
    q: params.get("q") || "", aws_region: params.get("aws_region") || "", status: params.get("status") || "",
    health_status: params.get("health_status") || "", sort: "name", descending: false,
  };
  const rows = new Map();
  const tbody = h("tbody", {});
  const count = h("p", { class: "hint", role: "status", "aria-live": "polite" });
  const filters = h("form", { class: "filters", role: "search", "aria-label": "Filter workers" });
  const headRow = h("tr", {});
  const table = h("table", { class: "striped workers", id: "workers-table" },
    h("caption", { class: "visually-hidden" }, "Workers; column headers sort the table"),
    h("thead", {}, headRow), tbody);
  replace(main, h("h1", {}, "Workers"), filters, count, h("div", { class: "table-scroll" }, table));

  const values = (key) => new Set([...fleet.values()].map((w) => w[key]).filter(Boolean));
  const drawFilters = () => {
    replace(filters,
      h("label", { for: "q" }, "Search",
        h("input", { id: "q", type: "search", value: state.q, placeholder: "name, instance id, IP" })),
      select("aws_region", "Region", values("aws_region"), state.aws_region),
      select("status", "Status", new Set([...values("status"), state.status].filter(Boolean)), state.status),
      select("health_status", "Health", new Set([...values("health_status"), state.health_status].filter(Boolean)),
        state.health_status));
  };
  filters.addEventListener("input", (event) => {
    state[event.target.id] = event.target.value;
    draw();
  });
  filters.addEventListener("submit", (event) => event.preventDefault());

  const drawHead = () => {
    replace(headRow, COLUMNS.map((col) => {
      const sorted = state.sort === col.key;
      const button = h("button", { type: "button", class: "sort", dataset: { sort: col.key } }, col.label,
        h("span", { "aria-hidden": "true" }, sorted ? (state.descending ? " ▼" : " ▲") : ""));
      button.addEventListener("click", () => {
        state.descending = sorted ? !state.descending : false;
        state.sort = col.key;
        drawHead();
        draw();
      });
      return h("th", { scope: "col", "aria-sort": sorted ? (state.descending ? "descending" : "ascending") : "none",
        class: col.numeric ? "num" : null }, button);
    }), session.isAdmin ? h("th", { scope: "col" }, "Actions") : null);
  };

  const matches = (w) => {
    if (state.aws_region && w.aws_region !== state.aws_region) return false;
    if (state.status && w.status !== state.status) return false;
    if (state.health_status && w.health_status !== state.health_status) return false;
    if (!state.q) return true;
    const needle = state.q.toLowerCase();
    return [w.name, w.aws_instance_id, w.id, w.public_ip, w.private_ip]
      .some((v) => v && String(v).toLowerCase().includes(needle));
  };
  const compare = (a, b) => {
    const x = a[state.sort];
    const y = b[state.sort];
    const order = x == null ? (y == null ? 0 : 1) : y == null ? -1
      : typeof x === "number" ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
    return (state.descending && x != null && y != null ? -order : order) || a.name.localeCompare(b.name);
  };

  const fillRow = (tr, w) => {
    const cells = COLUMNS.map((col) => h("td", { dataset: { field: col.key }, class: col.numeric ? "num" : null },
      cell(w, col.key)));
    let actions = tr.querySelector("td.actions");
    if (session.isAdmin && !actions) {
      actions = h("td", { class: "actions" }, h("div", { class: "button-row" }, actionButtons(w, TABLE_ACTIONS)));
    }
    if (actions) refreshButtons(actions, w);
    tr.replaceChildren(...cells, ...(actions ? [actions] : []));
  };
  const rowFor = (w) => {
    let tr = rows.get(w.id);
    if (!tr) {
      tr = h("tr", { dataset: { workerId: w.id } });
      rows.set(w.id, tr);
    }
    return tr;
  };

  function draw(ids) {
    const changed = ids ? new Set(ids) : null;
    const visible = [...fleet.values()].filter(matches).sort(compare);
    for (const w of visible) {
      const tr = rowFor(w);
      if (!changed || changed.has(w.id) || !tr.firstChild) fillRow(tr, w);
    }
    const order = visible.map((w) => rows.get(w.id));
    const same = order.length === tbody.children.length && order.every((tr, i) => tbody.children[i] === tr);
    if (!same) tbody.replaceChildren(...order);
    if (!visible.length) {
      tbody.replaceChildren(h("tr", {}, h("td", { colspan: COLUMNS.length + 1 },
        fleet.size ? "No worker matches the filters." : "No workers yet (discovery runs periodically).")));
    }
    count.textContent = `${visible.length} of ${fleet.size} workers`;
  }

  drawFilters();
  drawHead();
  draw();
  const later = coalesce((ids) => {
    if (ids === null && !filters.contains(document.activeElement)) drawFilters(); // new regions or statuses
    draw(ids ?? undefined);
  });
  const off = subscribe((kind, detail) => {
    if (kind !== "workers") return;
    later(detail.snapshot || detail.added ? null : detail.ids);
  });
  return () => {
    off();
    later.cancel();
  };
}
