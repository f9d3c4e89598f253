// What a pool's page shows of the time ahead and of its cost: the workers the sessions booked on its track need
// over the next hours (`GET /api/pools/{id}/forecast`) charted against its capacity, the lead times a worker
// takes to serve, and what the pool cost over the last 24 hours and costs per hour now. Re-read every 30 s and
// soon after an event that may change them (the pool page calls `soon()`, throttled).

import { api } from "../api.js";
import { demandChart } from "../charts.js";
import { costFacts, perHour, readCosts, throttle } from "../costs.js";
import { definitionList, h, replace, when } from "../dom.js";
import { leadTimeText } from "../pools.js";

const WINDOWS = [[2, "2 h"], [6, "6 h"], [12, "12 h"], [24, "24 h"]];
const REFRESH_MS = 30_000;
const EVENT_THROTTLE_MS = 3_000;

function peakStep(steps) {
  return (steps || []).reduce((top, s) => (s.workers > (top?.workers ?? -1) ? s : top), null);
}

/** The forecast in words: the busiest step ahead, the lead times, and the capacity it is set against. */
function forecastFacts(f) {
  const peak = peakStep(f.steps);
  return h("div", { class: "facts-grid" },
    definitionList([
      ["Peak booked demand", h("span", { dataset: { field: "peak" } }, peak && peak.sessions
        ? `${peak.workers} worker(s) for ${peak.sessions} session(s), ${when(peak.start)} to ${when(peak.end)}`
        : "no session booked")],
      ["Lead times", h("span", { id: "pool-lead-time", dataset: { field: "lead_time" } }, leadTimeText(f.lead_time))],
    ]),
    definitionList([
      ["Desired / ready / parked", h("span", { dataset: { field: "capacity" } },
        `${f.desired_workers} / ${f.ready_workers} / ${f.parked_workers}`)],
      ["Most workers", String(f.max_workers)], ["Sessions per worker", String(f.labs_per_worker)],
    ]));
}

/** The two sections (`demand`, `cost`) for the page to place; `soon()` re-reads them; `destroy()` on leaving. */
export function poolAhead(poolId) {
  const path = `/api/pools/${encodeURIComponent(poolId)}`;
  let hoursAhead = 6;
  let chart = null;
  let forecast = null;
  let costReport = null;
  let costError = null;
  let started = false;
  const facts = h("div", { id: "pool-forecast" }, h("p", { class: "hint" }, "Loading…"));
  const chartBox = h("div", { id: "pool-demand-chart", class: "charts" });
  const costBox = h("div", { id: "pool-cost" }, h("p", { class: "hint" }, "Loading…"));
  // A select, not buttons: the page's buttons are the admin's actions.
  const windows = h("select", { id: "pool-demand-hours", name: "hours" }, WINDOWS.map(([value, label]) =>
    h("option", { value, selected: value === hoursAhead }, label)));
  windows.addEventListener("change", () => {
    hoursAhead = Number(windows.value);
    loadForecast();
  });
  const demand = h("section", { class: "detail-section", "aria-labelledby": "pool-demand-title", id: "pool-demand" },
    h("h3", { id: "pool-demand-title" }, "Booked demand ahead"),
    h("p", { class: "hint" }, "The workers the sessions booked on this pool's track need, against the workers it is "
      + "held at and has ready: workers are made ready a lead time before the sessions that need them start."),
    h("label", { for: "pool-demand-hours", class: "inline-select" }, "Show the next ", windows), facts, chartBox);
  const cost = h("section", { class: "detail-section", "aria-labelledby": "pool-cost-title" },
    h("h3", { id: "pool-cost-title" }, "Cost", h("a", { href: "#/costs?period=24h&group_by=pool",
      class: "sessions-link" }, "All costs")), costBox);

  const drawCost = () => {
    const now = ["Now", h("span", { dataset: { field: "cost_per_hour" } }, forecast
      ? `${perHour(forecast.cost_per_hour_usd)} for its counted workers` : "N/A")];
    if (costError) replace(costBox, h("p", { role: "alert" }, `Cost unavailable: ${costError}`), definitionList([now]));
    else if (costReport) replace(costBox, costFacts(costReport, [now]));
  };

  async function loadForecast() {
    const asked = hoursAhead;
    let answer;
    try {
      answer = await api(`${path}/forecast?hours=${asked}`);
    } catch (failure) {
      if (chart) chart.destroy();
      chart = null;
      forecast = null;
      replace(chartBox);
      replace(facts, h("p", { role: "alert" }, `Forecast unavailable: ${failure.message}`));
      drawCost();
      return;
    }
    if (asked !== hoursAhead) return; // another window was chosen meanwhile
    forecast = answer;
    replace(facts, forecastFacts(forecast));
    const peak = peakStep(forecast.steps)?.workers ?? 0;
    chart = demandChart(chartBox, chart, forecast, `Over the next ${asked} h the booked sessions need at most `
      + `${peak} worker(s); the pool is held at ${forecast.desired_workers}, ${forecast.ready_workers} ready, `
      + `at most ${forecast.max_workers}.`);
    drawCost();
  }

  async function loadCost() {
    try {
      costReport = await readCosts({ hoursBack: 24, groupBy: "pool", filters: { pool_id: poolId } });
      costError = null;
    } catch (failure) {
      costError = failure.message;
    }
    drawCost();
  }

  const refresh = () => {
    loadForecast();
    loadCost();
  };
  const soon = throttle(refresh, EVENT_THROTTLE_MS);
  let timer = null;
  return {
    demand,
    cost,
    soon() {
      if (!started) {
        started = true;
        timer = setInterval(refresh, REFRESH_MS);
      }
      soon();
    },
    destroy() {
      clearInterval(timer);
      soon.cancel();
      if (chart) chart.destroy();
    },
  };
}
