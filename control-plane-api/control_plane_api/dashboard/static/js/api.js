// The authenticated API, with the session cookie (same origin). A 401 anywhere sends the user to login.

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
  }
}

let onUnauthenticated = () => {};

export function whenUnauthenticated(handler) {
  onUnauthenticated = handler;
}

export async function api(path, { method = "GET", body } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 204) return null;
  const payload = await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401 && path !== "/api/auth/login") onUnauthenticated();
    throw new ApiError(response.status, describe(payload));
  }
  return payload;
}

function describe(payload) {
  if (!payload) return null;
  const detail = payload.detail ?? payload.message ?? payload.error;
  if (Array.isArray(detail)) {
    // A 422 is always a list; an error about the request as a whole has no location to name.
    return detail.map((d) => {
      const where = (d.loc || []).slice(1).join(".");
      return where ? `${where}: ${d.msg}` : d.msg;
    }).join("; ");
  }
  return typeof detail === "string" ? detail : JSON.stringify(detail);
}
