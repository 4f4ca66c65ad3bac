// Line charts as inline SVG, drawn from the samples the page keeps (no library).

const W = 400;
const H = 120;
const PAD = { left: 36, right: 6, top: 8, bottom: 16 };
const COLOURS = ['#2c5fb8', '#237a35', '#b3261e', '#8a4fbf', '#c77d12', '#0f7f86'];
const SVG = 'http://www.w3.org/2000/svg';

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * Draws `series` ({ name, points: [{ t, v }] }) into `svg` over the time span `[t0, t1]`,
 * scaled to the largest value, with that value and a legend as labels.
 */
export function lineChart(svg, series, t0, t1) {
  svg.replaceChildren();
  const max = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p.v)));
  const x = (t) => PAD.left + ((t - t0) / Math.max(1, t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
  svg.append(el('line', { x1: PAD.left, y1: y(0), x2: W - PAD.right, y2: y(0), stroke: '#c9ced8' }));
  svg.append(el('text', { x: 2, y: PAD.top + 8 }, formatNumber(max)));
  svg.append(el('text', { x: 2, y: y(0) }, '0'));
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    if (s.points.length > 0) {
      svg.append(el('polyline', { points: s.points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' '), stroke: colour, 'data-series': s.name }));
    }
    svg.append(el('text', { x: PAD.left + 4 + i * 72, y: H - 3, fill: colour }, s.name));
  });
}

function formatNumber(v) {
  return v >= 1000 ? `${(v / 1000).toFixed(1)}k` : String(Math.round(v));
}
