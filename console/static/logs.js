// The Logs view (#/host/NAME/logs): a host's agent log lines, live over the API's server-sent
// events (GET /api/v1/hosts/{host}/logs/stream; EventSource resumes with Last-Event-ID by
// itself). The level filter and the search work on the lines held here, so changing them
// shows the earlier lines too without asking again. Pause keeps receiving but stops drawing;
// resume draws what arrived meanwhile.

import { apiUrl, get } from "./api.js";
import { h, say } from "./dom.js";

const LEVELS = { debug: 10, info: 20, warning: 30, error: 40, critical: 50 };
const KEEP = 5000; // lines held in the page; older ones leave from the top
const SINCE = "-1h"; // what the stream sends first, before the live lines

function levelOf(line) {
  return LEVELS[line.level] ?? 0;
}

function row(line) {
  const level = line.level || "info";
  return h("li", { class: `log log-${level}`, "data-level": level },
    h("time", { datetime: line.time }, line.time.replace("T", " ").replace("Z", "")), " ",
    h("span", { class: "log-level" }, level.toUpperCase()), " ",
    h("span", { class: "log-logger" }, line.logger), " ",
    h("span", { class: "log-message" }, line.message));
}

export async function logsView(main, host) {
  // EventSource hides why it failed: one plain request first turns an unknown host (404) or
  // a missing session (401, then the sign-in form) into what the console shows
  const probe = () => get(`/api/v1/hosts/${encodeURIComponent(host)}/logs`, { since: "-1s", limit: 1 });
  await probe();
  const lines = []; // every line received, oldest first
  let held = 0; // how many of the newest lines arrived while paused and are not drawn yet
  let paused = false;
  const list = h("ol", { class: "logs", role: "log", "aria-live": "off", "aria-label": `Log lines of ${host}` });
  const count = h("span", { class: "muted", id: "log-count" });
  const level = h("select", { id: "log-level", onchange: redraw },
    h("option", { value: "" }, "all levels"),
    Object.keys(LEVELS).map((name) => h("option", { value: name }, `${name} and above`)));
  const search = h("input", { id: "log-search", type: "search", placeholder: "search", oninput: redraw });
  const pause = h("button", { type: "button", "aria-pressed": "false", onclick: toggle }, "Pause");

  function shown(line) {
    if (level.value && levelOf(line) < LEVELS[level.value]) return false;
    const needle = search.value.trim().toLowerCase();
    return !needle || line.message.toLowerCase().includes(needle) || line.logger.toLowerCase().includes(needle);
  }

  function tell() {
    const drawn = list.childElementCount;
    count.textContent = paused
      ? `paused · ${held} new line${held === 1 ? "" : "s"} waiting`
      : `${drawn} line${drawn === 1 ? "" : "s"} shown of ${lines.length}`;
  }

  function atBottom() {
    return window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
  }

  function append(batch) {
    const follow = atBottom();
    list.append(...batch.filter(shown).map(row));
    while (list.childElementCount > KEEP) list.firstElementChild.remove();
    if (follow) list.lastElementChild?.scrollIntoView({ block: "end" });
  }

  function redraw() {
    const drawn = paused ? lines.slice(0, lines.length - held) : lines;
    list.replaceChildren(...drawn.filter(shown).map(row));
    tell();
  }

  function toggle() {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
    if (!paused && held) {
      append(lines.slice(lines.length - held));
      held = 0;
    }
    tell();
  }

  function receive(event) {
    const line = JSON.parse(event.data);
    lines.push(line);
    if (lines.length > KEEP) lines.shift();
    if (paused) held = Math.min(held + 1, lines.length);
    else append([line]);
    tell();
  }

  main.append(
    h("p", {}, h("a", { href: `#/host/${encodeURIComponent(host)}` }, `← ${host}`)),
    h("h1", {}, `Logs of ${host}`),
    h("div", { class: "toolbar", role: "group", "aria-label": "Filter" },
      h("label", {}, "Level ", level), h("label", {}, "Search ", search), pause, count),
    list);
  tell();

  const stream = new EventSource(apiUrl(`/api/v1/hosts/${encodeURIComponent(host)}/logs/stream`, { since: SINCE }));
  stream.addEventListener("log", receive);
  stream.addEventListener("open", () => say(""));
  // the browser reconnects by itself (sending Last-Event-ID); say so while it tries. It gives
  // up on an error answer: the probe then says why (a 401 brings the sign-in form)
  stream.addEventListener("error", () => {
    if (stream.readyState !== EventSource.CLOSED) return say("Log stream reconnecting…");
    say("Log stream closed.");
    probe().catch(() => {});
  });
  return () => stream.close();
}
