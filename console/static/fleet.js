// The Fleet view: one row per host (GET /api/v1/hosts) with up/down and last seen, a badge and a
// last-hour sparkline per usage (one GET /api/v1/metrics/history per usage for the whole
// fleet), the customised marker and the firing alerts (GET /api/v1/alerts). A row expands to
// mini-charts. The view refreshes itself every scrape interval. While the store fails, a banner
// on top says why (`store` in the hosts answer, or in the error when reads fail too).

import { get } from "./api.js";
import { loadUplot, timeChart } from "./charts.js";
import { ago, h, say } from "./dom.js";
import { badge, level, levelColor } from "./levels.js";
import { SETTINGS } from "./settings.js";
import { SPARK_WIDTH, fullest, sparkline } from "./sparkline.js";
import { showStore, storeBanner } from "./store.js";

const KEYS = Object.keys(SETTINGS.metrics);
const HOUR_MS = 3_600_000;
const LABELS = { cpu: "CPU", memory: "Memory", disk: "Disk" };

async function fetchFleet() {
  const step = `${Math.ceil(HOUR_MS / 1000 / SPARK_WIDTH)}s`; // one point per sparkline pixel
  const [hosts, alerts, ...histories] = await Promise.all([
    get("/api/v1/hosts"),
    get("/api/v1/alerts"),
    ...KEYS.map((key) => get("/api/v1/metrics/history", { metric: SETTINGS.metrics[key], start: "-1h", step })),
  ]);
  const history = {}; // key -> host -> [[ts, value]]
  KEYS.forEach((key, i) => {
    const byHost = {};
    for (const series of histories[i].series) (byHost[series.labels.host] ??= []).push(series);
    history[key] = Object.fromEntries(Object.entries(byHost).map(([host, list]) => [host, fullest(list)]));
  });
  return { hosts: hosts.hosts, alerts: alerts.alerts, history, store: hosts.store };
}

function alertsCell(alerts) {
  if (!alerts.length) return h("span", { class: "muted" }, "none");
  return h("ul", { class: "alerts" }, alerts.map((alert) =>
    h("li", {}, h("span", { class: `badge ${alert.severity === "critical" ? "critical" : "warning"}` },
      `${alert.state} ${alert.severity}`), " ", alert.alertname)));
}

function usageCell(key, host, points) {
  const levels = host.thresholds[key];
  const rated = level(host[key], levels);
  return h("td", { class: "usage-cell" }, h("div", { class: "usage" },
    badge(key, host[key], levels),
    sparkline(points ?? [], levelColor(rated), `${LABELS[key] ?? key}, last hour`)));
}

function hostRow(host, fleet, expanded, toggle) {
  const alerts = fleet.alerts.filter((alert) => alert.host === host.host);
  const state = host.up === true ? "up" : host.up === false ? "down" : "unknown";
  const open = expanded.has(host.host);
  return h("tr", { "data-host": host.host },
    h("th", { scope: "row" },
      h("a", { href: `#/host/${encodeURIComponent(host.host)}` }, host.host),
      host.customized ? [" ", h("span", { class: "custom", title: "this host has its own thresholds" }, "customised")] : null),
    h("td", {}, h("span", { class: `state-${state}` }, state), h("br"), h("span", { class: "muted" }, `seen ${ago(host.last_seen)}`)),
    KEYS.map((key) => usageCell(key, host, fleet.history[key][host.host])),
    h("td", {}, alertsCell(alerts)),
    h("td", {}, h("button", {
      type: "button", "aria-expanded": String(open), "aria-label": `charts of ${host.host}`,
      onclick: () => toggle(host.host),
    }, open ? "Hide" : "Charts")),
  );
}

async function miniCharts(row, host, fleet) {
  const cell = h("td", { colspan: 4 + KEYS.length }, h("div", { class: "mini" }));
  const expandRow = h("tr", { class: "expand" }, cell);
  row.after(expandRow);
  const uPlot = await loadUplot();
  if (uPlot === null) return;
  for (const key of KEYS) {
    const box = h("div", { class: "chart" }, h("h3", {}, LABELS[key] ?? key), h("div", { class: "plot" }), h("div", { class: "tip" }));
    cell.firstChild.append(box);
    timeChart(uPlot, box, {
      series: [{ name: key, points: fleet.history[key][host.host] ?? [] }],
      unit: "%", levels: host.thresholds[key], width: 320, height: 140, range: [Date.now() - HOUR_MS, Date.now()],
    });
  }
}

export async function fleetView(main) {
  const expanded = new Set();
  const tbody = h("tbody");
  const summary = h("p", { class: "muted" });
  const banner = storeBanner();
  main.append(
    banner,
    h("h1", {}, "Fleet"),
    summary,
    h("table", { class: "fleet" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Host"),
        h("th", { scope: "col" }, "State"),
        KEYS.map((key) => h("th", { scope: "col" }, LABELS[key] ?? key)),
        h("th", { scope: "col" }, "Alerts"),
        h("th", { scope: "col" }, h("span", { class: "muted" }, "Charts")))),
      tbody),
  );
  let fleet = null;

  function render() {
    const focused = document.activeElement?.closest("tr")?.dataset.host;
    tbody.replaceChildren();
    for (const host of fleet.hosts) {
      const row = hostRow(host, fleet, expanded, toggle);
      tbody.append(row);
      if (expanded.has(host.host)) miniCharts(row, host, fleet);
    }
    const down = fleet.hosts.filter((host) => host.up === false).length;
    summary.textContent = `${fleet.hosts.length} hosts, ${down} down, ${fleet.alerts.length} alerts active · refreshed every ${SETTINGS.refresh}s`;
    if (focused) tbody.querySelector(`tr[data-host="${CSS.escape(focused)}"] button`)?.focus();
    main.dataset.drawn = String(Date.now());
  }

  function toggle(name) {
    if (expanded.has(name)) expanded.delete(name);
    else expanded.add(name);
    render();
  }

  let failed = false; // the status line says a refresh failed

  function refreshFailed(error) {
    failed = true;
    say(`Refresh failed: ${error.message}`);
  }

  async function refresh() {
    try {
      fleet = await fetchFleet();
    } catch (error) {
      // reads fail too: the error still carries the store's health, so the banner says why
      if (error.store === undefined) throw error;
      showStore(banner, error.store);
      refreshFailed(error);
      return;
    }
    showStore(banner, fleet.store);
    // once refreshes work again, an old failure in the status line would contradict the page
    if (failed) say("");
    failed = false;
    render();
  }

  // a first load the store fails shows why and keeps trying; any other failure is the router's
  await refresh();
  const timer = setInterval(() => refresh().catch(refreshFailed), SETTINGS.refresh * 1000);
  return () => clearInterval(timer);
}
