// Signing in when the API has a token (api.token): the token goes once, in the body of
// POST /api/v1/login, and comes back as an HttpOnly session cookie that no script can read;
// EventSource sends that cookie where it could send no header. The token is never put into a
// URL or kept in the page.

import { h } from "./dom.js";

async function post(path, body) {
  return fetch(path, {
    method: "POST",
    headers: { Accept: "application/json", "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

export async function sessionState() {
  const response = await fetch("/api/v1/login", { headers: { Accept: "application/json" } });
  return response.ok ? response.json() : { required: false, signed_in: false };
}

export async function logout() {
  await post("/api/v1/logout");
}

// the sign-in form; `done` runs once the session cookie is set
export function loginForm(done) {
  const input = h("input", { id: "token", type: "password", autocomplete: "current-password", required: true, "aria-describedby": "login-error" });
  const problem = h("p", { id: "login-error", class: "field-error", role: "alert" });
  const submit = h("button", { type: "submit" }, "Sign in");

  async function signIn(event) {
    event.preventDefault();
    submit.disabled = true;
    problem.textContent = "";
    try {
      const response = await post("/api/v1/login", { token: input.value });
      if (response.ok) {
        input.value = "";
        done();
        return;
      }
      problem.textContent = response.status === 401 ? "Wrong token: not signed in." : `Sign-in failed: HTTP ${response.status}.`;
      input.select();
    } catch (error) {
      problem.textContent = `Sign-in failed: ${error.message}`;
    } finally {
      submit.disabled = false;
    }
  }

  const form = h("form", { id: "login", class: "login", onsubmit: signIn },
    h("h1", {}, "Sign in"),
    h("p", {}, "This FleetPulse asks for its API token (", h("code", {}, "api.token"), ") once; the browser then holds a session cookie until you sign out or the server restarts."),
    h("p", {}, h("label", { for: "token" }, "API token "), input, " ", submit),
    problem);
  queueMicrotask(() => input.focus());
  return form;
}
