// Worker actions (admin only; the API enforces it, the UI only hides what a viewer may not do).

import { api } from "./api.js";
import { h, toast } from "./dom.js";

export const ACTIONS = {
  start: { label: "Start", enabled: (w) => ["stopped", "stopping", "failed"].includes(w.status) },
  stop: { label: "Stop", enabled: (w) => ["running", "starting", "draining"].includes(w.status),
    confirm: "Stop this worker? Its labs become unreachable until it is started again." },
  drain: { label: "Drain", enabled: (w) => w.status === "running",
    confirm: "Drain this worker? It takes no new session, and stops once its last session has ended." },
  undrain: { label: "Undrain", enabled: (w) => w.status === "draining" && Boolean(w.drain)
    && (!w.drain.completed_at || w.drain.then === "running") },
  refresh: { label: "Refresh", enabled: (w) => w.status !== "terminated" },
  terminate: { label: "Terminate", enabled: (w) => !["terminated", "terminating"].includes(w.status),
    confirm: "Terminate this worker's EC2 instance? This cannot be undone.", tone: "danger" },
};

export async function runAction(worker, action) {
  const spec = ACTIONS[action];
  if (spec.confirm && !window.confirm(`${worker.name}: ${spec.confirm}`)) return null;
  try {
    const updated = await api(`/api/workers/${encodeURIComponent(worker.id)}/${action}`, { method: "POST" });
    toast(`${spec.label} requested for ${worker.name}.`, "ok");
    return updated;
  } catch (failure) {
    toast(`${spec.label} of ${worker.name} failed: ${failure.message}`, "bad");
    return null;
  }
}

export function actionButtons(worker, names = Object.keys(ACTIONS), after = () => {}) {
  return names.map((name) => {
    const spec = ACTIONS[name];
    const button = h("button", {
      type: "button", class: `compact ${spec.tone === "danger" ? "danger" : "secondary outline"}`, dataset: { action: name },
      "aria-label": `${spec.label} ${worker.name}`,
    }, spec.label);
    button.disabled = !spec.enabled(worker);
    button.addEventListener("click", async () => {
      button.setAttribute("aria-busy", "true");
      const updated = await runAction(worker, name);
      button.removeAttribute("aria-busy");
      if (updated) after(updated);
    });
    return button;
  });
}

export function refreshButtons(container, worker) {
  for (const button of container.querySelectorAll("button[data-action]")) {
    const spec = ACTIONS[button.dataset.action];
    if (spec) button.disabled = !spec.enabled(worker);
  }
}
