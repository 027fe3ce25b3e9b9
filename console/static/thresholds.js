// The Host page's thresholds panel: a host's warning and critical levels per key, saved with
// PUT /api/v1/hosts/{host}/thresholds (into the store, where the alert engine, the API and
// Grafana's series read them) or reset to thresholds.yaml with DELETE. Input is checked here
// as the API checks it, so a mistake is named next to its field and nothing is sent; a
// refusal by the API lands next to the field it names as well.

import { send, get } from "./api.js";
import { h } from "./dom.js";

const KEYS = [["cpu", "CPU"], ["memory", "Memory"], ["disk", "Disk"]];
const LEVELS = ["warning", "critical"];

// the first problem of one key's two inputs, as [field, message], or null
function problem(key, values) {
  for (const name of LEVELS) {
    const text = values[name].trim();
    const value = Number(text);
    if (text === "" || !Number.isFinite(value)) return [`${key}.${name}`, "Enter a number."];
    if (value < 0 || value > 100) return [`${key}.${name}`, "Enter a value from 0 to 100."];
  }
  if (Number(values.warning) >= Number(values.critical)) return [`${key}.warning`, "Warning must be below critical."];
  return null;
}

function same(a, b) {
  return a.warning === b.warning && a.critical === b.critical;
}

// `onChange(answer)` is told the API's answer after every save or reset
export async function thresholdsPanel(host, onChange) {
  const path = `/api/v1/hosts/${encodeURIComponent(host)}/thresholds`;
  let current = await get(path);
  const inputs = new Map();
  const errors = new Map();
  const marker = h("span", { class: "custom", hidden: true }, "customised");
  const status = h("span", { class: "muted", role: "status" });
  const rows = KEYS.map(([key, title]) => h("fieldset", { class: "levels", "data-key": key },
    h("legend", {}, title, h("span", { class: "custom", "data-overridden": key, hidden: true }, "overridden")),
    LEVELS.map((name) => {
      const field = `${key}.${name}`;
      const error = h("span", { class: "field-error", id: `error-${key}-${name}`, role: "alert", "data-field": field });
      const input = h("input", {
        type: "text", inputmode: "decimal", name: field, size: 5, "aria-describedby": error.id,
        "aria-label": `${title} ${name} (%)`, oninput: () => clear(field),
      });
      inputs.set(field, input);
      errors.set(field, error);
      return h("label", {}, `${name} `, input, " % ", error);
    })));
  const form = h("form", { class: "thresholds", "aria-label": "Thresholds", onsubmit: (event) => { event.preventDefault(); save(); } },
    h("h2", {}, "Thresholds ", marker),
    h("p", { class: "muted" }, "Levels in percent; a save or reset is used everywhere from the next cycle on."),
    rows,
    h("p", {}, h("button", { type: "submit" }, "Save"), " ",
      h("button", { type: "button", onclick: reset }, "Reset to defaults"), " ", status));

  function fill(answer) {
    current = answer;
    for (const [key] of KEYS) {
      for (const name of LEVELS) inputs.get(`${key}.${name}`).value = String(answer.thresholds[key]?.[name] ?? "");
      form.querySelector(`[data-overridden="${key}"]`).hidden = !answer.overridden.includes(key);
    }
    marker.hidden = !answer.customized;
    form.dataset.customized = String(answer.customized);
  }

  function clear(field) {
    errors.get(field).textContent = "";
    inputs.get(field).removeAttribute("aria-invalid");
  }

  function refuse(field, message) {
    const error = errors.get(field);
    if (error === undefined) {
      status.textContent = message;
      return;
    }
    error.textContent = message;
    inputs.get(field).setAttribute("aria-invalid", "true");
    inputs.get(field).focus();
  }

  async function done(request, what) {
    try {
      const answer = await request;
      fill(answer);
      status.textContent = what;
      onChange(answer);
    } catch (error) {
      if (error.field) refuse(error.field, error.message);
      else status.textContent = `Not saved: ${error.message}`;
    }
  }

  async function save() {
    for (const field of inputs.keys()) clear(field);
    status.textContent = "";
    const body = {};
    for (const [key] of KEYS) {
      const values = Object.fromEntries(LEVELS.map((name) => [name, inputs.get(`${key}.${name}`).value]));
      const wrong = problem(key, values);
      if (wrong !== null) {
        refuse(...wrong);
        return;
      }
      const level = { warning: Number(values.warning), critical: Number(values.critical) };
      // a key left at the file's levels stays unset, so it follows thresholds.yaml
      if (!current.defaults[key] || !same(level, current.defaults[key])) body[key] = level;
    }
    await done(send("PUT", path, body), "Saved.");
  }

  async function reset() {
    for (const field of inputs.keys()) clear(field);
    await done(send("DELETE", path), "Reset to the defaults.");
  }

  fill(current);
  return form;
}
