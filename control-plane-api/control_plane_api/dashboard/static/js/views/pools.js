// Worker pools: the table (live: every `pool.*` event carries the pool as it stands after the change, which
// replaces its row) and, for admins, the form that creates one (the API's 4xx message is shown as it is).

import { api } from "../api.js";
import { h, pct, replace, text, toast } from "../dom.js";
import { policyLabel, poolForm, poolPhase, refusal, sessionsText, templateNames, workersText } from "../pools.js";
import { session, subscribe } from "../store.js";

const COLUMNS = [
  ["name", "Name"], ["lab_track", "Track"], ["phase", "Phase"], ["policy", "Policy"], ["min_workers", "Min", true],
  ["workers", "Workers", true], ["max_workers", "Max", true], ["desired_workers", "Desired", true],
  ["avg_cpu_percent", "CPU", true], ["avg_memory_percent", "Memory", true], ["sessions", "Sessions", true],
];

function cell(pool, key) {
  const cap = pool.capacity || {};
  switch (key) {
    case "name": return h("a", { href: `#/pools/${encodeURIComponent(pool.id)}` }, pool.name);
    case "phase": return [poolPhase(pool), pool.draining && pool.phase !== "draining" ? " draining" : null,
      pool.error ? h("span", { class: "flag-bad", title: pool.error }, " ⚠") : null];
    case "policy": return policyLabel(pool.scaling?.policy);
    case "min_workers": return String(pool.scaling?.min_workers ?? "");
    case "max_workers": return String(pool.scaling?.max_workers ?? "");
    case "workers": return workersText(cap);
    case "desired_workers": return String(pool.desired_workers);
    case "avg_cpu_percent": return pct(cap.avg_cpu_percent);
    case "avg_memory_percent": return pct(cap.avg_memory_percent);
    case "sessions": return sessionsText(cap);
    default: return text(pool[key]);
  }
}

function createPanel(templates, onCreated) {
  const { form } = poolForm({
    prefix: "pool", pool: null, templates, submitLabel: "Create pool",
    onSubmit: async (spec, error) => {
      try {
        const created = await api("/api/pools", { method: "POST", body: spec });
        toast(`Pool ${created.name} created (${created.desired_workers} worker(s) wanted).`, "ok");
        form.reset();
        delete form.dataset.dirty;
        onCreated(created);
      } catch (failure) {
        error.textContent = refusal(failure, "this pool");
      }
    },
  });
  return h("details", { class: "create-panel", id: "pool-create" },
    h("summary", { role: "button", class: "secondary outline" }, "New pool"), form);
}

export function mountPools(main, params) {
  const pools = new Map(); // id → PoolView, as the API last said it
  const rows = new Map(); // id → its <tr>
  const tbody = h("tbody", {});
  const count = h("p", { class: "hint", role: "status", "aria-live": "polite" });
  const createSlot = h("div", {});
  const table = h("table", { class: "striped pools", id: "pools-table" },
    h("caption", { class: "visually-hidden" }, "Worker pools"),
    h("thead", {}, h("tr", {}, COLUMNS.map(([, label, numeric]) => h("th", { scope: "col", class: numeric ? "num" : null },
      label)))), tbody);
  const terminated = h("input", { id: "pools-terminated", type: "checkbox", role: "switch",
    checked: params.get("terminated") === "1" });
  const filters = h("form", { class: "filters filters-narrow", role: "search", "aria-label": "Filter pools" },
    h("label", { for: "pools-terminated" }, terminated, " Show terminated pools"));
  replace(main, h("h1", {}, "Worker pools"), createSlot, filters, count, h("div", { class: "table-scroll" }, table));
  let loaded = false;
  filters.addEventListener("submit", (event) => event.preventDefault());
  terminated.addEventListener("change", () => {
    history.replaceState(null, "", `#/pools${terminated.checked ? "?terminated=1" : ""}`);
    for (const [poolId, pool] of pools) if (pool.phase === "terminated") pools.delete(poolId);
    load();
  });

  const fillRow = (pool) => {
    let tr = rows.get(pool.id);
    if (!tr) {
      tr = h("tr", { dataset: { poolId: pool.id } });
      rows.set(pool.id, tr);
    }
    tr.classList.toggle("terminated", pool.phase === "terminated");
    tr.dataset.phase = pool.phase;
    tr.replaceChildren(...COLUMNS.map(([key, , numeric]) => h("td", { dataset: { field: key },
      class: numeric ? "num" : null }, cell(pool, key))));
    return tr;
  };

  function draw() {
    const sorted = [...pools.values()].sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
    const order = sorted.map((pool) => rows.get(pool.id) || fillRow(pool));
    const same = order.length === tbody.children.length && order.every((tr, i) => tbody.children[i] === tr);
    if (!same) tbody.replaceChildren(...order);
    if (!sorted.length) {
      tbody.replaceChildren(h("tr", {}, h("td", { colspan: COLUMNS.length },
        loaded ? "No pools yet." : "Loading…")));
    }
    const live = sorted.filter((p) => p.phase !== "terminated").length;
    count.textContent = `${live} pool${live === 1 ? "" : "s"}${sorted.length > live
      ? `, ${sorted.length - live} terminated` : ""}`;
  }

  // An event or a read never takes a row back to an older version of its pool. A pool terminated while shown
  // stays, marked; one not shown joins only if it is live or terminated pools are asked for (a late event).
  const put = (pool) => {
    const shown = pools.get(pool.id);
    if (shown && (shown.version ?? 0) > (pool.version ?? 0)) return false;
    if (!shown && pool.phase === "terminated" && !terminated.checked) return false;
    pools.set(pool.id, pool);
    fillRow(pool);
    return true;
  };

  async function load() {
    let page;
    try {
      page = await api(`/api/pools?limit=1000${terminated.checked ? "&include_terminated=true" : ""}`);
    } catch (failure) {
      replace(tbody, h("tr", {}, h("td", { colspan: COLUMNS.length, role: "alert" },
        `Pools unavailable: ${failure.message}`)));
      return;
    }
    loaded = true;
    for (const pool of page.items) put(pool);
    draw();
  }

  async function loadForm() {
    if (!session.isAdmin) return;
    let templates;
    try {
      templates = await templateNames();
    } catch (failure) {
      replace(createSlot, h("p", { role: "alert" }, `Templates unavailable, so no pool can be created: ${failure.message}`));
      return;
    }
    replace(createSlot, createPanel(templates, (created) => {
      put(created);
      draw();
    }));
  }

  load();
  loadForm();
  const off = subscribe((kind, detail) => {
    // A snapshot follows a gap the event log no longer covered: pool events may be missing too.
    if (kind === "workers" && detail.snapshot && loaded) load();
    if (kind !== "pool") return;
    const pool = detail.envelope.data?.pool;
    if (!pool?.id) return;
    if (put(pool)) draw();
  });
  return off;
}
