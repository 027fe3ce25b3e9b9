// The Alerts view: the firing and pending alerts (GET /api/v1/alerts), the history of
// transitions and delivery outcomes filtered by host and time (GET /api/v1/alerts/history),
// the loaded rules with their state (GET /api/v1/rules) and each channel with a "Send test"
// button (GET /api/v1/channels, POST /api/v1/channels/{name}/test). All but the channels
// refresh every scrape interval.

import { get, send } from "./api.js";
import { ago, h, say } from "./dom.js";
import { SETTINGS } from "./settings.js";

const RANGES = [["-1h", "last hour"], ["-24h", "last 24 hours"], ["-7d", "last 7 days"], ["-30d", "last 30 days"], ["custom", "custom range"]];
const DAY_MS = 86_400_000;
const HISTORY_LIMIT = 10_000; // the API's most; past it, the API answers the range's oldest

// <input type="datetime-local"> speaks local wall time without a zone
function localInput(ms) {
  return new Date(ms - new Date(ms).getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}

function when(iso) {
  return h("time", { datetime: iso, title: iso }, `${new Date(iso).toLocaleString()} (${ago(iso)})`);
}

function severity(name) {
  // the words always say it; the class only adds the colour and shape
  const rated = name === "critical" || name === "warning" ? name : "unknown";
  return h("span", { class: `badge ${rated}` }, name || "none");
}

function seconds(value) {
  if (!value) return "0s";
  if (value % 3600 === 0) return `${value / 3600}h`;
  if (value % 60 === 0) return `${value / 60}m`;
  return `${value}s`;
}

function number(value) {
  return typeof value === "number" ? String(Math.round(value * 100) / 100) : "–";
}

function table(label, headings, rows, empty) {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h("table", { "aria-label": label },
    h("thead", {}, h("tr", {}, headings.map((text) => h("th", { scope: "col" }, text)))),
    h("tbody", {}, rows));
}

function activeTable(alerts) {
  return table("Firing and pending alerts", ["State", "Severity", "Alert", "Host", "Value", "Since", "Summary"],
    alerts.map((alert) => h("tr", { "data-alert": alert.alertname, "data-host": alert.host, "data-state": alert.state },
      h("td", {}, alert.state),
      h("td", {}, severity(alert.severity)),
      h("th", { scope: "row" }, alert.alertname),
      h("td", {}, alert.host ? h("a", { href: `#/host/${encodeURIComponent(alert.host)}` }, alert.host) : "–"),
      h("td", {}, `${number(alert.value)} (threshold ${number(alert.threshold)})`),
      h("td", {}, when(alert.active_since)),
      h("td", {}, alert.summary ?? ""))),
    "No alert is firing or pending.");
}

function historyWhat(event) {
  if (event.event === "transition") {
    return [`${event.previous} → ${event.state}`, `value ${number(event.value)}${event.summary ? `: ${event.summary}` : ""}`];
  }
  const outcome = event.outcome === "sent" ? "delivered" : event.outcome;
  const detail = event.error ? `${event.title ?? ""} — error: ${event.error}` : event.title ?? "";
  return [`${event.kind} via ${event.channel}: ${outcome} (attempt ${event.attempt})`, detail];
}

function historyTable(events) {
  const newest = [...events].reverse();
  return table("Alert history", ["Time", "Host", "Alert", "Severity", "What", "Detail"],
    newest.map((event) => {
      const [what, detail] = historyWhat(event);
      return h("tr", { "data-event": event.event, "data-alert": event.alertname, "data-host": event.host },
        h("td", {}, when(event.time)),
        h("td", {}, event.host || "–"),
        h("th", { scope: "row" }, event.alertname),
        h("td", {}, severity(event.severity)),
        h("td", {}, what),
        h("td", {}, detail));
    }),
    "Nothing happened in this range.");
}

function ruleState(rule) {
  const parts = [];
  if (rule.firing) parts.push(`${rule.firing} firing`);
  if (rule.pending) parts.push(`${rule.pending} pending`);
  return parts.length ? parts.join(", ") : "inactive";
}

function rulesTable(answer) {
  if (answer.loaded === null) {
    return h("p", { class: "muted" }, "No alert engine has published its rules to this store lately: is it running?");
  }
  return [
    h("p", { class: "muted" }, `${answer.rules.length} rule${answer.rules.length === 1 ? "" : "s"}, loaded ${ago(answer.loaded)}.`),
    table("Loaded rules", ["Alert", "Group", "Condition", "For", "Severity", "Channels", "State"],
      answer.rules.map((rule) => h("tr", { "data-rule": rule.alert, "data-state": rule.firing ? "firing" : rule.pending ? "pending" : "inactive" },
        h("th", { scope: "row" }, rule.alert),
        h("td", {}, rule.group),
        h("td", {}, h("code", {}, `${rule.reduce}(${rule.metric}[${seconds(rule.window)}]) ${rule.op} ${rule.threshold}`)),
        h("td", {}, seconds(rule.for)),
        h("td", {}, rule.severities.map((name) => [severity(name), " "])),
        h("td", {}, rule.channels.length ? rule.channels.join(", ") : h("span", { class: "muted" }, "none")),
        h("td", {}, ruleState(rule)))),
      "No rules are loaded."),
  ];
}

function channelItem(channel) {
  const result = h("span", { class: "result", role: "status" });
  const button = h("button", { type: "button", "aria-label": `Send test through ${channel.name}` }, "Send test");
  button.addEventListener("click", async () => {
    button.disabled = true;
    result.className = "result muted";
    result.textContent = "Sending…";
    try {
      const answer = await send("POST", `/api/v1/channels/${encodeURIComponent(channel.name)}/test`);
      // a symbol and a word as well as the colour; not a badge, as an error can be long
      result.className = `result ${answer.ok ? "state-up" : "field-error"}`;
      result.textContent = answer.ok ? "✓ Delivered" : `✗ Failed: ${answer.error}`;
    } catch (error) {
      result.className = "result field-error";
      result.textContent = `✗ Failed: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  });
  return h("li", { "data-channel": channel.name },
    h("strong", {}, channel.name), channel.default ? h("span", { class: "muted" }, " (default)") : null, " ",
    button, " ", result);
}

export async function alertsView(main) {
  const active = h("div");
  const rules = h("div");
  const history = h("div");
  const host = h("select", { id: "history-host" }, h("option", { value: "" }, "every host"));
  const range = h("select", { id: "history-range" }, RANGES.map(([value, text]) => h("option", { value }, text)));
  range.value = "-24h";
  const from = h("input", { id: "history-from", type: "datetime-local", value: localInput(Date.now() - DAY_MS) });
  const to = h("input", { id: "history-to", type: "datetime-local", value: localInput(Date.now()) });
  const custom = h("span", { hidden: true },
    h("label", { for: "history-from" }, "From"), from, h("label", { for: "history-to" }, "to"), to);
  const rangeError = h("span", { class: "field-error", role: "alert" });
  const channels = await get("/api/v1/channels");
  main.append(
    h("h1", {}, "Alerts"),
    h("section", { id: "active", "aria-labelledby": "active-h" }, h("h2", { id: "active-h" }, "Firing and pending"), active),
    h("section", { id: "history", "aria-labelledby": "history-h" }, h("h2", { id: "history-h" }, "History"),
      h("div", { class: "toolbar" },
        h("label", { for: "history-host" }, "Host"), host,
        h("label", { for: "history-range" }, "Range"), range, custom, rangeError),
      history),
    h("section", { id: "rules", "aria-labelledby": "rules-h" }, h("h2", { id: "rules-h" }, "Rules"), rules),
    h("section", { id: "channels", "aria-labelledby": "channels-h" }, h("h2", { id: "channels-h" }, "Channels"),
      channels.channels.length
        ? h("ul", { class: "channels" }, channels.channels.map(channelItem))
        : h("p", { class: "muted" }, "No channels: alerting.channels in fleetpulse.yaml defines them.")),
  );

  function hostChoices(hosts) {
    const chosen = host.value;
    const names = new Set([...hosts.map((one) => one.host), chosen].filter(Boolean));
    host.replaceChildren(h("option", { value: "" }, "every host"), ...[...names].sort().map((name) => h("option", { value: name }, name)));
    host.value = chosen;
  }

  // the history's range as the API takes it, or null (and an inline error) when it is not one
  function span() {
    custom.hidden = range.value !== "custom";
    rangeError.textContent = "";
    if (range.value !== "custom") return { start: range.value };
    const start = Date.parse(from.value);
    const end = Date.parse(to.value);
    if (Number.isNaN(start) || Number.isNaN(end) || start >= end) {
      rangeError.textContent = "The range must start before it ends.";
      return null;
    }
    return { start: new Date(start).toISOString(), end: new Date(end).toISOString() };
  }

  async function load() {
    const wanted = span();
    const [alerts, published, events, hosts] = await Promise.all([
      get("/api/v1/alerts"),
      get("/api/v1/rules"),
      wanted === null ? null : get("/api/v1/alerts/history", { ...wanted, host: host.value || undefined, limit: HISTORY_LIMIT }),
      get("/api/v1/hosts"),
    ]);
    active.replaceChildren(activeTable(alerts.alerts));
    rules.replaceChildren(...[rulesTable(published)].flat());
    if (events !== null) {
      const full = events.events.length >= HISTORY_LIMIT;
      history.replaceChildren(
        full ? h("p", { class: "field-error" }, `The range holds ${HISTORY_LIMIT} events or more, and the oldest ${HISTORY_LIMIT} are shown: narrow the range or pick a host.`) : "",
        historyTable(events.events));
    }
    if (document.activeElement !== host) hostChoices(hosts.hosts);
    main.dataset.drawn = String(Date.now());
  }

  async function refresh() {
    try {
      await load();
    } catch (error) {
      say(`Refresh failed: ${error.message}`);
    }
  }

  host.addEventListener("change", refresh);
  for (const control of [range, from, to]) control.addEventListener("change", refresh);
  await load();
  const timer = setInterval(refresh, SETTINGS.refresh * 1000);
  return () => clearInterval(timer);
}
