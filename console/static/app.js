// The console's router: the URL fragment picks the view (#/, #/host/NAME, #/host/NAME/logs, #/alerts), and
// leaving a view stops its timers and streams.

import { fleetView } from "./fleet.js";
import { hostView } from "./host.js";
import { logsView } from "./logs.js";
import { h, say } from "./dom.js";

const VIEWS = [
  [/^#?\/?$/, "fleet", fleetView],
  [/^#\/host\/([^/]+)$/, "fleet", hostView],
  [/^#\/host\/([^/]+)\/logs$/, "fleet", logsView],
];

let leaving = null;

async function show() {
  leaving?.();
  leaving = null;
  const main = document.getElementById("main");
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
    leaving = await view(main, ...args);
  } catch (error) {
    main.append(h("p", { class: "error", role: "alert" }, `Could not load: ${error.message}`));
  }
}

window.addEventListener("hashchange", show);
show();
