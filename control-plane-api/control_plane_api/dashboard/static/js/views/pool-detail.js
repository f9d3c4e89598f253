// A worker pool: phase and (admin) scale, drain/undrain and delete (./pool-actions.js); its capacity; its workers (live from the
// worker events of workers whose row names this pool); the scaling history (newest first, a decision event
// prepends its decision); its configuration, which admins edit under the version they read; the booked demand ahead and the cost
// (./pool-ahead.js).

import { api } from "../api.js";
import { badge, definitionList, h, pct, replace, text, toast, when } from "../dom.js";
import {
  DECISION_COLUMNS, available, decisionKey, decisionRow, hoursText, policyLabel, poolForm, poolPhase, refusal,
  sessionsText, templateNames, workersText,
} from "../pools.js";
import { fleet, session, subscribe } from "../store.js";
import { poolActions } from "./pool-actions.js";
import { poolAhead } from "./pool-ahead.js";

const WORKER_COLUMNS = [["name", "Name"], ["aws_region", "Region"], ["phase", "Phase"], ["status", "Status"],
  ["license_status", "Licence"], ["sessions", "Sessions", true], ["cpu_percent", "CPU", true],
  ["memory_percent", "Memory", true]];

function workerCell(w, key) {
  if (key === "name") return h("a", { href: `#/workers/${encodeURIComponent(w.id)}` }, text(w.name || w.id));
  if (key === "phase") return badge(w.phase, "Lifecycle phase");
  if (key === "status") return [badge(w.status, "Status"), w.drain_then ? h("span", { class: "hint" },
    ` (draining, then ${w.drain_then})`) : null, w.park_when_ready ? h("span", { class: "hint",
    title: "Launched into the warm pool: it boots once without a licence, then stops" },
    w.status === "stopped" ? " (warm pool)" : " (warming up)") : null];
  if (key === "license_status") return badge(w.license_status, "Licence");
  if (key.endsWith("_percent")) return pct(w[key]);
  return text(w[key]);
}

function capacityFacts(pool) {
  const c = pool.capacity || {};
  const phases = Object.entries(c.by_phase || {});
  return h("div", { class: "facts-grid", id: "pool-capacity" },
    definitionList([
      ["Workers (counted)", h("span", { dataset: { field: "workers" } }, workersText(c))],
      ["Desired", h("span", { dataset: { field: "desired_workers" } }, String(pool.desired_workers))],
      ["Parked / warming / leaving / failed", h("span", { dataset: { field: "others" } },
        `${c.parked ?? 0} / ${c.warming ?? 0} / ${c.leaving ?? 0} / ${c.failed ?? 0}`)],
      ["By phase", phases.length ? h("span", { class: "badges", dataset: { field: "by_phase" } },
        phases.map(([phase, n]) => h("span", {}, badge(phase, "Worker phase"), ` ${n}`)))
        : "no worker"],
    ]),
    definitionList([
      ["CPU cores", available(c.available_cpu_cores, c.total_cpu_cores)],
      ["Memory", available(c.available_memory_gb, c.total_memory_gb, " GB")],
      ["Storage", available(c.available_storage_gb, c.total_storage_gb, " GB")],
      ["Nodes", available(c.available_nodes, c.total_nodes)],
    ]),
    definitionList([
      ["Average CPU", h("span", { dataset: { field: "avg_cpu_percent" } }, pct(c.avg_cpu_percent))],
      ["Average memory", h("span", { dataset: { field: "avg_memory_percent" } }, pct(c.avg_memory_percent))],
      ["Sessions", h("span", { dataset: { field: "sessions" } }, sessionsText(c))],
      ["Observed", when(pool.capacity_observed_at)],
    ]));
}

function configFacts(pool) {
  const s = pool.scaling || {};
  return h("div", { class: "facts-grid", id: "pool-config" },
    definitionList([
      ["Lab track", text(pool.lab_track)], ["Template", text(pool.template_name)],
      ["Regions", pool.regions?.join(", ") || "—"], ["Description", text(pool.description)],
    ]),
    definitionList([
      ["Policy", policyLabel(s.policy)], ["Min / max workers", `${s.min_workers} / ${s.max_workers}`],
      ["Labs per worker", `${s.min_labs_per_worker} to ${s.max_labs_per_worker}`],
      ["CPU thresholds", `down below ${s.cpu_scale_down_percent}\u00a0%, up above ${s.cpu_scale_up_percent}\u00a0%`],
      ["Memory thresholds", `down below ${s.memory_scale_down_percent}\u00a0%, up above ${s.memory_scale_up_percent}\u00a0%`],
    ]),
    definitionList([
      ["Cooldowns", `up ${s.scale_up_cooldown_minutes} min, down ${s.scale_down_cooldown_minutes} min`],
      ["Allowed hours", hoursText(s.allowed_hours)], ["Scale-down action", text(s.scale_down_action)],
      ["Version", String(pool.version)], ["Updated", when(pool.updated_at)],
    ]),
    definitionList([
      ["Look ahead", `${s.look_ahead_minutes ?? 120} min`],
      ["Warm pool", s.warm_pool_size == null ? "none" : `${s.warm_pool_size} stopped`],
      ["Lead defaults", `launch ${s.provision_lead_minutes ?? 15} min, resume ${s.resume_lead_minutes ?? 8} min`],
      ["Ready ahead", `${s.ready_ahead_minutes ?? 15} min before each booked timeslot`],
      ["Down after up", `not for ${s.scale_down_delay_after_add_minutes ?? 10} min`],
    ]));
}

export function mountPoolDetail(main, id) {
  const path = `/api/pools/${encodeURIComponent(id)}`;
  let pool = null;
  let headerKey = null;
  const members = new Map(); // worker id → row
  const decisions = []; // newest first
  const header = h("div", { class: "detail-header" });
  const controls = h("div", {});
  const capacity = h("div", {});
  const workersBody = h("tbody", {});
  const workersCount = h("span", { class: "hint", role: "status", "aria-live": "polite" });
  const historyBody = h("tbody", {});
  const config = h("div", {});
  const editSlot = h("div", {});
  const ahead = poolAhead(id);
  replace(main, h("p", {}, h("a", { href: "#/pools" }, "← All pools")), header, controls,
    h("section", { class: "detail-section", "aria-labelledby": "pool-capacity-title" },
      h("h3", { id: "pool-capacity-title" }, "Capacity"), capacity),
    ahead.demand, ahead.cost,
    h("section", { class: "detail-section", "aria-labelledby": "pool-workers-title" },
      h("h3", { id: "pool-workers-title" }, "Workers ", workersCount),
      h("div", { class: "table-scroll" }, h("table", { class: "striped compact-table", id: "pool-workers" },
        h("caption", { class: "visually-hidden" }, "Workers of this pool"),
        h("thead", {}, h("tr", {}, WORKER_COLUMNS.map(([, label, numeric]) => h("th", { scope: "col",
          class: numeric ? "num" : null }, label)))), workersBody))),
    h("section", { class: "detail-section", "aria-labelledby": "pool-history-title" },
      h("h3", { id: "pool-history-title" }, "Scaling history"),
      h("p", { class: "hint" }, "Newest first: what was decided, why, and the numbers it was decided on."),
      h("div", { class: "table-scroll" }, h("table", { class: "striped compact-table", id: "pool-history" },
        h("caption", { class: "visually-hidden" }, "Scaling decisions, newest first"),
        h("thead", {}, h("tr", {}, DECISION_COLUMNS.map((c) => h("th", { scope: "col" }, c)))), historyBody))),
    h("section", { class: "detail-section", "aria-labelledby": "pool-config-title" },
      h("h3", { id: "pool-config-title" }, "Configuration"), config, editSlot));

  // ------------------------------------------------------------------ drawing

  const drawHeader = () => {
    const key = JSON.stringify([pool.name, pool.phase, pool.draining, pool.deleting, pool.error, pool.description]);
    if (key === headerKey) return;
    headerKey = key;
    replace(header,
      h("h1", {}, pool.name),
      h("p", { class: "badges" },
        h("span", { class: "badge-label" }, "Phase "), h("span", { dataset: { field: "phase" } }, poolPhase(pool)),
        pool.draining ? [" ", h("span", { class: "badge tone-busy", dataset: { field: "draining" } }, "draining")] : null,
        pool.deleting ? [" ", h("span", { class: "badge tone-busy", dataset: { field: "deleting" } }, "deleting")] : null,
        h("span", { class: "badge-label" }, " Track "), h("span", {}, pool.lab_track)),
      pool.error ? h("p", { class: "flag-bad", role: "alert", dataset: { field: "error" } }, pool.error) : null,
      pool.description ? h("p", { class: "hint" }, pool.description) : null);
  };

  let scaleForm = null;
  const drawControls = () => {
    if (!session.isAdmin) return;
    if (!scaleForm) {
      scaleForm = poolActions({ id, path, current: () => pool, show });
      replace(controls, scaleForm.element);
    }
    scaleForm.update();
  };

  const drawCapacity = () => replace(capacity, capacityFacts(pool));

  const drawConfig = () => replace(config, configFacts(pool));

  // The configuration form is drawn for the spec the admin read, and saved under its `spec_version` (which
  // capacity, phase or a scale do not move); a change of the spec redraws the form, unless the admin has
  // edited it: then it says so, and the save is refused (409).
  let templates = null;
  let editForm = null;
  let editSpec = null;
  let editVersion = null;
  const editNote = h("p", { class: "hint", role: "status", "aria-live": "polite" });
  const specOf = (p) => JSON.stringify([p.name, p.lab_track, p.template_name, p.regions, p.description ?? null,
    p.scaling]);
  const drawEdit = () => {
    if (!session.isAdmin || !templates || !pool) return;
    if (pool.phase === "terminated" || pool.deleting) {
      replace(editSlot);
      editForm = null;
      return;
    }
    if (editForm && specOf(pool) === editSpec) {
      editVersion = pool.spec_version;
      editForm.dataset.version = String(editVersion);
      return;
    }
    if (editForm?.dataset.dirty) {
      editNote.textContent = `Someone else changed this configuration (it is at version ${pool.spec_version}); `
        + `your edit of version ${editVersion} will be refused.`;
      return;
    }
    const wasOpen = Boolean(editSlot.querySelector("details")?.open);
    const { form } = poolForm({
      prefix: "pool-edit", pool, templates, submitLabel: "Save configuration",
      onSubmit: async (spec, error) => {
        const version = editVersion;
        try {
          const updated = await api(path, { method: "PUT", body: { spec, spec_version: version } });
          toast(`Pool ${updated.name} saved (configuration version ${updated.spec_version}).`, "ok");
          delete form.dataset.dirty;
          editNote.textContent = "";
          editSpec = null; // redrawn from what was saved
          show(updated);
          drawEdit();
        } catch (failure) {
          if (failure.status !== 409) {
            error.textContent = refusal(failure, "this configuration");
            return;
          }
          error.textContent = `Not saved: someone else changed this pool since you read version ${version} `
            + `(${failure.message}). Reload the current configuration, review it and apply your change again. `;
          const again = h("button", { type: "button", class: "secondary outline compact", id: "pool-edit-reload" },
            "Reload the current configuration");
          again.addEventListener("click", async () => {
            delete form.dataset.dirty;
            editSpec = null;
            editNote.textContent = "";
            await load();
            drawEdit();
          });
          error.append(again);
        }
      },
    });
    editForm = form;
    editSpec = specOf(pool);
    editVersion = pool.spec_version;
    form.dataset.version = String(editVersion);
    editNote.textContent = "";
    replace(editSlot, h("details", { class: "create-panel", id: "pool-edit", open: wasOpen },
      h("summary", { role: "button", class: "secondary outline" }, "Edit configuration"), editNote, form));
  };

  const drawWorkers = () => {
    const rows = [...members.values()].sort((a, b) => String(a.name).localeCompare(String(b.name), undefined,
      { numeric: true }));
    replace(workersBody, rows.length ? rows.map((w) => h("tr", { dataset: { workerId: w.id } },
      WORKER_COLUMNS.map(([key, , numeric]) => h("td", { dataset: { field: key }, class: numeric ? "num" : null },
        workerCell(w, key)))))
      : h("tr", {}, h("td", { colspan: WORKER_COLUMNS.length }, "No worker yet.")));
    workersCount.textContent = `(${rows.length})`;
  };

  const drawHistory = () => {
    replace(historyBody, decisions.length ? decisions.map(decisionRow)
      : h("tr", {}, h("td", { colspan: DECISION_COLUMNS.length }, "No scaling decision yet.")));
  };

  // ------------------------------------------------------------------ state

  // Never back to an older version of the pool (a read that raced an event).
  function show(next) {
    if (pool && (pool.version ?? 0) > (next.version ?? 0)) return;
    pool = next;
    drawHeader();
    drawControls();
    drawCapacity();
    drawConfig();
    drawEdit();
  }

  // Decisions not shown yet join the history, newest first.
  function addDecisions(found) {
    const known = new Set(decisions.map(decisionKey));
    const fresh = found.filter((d) => d && !known.has(decisionKey(d)));
    if (!fresh.length) return;
    decisions.push(...fresh);
    decisions.sort((a, b) => new Date(b.at) - new Date(a.at));
    drawHistory();
  }

  async function load() {
    let detail;
    try {
      detail = await api(path);
    } catch (failure) {
      replace(header, h("h1", {}, "Worker pool"), h("p", { role: "alert" }, failure.status === 404
        ? "This pool does not exist." : `Could not load the pool: ${failure.message}`));
      return false;
    }
    members.clear();
    for (const w of detail.workers || []) members.set(w.id, { ...w, ...(fleet.get(w.id) || {}) });
    show(detail.pool);
    drawWorkers();
    return true;
  }

  async function loadHistory() {
    try {
      addDecisions(await api(`${path}/history`));
      drawHistory();
    } catch (failure) {
      replace(historyBody, h("tr", {}, h("td", { colspan: DECISION_COLUMNS.length, role: "alert" },
        `History unavailable: ${failure.message}`)));
    }
  }

  // A worker row in the store that names this pool joins (or stays in) the table; one that names another
  // pool, or none, leaves it.
  function workersChanged(ids) {
    const candidates = ids ? ids.map((wid) => fleet.get(wid)).filter(Boolean) : [...fleet.values()];
    let changed = false;
    for (const row of candidates) {
      if (row.pool_id === id && row.status !== "terminated") {
        members.set(row.id, row);
        changed = true;
      } else if (members.has(row.id) && "pool_id" in row) {
        members.delete(row.id);
        changed = true;
      }
    }
    if (changed) drawWorkers();
  }

  load().then((found) => {
    if (!found) return;
    loadHistory();
    ahead.soon();
  });
  if (session.isAdmin) {
    templateNames().catch(() => []).then((found) => {
      templates = found;
      drawEdit();
    });
  }
  const off = subscribe((kind, detail) => {
    // A booking changes the demand ahead: any session's event may be one of this pool's track.
    if (kind === "lablet" && detail.type.startsWith("lablet.session.") && pool) ahead.soon();
    if (kind === "workers") {
      // A snapshot follows a gap the event log no longer covered: pool events may be missing too.
      if (detail.snapshot && pool) load().then((found) => found && loadHistory());
      else if (pool) workersChanged(detail.added ? null : detail.ids);
      return;
    }
    if (kind !== "pool") return;
    const data = detail.envelope.data || {};
    if ((data.pool?.id ?? data.pool_id) !== id) return;
    if (data.pool) show(data.pool);
    ahead.soon();
    if (detail.type === "pool.scaled" || detail.type === "pool.decision.recorded") {
      addDecisions([data.decision || data.pool?.last_decision]);
    }
    if (detail.type === "pool.worker.adopted" || detail.type === "pool.worker.released") load();
  });
  return () => {
    off();
    ahead.destroy();
  };
}
