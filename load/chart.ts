import type { Second } from './recorder.js';

/** One line of a panel: its label, colour and a y value per x. */
interface Series {
  readonly label: string;
  readonly colour: string;
  readonly points: ReadonlyArray<readonly [number, number]>;
}

const W = 760;
const PANEL_H = 200;
const PAD = { left: 96, right: 16, top: 28, bottom: 28 };

const esc = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A rounded-up axis maximum: 1, 2 or 5 times a power of ten. */
function niceMax(value: number): number {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return ([1, 2, 5, 10].find((m) => m * power >= value) ?? 10) * power;
}

/** One panel: axes, four grid lines with labels, and a polyline per series. */
function panel(title: string, unit: string, series: readonly Series[], xMax: number, top: number): string {
  const yMax = niceMax(Math.max(0, ...series.flatMap((s) => s.points.map(([, y]) => y))));
  const plotW = W - PAD.left - PAD.right;
  const plotH = PANEL_H - PAD.top - PAD.bottom;
  const x = (v: number) => PAD.left + (plotW * v) / Math.max(1, xMax);
  const y = (v: number) => top + PAD.top + plotH - (plotH * v) / yMax;
  const parts = [`<text x="${PAD.left}" y="${top + 18}" font-weight="bold">${esc(title)}</text>`];
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    parts.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    parts.push(`<text x="${PAD.left - 6}" y="${y(v) + 4}" text-anchor="end">${Number(v.toPrecision(3))} ${unit}</text>`);
  }
  for (let s = 0; s <= xMax; s += Math.max(1, Math.ceil(xMax / 10))) {
    parts.push(`<text x="${x(s)}" y="${top + PANEL_H - 8}" text-anchor="middle">${s} s</text>`);
  }
  series.forEach((s, i) => {
    const pts = s.points.map(([px, py]) => `${x(px).toFixed(1)},${y(py).toFixed(1)}`).join(' ');
    parts.push(`<polyline fill="none" stroke="${s.colour}" stroke-width="2" points="${pts}"/>`);
    parts.push(`<text x="${W - PAD.right - 150 * (series.length - i)}" y="${top + 18}" fill="${s.colour}">— ${esc(s.label)}</text>`);
  });
  return parts.join('\n');
}

/**
 * An SVG of a run: throughput per second above, latency p50 and p99 per second below.
 * Hand-written so the chart needs no dependency and opens in any browser.
 */
export function runChart(title: string, seconds: readonly Second[]): string {
  const xMax = Math.max(1, seconds.length);
  const mid = (s: Second): number => s.t + 0.5;
  const body = [
    panel('throughput', 'req/s', [{ label: 'requests/s', colour: '#1f77b4', points: seconds.map((s) => [mid(s), s.requests]) }], xMax, 24),
    panel(
      'latency',
      'ms',
      [
        { label: 'p50', colour: '#2ca02c', points: seconds.map((s) => [mid(s), s.p50]) },
        { label: 'p99', colour: '#d62728', points: seconds.map((s) => [mid(s), s.p99]) },
      ],
      xMax,
      24 + PANEL_H,
    ),
  ];
  return svg(title, 24 + 2 * PANEL_H, body.join('\n'));
}

/** A horizontal bar chart: one group per row label, one bar per target, values labelled. */
export function barChart(title: string, unit: string, rows: ReadonlyArray<{ label: string; values: ReadonlyArray<{ name: string; value: number }> }>): string {
  const colours = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd'];
  const names = [...new Set(rows.flatMap((r) => r.values.map((v) => v.name)))];
  const max = niceMax(Math.max(0, ...rows.flatMap((r) => r.values.map((v) => v.value))));
  const barH = 16;
  const left = 170;
  const plotW = W - left - 90;
  const parts: string[] = [];
  let top = 44;
  names.forEach((n, i) => parts.push(`<text x="${left + 200 * i}" y="36" fill="${colours[i % colours.length]}">■ ${esc(n)}</text>`));
  for (const row of rows) {
    parts.push(`<text x="${left - 8}" y="${top + (barH * names.length) / 2 + 4}" text-anchor="end">${esc(row.label)}</text>`);
    names.forEach((n, i) => {
      const value = row.values.find((v) => v.name === n)?.value ?? 0;
      const w = (plotW * value) / max;
      parts.push(`<rect x="${left}" y="${top}" width="${w.toFixed(1)}" height="${barH - 2}" fill="${colours[i % colours.length]}"/>`);
      parts.push(`<text x="${left + w + 4}" y="${top + barH - 4}">${Math.round(value).toLocaleString('en-US')} ${unit}</text>`);
      top += barH;
    });
    top += 10;
  }
  return svg(title, top + 10, parts.join('\n'));
}

function svg(title: string, height: number, body: string): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${PAD.left}" y="16" font-size="14" font-weight="bold">${esc(title)}</text>`,
    body,
    '</svg>',
    '',
  ].join('\n');
}
