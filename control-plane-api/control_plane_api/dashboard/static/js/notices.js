// App-wide notices above every page: port drift (`lablet.session.port_drift.detected`) stays until
// the admin or viewer dismisses it, one per session (a new drift on the same session replaces it).

import { fleet } from "./store.js";
import { h } from "./dom.js";

const MAX_NOTICES = 5;

function describe(data) {
  const parts = [];
  for (const [name, c] of Object.entries(data.changed || {})) parts.push(`${name} allocated ${c.allocated}, observed ${c.observed}`);
  for (const [name, port] of Object.entries(data.missing || {})) parts.push(`${name} (${port}) not observed`);
  for (const [name, port] of Object.entries(data.unexpected || {})) parts.push(`${name} on ${port} never allocated`);
  return parts.join("; ");
}

export function showDriftNotice(data) {
  const box = document.getElementById("notices");
  if (!data.session_id) return;
  for (const old of box.querySelectorAll(`[data-session-id="${CSS.escape(data.session_id)}"]`)) old.remove();
  const worker = data.worker_id ? fleet.get(data.worker_id)?.name || data.worker_id : "its worker";
  const dismiss = h("button", { type: "button", class: "compact secondary outline",
    "aria-label": `Dismiss the port drift notice of session ${data.session_id.slice(0, 8)}` }, "Dismiss");
  const notice = h("div", { class: "notice tone-bad", role: "alert", dataset: { sessionId: data.session_id, kind: "port-drift" } },
    h("strong", {}, "Port drift detected"),
    ` on session ${data.session_id.slice(0, 8)} (${worker}): ${describe(data) || "observed ports differ"}. `,
    h("a", { href: `#/sessions/${encodeURIComponent(data.session_id)}` }, "Open the session"),
    " ", dismiss);
  dismiss.addEventListener("click", () => {
    notice.remove();
    box.hidden = !box.childElementCount;
  });
  box.prepend(notice);
  while (box.childElementCount > MAX_NOTICES) box.lastElementChild.remove();
  box.hidden = false;
}
