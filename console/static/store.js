// The store's health as the API gives it (`store` in the hosts answer, or in the error of a
// request the store failed): a banner naming each failing side, its cause, since when and the
// store's own words, as `fleetpulse status` says it. Without it a full disk only shows as hosts
// in "unknown" and gaps in the charts, which look like the fleet's fault.

import { h } from "./dom.js";

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// one line per failing side; none while the store is fine or the API says nothing of it
function storeLines(store) {
  if (!store || store.status === "ok") return [];
  return ["write", "read"].filter((side) => store[side]).map((side) => {
    const { cause, error, since_ms: since } = store[side];
    return h("p", {}, `Store degraded: ${side}s failing (${cause}) since `,
      h("time", { datetime: new Date(since).toISOString() }, clock(since)), ` — ${error}`);
  });
}

// The banner stays in the page, empty (and so not shown) while the store is fine: a
// role="alert" region is announced when its content changes, and one that is always there is
// announced reliably.
export function storeBanner(store) {
  const banner = h("div", { class: "store-banner", role: "alert" });
  showStore(banner, store);
  return banner;
}

// Only a changed outage replaces the lines, so screen readers do not hear the same one again at
// every refresh.
export function showStore(banner, store) {
  const lines = storeLines(store);
  if (banner.textContent !== lines.map((line) => line.textContent).join("")) banner.replaceChildren(...lines);
}
