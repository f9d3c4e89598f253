// The fleet as the browser knows it: a snapshot, then every event applied in place. Views subscribe.

import { api } from "./api.js";

export const fleet = new Map(); // worker id → summary (the shape of Worker.summary() on the server)
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

// What each event type changes in a worker's summary.
const PATCHES = {
  "worker.status.updated": (d) => pick(d, { new_status: "status", phase: "phase", service_status: "service_status" }),
  "worker.metrics.updated": (d) => pick(d, {
    cpu_percent: "cpu_percent", memory_percent: "memory_percent", disk_percent: "disk_percent",
    labs_count: "labs_count", health_status: "health_status", service_status: "service_status", phase: "phase",
    idle_since: "idle_since", cpu_source: "cpu_source", collected_at: "collected_at",
  }),
  "worker.health.changed": (d) => ({ health_status: d.new_health }),
  "worker.health.alert": (d) => ({ health_status: d.health }),
  "worker.health.recovered": (d) => ({ health_status: d.health }),
  "worker.license.updated": (d) => pick(d, { status: "license_status", phase: "phase" }),
  "worker.license.requested": (d) => ({ license_status: d.action === "register" ? "registering" : "deregistering" }),
  "worker.desired_status.changed": (d) => ({ desired_status: d.desired_status }),
  "worker.labs.updated": (d) => ({ labs_count: d.labs_count }),
  "worker.terminated": () => ({ status: "terminated", phase: "TERMINATED" }),
};

function pick(data, mapping) {
  const out = {};
  for (const [from, to] of Object.entries(mapping)) if (data[from] !== undefined) out[to] = data[from];
  return out;
}

export function summaryOf(worker) {
  const t = worker.telemetry || {};
  return {
    id: worker.id, name: worker.name, aws_region: worker.aws_region, aws_instance_id: worker.aws_instance_id,
    instance_type: worker.instance_type, public_ip: worker.public_ip, private_ip: worker.private_ip,
    status: worker.status, desired_status: worker.desired_status,
    service_status: worker.service_status, health_status: worker.health_status,
    license_status: worker.license?.status, cpu_percent: t.cpu_percent, memory_percent: t.memory_percent,
    disk_percent: t.disk_percent, labs_count: t.labs_count, phase: worker.phase,
    idle_since: worker.activity?.idle_since, version: worker.version,
  };
}

const fetching = new Set();

async function fetchMissing(id) {
  if (fetching.has(id)) return;
  fetching.add(id);
  try {
    const worker = await api(`/api/workers/${encodeURIComponent(id)}`);
    fleet.set(id, summaryOf(worker));
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
  if (type === "worker.imported" || type === "worker.created") {
    fleet.set(data.id, { ...fleet.get(data.id), ...data });
    notify("workers", { ids: [data.id], added: true });
    notify("worker-event", { type, envelope });
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
    const patch = PATCHES[type];
    if (current && patch) fleet.set(data.worker_id, { ...current, ...patch(data) });
    else if (!current) fetchMissing(data.worker_id);
    notify("workers", { ids: [data.worker_id], type });
    notify("worker-event", { type, envelope });
    return;
  }
  if (type === "controller.status") notify("controllers", data);
  else if (type === "settings.updated") notify("settings", data);
}

export function setConnection(state, detail) {
  notify("connection", { state, detail });
}
