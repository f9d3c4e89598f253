// Charts over time drawn with uPlot (served from this host, as the Monitoring tab's): the cost of each group per
// bucket (Costs page) and a pool's booked demand against its capacity (pool page). Each figure says in words
// what it shows (its label), so the canvas never carries the only copy of a figure.

import uPlot from "/static/vendor/uplot.esm.js";
import { h, replace } from "./dom.js";

export const PALETTE = ["#1f6feb", "#8250df", "#bf8700", "#1a7f37", "#cf222e", "#0598bc", "#bc4c00", "#57606a"];

function width(container) {
  return Math.max(300, Math.min(1200, (container.clientWidth || 900) - 16));
}

/** A chart in `container` (its previous one destroyed); returns the uPlot, or null when there is no data. */
function draw(container, previous, { label, caption, options, data }) {
  if (previous) previous.destroy();
  const figure = h("figure", { class: "chart wide-chart", "aria-label": label }, h("figcaption", {}, caption));
  replace(container, figure);
  return new uPlot({ width: width(container), height: 220, cursor: { drag: { x: false, y: false } }, ...options },
    data, figure);
}

/**
 * Cost per bucket of each group: `series` is the API's `{buckets, groups}`, `names` key → name, `order` the keys
 * drawn (most expensive first); the groups beyond the palette are summed as "Others".
 */
export function costChart(container, previous, { series, names, order, currency, label }) {
  const buckets = series?.buckets || [];
  if (!buckets.length) {
    if (previous) previous.destroy();
    replace(container, h("p", { class: "hint" }, "No cost in this period yet."));
    return null;
  }
  const xs = buckets.map((iso) => new Date(iso).getTime() / 1000);
  const shown = order.slice(0, PALETTE.length - 1);
  const rest = order.slice(PALETTE.length - 1);
  const lines = shown.map((key) => [names.get(key) || key, series.groups?.[key] || []]);
  if (rest.length) {
    lines.push([`Others (${rest.length})`, xs.map((_, i) => rest.reduce((sum, key) => sum
      + (series.groups?.[key]?.[i] || 0), 0))]);
  }
  const money = (v) => (v == null ? "—" : `${v.toFixed(2)} ${currency}`);
  return draw(container, previous, {
    label, caption: `Cost per ${xs.length > 1 && xs[1] - xs[0] >= 86400 ? "day" : "hour"} (${currency})`,
    data: [xs, ...lines.map(([, values]) => xs.map((_, i) => values[i] ?? 0))],
    options: {
      series: [{}, ...lines.map(([name], i) => ({ label: name, stroke: PALETTE[i], width: 2, value: (u, v) => money(v),
        points: { show: xs.length < 60 } }))],
      axes: [{}, { values: (u, ticks) => ticks.map((v) => v.toFixed(2)), size: 56 }],
      scales: { y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    },
  });
}

/**
 * A pool's forecast (`PoolForecast`): the workers its booked sessions need as a step line, against the workers
 * it is held at (desired) and has ready, and its most (dashed), from its `at` to the end of its last step.
 */
export function demandChart(container, previous, forecast, label) {
  const steps = forecast.steps || [];
  const start = new Date(forecast.at).getTime() / 1000;
  const end = steps.length ? new Date(steps[steps.length - 1].end).getTime() / 1000 : start + 3600;
  const xs = [start, ...steps.map((s) => new Date(s.start).getTime() / 1000).filter((x) => x > start), end];
  const demandAt = (x) => steps.find((s) => new Date(s.start).getTime() / 1000 <= x
    && x < new Date(s.end).getTime() / 1000)?.workers ?? 0;
  const demand = xs.map((x, i) => (i === xs.length - 1 ? demandAt(xs[i - 1] ?? x) : demandAt(x)));
  const flat = (value) => xs.map(() => value);
  const top = Math.max(forecast.max_workers, forecast.desired_workers, ...demand, 1);
  return draw(container, previous, {
    label, caption: "Workers needed by booked sessions against capacity",
    data: [xs, demand, flat(forecast.desired_workers), flat(forecast.ready_workers), flat(forecast.max_workers)],
    options: {
      series: [{},
        { label: "Booked demand", stroke: PALETTE[4], width: 2, fill: `${PALETTE[4]}22`,
          paths: uPlot.paths.stepped({ align: 1 }), points: { show: false } },
        // Desired under ready, wider, so that both show where they are equal.
        { label: "Desired", stroke: PALETTE[0], width: 4, points: { show: false } },
        { label: "Ready", stroke: PALETTE[3], width: 2, dash: [3, 3], points: { show: false } },
        { label: "Max", stroke: PALETTE[7], width: 1.5, dash: [8, 5], points: { show: false } }],
      axes: [{}, { values: (u, ticks) => ticks.map((v) => (Number.isInteger(v) ? String(v) : "")), size: 40 }],
      scales: { y: { range: () => [0, top + 1] } },
    },
  });
}
