// Settings (admins change them, viewers read them): discovery, monitoring thresholds, idle detection.

import { api } from "../api.js";
import { h, replace, toast, when } from "../dom.js";
import { session, subscribe } from "../store.js";

function field(id, label, value, attrs = {}) {
  const input = h("input", { id, name: id, value: value ?? "", ...attrs });
  return h("label", { for: id }, label, input, attrs.hint ? h("small", {}, attrs.hint) : null);
}

function toggle(id, label, checked) {
  return h("label", { for: id }, h("input", { id, name: id, type: "checkbox", role: "switch", checked }), ` ${label}`);
}

function number(id, label, value, min, max, step = "1") {
  return field(id, label, value, { type: "number", min, max, step, required: true });
}

function origin(settings, section, variables) {
  return settings.customized.includes(section) ? null : h("p", { class: "hint" },
    `Not set here yet: the controllers use their environment (${variables}) until this section is saved.`);
}

function form(settings) {
  const d = settings.discovery;
  const m = settings.monitoring;
  const i = settings.idle;
  return h("form", { id: "settings-form", "aria-describedby": "settings-meta" },
    h("fieldset", { disabled: !session.isAdmin },
      h("article", { dataset: { section: "discovery" } }, h("h2", {}, "Discovery"), origin(settings, "discovery", "WORKER_DISCOVERY_*"),
        toggle("discovery-enabled", "Discover CML instances", d.enabled),
        field("discovery-regions", "Regions (comma-separated)", d.regions.join(", "),
          { required: true }),
        field("discovery-ami", "AMI name pattern", d.ami_name_pattern, { required: true, maxlength: 128,
          hint: "A glob as EC2 name filters take it, e.g. CML-2.9.*" }),
        number("discovery-interval", "Scan interval (seconds)", d.scan_interval_seconds, 5, 86400)),
      h("article", { dataset: { section: "monitoring" } }, h("h2", {}, "Monitoring thresholds"), origin(settings, "monitoring", "METRICS_POLL_INTERVAL"),
        number("monitoring-interval", "Metrics poll interval (seconds)", m.metrics_poll_interval_seconds, 5, 3600),
        h("div", { class: "grid" },
          number("monitoring-cpu", "CPU alert above (%)", m.cpu_threshold, 1, 100, "0.1"),
          number("monitoring-memory", "Memory alert above (%)", m.memory_threshold, 1, 100, "0.1"),
          number("monitoring-disk", "Disk alert above (%)", m.disk_threshold, 1, 100, "0.1")),
        h("label", { for: "monitoring-webhooks" }, "Alert webhooks (one URL per line)",
          h("textarea", { id: "monitoring-webhooks", name: "monitoring-webhooks", rows: 2 },
            m.notification_webhooks.join("\n")))),
      h("article", { dataset: { section: "idle" } }, h("h2", {}, "Idle detection"), origin(settings, "idle", "IDLE_THRESHOLD_MINUTES"),
        toggle("idle-enabled", "Detect idle workers", i.enabled),
        toggle("idle-auto-pause", "Pause (stop) idle workers automatically", i.auto_pause),
        h("div", { class: "grid" },
          number("idle-threshold", "Idle after (minutes)", i.threshold_minutes, 0.05, 10080, "any"),
          number("idle-snooze", "No pause for (minutes) after a resume", i.snooze_minutes_after_resume, 0, 10080))),
      session.isAdmin ? h("button", { type: "submit" }, "Save settings") : null));
}

// Only the sections the operator touched are sent: a section never saved stays "not set here", and the
// controllers keep using their environment for it (the API replaces exactly the sections given).
function read(formEl, version, sections) {
  const v = (id) => formEl.querySelector(`#${id}`);
  const num = (id) => Number(v(id).value);
  const all = {
    discovery: { enabled: v("discovery-enabled").checked, ami_name_pattern: v("discovery-ami").value.trim(),
      regions: v("discovery-regions").value.split(",").map((r) => r.trim()).filter(Boolean),
      scan_interval_seconds: num("discovery-interval") },
    monitoring: { metrics_poll_interval_seconds: num("monitoring-interval"), cpu_threshold: num("monitoring-cpu"),
      memory_threshold: num("monitoring-memory"), disk_threshold: num("monitoring-disk"),
      notification_webhooks: v("monitoring-webhooks").value.split("\n").map((u) => u.trim()).filter(Boolean) },
    idle: { enabled: v("idle-enabled").checked, auto_pause: v("idle-auto-pause").checked,
      threshold_minutes: num("idle-threshold"), snooze_minutes_after_resume: num("idle-snooze") },
  };
  return Object.fromEntries([["version", version], ...[...sections].map((name) => [name, all[name]])]);
}

export function mountSettings(main) {
  const meta = h("p", { id: "settings-meta", class: "hint" });
  const error = h("p", { class: "form-error", role: "alert" });
  const body = h("div", {}, h("p", { "aria-busy": "true" }, "Loading…"));
  replace(main, h("h1", {}, "Settings"), meta, error, body);
  if (!session.isAdmin) meta.textContent = "Only administrators can change settings.";
  let current = null;
  let dirty = new Set();

  async function load() {
    try {
      current = await api("/api/settings");
    } catch (failure) {
      replace(body, h("p", { role: "alert" }, `Settings unavailable: ${failure.message}`));
      return;
    }
    const formEl = form(current);
    dirty = new Set();
    formEl.addEventListener("input", (event) => dirty.add(event.target.closest("[data-section]").dataset.section));
    formEl.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      if (!dirty.size) {
        toast("Nothing changed.", "info");
        return;
      }
      try {
        await api("/api/settings", { method: "PUT", body: read(formEl, current.version, dirty) });
        toast("Settings saved.", "ok");
        await load();
      } catch (failure) {
        error.textContent = failure.status === 409
          ? "Someone changed the settings meanwhile; the form shows their values now. Apply your change again."
          : `Not saved: ${failure.message}`;
        if (failure.status === 409) await load();
      }
    });
    replace(body, formEl);
    meta.textContent = `Version ${current.version}, last changed ${when(current.updated_at)}`
      + `${current.updated_by ? ` by ${current.updated_by}` : ""}.`
      + (session.isAdmin ? "" : " Only administrators can change settings.");
  }

  load();
  return subscribe((kind) => {
    if (kind === "settings" && !dirty.size) load();
  });
}
