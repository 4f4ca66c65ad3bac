/**
 * Converge beside its limits, a CRUD baseline (Fastify + PostgreSQL) and Emmett (on
 * PostgreSQL), every scenario of the load tool on a freshly started target, `--runs`
 * times each, interleaved so that drift of the machine hits every target alike. The
 * baselines run with `synchronous_commit` off: the durability converge's nats-server
 * gives when it acknowledges a publish. Writes the raw results, the charts in
 * `docs/bench/`, and the section of BENCHMARKS.md between its bench markers.
 *
 *   node dist/load/bench.js [--runs 3 --duration 8 --warmup 2 --connections 32 --shops 1000]
 *                           [--targets converge,crud,emmett] [--scenarios commands,reads,…]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { connectNats } from '../src/nats/connection.js';
import { benchSection } from './benchReport.js';
import { runChart } from './chart.js';
import { rawPublish } from './limits.js';
import { runLoad, type LoadResult } from './run.js';
import { scenarios } from './scenarios.js';
import { startTarget, targetNames, type TargetName } from './targets.js';
import { defaultWorkers } from '../src/host/config.js';


const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    duration: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '32' },
    shops: { type: 'string', default: '1000' },
    orders: { type: 'string', default: '2' },
    workers: { type: 'string', default: String(defaultWorkers()) },
    targets: { type: 'string', default: 'converge,crud,emmett' },
    scenarios: { type: 'string', default: 'commands,reads,mixed,contention,read-your-writes,bare' },
    'report-only': { type: 'boolean', default: false },
  },
});
const root = join(import.meta.dirname, '../..');
const targets = values.targets.split(',') as TargetName[];
const names = values.scenarios.split(',');
for (const t of targets) if (!(targetNames as readonly string[]).includes(t)) throw new Error(`unknown target ${t}`);
for (const s of names) if (!(s in scenarios)) throw new Error(`unknown scenario ${s}`);

/** Runs every target through every scenario, `--runs` times, and saves what it measured. */
async function measure(): Promise<{ results: LoadResult[]; raw: number[] }> {
  const results: LoadResult[] = [];
  const raw: number[] = [];
  const runs = Number(values.runs);
  for (let run = 1; run <= runs; run++) {
    for (const name of targets) {
      process.stderr.write(`\nrun ${run}/${runs}: ${name}\n`);
      // A fresh target for every scenario: no scenario runs on what an earlier one left behind.
      for (const scenario of names) {
        const target = await startTarget(name, Number(values.workers), 'off');
        try {
          if (target.natsUrl && scenario === names[0]) {
            const link = await connectNats(target.natsUrl, { name: 'bench', timeoutMs: 5000, log: pino({ level: 'silent' }) });
            try {
              raw.push(await rawPublish(link, 5, 256));
              process.stderr.write(`  raw JetStream publish: ${raw[raw.length - 1]!.toFixed(0)} msg/s\n`);
            } finally {
              await link.close();
            }
          }
          const result = await runLoad(target, {
            scenario,
            durationS: Number(values.duration),
            warmupS: Number(values.warmup),
            connections: Number(values.connections),
            shops: Number(values.shops),
            orders: Number(values.orders),
            hot: 4,
            progress: false,
          });
          const s = result.summary;
          process.stderr.write(`  ${scenario.padEnd(17)} ${s.okThroughput.toFixed(0).padStart(6)} ok/s  p99 ${s.latency.p99} ms  errors ${s.errors}  lag p50 ${s.lag.p50} ms\n`);
          results.push(result);
        } finally {
          await target.stop();
        }
      }
    }
  }
  mkdirSync(join(root, 'load-results'), { recursive: true });
  writeFileSync(saved, JSON.stringify({ at: new Date().toISOString(), values, raw, results }, null, 2));
  return { results, raw };
}

const saved = join(root, 'load-results/bench.json');

/** The last saved measurement, with the settings it ran with. */
function load(): { results: LoadResult[]; raw: number[]; settings: typeof values } {
  const file = JSON.parse(readFileSync(saved, 'utf8')) as { results: LoadResult[]; raw: number[]; values: typeof values };
  return { results: file.results, raw: file.raw, settings: file.values };
}

/** With `--report-only`, the last saved measurement is reported again (after a change to the report). */
async function main(): Promise<void> {
  const { results, raw, settings } = values['report-only'] ? load() : { ...(await measure()), settings: values };
  const section = benchSection({ results, raw, targets, scenarios: names, settings });
  const docs = join(root, 'docs/bench');
  mkdirSync(docs, { recursive: true });
  for (const [file, svg] of Object.entries(section.charts)) writeFileSync(join(docs, file), svg);
  // The last run of converge per scenario, over time.
  for (const scenario of names) {
    const last = results.filter((r) => r.target === 'converge' && r.options.scenario === scenario).pop();
    if (last) writeFileSync(join(docs, `converge-${scenario}.svg`), runChart(`${scenario} on converge (last run)`, last.summary.seconds.slice(0, Math.floor(last.summary.durationS))));
  }
  const file = join(root, 'BENCHMARKS.md');
  const text = readFileSync(file, 'utf8');
  const begin = '<!-- bench:compare:begin -->';
  const end = '<!-- bench:compare:end -->';
  const block = `${begin}\n${section.markdown}\n${end}`;
  const next = text.includes(begin) ? text.slice(0, text.indexOf(begin)) + block + text.slice(text.indexOf(end) + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, next);
  console.log(section.markdown);
}

await main();
