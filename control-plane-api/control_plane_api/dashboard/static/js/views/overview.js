// Fleet overview: counts by status and health, average utilisation, idle workers, controllers. Live.

import { api } from "../api.js";
import { ago, badge, coalesce, h, pct, replace, text } from "../dom.js";
import { fleet, subscribe } from "../store.js";

const STATUS_ORDER = ["running", "starting", "provisioning", "pending", "draining", "stopping", "stopped",
  "terminating", "terminated", "failed", "unknown"];
const HEALTH_ORDER = ["healthy", "degraded", "critical", "unreachable", "unknown"];

function countBy(workers, key, order) {
  const counts = new Map(order.map((k) => [k, 0]));
  for (const w of workers) counts.set(w[key] ?? "unknown", (counts.get(w[key] ?? "unknown") || 0) + 1);
  return [...counts].filter(([, n]) => n > 0);
}

function average(workers, key) {
  const values = workers.map((w) => w[key]).filter((v) => typeof v === "number");
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
}

function isIdle(w) {
  return w.status === "running" && Boolean(w.idle_since) && !(w.labs_count > 0);
}

function counts(title, id, rows, field) {
  return h("article", { class: "card", "aria-labelledby": id },
    h("h2", { id }, title),
    rows.length === 0 ? h("p", {}, "No workers.") : h("ul", { class: "count-list" }, rows.map(([value, n]) =>
      h("li", {}, h("a", { href: `#/workers?${field}=${encodeURIComponent(value)}` }, badge(value)),
        h("strong", { dataset: { count: `${field}:${value}` } }, String(n))))));
}

function fleetCards() {
  const workers = [...fleet.values()];
  const live = workers.filter((w) => w.status !== "terminated");
  const running = live.filter((w) => w.status === "running");
  const idle = running.filter(isIdle);
  return [
    h("article", { class: "card", "aria-labelledby": "ov-total" },
      h("h2", { id: "ov-total" }, "Workers"),
      h("p", { class: "big-number", dataset: { metric: "total" } }, String(live.length)),
      h("p", {}, `${running.length} running, ${workers.length - live.length} terminated`)),
    counts("By status", "ov-status", countBy(workers, "status", STATUS_ORDER), "status"),
    counts("By health", "ov-health", countBy(live, "health_status", HEALTH_ORDER), "health_status"),
    h("article", { class: "card", "aria-labelledby": "ov-util" },
      h("h2", { id: "ov-util" }, "Average utilisation"),
      h("p", { class: "hint" }, `over ${running.length} running workers`),
      h("dl", { class: "facts" },
        [["cpu_percent", "CPU"], ["memory_percent", "Memory"], ["disk_percent", "Disk"]].map(([key, label]) => [
          h("dt", {}, label),
          h("dd", { dataset: { metric: key } }, pct(average(running, key)))]))),
    h("article", { class: "card", "aria-labelledby": "ov-idle" },
      h("h2", { id: "ov-idle" }, "Idle workers"),
      h("p", { class: "big-number", dataset: { metric: "idle" } }, String(idle.length)),
      idle.length ? h("ul", { class: "plain" }, idle.slice(0, 8).map((w) => h("li", {},
        h("a", { href: `#/workers/${encodeURIComponent(w.id)}` }, w.name), ` idle since ${ago(w.idle_since)}`)))
        : h("p", {}, "No running worker is idle.")),
  ];
}

function loopRow(service, leader, loop) {
  return h("tr", {},
    h("td", {}, service), h("td", {}, leader ? leader : h("em", {}, "no leader")), h("td", {}, loop.name),
    h("td", {}, ago(loop.last_run)), h("td", {}, loop.success_rate == null ? "N/A" : `${loop.success_rate} %`),
    h("td", {}, `${loop.successes ?? 0} / ${loop.runs ?? 0}`),
    h("td", {}, loop.last_duration_seconds == null ? "N/A" : `${loop.last_duration_seconds.toFixed(2)} s`));
}

function controllersCard(overview, error) {
  const rows = [];
  for (const [service, entry] of Object.entries(overview?.controllers || {})) {
    const leading = entry.replicas.find((r) => r.identity === entry.leader && !r.stale);
    for (const loop of leading?.loops || []) rows.push(loopRow(service, entry.leader, loop));
    if (!leading || !leading.loops?.length) {
      rows.push(h("tr", {}, h("td", {}, service), h("td", {}, leading ? entry.leader : h("em", {}, "no leader")),
        h("td", { colspan: 5 }, h("em", {}, leading ? "leads; runs no loop yet" : "no leader reporting"))));
    }
    // A replica that stopped reporting (killed, frozen, cut off) is listed as stale, never as a leader.
    for (const replica of entry.replicas.filter((r) => r.stale)) {
      rows.push(h("tr", { class: "stale-replica" }, h("td", {}, service),
        h("td", {}, h("span", { class: "badge tone-muted", title: replica.reason || "" }, "stale"), " ",
          text(replica.identity)),
        h("td", { colspan: 5 }, h("em", {}, `last report ${ago(replica.received_at)}`))));
    }
  }
  return h("article", { class: "card wide", "aria-labelledby": "ov-ctl" },
    h("h2", { id: "ov-ctl" }, "Controllers"),
    error ? h("p", { role: "alert" }, `Controller status unavailable: ${error}`) : null,
    overview && overview.etcd_reachable === false ? h("p", { role: "alert" }, "etcd is unreachable: nobody leads.") : null,
    h("div", { class: "table-scroll" }, h("table", { class: "striped" },
      h("caption", { class: "visually-hidden" }, "Controller loops of the current leaders"),
      h("thead", {}, h("tr", {}, ["Service", "Leader", "Loop", "Last cycle", "Success rate", "OK / runs",
        "Last duration"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", { id: "controller-rows" }, rows.length ? rows
        : h("tr", {}, h("td", { colspan: 7 }, text(overview ? "No controller has reported yet." : "Loading…")))))));
}

export function mountOverview(main) {
  const grid = h("section", { class: "grid-cards", "aria-label": "Fleet" });
  const controllers = h("section", { "aria-label": "Controllers" });
  replace(main, h("h1", {}, "Fleet overview"), grid, controllers);
  let overview = null;
  let error = null;
  let pending = null;
  const drawFleet = coalesce(() => replace(grid, fleetCards()), 250);
  const drawControllers = () => replace(controllers, controllersCard(overview, error));
  const load = async () => {
    try {
      overview = await api("/api/system/controllers");
      error = null;
    } catch (failure) {
      error = failure.message;
    }
    drawControllers();
  };
  replace(grid, fleetCards());
  drawControllers();
  load();
  const poll = setInterval(load, 15_000);
  const off = subscribe((kind) => {
    if (kind === "workers") drawFleet(null);
    if (kind === "controllers" && !pending) pending = setTimeout(() => { pending = null; load(); }, 1000);
  });
  return () => {
    off();
    drawFleet.cancel();
    clearInterval(poll);
    clearTimeout(pending);
  };
}
