// The console's one way to the HTTP API: same origin, the session cookie rides along, and an
// error answer becomes an ApiError carrying the API's own message.

export class ApiError extends Error {
  constructor(status, message, field, store) {
    super(message);
    this.status = status;
    this.field = field;
    this.store = store; // the store's health, when a failing store is why the request failed
  }
}

export function apiUrl(path, params = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
  }
  return url;
}

async function answer(response) {
  if (response.ok) {
    const type = response.headers.get("Content-Type") || "";
    return type.includes("json") ? response.json() : response.text();
  }
  let message = response.statusText;
  let field;
  let store;
  try {
    const body = await response.json();
    message = body.error || message;
    field = body.field;
    store = body.store;
  } catch {
    // not JSON: the status text says enough
  }
  if (response.status === 401) window.dispatchEvent(new CustomEvent("fleetpulse:login"));
  throw new ApiError(response.status, message, field, store);
}

export async function get(path, params = {}, accept = "application/json") {
  return answer(await fetch(apiUrl(path, params), { headers: { Accept: accept } }));
}

export async function send(method, path, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  return answer(await fetch(apiUrl(path), init));
}
