// Costs: what the fleet cost over a period (the cost ledger, `GET /api/costs`): the totals with the savings of
// idle auto-pause and of scale-down, a chart of each group's cost over time and the groups' table. Re-read every
// 30 s (running workers cost by the minute) and soon after a worker starts, stops or goes (throttled).

import { h, replace, when } from "../dom.js";
import { costChart } from "../charts.js";
import { GROUPINGS, PERIODS, hours, readCosts, throttle, usd } from "../costs.js";
import { subscribe } from "../store.js";

const REFRESH_MS = 30_000;
const EVENT_THROTTLE_MS = 5_000;
// Worker events that change what the ledger counts (a metrics report does not).
const COSTLY_EVENTS = new Set(["worker.created", "worker.imported", "worker.status.updated", "worker.paused",
  "worker.resumed", "worker.terminated", "worker.pool.changed", "worker.lab_track.changed"]);

const TOTALS = [
  ["total_usd", "Total"], ["running_usd", "Running"], ["stopped_usd", "Stopped (storage)"],
  ["idle_usd", "Idle (running, no lab)"], ["savings_idle_pause_usd", "Saved by idle auto-pause"],
  ["savings_scale_down_usd", "Saved by scale-down"],
];
const COLUMNS = [
  ["name", "Name"], ["total_usd", "Total", true], ["running_usd", "Running", true],
  ["stopped_usd", "Stopped", true], ["running_hours", "Running hours", true],
  ["stopped_hours", "Stopped hours", true], ["savings_idle_pause_usd", "Saved by idle pause", true],
  ["savings_scale_down_usd", "Saved by scale-down", true],
];
const LINKS = { pool: "pools", worker: "workers", definition: "definitions" };

// Keys that name no pool, worker or definition: `none` (no pool, no track), `idle` (by track or definition: what
// no session held, and the stopped cost).
const NOT_LINKED = new Set(["none", "idle"]);

function groupName(group, groupBy) {
  const name = group.name || group.key;
  const page = LINKS[groupBy];
  const shown = page && group.key && !NOT_LINKED.has(group.key)
    ? h("a", { href: `#/${page}/${encodeURIComponent(group.key)}` }, name) : name;
  // A group with workers that have no price counts them as costing nothing: say so.
  return [shown, group.priced === false ? h("span", { class: "hint", dataset: { field: "unpriced" },
    title: "Some of its workers have no hourly cost (no template, or a template without one): counted as free." },
  " (not priced)") : null];
}

function cell(group, key, groupBy, currency) {
  if (key === "name") return groupName(group, groupBy);
  if (key.endsWith("_hours")) return hours(group[key]);
  return usd(group[key], currency);
}

export function mountCosts(main, params) {
  let period = PERIODS.find(([key]) => key === params.get("period"))?.[0] || "24h";
  let groupBy = GROUPINGS.find(([key]) => key === params.get("group_by"))?.[0] || "pool";
  let chart = null;
  let reading = 0; // the newest read: an older one that answers late is dropped
  const select = (id, label, options, value) => h("label", { for: id }, label,
    h("select", { id, name: id }, options.map(([key, text]) => h("option", { value: key, selected: key === value },
      text))));
  const filters = h("form", { class: "filters filters-3", role: "search", "aria-label": "Filter costs" },
    select("costs-period", "Period", PERIODS, period), select("costs-group-by", "Group by", GROUPINGS, groupBy));
  const status = h("p", { class: "hint", id: "costs-status", role: "status", "aria-live": "polite" }, "Loading…");
  const totals = h("div", { class: "grid-cards", id: "costs-totals" });
  const chartBox = h("div", { id: "costs-chart", class: "charts" });
  const tbody = h("tbody", {});
  const nameHead = h("th", { scope: "col" }, "Pool");
  const table = h("table", { class: "striped compact-table", id: "costs-table" },
    h("caption", { class: "visually-hidden" }, "Cost of each group, the most expensive first"),
    h("thead", {}, h("tr", {}, COLUMNS.map(([key, label, numeric]) => (key === "name" ? nameHead
      : h("th", { scope: "col", class: numeric ? "num" : null }, label))))), tbody);
  replace(main, h("h1", {}, "Costs"), filters, status, totals,
    h("section", { class: "detail-section", "aria-labelledby": "costs-chart-title" },
      h("h3", { id: "costs-chart-title" }, "Over time"), chartBox),
    h("section", { class: "detail-section", "aria-labelledby": "costs-table-title" },
      h("h3", { id: "costs-table-title" }, "By group"), h("div", { class: "table-scroll" }, table)),
    h("p", { class: "hint" }, "Running time is priced at the template's hourly cost (at least a minute per start), "
      + "stopped time at its storage cost; savings are what the paused or retired workers would have cost running."));

  const drawTotals = (report) => {
    const t = report.totals || {};
    replace(totals,
      TOTALS.map(([key, label]) => h("article", { class: "card", dataset: { total: key } },
        h("h2", {}, label), h("p", { class: "big-number", dataset: { field: key } }, usd(t[key], report.currency)))),
      h("article", { class: "card", dataset: { total: "hours" } }, h("h2", {}, "Hours"),
        h("ul", { class: "plain" },
          h("li", {}, "Running", h("span", { dataset: { field: "running_hours" } }, hours(t.running_hours))),
          h("li", {}, "Stopped", h("span", { dataset: { field: "stopped_hours" } }, hours(t.stopped_hours))))));
  };

  const drawTable = (report) => {
    const groups = report.groups || [];
    nameHead.textContent = GROUPINGS.find(([key]) => key === groupBy)[1];
    replace(tbody, groups.length ? groups.map((group) => h("tr", { dataset: { group: group.key } },
      COLUMNS.map(([key, , numeric]) => h("td", { dataset: { field: key }, class: numeric ? "num" : null },
        cell(group, key, groupBy, report.currency)))))
      : h("tr", {}, h("td", { colspan: COLUMNS.length }, "Nothing cost anything in this period.")));
  };

  const drawChart = (report) => {
    const groups = report.groups || [];
    const names = new Map(groups.map((g) => [g.key, g.name || g.key]));
    const order = groups.map((g) => g.key).filter((key) => key in (report.series?.groups || {}));
    const [, periodLabel] = PERIODS.find(([key]) => key === period);
    chart = costChart(chartBox, chart, { series: report.series, names, order, currency: report.currency,
      label: `${periodLabel}: ${usd(report.totals?.total_usd, report.currency)} in all, over ${order.length} `
        + `group(s) by ${groupBy}` });
  };

  async function load() {
    const mine = ++reading;
    const [, , hoursBack, bucket] = PERIODS.find(([key]) => key === period);
    let report;
    try {
      report = await readCosts({ hoursBack, groupBy, bucket });
    } catch (failure) {
      if (mine !== reading) return;
      status.textContent = "";
      replace(totals, h("p", { role: "alert" }, `Costs unavailable: ${failure.message}`));
      return;
    }
    if (mine !== reading) return;
    drawTotals(report);
    drawChart(report);
    drawTable(report);
    status.textContent = `From ${when(report.from)} to ${when(report.to)}; updated ${new Date().toLocaleTimeString()}.`;
  }

  const change = () => {
    period = filters.querySelector("#costs-period").value;
    groupBy = filters.querySelector("#costs-group-by").value;
    history.replaceState(null, "", `#/costs?period=${period}&group_by=${groupBy}`);
    load();
  };
  filters.addEventListener("change", change);
  filters.addEventListener("submit", (event) => event.preventDefault());

  load();
  const timer = setInterval(load, REFRESH_MS);
  const soon = throttle(load, EVENT_THROTTLE_MS);
  const off = subscribe((kind, detail) => {
    if (kind === "workers" && detail.snapshot) soon();
    else if (kind === "worker-event" && COSTLY_EVENTS.has(detail.type)) soon();
  });
  return () => {
    off();
    clearInterval(timer);
    soon.cancel();
    if (chart) chart.destroy();
  };
}
