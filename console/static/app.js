// The console's router: the URL fragment picks the view (#/, #/host/NAME, #/host/NAME/logs, #/alerts), and
// leaving a view stops its timers and streams. An API answer of 401 (api.token is set and
// there is no session) swaps the view for the sign-in form.

import { alertsView } from "./alerts.js";
import { fleetView } from "./fleet.js";
import { hostView } from "./host.js";
import { logsView } from "./logs.js";
import { h, say } from "./dom.js";
import { loginForm, logout, sessionState } from "./login.js";
import { storeBanner } from "./store.js";

const VIEWS = [
  [/^#?\/?$/, "fleet", fleetView],
  [/^#\/host\/([^/]+)$/, "fleet", hostView],
  [/^#\/host\/([^/]+)\/logs$/, "fleet", logsView],
  [/^#\/alerts$/, "alerts", alertsView],
];

let leaving = null;
const main = document.getElementById("main");
const signOut = h("button", { type: "button", id: "logout", hidden: true, onclick: async () => { await logout(); askLogin(); } }, "Sign out");
document.querySelector("header nav").append(signOut);

function signingIn() {
  return document.getElementById("login") !== null;
}

function askLogin() {
  if (signingIn()) return;
  leaving?.();
  leaving = null;
  signOut.hidden = true;
  say("");
  main.replaceChildren(loginForm(() => { signOut.hidden = false; show(); }));
}

async function show() {
  leaving?.();
  leaving = null;
  const hash = location.hash || "#/";
  const found = VIEWS.find(([pattern]) => pattern.test(hash));
  for (const link of document.querySelectorAll("nav a[data-page]")) {
    link.toggleAttribute("aria-current", found !== undefined && link.dataset.page === found[1]);
    if (link.hasAttribute("aria-current")) link.setAttribute("aria-current", "page");
  }
  main.replaceChildren();
  say("");
  if (found === undefined) {
    main.append(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to the fleet")));
    return;
  }
  const [pattern, , view] = found;
  const args = hash.match(pattern).slice(1).map(decodeURIComponent);
  try {
    const stop = await view(main, ...args);
    // a view whose API calls met a 401 while it loaded gives way to the sign-in form
    if (signingIn()) stop?.();
    else leaving = stop;
  } catch (error) {
    // a failing store is named with its cause, as the Fleet page names it
    if (error.status !== 401) main.append(storeBanner(error.store), h("p", { class: "error", role: "alert" }, `Could not load: ${error.message}`));
  }
}

window.addEventListener("fleetpulse:login", askLogin);
window.addEventListener("hashchange", show);
sessionState().then((state) => { signOut.hidden = !state.signed_in; });
show();
