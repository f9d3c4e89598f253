// The fleet as the browser knows it: a snapshot, then every event applied in place. Views subscribe.

import { api } from "./api.js";

// worker id → its row, with the names of the API's `WorkerSummary`: the snapshot sends rows, every worker event
// carries the row as it stands after the change (`data.summary`), and a worker's detail carries its own.
export const fleet = new Map();
export const session = { me: null, isAdmin: false, lastEventAt: null };

const listeners = new Set();

export function subscribe(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function notify(kind, detail) {
  for (const listener of [...listeners]) {
    try {
      listener(kind, detail);
    } catch (error) {
      console.error("dashboard view failed on", kind, error); // eslint-disable-line no-console
    }
  }
}

const fetching = new Set();

async function fetchMissing(id) {
  if (fetching.has(id)) return;
  fetching.add(id);
  try {
    const worker = await api(`/api/workers/${encodeURIComponent(id)}`);
    fleet.set(id, worker.summary);
    notify("workers", { ids: [id] });
  } catch {
    // gone or not readable: the next snapshot settles it
  } finally {
    fetching.delete(id);
  }
}

export function applyEvent(type, envelope) {
  session.lastEventAt = Date.now();
  const data = envelope.data || {};
  if (type === "worker.snapshot") {
    fleet.clear();
    for (const worker of data.workers || []) fleet.set(worker.id, worker);
    notify("workers", { snapshot: true });
    return;
  }
  if (type.startsWith("pool.")) {
    // Pool pages put `data.pool` (the pool after the change) in place of what they show.
    notify("pool", { type, envelope });
    return;
  }
  if (type.startsWith("lablet.")) {
    // Definition and session pages re-read what an event names; the drift notice is app-wide.
    notify("lablet", { type, envelope });
    if (type === "lablet.session.port_drift.detected") notify("port-drift", data);
    return;
  }
  if (type.startsWith("worker.") && data.worker_id) {
    const current = fleet.get(data.worker_id);
    // A row without telemetry columns (a change that came without a metrics report) keeps the shown ones.
    if (data.summary) fleet.set(data.worker_id, { ...current, ...data.summary });
    else if (!current) fetchMissing(data.worker_id);
    const added = !current && (type === "worker.imported" || type === "worker.created");
    notify("workers", { ids: [data.worker_id], type, added });
    notify("worker-event", { type, envelope });
    return;
  }
  if (type === "controller.status") notify("controllers", data);
  else if (type === "settings.updated") notify("settings", data);
}

export function setConnection(state, detail) {
  notify("connection", { state, detail });
}
