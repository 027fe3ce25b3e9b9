// The Fleet view: one row per host from GET /api/v1/hosts.

import { get } from "./api.js";
import { ago, h } from "./dom.js";

export async function fleetView(main) {
  const { hosts } = await get("/api/v1/hosts");
  main.append(
    h("h1", {}, "Fleet"),
    h("table", {},
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Host"), h("th", { scope: "col" }, "State"))),
      h("tbody", {}, hosts.map((host) => h("tr", {},
        h("th", { scope: "row" }, h("a", { href: `#/host/${encodeURIComponent(host.host)}` }, host.host)),
        h("td", {}, host.up ? "up" : "down", " · ", ago(host.last_seen)),
      ))),
    ),
  );
  return () => {};
}
