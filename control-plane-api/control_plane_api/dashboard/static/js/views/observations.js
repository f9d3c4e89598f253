// A definition's observation panel: observed resources of its completed sessions (max / avg / latest) next
// to the declared values, the review flag, and the admin's explicit, version-guarded "apply".

import { api } from "../api.js";
import { NA, badge, h, replace, toast, when } from "../dom.js";
import { num } from "../lablets.js";
import { session } from "../store.js";

const ROWS = [["cpu_cores", "CPU cores"], ["memory_gb", "Memory (GB)"], ["storage_gb", "Storage (GB)"],
  ["node_count", "Nodes"]];
const APPLIABLE = ["cpu_cores", "memory_gb", "storage_gb"];

function table(obs) {
  return h("table", { class: "striped compact-table", id: "observation-table" },
    h("caption", {}, `Observed over ${obs.sessions_observed} completed session${obs.sessions_observed === 1 ? "" : "s"}`),
    h("thead", {}, h("tr", {}, ["Resource", "Declared", "Max", "Avg", "Latest"].map((c, i) =>
      h("th", { scope: "col", class: i ? "num" : null }, c)))),
    h("tbody", {}, ROWS.map(([key, label]) => {
      const stats = obs[key] || {};
      const declared = obs.declared?.[key];
      const over = typeof stats.max === "number" && typeof declared === "number" && stats.max > declared;
      return h("tr", { dataset: { resource: key } },
        h("th", { scope: "row" }, label),
        h("td", { class: "num", dataset: { field: "declared" } }, num(declared)),
        ["max", "avg", "latest"].map((s) => h("td", { class: `num${s === "max" && over ? " flag-bad" : ""}`,
          dataset: { field: s }, title: s === "max" && over ? "above the declared value" : null }, num(stats[s]))));
    })));
}

function applyForm(obs, definition, onApplied) {
  const error = h("p", { id: "apply-error", class: "form-error", role: "alert" });
  const inputs = APPLIABLE.map((key) => {
    const label = ROWS.find(([k]) => k === key)[1];
    const suggested = obs[key]?.max;
    return h("label", { for: `apply-${key}` }, label,
      h("input", { id: `apply-${key}`, name: key, type: "number", min: 0, step: "any",
        value: typeof suggested === "number" ? suggested : "", placeholder: `declared ${num(obs.declared?.[key])}` }));
  });
  const form = h("form", { id: "apply-form", "aria-labelledby": "apply-title", dataset: { version: definition.version } },
    h("h4", { id: "apply-title" }, "Apply revised requirements"),
    h("p", { class: "hint" }, `Stores a new version (${definition.version + 1}) with these values; empty fields keep `
      + `the declared value. Prefilled with the observed maximum. Guarded by version ${definition.version}.`),
    h("div", { class: "grid" }, inputs), error,
    h("button", { type: "submit" }, `Apply to version ${definition.version}`));
  form.addEventListener("input", () => { form.dataset.dirty = "true"; });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const body = { version: definition.version };
    for (const key of APPLIABLE) {
      const raw = form.querySelector(`#apply-${key}`).value;
      if (raw !== "") body[key] = Number(raw);
    }
    if (Object.keys(body).length === 1) {
      error.textContent = "Give at least one value to apply.";
      return;
    }
    try {
      const updated = await api(`/api/lablet-definitions/${encodeURIComponent(definition.id)}/apply-observations`,
        { method: "POST", body });
      toast(`Applied: ${definition.name} is now version ${updated.version}.`, "ok");
      delete form.dataset.dirty;
      onApplied(updated);
    } catch (failure) {
      error.textContent = failure.status === 409
        ? `Not applied: the definition changed since you read version ${definition.version} (${failure.message}). `
          + "Reload the page section with the button below, review the new values and apply again."
        : `Not applied: ${failure.message}`;
      if (failure.status === 409) {
        const again = h("button", { type: "button", class: "secondary outline compact", id: "apply-reload" },
          "Reload the current version");
        again.addEventListener("click", () => {
          delete form.dataset.dirty;
          onApplied(null);
        });
        error.append(" ", again);
      }
    }
  });
  return form;
}

/** The panel; `update(observations, definition)` redraws it unless the admin is editing the apply form. */
export function observationPanel(onApplied) {
  const flag = h("p", { class: "badges", dataset: { field: "review" } });
  const body = h("div", {});
  const note = h("p", { class: "hint", role: "status", "aria-live": "polite" });
  const form = h("div", {});
  const panel = h("article", { id: "observation-panel", class: "detail-section", "aria-labelledby": "observation-title" },
    h("h3", { id: "observation-title" }, "Resource observations"), flag, body, note, form);
  return {
    element: panel,
    update(obs, definition) {
      replace(flag, obs.observation_review
        ? [badge("review", "Observation review"), h("span", { class: "flag-warn" },
          ` Flagged for review: ${obs.review_reason || "observed resources differ from the declared ones"}`)]
        : h("span", { class: "hint" }, "Not flagged for review."));
      replace(body, obs.sessions_observed
        ? [table(obs), h("p", { class: "hint" },
          `Latest observation ${when(obs.latest_observed_at)}; sessions with port drift: ${obs.port_drift_sessions}; `
          + `node definitions used: ${obs.node_definitions_used.join(", ") || NA}.`)]
        : h("p", { class: "hint", id: "observation-empty" }, "No completed session of this definition has been "
          + "observed yet: observations are recorded when a session ends (collecting) or on an admin's request."));
      if (!session.isAdmin || !obs.sessions_observed) {
        replace(form);
        return;
      }
      const current = form.querySelector("#apply-form");
      if (current?.dataset.dirty && Number(current.dataset.version) !== definition.version) {
        note.textContent = `The definition is now at version ${definition.version}; your form still applies to `
          + `version ${current.dataset.version} and will be refused.`;
        return;
      }
      if (current?.dataset.dirty) return;
      note.textContent = "";
      replace(form, applyForm(obs, definition, onApplied));
    },
  };
}
