// What the pool pages share: labels, formatting of capacity and decisions, and the pool form (create, and the
// configuration of an existing pool) that reads back a `PoolSpec` (lcm_core/domain/pools.py).

import { api } from "./api.js";
import { NA, badge, h, text, when } from "./dom.js";

export const POLICIES = [
  ["none", "None (manual size)"],
  ["capacity_based", "Capacity (CPU and memory)"],
  ["lab_count_based", "Lab count (sessions per worker)"],
  ["scheduled", "Scheduled (allowed hours)"],
  ["hybrid", "Hybrid (capacity and lab count)"],
];
const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const NAME_PATTERN = "[A-Za-z0-9][A-Za-z0-9_.\\-]*";
const TRACK_PATTERN = "[A-Za-z0-9][A-Za-z0-9_.:\\-]*"; // a track may hold ':' (lcm_core.domain.lablets.TrackName)

// ScalingConfig's defaults: what a new pool's form starts with.
const DEFAULTS = {
  policy: "none", min_workers: 1, max_workers: 10, cpu_scale_up_percent: 75, cpu_scale_down_percent: 30,
  memory_scale_up_percent: 80, memory_scale_down_percent: 40, max_labs_per_worker: 15, min_labs_per_worker: 3,
  scale_up_cooldown_minutes: 10, scale_down_cooldown_minutes: 20, allowed_hours: null, scale_down_action: "stop",
  scale_down_delay_after_add_minutes: 10, look_ahead_minutes: 120, warm_pool_size: null, provision_lead_minutes: 15,
  resume_lead_minutes: 8, ready_ahead_minutes: 15,
};
const NUMBER_FIELDS = ["min_workers", "max_workers", "max_labs_per_worker", "min_labs_per_worker",
  "cpu_scale_up_percent", "cpu_scale_down_percent", "memory_scale_up_percent", "memory_scale_down_percent",
  "scale_up_cooldown_minutes", "scale_down_cooldown_minutes", "scale_down_delay_after_add_minutes",
  "look_ahead_minutes", "provision_lead_minutes", "resume_lead_minutes", "ready_ahead_minutes"];

export function policyLabel(policy) {
  return POLICIES.find(([key]) => key === policy)?.[1] || text(policy);
}

export function poolPhase(pool) {
  return badge(pool.phase, "Pool phase");
}

/** Counted workers and how many of them serve: "2 (1 ready)". */
export function workersText(capacity) {
  const c = capacity || {};
  return `${c.workers ?? 0} (${c.ready ?? 0} ready)`;
}

export function sessionsText(capacity) {
  const c = capacity || {};
  return c.waiting_sessions ? `${c.sessions ?? 0} (+${c.waiting_sessions} waiting)` : String(c.sessions ?? 0);
}

export function available(free, total, unit = "") {
  if (typeof total !== "number") return NA;
  const n = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1));
  return `${n(free ?? 0)} of ${n(total)}${unit} available`;
}

export function hoursText(hours) {
  if (!hours) return "any time";
  const days = hours.weekdays.length === 7 ? "every day" : hours.weekdays.map((d) => WEEKDAYS[d]).join(", ");
  return `${hours.start.slice(0, 5)}–${hours.end.slice(0, 5)} ${hours.timezone}, ${days}`;
}

/** "workers=1, ready=0, sessions=0, ..." — the numbers a decision was taken on, in the order given. */
export function inputsText(inputs) {
  const entries = Object.entries(inputs || {}).filter(([, v]) => v !== null && v !== undefined);
  return entries.length ? entries.map(([k, v]) => `${k}=${typeof v === "number" && !Number.isInteger(v)
    ? Math.round(v * 100) / 100 : v}`).join(", ") : "—";
}

// How many measurements replace a configured lead time, and over how many recent ones the p95 is taken
// (lcm_core/domain/pool_forecast.py: LEAD_TIME_MIN_SAMPLES, LEAD_TIME_WINDOW).
const LEAD_TIME_MIN_SAMPLES = 3;
const LEAD_TIME_WINDOW = 20;

/** "provision 15.0 min (default) / resume 8.0 min (p95 of 5)" for a `LeadTime`. */
export function leadTimeText(lead) {
  if (!lead) return NA;
  const one = (seconds, samples) => `${(seconds / 60).toFixed(1)} min (${samples >= LEAD_TIME_MIN_SAMPLES
    ? `p95 of ${Math.min(samples, LEAD_TIME_WINDOW)}` : "default"})`;
  return `provision ${one(lead.provision_seconds, lead.provision_samples ?? 0)} / `
    + `resume ${one(lead.resume_seconds, lead.resume_samples ?? 0)}`;
}

/**
 * What a decision was forecast on, as phrases (none for a decision taken without a forecast): the workers the
 * sessions booked within the look-ahead need (by the launch lead time, now, at their peak), the peak of its demand
 * steps, the lead times it counted with, and what the pool costs per hour at the size decided
 * (worker_controller/domain/autoscaling.py records them).
 */
export function forecastFigures(d) {
  const inputs = d.inputs || {};
  const figures = [];
  const n = (key) => (typeof inputs[key] === "number" ? inputs[key] : null);
  if (n("forecast_workers") !== null) {
    const others = [["now", n("forecast_now_workers")], ["by resume", n("forecast_resume_workers")],
      ["peak", n("forecast_peak_workers")]]
      .filter(([, v]) => v !== null).map(([label, v]) => `${label} ${v}`);
    figures.push(["forecast_workers", `forecast ${n("forecast_workers")} worker${n("forecast_workers") === 1 ? "" : "s"}`
      + (others.length ? ` (${others.join(", ")})` : "")]);
  }
  if (n("booked") !== null) {
    figures.push(["booked", `${n("booked")} booked${n("look_ahead_minutes") !== null
      ? ` within ${n("look_ahead_minutes")} min` : ""}`]);
  }
  const peak = (d.demand || []).reduce((top, s) => (s.workers > (top?.workers ?? -1) ? s : top), null);
  if (peak && peak.sessions) figures.push(["demand", `peak ${peak.sessions} session(s) from ${when(peak.start)}`]);
  if (d.lead_time) figures.push(["lead_time", `lead ${leadTimeText(d.lead_time)}`]);
  else if (n("lead_provision_minutes") !== null || n("lead_resume_minutes") !== null) {
    const m = (v) => (v === null ? NA : `${v.toFixed(1)} min`);
    figures.push(["lead_time", `lead provision ${m(n("lead_provision_minutes"))} / resume ${m(n("lead_resume_minutes"))}`]);
  }
  if (n("cost_per_hour_usd") !== null) {
    figures.push(["cost_per_hour_usd", `$${n("cost_per_hour_usd").toFixed(2)}/h at ${d.to_workers} worker(s)`]);
  }
  return figures;
}

// `at` as milliseconds: an event carries the decision's time to the microsecond, the history read (from the
// database) to the millisecond; both name the same decision.
export function decisionKey(d) {
  return `${Date.parse(d.at)}|${d.action}|${d.trigger}|${d.to_workers}|${d.reason}`;
}

/** One history row: when, what, from → to, why, the numbers, which workers, by whom. */
export function decisionRow(d) {
  const moved = [["launched", d.launched], ["resumed", d.resumed], ["retired", d.retired]]
    .filter(([, ids]) => ids?.length).map(([what, ids]) => `${what} ${ids.length}`).join(", ");
  const figures = forecastFigures(d);
  return h("tr", { dataset: { decision: decisionKey(d), action: d.action, trigger: d.trigger } },
    h("td", { dataset: { field: "at" } }, when(d.at)),
    h("td", { dataset: { field: "action" } }, badge(d.action === "none" ? "no change" : d.action, "Action")),
    h("td", { dataset: { field: "trigger" } }, text(d.trigger)),
    h("td", { class: "num", dataset: { field: "size" } }, `${d.from_workers} → ${d.to_workers}`),
    h("td", { class: "wrap", dataset: { field: "reason" } }, text(d.reason)),
    h("td", { class: "wrap inputs", dataset: { field: "inputs" }, title: inputsText(d.inputs) },
      inputsText(figures.length ? withoutForecast(d.inputs) : d.inputs)),
    h("td", { class: "wrap forecast", dataset: { field: "forecast" } }, forecastCell(figures)),
    h("td", { dataset: { field: "workers" } }, moved || "—"),
    h("td", { dataset: { field: "by" } }, text(d.by)));
}

// The inputs the Forecast column says in words: the Numbers column leaves them out (its tooltip has them all).
const FORECAST_INPUTS = new Set(["look_ahead_minutes", "booked", "forecast_now_workers", "forecast_resume_workers",
  "forecast_workers", "forecast_peak_workers", "lead_provision_minutes", "lead_resume_minutes", "lead_measured",
  "cost_per_hour_usd"]);

function withoutForecast(inputs) {
  return Object.fromEntries(Object.entries(inputs || {}).filter(([key]) => !FORECAST_INPUTS.has(key)));
}

function forecastCell(figures) {
  return figures.length ? h("ul", { class: "plain figures" }, figures.map(([key, phrase]) =>
    h("li", { dataset: { figure: key } }, phrase))) : "—";
}

export const DECISION_COLUMNS = ["When", "Action", "Trigger", "Workers", "Reason", "Numbers", "Forecast",
  "Workers moved", "By"];

export async function templateNames() {
  const templates = await api("/api/templates");
  return templates.map((t) => ({ name: t.name, enabled: t.enabled !== false, regions: Object.keys(t.regions || {}) }));
}

function input(prefix, key, label, value, attrs = {}) {
  const id = `${prefix}-${key}`;
  const { hint, ...rest } = attrs;
  return h("label", { for: id }, label,
    h("input", { id, name: key, value: value ?? "", ...rest, "aria-describedby": hint ? `${id}-hint` : null }),
    hint ? h("small", { id: `${id}-hint` }, hint) : null);
}

function number(prefix, key, label, value, min, max, step = "1", hint = null) {
  return input(prefix, key, label, value, { type: "number", min, max, step, required: true, hint });
}

/**
 * The pool form. `pool` prefills it (null: a new pool with the contract's defaults); `templates` fills the
 * template select. Returns `{ form, read }`: `read()` is the `PoolSpec` the fields say.
 */
export function poolForm({ prefix, pool, templates, submitLabel, onSubmit }) {
  const s = { ...DEFAULTS, ...(pool?.scaling || {}) };
  const hours = s.allowed_hours;
  const names = templates.map((t) => t.name);
  if (pool && !names.includes(pool.template_name)) names.push(pool.template_name);
  const templateSelect = h("select", { id: `${prefix}-template_name`, name: "template_name", required: true },
    pool ? null : h("option", { value: "" }, "Choose a template"),
    names.sort().map((name) => {
      const t = templates.find((x) => x.name === name);
      return h("option", { value: name, selected: pool?.template_name === name },
        t ? (t.enabled ? name : `${name} (disabled)`) : `${name} (not found)`);
    }));
  const regions = h("input", { id: `${prefix}-regions`, name: "regions", required: true,
    value: (pool?.regions || []).join(", "), placeholder: "us-east-1, us-west-2",
    "aria-describedby": `${prefix}-regions-hint` });
  templateSelect.addEventListener("change", () => {
    const chosen = templates.find((t) => t.name === templateSelect.value);
    if (chosen && !regions.value.trim() && chosen.regions.length) regions.value = chosen.regions.join(", ");
  });
  const restrict = h("input", { id: `${prefix}-hours-enabled`, name: "hours_enabled", type: "checkbox",
    role: "switch", checked: Boolean(hours) });
  const hoursFields = h("fieldset", { class: "hours", disabled: !hours },
    h("legend", {}, "Allowed hours"),
    h("div", { class: "grid" },
      input(prefix, "hours-start", "From", hours?.start?.slice(0, 5) || "08:00", { type: "time", required: true }),
      input(prefix, "hours-end", "To", hours?.end?.slice(0, 5) || "18:00", { type: "time", required: true }),
      input(prefix, "hours-timezone", "Time zone", hours?.timezone || "UTC",
        { required: true, maxlength: 64, placeholder: "e.g. Europe/Paris" })),
    h("div", { class: "weekdays", role: "group", "aria-label": "Weekdays" }, WEEKDAYS.map((day, i) =>
      h("label", { for: `${prefix}-day-${i}` }, h("input", { id: `${prefix}-day-${i}`, type: "checkbox",
        name: "weekday", value: i, checked: hours ? hours.weekdays.includes(i) : i < 5 }), ` ${day}`))));
  restrict.addEventListener("change", () => { hoursFields.disabled = !restrict.checked; });

  const error = h("p", { id: `${prefix}-error`, class: "form-error", role: "alert" });
  const submit = h("button", { type: "submit" }, submitLabel);
  const form = h("form", { id: `${prefix}-form`, class: "pool-form", "aria-describedby": `${prefix}-error` },
    h("div", { class: "grid" },
      input(prefix, "name", "Name", pool?.name, { required: true, maxlength: 64, pattern: NAME_PATTERN }),
      input(prefix, "lab_track", "Lab track", pool?.lab_track, { required: true, maxlength: 64,
        pattern: TRACK_PATTERN, placeholder: "e.g. ccna" }),
      h("label", { for: `${prefix}-template_name` }, "Template", templateSelect)),
    h("div", { class: "grid" },
      h("label", { for: `${prefix}-regions` }, "Regions (comma-separated)", regions,
        h("small", { id: `${prefix}-regions-hint` }, "Workers are launched across them, the emptiest first.")),
      input(prefix, "description", "Description", pool?.description, { maxlength: 1000 })),
    h("fieldset", {},
      h("legend", {}, "Scaling"),
      h("div", { class: "grid" },
        h("label", { for: `${prefix}-policy` }, "Policy",
          h("select", { id: `${prefix}-policy`, name: "policy" },
            POLICIES.map(([key, label]) => h("option", { value: key, selected: s.policy === key }, label)))),
        number(prefix, "min_workers", "Min workers", s.min_workers, 0, 1000),
        number(prefix, "max_workers", "Max workers", s.max_workers, 0, 1000)),
      h("div", { class: "grid" },
        number(prefix, "max_labs_per_worker", "Most labs per worker", s.max_labs_per_worker, 1, 1000, "1",
          "Lab-count scaling adds workers above it."),
        number(prefix, "min_labs_per_worker", "Fewest labs per worker", s.min_labs_per_worker, 0, 1000, "1",
          "Below it, lab-count scaling removes workers.")),
      h("div", { class: "grid" },
        number(prefix, "cpu_scale_up_percent", "CPU: scale up above (%)", s.cpu_scale_up_percent, 0.1, 100, "any"),
        number(prefix, "cpu_scale_down_percent", "CPU: scale down below (%)", s.cpu_scale_down_percent, 0, 99.9, "any"),
        number(prefix, "memory_scale_up_percent", "Memory: scale up above (%)", s.memory_scale_up_percent, 0.1, 100, "any"),
        number(prefix, "memory_scale_down_percent", "Memory: scale down below (%)", s.memory_scale_down_percent, 0,
          99.9, "any")),
      h("div", { class: "grid" },
        number(prefix, "scale_up_cooldown_minutes", "Scale-up cooldown (minutes)", s.scale_up_cooldown_minutes, 0,
          1440, "any"),
        number(prefix, "scale_down_cooldown_minutes", "Scale-down cooldown (minutes)",
          s.scale_down_cooldown_minutes, 0, 1440, "any"),
        h("label", { for: `${prefix}-scale_down_action` }, "Scale-down action",
          h("select", { id: `${prefix}-scale_down_action`, name: "scale_down_action" },
            h("option", { value: "stop", selected: s.scale_down_action === "stop" }, "Stop (kept, resumed first)"),
            h("option", { value: "terminate", selected: s.scale_down_action === "terminate" }, "Terminate")))),
      h("div", { class: "grid" },
        number(prefix, "look_ahead_minutes", "Look ahead (minutes)", s.look_ahead_minutes, 0, 10080, "any",
          "Booked sessions this far ahead get ready workers in time (0: only sessions due now)."),
        input(prefix, "warm_pool_size", "Warm pool (stopped workers)", s.warm_pool_size, { type: "number", min: 0,
          max: 1000, step: 1, placeholder: "as the scale-down action says",
          hint: "Kept stopped to resume first: retired workers are stopped up to this many, terminated beyond, "
            + "and workers are launched to boot once and stop while fewer are kept." }),
        number(prefix, "scale_down_delay_after_add_minutes", "No scale-down after a scale-up for (minutes)",
          s.scale_down_delay_after_add_minutes, 0, 1440, "any")),
      h("div", { class: "grid" },
        number(prefix, "provision_lead_minutes", "Launch lead time (minutes)", s.provision_lead_minutes, 0.1, 240,
          "any", "At least this until 20 launches were measured."),
        number(prefix, "resume_lead_minutes", "Resume lead time (minutes)", s.resume_lead_minutes, 0.1, 240, "any",
          "At least this until 20 resumes were measured."),
        number(prefix, "ready_ahead_minutes", "Ready before a timeslot (minutes)", s.ready_ahead_minutes, 0, 240,
          "any", "Workers serve this long before booked sessions start, so their labs boot in time.")),
      h("label", { for: `${prefix}-hours-enabled` }, restrict,
        " Restrict automatic scaling to allowed hours (a scheduled pool needs them)"),
      hoursFields),
    error,
    h("div", { class: "button-row" }, submit));

  const read = () => {
    const v = (key) => form.querySelector(`#${prefix}-${key}`).value.trim();
    // A setting the form has no field for keeps the pool's value (an update replaces the whole spec).
    const scaling = { ...(pool?.scaling || {}), policy: v("policy"), scale_down_action: v("scale_down_action") };
    for (const key of NUMBER_FIELDS) {
      if (v(key) !== "") scaling[key] = Number(v(key));
    }
    scaling.warm_pool_size = v("warm_pool_size") === "" ? null : Number(v("warm_pool_size"));
    scaling.allowed_hours = restrict.checked ? {
      start: v("hours-start"), end: v("hours-end"), timezone: v("hours-timezone"),
      weekdays: [...form.querySelectorAll("input[name=weekday]:checked")].map((box) => Number(box.value)),
    } : null;
    const spec = { name: v("name"), lab_track: v("lab_track"), template_name: v("template_name"),
      regions: v("regions").split(",").map((r) => r.trim()).filter(Boolean), scaling };
    spec.description = v("description") || null;
    return spec;
  };

  form.addEventListener("input", () => { form.dataset.dirty = "true"; });
  form.addEventListener("reset", () => {
    error.textContent = "";
    setTimeout(() => { hoursFields.disabled = !restrict.checked; }); // after the fields are reset
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    submit.setAttribute("aria-busy", "true");
    submit.disabled = true;
    try {
      await onSubmit(read(), error);
    } finally {
      submit.removeAttribute("aria-busy");
      submit.disabled = false;
    }
  });
  return { form, error };
}

/** The message of a refused write, as the user should read it (the API's own words). */
export function refusal(failure, what) {
  const kind = { 422: `The API refused ${what}`, 409: "Conflict", 403: "Not allowed", 404: "Not found" }[failure.status]
    || `${what[0].toUpperCase()}${what.slice(1)} failed`;
  return `${kind}: ${failure.message}`;
}
