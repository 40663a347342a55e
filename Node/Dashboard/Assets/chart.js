// Line charts drawn as SVG by hand: four small charts need no library, and this keeps the page free of anything
// fetched or built. Series share one y scale from 0 to their largest value; x is time over the history window.

import { el, rate } from './format.js';

const NS = 'http://www.w3.org/2000/svg';
const WIDTH = 600;
const HEIGHT = 160;
const PAD = { left: 44, right: 8, top: 8, bottom: 18 };

function svg(tag, attributes = {}) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attributes)) {
    node.setAttribute(name, value);
  }
  return node;
}

/**
 * A chart panel: title, legend and SVG. series: [{ label, values: number[] }], times: Date milliseconds per point,
 * windowMs: the span the x axis covers (ending now).
 */
export function lineChart(id, title, series, times, windowMs) {
  const box = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': title, preserveAspectRatio: 'none' });
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const max = Math.max(1e-9, ...series.flatMap((s) => s.values.filter((v) => Number.isFinite(v))));
  // Headroom above the largest value, so a line at its limit is not drawn on the frame.
  const top = niceCeiling(max * 1.1);
  const end = Date.now();
  // A short history (a node just started, a group just busy) spans the chart from its first point, at least a minute.
  const spanMs = Math.min(windowMs, Math.max(60000, times.length ? end - times[0] : windowMs));
  const start = end - spanMs;
  const x = (t) => PAD.left + (Math.max(0, t - start) / spanMs) * plotW;
  const y = (v) => PAD.top + plotH - (v / top) * plotH;

  box.append(
    svg('line', { class: 'axis', x1: PAD.left, y1: PAD.top + plotH, x2: WIDTH - PAD.right, y2: PAD.top + plotH }),
    svg('line', { class: 'axis', x1: PAD.left, y1: PAD.top, x2: WIDTH - PAD.right, y2: PAD.top }),
  );
  const label = (text, attributes) => {
    const node = svg('text', attributes);
    node.textContent = text;
    return node;
  };
  box.append(
    label(rate(top), { x: PAD.left - 4, y: PAD.top + 8, 'text-anchor': 'end' }),
    label('0', { x: PAD.left - 4, y: PAD.top + plotH, 'text-anchor': 'end' }),
    label(spanMs >= 120000 ? `-${Math.round(spanMs / 60000)} min` : `-${Math.round(spanMs / 1000)} s`, { x: PAD.left, y: HEIGHT - 4 }),
    label('now', { x: WIDTH - PAD.right, y: HEIGHT - 4, 'text-anchor': 'end' }),
  );
  series.forEach((s, index) => {
    if (times.length === 0) {
      return;
    }
    const points = s.values.map((v, i) => `${x(times[i]).toFixed(1)},${y(Number.isFinite(v) ? v : 0).toFixed(1)}`).join(' ');
    box.append(svg('polyline', { class: `s${index}`, points, 'data-series': s.label }));
  });

  const legend = el('div', { class: 'legend' }, series.map((s, index) => el('span', { class: `k${index}` }, s.label)));
  const empty = times.length === 0 ? el('p', { class: 'muted' }, 'No history yet: the group has been idle, or the node started recently.') : null;
  return el('div', { class: 'chart', id }, el('h3', {}, title), legend, box, empty);
}

function niceCeiling(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value) {
      return step * power;
    }
  }
  return 10 * power;
}
