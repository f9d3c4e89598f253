// Monitoring tab: CPU, memory and disk over time (uPlot, served from this host), live-appended from SSE.
// CML-native values are preferred over CloudWatch; the CPU source is labelled on every sample.

import uPlot from "/static/vendor/uplot.esm.js";
import { api } from "../api.js";
import { definitionList, h, pct, replace } from "../dom.js";

const SERIES = [
  { key: "cpu_percent", label: "CPU", stroke: "#1f6feb" },
  { key: "memory_percent", label: "Memory", stroke: "#8250df" },
  { key: "disk_percent", label: "Disk", stroke: "#bf8700" },
];
const WINDOWS = [[15, "15 min"], [60, "1 h"], [360, "6 h"], [1440, "24 h"]];
const SOURCE = { cml: "CML (system_stats)", cloudwatch: "CloudWatch (CPUUtilization)" };

function sourceText(source) {
  return SOURCE[source] || "no data yet";
}

export function mountMonitoring(container, worker) {
  let minutes = 60;
  let samples = [];
  const charts = [];
  const latest = h("div", {});
  const chartBox = h("div", { class: "charts" });
  const picker = h("fieldset", { class: "button-row" }, h("legend", {}, "Time window"),
    WINDOWS.map(([value, label]) => {
      const button = h("button", { type: "button", class: "compact secondary outline", "aria-pressed": String(value === minutes),
        dataset: { minutes: value } }, label);
      button.addEventListener("click", () => {
        minutes = value;
        for (const b of picker.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b === button));
        load();
      });
      return button;
    }));
  replace(container,
    h("section", { class: "detail-section" }, h("h3", {}, "Recent utilisation"), latest),
    h("section", { class: "detail-section" }, h("h3", {}, "Over time"), picker, chartBox));

  const drawLatest = (w) => {
    const t = w.telemetry?.utilisation || {};
    replace(latest, definitionList([
      ["CPU", [pct(t.cpu_percent), h("span", { class: "source", dataset: { source: t.cpu_source || "none" } },
        ` source: ${sourceText(t.cpu_source)}`)]],
      ["Memory", [pct(t.memory_percent), h("span", { class: "source" }, " source: CML (system_stats)")]],
      ["Disk", [pct(t.disk_percent), h("span", { class: "source" }, " source: CML (system_stats)")]],
      ["CloudWatch CPU", pct(w.telemetry?.cloudwatch?.cpu_utilization)],
    ]), h("p", { class: "hint" }, t.cpu_source === "cloudwatch"
      ? "CML did not report CPU; the CPU figure is CloudWatch's (memory and disk need CML)."
      : "Values come from the CML API (they see the hypervisor); CloudWatch is only the fallback for CPU."));
  };

  const chartData = () => {
    const xs = samples.map((s) => new Date(s.at).getTime() / 1000);
    return SERIES.map((s) => [xs, samples.map((x) => x[s.key] ?? null)]);
  };

  const build = () => {
    for (const chart of charts.splice(0)) chart.destroy();
    replace(chartBox);
    if (!samples.length) {
      chartBox.append(h("p", { class: "hint" }, "No samples in this window yet."));
      return;
    }
    const width = Math.max(280, Math.floor((chartBox.clientWidth || 900) / (chartBox.clientWidth > 900 ? 3 : 1)) - 16);
    const sets = chartData();
    SERIES.forEach((series, i) => {
      const last = samples[samples.length - 1][series.key];
      const figure = h("figure", { class: "chart", "aria-label": `${series.label} utilisation, latest ${pct(last)}` },
        h("figcaption", {}, `${series.label} %`, series.key === "cpu_percent"
          ? h("span", { class: "source" }, ` (source: ${sourceText(samples[samples.length - 1].cpu_source)})`) : null));
      chartBox.append(figure);
      const options = {
        width, height: 180, legend: { show: false }, cursor: { drag: { x: false, y: false } },
        scales: { y: { range: [0, 100] } },
        series: [{}, { label: series.label, stroke: series.stroke, width: 2, fill: `${series.stroke}22`, spanGaps: true }],
        axes: [{}, { values: (u, ticks) => ticks.map((v) => `${v}%`), size: 48 }],
      };
      charts.push(new uPlot(options, sets[i], figure));
    });
  };

  async function load() {
    try {
      const history = await api(`/api/workers/${encodeURIComponent(worker.id)}/metrics?minutes=${minutes}`);
      samples = history.samples;
    } catch (failure) {
      replace(chartBox, h("p", { role: "alert" }, `History unavailable: ${failure.message}`));
      return;
    }
    build();
  }

  drawLatest(worker);
  load();
  return {
    update(w) {
      drawLatest(w);
    },
    metrics(row) {
      // `row`: the worker's row a metrics event carries (`WorkerSummary`), with this report's utilisation.
      const data = row || {};
      if (!data.collected_at || samples.some((s) => s.at === data.collected_at)) return;
      samples.push({ at: data.collected_at, cpu_percent: data.cpu_percent, memory_percent: data.memory_percent,
        disk_percent: data.disk_percent, cpu_source: data.cpu_source });
      const horizon = Date.now() - minutes * 60_000;
      samples = samples.filter((s) => new Date(s.at).getTime() >= horizon);
      if (charts.length !== SERIES.length) build();
      else chartData().forEach((set, i) => charts[i].setData(set));
    },
    destroy() {
      for (const chart of charts.splice(0)) chart.destroy();
    },
  };
}
