// DOM helpers. Server data only ever enters the page as text nodes or attribute values (never as HTML).

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const NA = "N/A";

export function text(value) {
  return value === null || value === undefined || value === "" ? NA : String(value);
}

export function pct(value) {
  return typeof value === "number" ? `${value.toFixed(1)} %` : NA;
}

export function gb(bytes) {
  return typeof bytes === "number" ? `${(bytes / 1024 ** 3).toFixed(1)} GB` : NA;
}

export function when(iso) {
  if (!iso) return NA;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

export function ago(iso) {
  if (!iso) return NA;
  const seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (Number.isNaN(seconds)) return NA;
  if (seconds < 60) return `${Math.max(seconds, 0)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

export function yesNo(value) {
  return value === true ? "yes" : value === false ? "no" : NA;
}

const TONES = {
  running: "ok", healthy: "ok", available: "ok", registered: "ok", ready: "ok", active: "ok", true: "ok",
  pending: "busy", provisioning: "busy", starting: "busy", stopping: "busy", draining: "busy",
  registering: "busy", deregistering: "busy", licensing: "busy", unlicensing: "busy", terminating: "busy",
  degraded: "warn", evaluation: "warn", unregistered: "warn", ready_unlicensed: "warn", stopped: "muted",
  terminated: "muted", unknown: "muted", unavailable: "muted",
  ok: "ok", passed: "ok", initializing: "busy", "insufficient-data": "warn", impaired: "bad",
  critical: "bad", unreachable: "bad", failed: "bad", error: "bad", expired: "bad", invalid: "bad", false: "bad",
  // Lablet definitions and sessions (docs/lablets.md).
  draft: "muted", inactive: "muted", deprecated: "warn", archived: "muted", scheduled: "busy",
  instantiating: "busy", collecting: "busy", review: "warn", drift: "bad", booted: "ok",
  // Worker pools (lcm_core/domain/pools.py) and their decisions.
  scaling_up: "busy", scaling_down: "busy", scale_up: "busy", scale_down: "busy", "no change": "muted",
};

// A small coloured label; the text is the value itself, so colour never carries meaning alone.
export function badge(value, label) {
  const shown = text(value);
  const tone = TONES[String(value).toLowerCase()] || "muted";
  return h("span", { class: `badge tone-${tone}`, title: label ? `${label}: ${shown}` : null }, shown);
}

export function definitionList(rows) {
  return h("dl", { class: "facts" }, rows.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

export function toast(message, tone = "info") {
  const box = document.getElementById("toasts");
  const item = h("div", { class: `toast tone-${tone}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), 5000);
}

// Calls `draw(keys)` at most once per `ms` with every key scheduled meanwhile (null: "everything"), so a
// burst of events (a metrics cycle over the whole fleet) costs one redraw, not one per event.
export function coalesce(draw, ms = 150) {
  let pending = null;
  let everything = false;
  let timer = null;
  const schedule = (keys) => {
    if (keys === null) everything = true;
    else {
      pending ??= new Set();
      for (const key of keys) pending.add(key);
    }
    if (timer === null) {
      timer = setTimeout(() => {
        const batch = everything ? null : [...pending];
        pending = null;
        everything = false;
        timer = null;
        draw(batch);
      }, ms);
    }
  };
  schedule.cancel = () => clearTimeout(timer);
  return schedule;
}
