// The Host view: charts of one host over a range preset (1h … 90d) or a custom range. Every
// chart asks GET /api/v1/hosts/{host}/metrics/history for about one point per pixel of its
// width and says which tier answered; drag-select zooms (every chart refetches at a finer
// step), double-click restores the range, the arrows pan; PNG and CSV export per chart.

import { apiUrl, get } from "./api.js";
import { chartPng, download, loadUplot, timeChart } from "./charts.js";
import { ago, h, say } from "./dom.js";
import { badge } from "./levels.js";
import { storeBanner } from "./store.js";
import { thresholdsPanel } from "./thresholds.js";

const PRESETS = { "1h": 3_600_000, "24h": 86_400_000, "7d": 7 * 86_400_000, "30d": 30 * 86_400_000, "90d": 90 * 86_400_000 };
const CHART_WIDTH = 560;
const CHART_HEIGHT = 200;
const CHARTS = [
  { id: "cpu", title: "CPU", metric: "host_cpu_usage_percent", unit: "%", key: "cpu" },
  { id: "memory", title: "Memory", metric: "host_memory_usage_percent", unit: "%", key: "memory" },
  { id: "disk", title: "Disk per mountpoint", metric: "host_disk_usage_percent", unit: "%", key: "disk", by: "mountpoint" },
  { id: "net-rx", title: "Network receive", metric: "network_receive_bytes_total", aggregate: "rate", unit: "B/s", by: "interface" },
  { id: "net-tx", title: "Network transmit", metric: "network_transmit_bytes_total", aggregate: "rate", unit: "B/s", by: "interface" },
  { id: "disk-read", title: "Disk reads", metric: "host_disk_read_bytes_total", aggregate: "rate", unit: "B/s", by: "device" },
  { id: "disk-write", title: "Disk writes", metric: "host_disk_written_bytes_total", aggregate: "rate", unit: "B/s", by: "device" },
  { id: "temp", title: "Temperatures", metric: "host_temperature_celsius", unit: "°C", by: "sensor", optional: true },
  { id: "ctr-cpu", title: "Containers: CPU", metric: "container_cpu_usage_percent", unit: "% of a core", by: "container", optional: true },
  { id: "ctr-mem", title: "Containers: memory", metric: "container_memory_usage_bytes", unit: "B", by: "container", optional: true },
  { id: "ctr-net", title: "Containers: network receive", metric: "container_network_receive_bytes_total", aggregate: "rate", unit: "B/s", by: "container", optional: true },
];

// about one point per horizontal pixel of the plot, in whole seconds
export function stepFor(startMs, endMs, width) {
  return Math.max(1, Math.ceil((endMs - startMs) / 1000 / width));
}

function seconds(ms) {
  return (ms / 1000).toFixed(3);
}

function historyParams(chart, range, step) {
  return { metric: chart.metric, start: seconds(range.start), end: seconds(range.end), step: `${step}s`, aggregate: chart.aggregate };
}

function seriesName(chart, series) {
  if (!chart.by) return chart.title;
  return series.labels[chart.by] || Object.values(series.labels).join(" ") || chart.title;
}

async function containersTable(host) {
  const [info, restarts] = await Promise.all([
    get(`/api/v1/hosts/${encodeURIComponent(host)}/metrics/history`, { metric: "container_info", start: "-10m", aggregate: "last" }),
    get(`/api/v1/hosts/${encodeURIComponent(host)}/metrics/history`, { metric: "container_restarts_total", start: "-10m", aggregate: "last" }),
  ]);
  if (!info.series.length) return null;
  const restartsOf = Object.fromEntries(restarts.series.map((s) => [s.labels.container, s.points.at(-1)?.[1]]));
  const latest = new Map();
  for (const s of info.series) {
    const ts = s.points.at(-1)?.[0] ?? 0;
    if ((latest.get(s.labels.container)?.ts ?? -1) < ts) latest.set(s.labels.container, { ts, labels: s.labels });
  }
  return h("table", { class: "containers" },
    h("caption", {}, "Containers"),
    h("thead", {}, h("tr", {}, ["Container", "Image", "State", "Health", "Restarts"].map((name) => h("th", { scope: "col" }, name)))),
    h("tbody", {}, [...latest.values()].map(({ labels }) => h("tr", {},
      h("th", { scope: "row" }, labels.container), h("td", {}, labels.image || ""),
      h("td", {}, labels.state || ""), h("td", {}, labels.health || "none"),
      h("td", {}, String(restartsOf[labels.container] ?? 0))))));
}

export async function hostView(main, host) {
  const { hosts, store } = await get("/api/v1/hosts");
  const info = hosts.find((candidate) => candidate.host === host);
  if (info === undefined) {
    main.append(h("h1", {}, host), h("p", { class: "error", role: "alert" }, `Unknown host ${host}.`), h("a", { href: "#/" }, "Back to the fleet"));
    return () => {};
  }
  const uPlot = await loadUplot();
  let base = null; // the range of the preset or custom choice; a zoom narrows `range` only
  let range = null;
  const rangeText = h("span", { class: "muted", id: "range" });
  const presetButtons = Object.keys(PRESETS).map((name) => h("button", {
    type: "button", "data-range": name, "aria-pressed": "false", onclick: () => choose(name),
  }, name));
  const from = h("input", { type: "datetime-local", "aria-label": "custom range start", step: 60 });
  const to = h("input", { type: "datetime-local", "aria-label": "custom range end", step: 60 });
  const customError = h("span", { class: "field-error", role: "alert" });
  const grid = h("div", { class: "charts" });
  const state = info.up === true ? "up" : info.up === false ? "down" : "unknown";
  const marker = h("span", { class: "custom", id: "host-customised" }, "customised");
  const usage = h("p", { id: "usage" });
  // the badges and the marker again, after the thresholds panel saved new levels
  function showUsage() {
    marker.hidden = !info.customized;
    usage.replaceChildren(...[h("span", { class: `state-${state}` }, state), ` · seen ${ago(info.last_seen)} · `,
      ["cpu", "memory", "disk"].map((key) => [`${key} `, badge(key, info[key], info.thresholds[key]), " "])].flat(Infinity));
  }
  showUsage();
  const panel = await thresholdsPanel(host, (answer) => {
    info.thresholds = answer.thresholds;
    info.customized = answer.customized;
    showUsage();
    redraw(); // the charts' threshold lines
  });
  main.append(
    storeBanner(store), // as the store was when the page opened: this page does not refresh it
    h("p", {}, h("a", { href: "#/" }, "← Fleet"), " · ", h("a", { href: `#/host/${encodeURIComponent(host)}/logs` }, "Logs")),
    h("h1", {}, host, " ", marker),
    usage,
    h("div", { class: "toolbar", role: "group", "aria-label": "Range" },
      presetButtons,
      h("button", { type: "button", onclick: () => pan(-0.5), "aria-label": "earlier" }, "◀"),
      h("button", { type: "button", onclick: () => pan(0.5), "aria-label": "later" }, "▶"),
      rangeText),
    h("form", { class: "toolbar", onsubmit: (event) => { event.preventDefault(); custom(); } },
      h("label", {}, "From ", from), h("label", {}, "to ", to), h("button", { type: "submit" }, "Apply"), customError),
    h("p", { class: "muted" }, "Drag across a chart to zoom in, double-click it to go back."),
    grid,
    panel,
  );
  const boxes = new Map();
  for (const chart of CHARTS) {
    const tier = h("span", { class: "tier", "data-tier": "" });
    const png = h("button", { type: "button", onclick: () => exportPng(chart) }, "PNG");
    const csv = h("a", { class: "csv", download: `${host}-${chart.id}.csv`, href: "#" }, "CSV");
    const box = h("section", { class: "chart", id: `chart-${chart.id}`, "aria-label": chart.title, hidden: chart.optional },
      h("header", {}, h("h3", {}, chart.title), tier, h("span", {}, png, " ", csv)),
      h("div", { class: "plot" }), h("div", { class: "tip", "aria-live": "off" }));
    grid.append(box);
    boxes.set(chart.id, { box, tier, csv, plot: null });
  }
  const containers = h("div");
  main.append(containers);

  async function draw() {
    rangeText.textContent = `${new Date(range.start).toISOString()} – ${new Date(range.end).toISOString()}`;
    const step = stepFor(range.start, range.end, CHART_WIDTH);
    const answers = await Promise.all(CHARTS.map((chart) =>
      get(`/api/v1/hosts/${encodeURIComponent(host)}/metrics/history`, historyParams(chart, range, step))));
    CHARTS.forEach((chart, i) => {
      const answer = answers[i];
      const slot = boxes.get(chart.id);
      slot.box.hidden = Boolean(chart.optional && !answer.series.length);
      slot.tier.textContent = `tier ${answer.tier} · step ${step}s`;
      slot.tier.dataset.tier = answer.tier;
      slot.box.dataset.step = String(step);
      slot.box.dataset.start = String(range.start);
      slot.box.dataset.end = String(range.end);
      slot.csv.href = apiUrl(`/api/v1/hosts/${encodeURIComponent(host)}/metrics/history`, { ...historyParams(chart, range, step), format: "csv" }).href;
      slot.plot?.destroy();
      slot.plot = null;
      if (slot.box.hidden || uPlot === null) return;
      slot.box.querySelector(".plot").replaceChildren();
      slot.plot = timeChart(uPlot, slot.box, {
        series: answer.series.map((s) => ({ name: seriesName(chart, s), points: s.points })),
        unit: chart.unit, levels: chart.key ? info.thresholds[chart.key] : null,
        width: CHART_WIDTH, height: CHART_HEIGHT, range: [range.start, range.end],
        onZoom: (start, end) => { range = { start, end }; redraw(); },
        onReset: () => { range = { ...base }; redraw(); },
      });
    });
    main.dataset.drawn = String(Date.now());
  }

  function redraw() {
    draw().catch((error) => say(`Could not load the charts: ${error.message}`));
  }

  function choose(name) {
    const end = Date.now();
    base = { start: end - PRESETS[name], end };
    range = { ...base };
    for (const button of presetButtons) button.setAttribute("aria-pressed", String(button.dataset.range === name));
    redraw();
  }

  function pan(fraction) {
    const shift = Math.round((range.end - range.start) * fraction);
    range = { start: range.start + shift, end: Math.min(Date.now(), range.end + shift) };
    redraw();
  }

  function custom() {
    const start = Date.parse(from.value);
    const end = Date.parse(to.value);
    if (Number.isNaN(start) || Number.isNaN(end) || start >= end) {
      customError.textContent = "Pick a start before the end.";
      return;
    }
    customError.textContent = "";
    for (const button of presetButtons) button.setAttribute("aria-pressed", "false");
    base = { start, end };
    range = { ...base };
    redraw();
  }

  async function exportPng(chart) {
    const slot = boxes.get(chart.id);
    if (slot.plot) download(await chartPng(slot.plot), `${host}-${chart.id}.png`);
  }

  choose("1h");
  containersTable(host).then((table) => table && containers.append(table)).catch((error) => say(error.message));
  return () => { for (const slot of boxes.values()) slot.plot?.destroy(); };
}

