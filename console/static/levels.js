// A usage against its warning and critical levels, as `fleetpulse status` rates it (≥), shown
// as a badge with the level in words and a shape as well as a colour.

import { h } from "./dom.js";

export function level(value, levels) {
  if (value === null || value === undefined) return "unknown";
  if (levels && value >= levels.critical) return "critical";
  if (levels && value >= levels.warning) return "warning";
  return "ok";
}

export function badge(key, value, levels) {
  const rated = level(value, levels);
  const text = rated === "unknown" ? "no data" : `${value.toFixed(1)}% ${rated}`;
  const limits = levels ? `warning at ${levels.warning}%, critical at ${levels.critical}%` : "";
  return h("span", {
    class: `badge ${rated}`,
    "data-key": key,
    "data-level": rated,
    title: limits,
    "aria-label": `${key} ${text}${limits ? `; ${limits}` : ""}`,
  }, text);
}

export function levelColor(rated) {
  const name = rated === "unknown" ? "--muted" : `--${rated}`;
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}
