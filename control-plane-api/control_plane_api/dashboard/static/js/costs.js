// What the cost views share: money and hours as text, the periods the Costs page offers, the ledger's reads
// (`GET /api/costs`) and the facts a pool's or a worker's page shows of its last 24 hours.

import { api } from "./api.js";
import { NA, definitionList, h } from "./dom.js";

export const PERIODS = [["24h", "Last 24 hours", 24, "hour"], ["7d", "Last 7 days", 7 * 24, "hour"],
  ["30d", "Last 30 days", 30 * 24, "day"]];
export const GROUPINGS = [["pool", "Pool"], ["worker", "Worker"], ["track", "Lab track"], ["definition", "Definition"]];

const formats = new Map();

/** "$3.96"; an amount above zero but below a cent is "< $0.01" (never "$0.00" for money that was spent). */
export function usd(amount, currency = "USD") {
  if (typeof amount !== "number") return NA;
  if (!formats.has(currency)) {
    formats.set(currency, new Intl.NumberFormat("en-US", { style: "currency", currency, minimumFractionDigits: 2,
      maximumFractionDigits: 2 }));
  }
  if (amount > 0 && amount < 0.005) return `< ${formats.get(currency).format(0.01)}`;
  return formats.get(currency).format(amount);
}

export function perHour(amount, currency = "USD") {
  return typeof amount === "number" ? `${usd(amount, currency)}/h` : "not priced";
}

export function hours(value) {
  return typeof value === "number" ? `${value.toFixed(value < 10 ? 2 : 1)} h` : NA;
}

/** The ledger over the last `hoursBack` hours up to now, narrowed by `filters` (pool_id, worker_id). */
export function readCosts({ hoursBack = 24, groupBy = "pool", bucket = "hour", filters = {} } = {}) {
  const to = new Date();
  const from = new Date(to.getTime() - hoursBack * 3600_000);
  const query = new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), group_by: groupBy, bucket });
  for (const [key, value] of Object.entries(filters)) if (value) query.set(key, value);
  return api(`/api/costs?${query}`);
}

/** A pool's or a worker's last 24 hours: total, its running and stopped parts (with their hours), savings. */
export function costFacts(report, extra = []) {
  const t = report.totals || {};
  const c = report.currency;
  return definitionList([
    ["Last 24 h", h("span", { dataset: { field: "total_usd" } }, usd(t.total_usd, c))],
    ["Running", h("span", { dataset: { field: "running_usd" } },
      `${usd(t.running_usd, c)} for ${hours(t.running_hours)}`)],
    ["Stopped (storage)", h("span", { dataset: { field: "stopped_usd" } },
      `${usd(t.stopped_usd, c)} for ${hours(t.stopped_hours)}`)],
    ["Saved", h("span", { dataset: { field: "savings" } },
      `${usd(t.savings_idle_pause_usd, c)} by idle auto-pause, ${usd(t.savings_scale_down_usd, c)} by scale-down`)],
    ...extra,
    // Workers without an hourly cost (no template, or one without a price) are counted as costing nothing.
    (report.groups || []).some((g) => g.priced === false) ? ["Not priced", h("span", { dataset: { field: "unpriced" } },
      "some of its time has no price (no template, or a template without a cost): counted as free")] : null,
  ].filter(Boolean));
}

/**
 * Reloads at most once per `ms` however often it is asked (a burst of worker events costs one read), and at
 * once when nothing was read for that long. `cancel()` drops a reload not yet done.
 */
export function throttle(reload, ms) {
  let last = 0;
  let timer = null;
  const run = () => {
    timer = null;
    last = Date.now();
    reload();
  };
  const request = () => {
    if (timer !== null) return;
    timer = setTimeout(run, Math.max(0, last + ms - Date.now()));
  };
  request.cancel = () => {
    clearTimeout(timer);
    timer = null;
  };
  return request;
}
