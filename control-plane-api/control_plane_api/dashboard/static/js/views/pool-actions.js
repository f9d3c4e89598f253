// A pool's admin controls: scale to N (within the pool's bounds), drain, undrain and delete, each confirmed where it
// cannot be taken back, with the API's refusal shown in words. `current()` reads the pool as last shown; an answer
// about this pool is handed to `show`.

import { api } from "../api.js";
import { h, toast } from "../dom.js";
import { refusal } from "../pools.js";

export function poolActions({ id, path, current: pool, show }) {
  const error = h("p", { id: "pool-action-error", class: "form-error", role: "alert" });
  const size = h("input", { id: "pool-scale-workers", name: "workers", type: "number", min: 0, step: 1,
    required: true, class: "narrow" });
  const reason = h("input", { id: "pool-scale-reason", name: "reason", maxlength: 500, placeholder: "optional" });
  const scale = h("button", { type: "submit", dataset: { action: "scale" } }, "Scale");
  const form = h("form", { id: "pool-scale-form", class: "scale-form", "aria-label": "Scale the pool" },
    h("label", { for: "pool-scale-workers" }, "Workers", size),
    h("label", { for: "pool-scale-reason" }, "Reason", reason), scale);
  const button = (action, label, tone = "secondary outline") => h("button", { type: "button",
    class: `compact ${tone}`, dataset: { action } }, label);
  const drain = button("drain", "Drain");
  const undrain = button("undrain", "Undrain");
  const remove = button("delete", "Delete", "danger");
  const act = async (el, label, call) => {
    error.textContent = "";
    el.setAttribute("aria-busy", "true");
    try {
      const answer = await call();
      if (answer?.id === id) show(answer);
      toast(`${pool().name}: ${label}.`, "ok");
      return true;
    } catch (failure) {
      error.textContent = refusal(failure, label);
      return false;
    } finally {
      el.removeAttribute("aria-busy");
    }
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { workers: Number(size.value) };
    if (reason.value.trim()) body.reason = reason.value.trim();
    if (await act(scale, `scale to ${body.workers} requested`, () => api(`${path}/scale`, { method: "POST", body }))) {
      reason.value = "";
      delete size.dataset.dirty;
    }
  });
  size.addEventListener("input", () => { size.dataset.dirty = "true"; });
  drain.addEventListener("click", () => {
    if (!window.confirm(`Drain pool ${pool().name}? Its workers take no new session and stop once empty; `
      + "it does not scale until it is undrained.")) return;
    act(drain, "drain requested", () => api(`${path}/drain`, { method: "POST" }));
  });
  undrain.addEventListener("click", () => act(undrain, "undrained", () => api(`${path}/undrain`, { method: "POST" })));
  remove.addEventListener("click", () => {
    if (!window.confirm(`Delete pool ${pool().name}? Its workers are drained, then terminated. This cannot be undone.`)) {
      return;
    }
    act(remove, "deletion requested", () => api(path, { method: "DELETE" }));
  });
  const element = h("div", { class: "pool-actions" },
    h("div", { class: "button-row" }, form, drain, undrain, remove), error);
  return {
    element,
    update() {
      const p = pool();
      const open = p.phase !== "terminated" && !p.deleting;
      const s = p.scaling || {};
      size.min = String(s.min_workers ?? 0);
      size.max = String(s.max_workers ?? 1000);
      size.title = `between ${s.min_workers} and ${s.max_workers} (the pool's bounds)`;
      if (!size.dataset.dirty && document.activeElement !== size) size.value = String(p.desired_workers);
      for (const el of [size, reason, scale]) el.disabled = !open || p.draining;
      drain.disabled = !open || p.draining;
      undrain.disabled = !open || !p.draining;
      remove.disabled = !open;
    },
  };
}
