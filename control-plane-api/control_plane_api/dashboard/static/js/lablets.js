// What the lablet pages share: status sets of the session transition table, formatting of requirements and
// timeslots, and reading the definitions a form offers. Server values are rendered with dom.js only.

import { api } from "./api.js";
import { NA } from "./dom.js";

export const SESSION_STATUSES = ["pending", "scheduled", "instantiating", "ready", "running", "collecting",
  "stopping", "stopped", "archived", "terminated", "expired"];
export const DEFINITION_STATUSES = ["draft", "active", "inactive", "deprecated", "archived"];
/** Statuses after which nothing happens to a session any more (terminate is pointless there). */
export const FINISHED = new Set(["stopped", "archived", "terminated", "expired"]);
/** Statuses in which an admin may ask the lablet-controller to observe the live lab now. */
export const OBSERVABLE = new Set(["ready", "running"]);

export function num(value, digits = 2) {
  if (typeof value !== "number") return NA;
  return Number.isInteger(value) ? String(value) : value.toFixed(digits).replace(/0+$/, "").replace(/\.$/, "");
}

/** "3 CPU · 2.5 GB RAM · 10 GB disk · 3 nodes" */
export function requirements(r) {
  if (!r) return NA;
  return `${num(r.cpu_cores)} CPU · ${num(r.memory_gb)} GB RAM · ${num(r.storage_gb)} GB disk`
    + (r.node_count !== undefined ? ` · ${r.node_count} nodes` : "");
}

const SHORT = { dateStyle: "short", timeStyle: "short" };

/** "11/27/26, 4:51 PM – 5:51 PM (60 min)"; `long` keeps seconds and the full date. */
export function timeslot(start, end, long = false) {
  if (!start || !end) return NA;
  const from = new Date(start);
  const to = new Date(end);
  const sameDay = from.toDateString() === to.toDateString();
  const minutes = Math.round((to - from) / 60000);
  const date = (d) => (long ? d.toLocaleString() : d.toLocaleString(undefined, SHORT));
  const time = (d) => (long ? d.toLocaleTimeString() : d.toLocaleTimeString(undefined, { timeStyle: "short" }));
  return `${date(from)} – ${sameDay ? time(to) : date(to)} (${minutes} min)`;
}

/** The value of a `datetime-local` input for a Date (local time, minutes). */
export function localInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:`
    + pad(date.getMinutes());
}

export async function definitionsPage(params = {}) {
  const query = new URLSearchParams({ limit: "1000", ...params });
  return (await api(`/api/lablet-definitions?${query}`)).items;
}

/** Call `fn` once, `ms` after the last of a burst of calls. */
export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}
