// Time charts on uPlot: the API's series aligned on one time axis, warning and critical lines,
// a tooltip with the exact value and time, drag-select to zoom and double-click to reset (the
// owner refetches: zooming asks the API for a finer step), and PNG export of what is drawn.

import { h } from "./dom.js";
import { levelColor } from "./levels.js";

let library = null;

// uPlot, loaded once; null when the page says the library is missing.
export async function loadUplot() {
  if (document.querySelector(".missing")) return null;
  if (library === null) {
    document.head.append(h("link", { rel: "stylesheet", href: "/static/vendor/uPlot.min.css" }));
    library = import("/static/vendor/uPlot.esm.js").then((module) => module.default);
  }
  return library;
}

const PALETTE = ["--series-1", "--series-2", "--series-3", "--series-4"];

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// [[ts_ms, value], …] per series -> uPlot's columns: seconds, then one column per series.
export function align(seriesList) {
  const times = [...new Set(seriesList.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const index = new Map(times.map((ts, i) => [ts, i]));
  const columns = seriesList.map((s) => {
    const column = new Array(times.length).fill(null);
    for (const [ts, value] of s.points) column[index.get(ts)] = value;
    return column;
  });
  return [times.map((ts) => ts / 1000), ...columns];
}

export function formatValue(value, unit) {
  if (value === null || value === undefined) return "–";
  if (unit === "%") return `${value.toFixed(1)}%`;
  if (unit === "B/s") {
    const units = ["B/s", "KB/s", "MB/s", "GB/s"];
    let i = 0;
    while (Math.abs(value) >= 1000 && i < units.length - 1) { value /= 1000; i += 1; }
    return `${value.toFixed(1)} ${units[i]}`;
  }
  if (unit === "B") {
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (Math.abs(value) >= 1000 && i < units.length - 1) { value /= 1000; i += 1; }
    return `${value.toFixed(1)} ${units[i]}`;
  }
  return `${+value.toFixed(2)}${unit ? ` ${unit}` : ""}`;
}

export function formatTime(seconds) {
  return new Date(seconds * 1000).toISOString().replace(".000Z", "Z");
}

// Draw the levels as dashed lines, each labelled in words so colour is not the only signal.
function thresholdPlugin(levels) {
  return {
    hooks: {
      draw: [(u) => {
        if (!levels) return;
        const { ctx } = u;
        const ratio = window.devicePixelRatio || 1;
        for (const name of ["warning", "critical"]) {
          const y = Math.round(u.valToPos(levels[name], "y", true));
          if (y < u.bbox.top || y > u.bbox.top + u.bbox.height) continue;
          ctx.save();
          ctx.strokeStyle = levelColor(name);
          ctx.fillStyle = levelColor(name);
          ctx.setLineDash([6 * ratio, 4 * ratio]);
          ctx.lineWidth = ratio;
          ctx.beginPath();
          ctx.moveTo(u.bbox.left, y);
          ctx.lineTo(u.bbox.left + u.bbox.width, y);
          ctx.stroke();
          ctx.font = `${11 * ratio}px system-ui, sans-serif`;
          ctx.textAlign = "left"; // uPlot leaves its axes' alignment behind
          ctx.textBaseline = "bottom";
          ctx.fillText(`${name} ${levels[name]}`, u.bbox.left + 4 * ratio, y - 3 * ratio);
          ctx.restore();
        }
      }],
    },
  };
}

// A chart in `box` (its .plot and .tip children). `onZoom(startMs, endMs)` and `onReset()`
// come from the owner, which refetches at the new range.
// `range` ([start, end] in ms) is the x axis: the range asked for, not only where data is.
export function timeChart(uPlot, box, { series, unit, levels, width, height, range, onZoom, onReset }) {
  const plot = box.querySelector(".plot");
  const tip = box.querySelector(".tip");
  const data = align(series);
  const names = series.map((s) => s.name);
  const options = {
    width,
    height,
    legend: { show: false },
    cursor: { drag: { x: true, y: false, setScale: false } },
    scales: {
      x: range ? { time: true, range: () => [range[0] / 1000, range[1] / 1000] } : { time: true },
      y: unit === "%" ? { range: [0, 100] } : { range: (u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] },
    },
    axes: [
      { stroke: cssVar("--muted"), grid: { stroke: cssVar("--line") } },
      { stroke: cssVar("--muted"), grid: { stroke: cssVar("--line") }, size: 70, values: (u, ticks) => ticks.map((t) => formatValue(t, unit)) },
    ],
    series: [{}, ...names.map((name, i) => ({ label: name, stroke: cssVar(PALETTE[i % PALETTE.length]), width: 1.5, spanGaps: false }))],
    plugins: [thresholdPlugin(levels)],
    hooks: {
      setCursor: [(u) => {
        const i = u.cursor.idx;
        if (i === null || i === undefined) return;
        const parts = names.map((name, j) => `${name} ${formatValue(u.data[j + 1][i], unit)}`);
        tip.textContent = `${formatTime(u.data[0][i])} · ${parts.join(" · ")}`;
        tip.dataset.ts = String(Math.round(u.data[0][i] * 1000));
        tip.dataset.values = JSON.stringify(names.map((_, j) => u.data[j + 1][i]));
      }],
      setSelect: [(u) => {
        if (u.select.width < 2) return;
        const start = u.posToVal(u.select.left, "x") * 1000;
        const end = u.posToVal(u.select.left + u.select.width, "x") * 1000;
        u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
        onZoom?.(Math.round(start), Math.round(end));
      }],
    },
  };
  const chart = new uPlot(options, data, plot);
  chart.over.addEventListener("dblclick", () => onReset?.());
  return chart;
}

// The chart as drawn, on the page's background, as a PNG of the chart's size.
export function chartPng(chart) {
  const source = chart.ctx.canvas;
  const canvas = document.createElement("canvas");
  canvas.width = source.width;
  canvas.height = source.height;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = cssVar("--bg");
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(source, 0, 0);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

export function download(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
