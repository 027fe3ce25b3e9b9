// A sparkline on a plain canvas: a fleet of 200 hosts draws 600 of them, which is cheaper as a
// polyline than as 600 chart instances. Values are percent (0–100).

import { h } from "./dom.js";

export const SPARK_WIDTH = 100;
const SPARK_HEIGHT = 24;

// `points` over the last `spanMs` up to now, so a host seen for a minute draws at the right end.
export function sparkline(points, color, label, spanMs = 3_600_000) {
  const ratio = window.devicePixelRatio || 1;
  const canvas = h("canvas", {
    class: "spark",
    width: SPARK_WIDTH * ratio,
    height: SPARK_HEIGHT * ratio,
    role: "img",
    "aria-label": label,
  });
  if (!points.length) return canvas;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  const first = Date.now() - spanMs;
  const x = (ts) => Math.max(0, (ts - first) / spanMs) * (SPARK_WIDTH - 2) + 1;
  const y = (value) => SPARK_HEIGHT - 1 - (Math.min(100, Math.max(0, value)) / 100) * (SPARK_HEIGHT - 2);
  if (points.length === 1) {
    ctx.beginPath();
    ctx.arc(x(points[0][0]), y(points[0][1]), 2, 0, 2 * Math.PI);
    ctx.fillStyle = color;
    ctx.fill();
    return canvas;
  }
  ctx.beginPath();
  points.forEach(([ts, value], i) => (i ? ctx.lineTo(x(ts), y(value)) : ctx.moveTo(x(ts), y(value))));
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.5;
  ctx.stroke();
  ctx.lineTo(x(points[points.length - 1][0]), SPARK_HEIGHT);
  ctx.lineTo(x(points[0][0]), SPARK_HEIGHT);
  ctx.closePath();
  ctx.globalAlpha = 0.15;
  ctx.fillStyle = color;
  ctx.fill();
  return canvas;
}

// Several series of one host (disk per mountpoint) as one: the fullest at each time.
export function fullest(seriesList) {
  const byTime = new Map();
  for (const series of seriesList) {
    for (const [ts, value] of series.points) {
      byTime.set(ts, Math.max(value, byTime.get(ts) ?? -Infinity));
    }
  }
  return [...byTime.entries()].sort((a, b) => a[0] - b[0]);
}
