// The event stream: EventSource reconnects by itself (sending Last-Event-ID); when it gives up (the server
// refused or went away), we reopen with the last id we saw, backing off, after checking the session.

import { api } from "./api.js";
import { applyEvent, setConnection } from "./store.js";

const TYPES = [
  "worker.snapshot", "worker.created", "worker.imported", "worker.status.updated", "worker.metrics.updated",
  "worker.labs.updated", "worker.terminated", "worker.health.changed", "worker.alert.raised", "worker.alert.cleared",
  "worker.health.alert", "worker.health.recovered", "worker.paused",
  "worker.resumed", "worker.desired_status.changed", "worker.idle_detection.toggled",
  "worker.refresh.requested", "worker.license.requested", "worker.license.updated", "controller.status",
  "worker.lab_track.changed", "worker.capacity.updated", "worker.draining", "worker.drained",
  "worker.drain.cancelled", "worker.instance.conflict", "worker.pool.changed", "worker.launch.failed",
  "settings.updated", "heartbeat", "stream.overflow",
  // Worker pools: each event carries the pool after the change (`data.pool`).
  "pool.created", "pool.updated", "pool.scaled", "pool.decision.recorded", "pool.phase.changed",
  "pool.capacity.updated", "pool.draining", "pool.drain.cancelled", "pool.deleting", "pool.terminated",
  "pool.worker.adopted", "pool.worker.released",
  // Lablets (docs/lablets.md): every definition and session event, port drift included.
  "lablet.definition.created", "lablet.definition.updated", "lablet.definition.activated",
  "lablet.definition.deactivated", "lablet.definition.review_flagged", "lablet.definition.observations_applied",
  "lablet.session.created", "lablet.session.scheduled", "lablet.session.scheduling_failed",
  "lablet.session.status.changed", "lablet.session.ready", "lablet.session.terminate.requested",
  "lablet.session.observe.requested", "lablet.session.resources.observed", "lablet.session.port_drift.detected",
];
const SILENCE_LIMIT_MS = 60_000; // the server sends a heartbeat every 15 s by default

export class LiveStream {
  constructor() {
    this.source = null;
    this.lastId = null;
    this.attempt = 0;
    this.timer = null;
    this.lastMessage = 0;
    this.watchdog = null;
  }

  start() {
    this.stop();
    this.open();
    this.watchdog = setInterval(() => this.checkSilence(), 5000);
  }

  stop() {
    clearTimeout(this.timer);
    clearInterval(this.watchdog);
    if (this.source) this.source.close();
    this.source = null;
    setConnection("idle");
  }

  open() {
    const query = this.lastId ? `?last_event_id=${encodeURIComponent(this.lastId)}` : "";
    const source = new EventSource(`/api/events/stream${query}`, { withCredentials: true });
    this.source = source;
    this.lastMessage = Date.now();
    setConnection(this.attempt ? "reconnecting" : "connecting");
    source.onopen = () => {
      this.attempt = 0;
      this.lastMessage = Date.now();
      setConnection("live");
    };
    source.onerror = () => {
      if (source !== this.source) return;
      if (source.readyState === EventSource.CONNECTING) {
        setConnection("reconnecting"); // the browser retries with Last-Event-ID itself
        return;
      }
      source.close();
      this.retryLater();
    };
    for (const type of TYPES) {
      source.addEventListener(type, (message) => this.receive(type, message));
    }
  }

  receive(type, message) {
    this.lastMessage = Date.now();
    if (message.lastEventId) this.lastId = message.lastEventId;
    if (type === "heartbeat" || type === "stream.overflow") return;
    try {
      applyEvent(type, JSON.parse(message.data));
    } catch (error) {
      console.error("bad event", type, error); // eslint-disable-line no-console
    }
  }

  checkSilence() {
    if (this.source && this.source.readyState === EventSource.OPEN
        && Date.now() - this.lastMessage > SILENCE_LIMIT_MS) {
      this.source.close(); // a half-open connection: nothing arrives, not even heartbeats
      this.retryLater();
    }
  }

  retryLater() {
    this.attempt += 1;
    const delay = Math.min(30_000, 1000 * 2 ** Math.min(this.attempt - 1, 5));
    setConnection("offline", `retrying in ${Math.round(delay / 1000)} s`);
    clearTimeout(this.timer);
    this.timer = setTimeout(async () => {
      try {
        await api("/api/auth/me"); // a 401 here shows the login form instead of retrying forever
      } catch (error) {
        if (error.status === 401) return;
      }
      this.open();
    }, delay);
  }
}
