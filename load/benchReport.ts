import { cpus } from 'node:os';
import { barChart } from './chart.js';
import type { LoadResult } from './run.js';

/** The medians over runs of one scenario on one target. */
interface Cell {
  readonly ok: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  readonly lagP50: number;
  readonly lagP90: number;
  readonly lagMax: number;
  readonly stale: number;
  readonly runs: number;
}

const SHORT: Readonly<Record<string, string>> = { crud: 'CRUD', emmett: 'Emmett', 'converge-no-reactions': 'converge without reactions' };
const LABEL: Readonly<Record<string, string>> = {
  converge: 'converge',
  crud: 'CRUD (Fastify + PostgreSQL)',
  emmett: 'Emmett (PostgreSQL)',
  'converge-no-reactions': 'converge without its processes and reactor',
};

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length === 0 ? NaN : sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
const ms = (n: number) => (Number.isFinite(n) ? `${n < 10 ? n.toFixed(1) : Math.round(n)} ms` : '–');
const ratio = (a: number, b: number) => (Number.isFinite(a / b) && b > 0 ? `${(a / b).toFixed(2)}×` : '–');

function cell(results: readonly LoadResult[]): Cell | undefined {
  if (results.length === 0) return undefined;
  const pick = (f: (r: LoadResult) => number) => median(results.map(f));
  return {
    ok: pick((r) => r.summary.okThroughput),
    p50: pick((r) => r.summary.latency.p50),
    p99: pick((r) => r.summary.latency.p99),
    errors: results.reduce((s, r) => s + r.summary.errors, 0),
    lagP50: pick((r) => r.summary.lag.p50),
    lagP90: pick((r) => r.summary.lag.p90),
    lagMax: pick((r) => r.summary.lag.max),
    stale: results.reduce((s, r) => s + r.summary.lag.stale, 0),
    runs: results.length,
  };
}

/**
 * The comparison as Markdown (tables of medians and ratios, linked charts) and the SVG
 * bar charts it links, from every run of every target and scenario.
 */
export function benchSection(input: {
  results: readonly LoadResult[];
  raw: readonly number[];
  targets: readonly string[];
  scenarios: readonly string[];
  settings: Readonly<Record<string, string | boolean>>;
}) {
  const { results, raw, targets, scenarios, settings } = input;
  const cells = new Map<string, Cell | undefined>();
  for (const t of targets) for (const s of scenarios) cells.set(`${t}/${s}`, cell(results.filter((r) => r.target === t && r.options.scenario === s)));
  const at = (t: string, s: string) => cells.get(`${t}/${s}`);
  const others = targets.filter((t) => t !== 'converge');

  const lines: string[] = [];
  lines.push(`## Converge beside a CRUD baseline and Emmett (\`npm run bench:compare\`, ${new Date().toISOString().slice(0, 10)})`, '');
  lines.push(
    `Each target runs with ${settings.workers} worker${Number(settings.workers) === 1 ? '' : 's'} on this machine (${cpus().length} cores, Node ${process.versions.node}), ` +
      `loaded by \`npm run load\`'s client in the bench process over ${settings.connections} keep-alive connections. ` +
      `Every scenario runs on a freshly started target: ${settings.shops} shops seeded with ${settings.orders} delivered and reviewed orders each, ` +
      `${settings.warmup} s of warm-up, then ${settings.duration} s measured (requests sent in that window). ` +
      `Figures are medians of ${settings.runs} runs, run in turn (every scenario on converge, then on each baseline, then again); ` +
      `a ratio divides two such medians. Throughput counts 2xx answers only; the lag probe's own requests are left out. ` +
      `Durability is matched: converge's nats-server acknowledges a publish once the commit is written, before its periodic ` +
      `fsync, so the baselines run with PostgreSQL's \`synchronous_commit = off\` (\`npm run load -- … --pg-sync on\` gives PostgreSQL's default).`,
    '',
  );
  const columns = [...targets.map((t) => LABEL[t] ?? t), ...others.map((o) => `converge ÷ ${SHORT[o] ?? o}`)];
  lines.push('### Throughput (2xx/s) and latency p50 / p99', '', `| scenario | ${columns.join(' | ')} |`, `|---|${columns.map(() => '---|').join('')}`);
  for (const s of scenarios) {
    const row = targets.map((t) => {
      const c = at(t, s);
      return c ? `**${int(c.ok)}**/s, ${ms(c.p50)} / ${ms(c.p99)}${c.errors ? `, ${c.errors} errors` : ''}` : '–';
    });
    const ratios = others.map((o) => ratio(at('converge', s)?.ok ?? NaN, at(o, s)?.ok ?? NaN));
    lines.push(`| ${s} | ${[...row, ...ratios].join(' | ')} |`);
  }
  // The read mix split by route: a CRUD display and a CRUD list page cost very differently.
  const kinds = [...new Set(results.filter((r) => r.options.scenario === 'reads').flatMap((r) => Object.keys(r.summary.byKind)))].filter((k) => k.startsWith('GET'));
  if (kinds.length) {
    lines.push('', '`reads` by route (per-second rate and p99 within the 70/30 mix):', '', `| route | ${targets.map((t) => LABEL[t] ?? t).join(' | ')} |`, `|---|${targets.map(() => '---|').join('')}`);
    for (const kind of kinds.sort()) {
      const row = targets.map((t) => {
        const runs = results.filter((r) => r.target === t && r.options.scenario === 'reads').map((r) => r.summary.byKind[kind]).filter((k) => k !== undefined);
        return runs.length ? `${int(median(runs.map((k) => k.perSec)))}/s, p99 ${ms(median(runs.map((k) => k.p99)))}` : '–';
      });
      lines.push(`| \`${kind}\` | ${row.join(' | ')} |`);
    }
  }
  lines.push('', '### A write, then a read that shows it', '');
  lines.push(
    'Every scenario runs a probe beside the load: 10 times a second it renames a shop, then reads it with ' +
      '`X-Min-Position` (converge waits for its view; the baselines read what the write just changed). The figure is the ' +
      "read's time, from the write's reply until the answer showing the write; a failed read counts as stale. With about 80 probes " +
      'a run, the tail is shown as the maximum. In `read-your-writes` every step is such a pair (thousands a run).',
    '',
    `| scenario | ${targets.map((t) => `${LABEL[t] ?? t} p50 / p90 / max`).join(' | ')} |`,
    `|---|${targets.map(() => '---|').join('')}`,
  );
  for (const s of scenarios.filter((x) => x !== 'bare')) {
    lines.push(`| ${s} | ${targets.map((t) => { const c = at(t, s); return c ? `${ms(c.lagP50)} / ${ms(c.lagP90)} / ${ms(c.lagMax)}${c.stale ? ` (${c.stale} stale)` : ''}` : '–'; }).join(' | ')} |`);
  }
  const reads = at('converge', 'reads');
  const bare = at('converge', 'bare');
  const crudReads = at('crud', 'reads');
  const commands = at('converge', 'commands');
  lines.push('', '### Limits measured in the same runs', '');
  lines.push(`- Raw JetStream publish, one client, 256 in flight: **${int(median(raw))} msg/s** (median of ${raw.length}); converge's mixed commands reach ${ratio(commands?.ok ?? NaN, median(raw))} of it.`);
  if (bare) lines.push(`- A bare Fastify route (\`GET /health\`) on converge's query port, same client: **${int(bare.ok)}/s**; converge's reads reach ${ratio(reads?.ok ?? NaN, bare.ok)} of it.`);
  if (crudReads) lines.push(`- The target is reads ≥ 5× the CRUD baseline: **${ratio(reads?.ok ?? NaN, crudReads.ok)}** (${int(reads?.ok ?? NaN)} vs ${int(crudReads.ok)} reads/s).`);
  lines.push('', '![throughput by scenario](docs/bench/throughput.svg)', '', '![p99 latency by scenario](docs/bench/p99.svg)', '');
  lines.push(`Converge over time in the last run: ${scenarios.map((s) => `[${s}](docs/bench/converge-${s}.svg)`).join(', ')}.`);

  const rows = (f: (c: Cell) => number) =>
    scenarios.map((s) => ({ label: s, values: targets.map((t) => ({ name: LABEL[t] ?? t, value: at(t, s) ? f(at(t, s)!) : 0 })) }));
  const charts = {
    'throughput.svg': barChart('throughput (2xx/s), median of runs', '/s', rows((c) => c.ok)),
    'p99.svg': barChart('latency p99 (ms), median of runs', 'ms', rows((c) => c.p99)),
  };
  return { markdown: lines.join('\n'), charts };
}
