/**
 * The load tool:
 *
 *   npm run load -- <scenario> [--duration 10] [--connections 32] [--shops 1000] [--rate N]
 *                  [--hot 4] [--orders 2] [--customers 1000] [--warmup 3] [--target converge|crud|emmett] [--spawn]
 *                  [--command-url URL] [--query-url URL] [--workers n (default: as npm start)] [--pg-sync off|on] [--out load-results]
 *
 * Scenarios: commands, reads, mixed, contention, read-your-writes, and bare (a bare route, the ceiling). Converge is loaded where
 * `npm start` serves it (127.0.0.1:8080 and :8081) unless `--spawn` starts a private cluster
 * with its own nats-server; the baselines are always started for the run, with PostgreSQL's
 * `synchronous_commit` off unless `--pg-sync on` (the durability converge's nats-server
 * gives when it acknowledges). Loopback only; the run is bounded and stops by itself.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runChart } from './chart.js';
import { assertLoopback } from './client.js';
import { describe, runLoad, type LoadOptions } from './run.js';
import { scenarios, type Target } from './scenarios.js';
import { startTarget, targetNames, type Started, type TargetName } from './targets.js';
import { defaultWorkers } from '../src/host/config.js';

const usage = `usage: npm run load -- <${Object.keys(scenarios).join('|')}> [--duration s] [--connections n] [--shops n] [--rate steps/s]
       [--hot n] [--orders n] [--customers n] [--warmup s] [--target ${targetNames.join('|')}] [--spawn] [--command-url URL] [--query-url URL] [--workers n] [--pg-sync off|on] [--out dir]`;

function fail(message: string): never {
  process.stderr.write(`${message}\n${usage}\n`);
  process.exit(2);
}

function positive(name: string, raw: string | undefined, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) fail(`--${name} must be a whole number from 1 to ${max}, not ${raw}`);
  return n;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      duration: { type: 'string' },
      connections: { type: 'string' },
      shops: { type: 'string' },
      rate: { type: 'string' },
      hot: { type: 'string' },
      customers: { type: 'string' },
      warmup: { type: 'string' },
      orders: { type: 'string' },
      target: { type: 'string', default: 'converge' },
      spawn: { type: 'boolean', default: false },
      'command-url': { type: 'string', default: 'http://127.0.0.1:8080' },
      'query-url': { type: 'string', default: 'http://127.0.0.1:8081' },
      workers: { type: 'string' },
      'pg-sync': { type: 'string', default: 'off' },
      out: { type: 'string', default: 'load-results' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return void process.stdout.write(usage + '\n');
  const scenario = positionals[0];
  if (!scenario || !(scenario in scenarios)) fail(scenario ? `unknown scenario ${scenario}` : 'which scenario?');
  if (!(targetNames as readonly string[]).includes(values.target)) fail(`unknown target ${values.target}`);
  const targetName = values.target as TargetName;
  const options: LoadOptions = {
    scenario,
    durationS: positive('duration', values.duration, 10, 3600),
    connections: positive('connections', values.connections, 32, 1024),
    shops: positive('shops', values.shops, 1000, 1_000_000),
    orders: values.orders === '0' ? 0 : positive('orders', values.orders, 2, 100),
    ...(values.rate === undefined ? {} : { rate: positive('rate', values.rate, 0, 1_000_000) }),
    hot: positive('hot', values.hot, 4, 1000),
    customers: positive('customers', values.customers, 1000, 1_000_000_000),
    warmupS: values.warmup === '0' ? 0 : positive('warmup', values.warmup, 3, 600),
    progress: true,
  };
  const workers = positive('workers', values.workers, defaultWorkers(), 64);
  const pgSync = values['pg-sync'];
  if (pgSync !== 'on' && pgSync !== 'off') fail(`--pg-sync must be on or off, not ${pgSync}`);

  // Installed before anything starts, so a signal during start-up still stops what was started.
  let started: Started | undefined;
  let starting = false;
  let stopping = false;
  const onSignal = () => {
    if (stopping) process.exit(130);
    stopping = true;
    // While a target starts, it is stopped as soon as its start resolves (below).
    if (starting) return;
    void (started ? started.stop() : Promise.resolve()).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let target: Target;
  if (targetName === 'converge' && !values.spawn) {
    for (const url of [values['command-url'], values['query-url']]) {
      assertLoopback(url);
      const up = await fetch(`${url}/ready`).then((r) => r.ok, () => false);
      if (!up) fail(`nothing ready at ${url}: start converge with \`npm start\`, or pass --spawn to start a private cluster for the run`);
    }
    target = { name: 'converge', command: values['command-url'], query: values['query-url'] };
  } else {
    process.stderr.write(`starting ${targetName} with ${workers} workers…\n`);
    starting = true;
    started = await startTarget(targetName, workers, pgSync);
    starting = false;
    target = started;
    // A signal that came while it started found nothing to stop yet.
    if (stopping) {
      await started.stop();
      process.exit(130);
    }
  }

  try {
    const result = await runLoad(target, options);
    console.log('\n' + describe(result));
    const dir = resolve(values.out);
    mkdirSync(dir, { recursive: true });
    const name = `${result.at.replace(/[:.]/g, '-')}-${target.name}-${scenario}`;
    writeFileSync(join(dir, `${name}.json`), JSON.stringify(result, null, 2));
    writeFileSync(join(dir, `${name}.svg`), runChart(`${scenario} on ${target.name}`, result.summary.seconds));
    console.log(`\nwrote ${join(values.out, name)}.json and .svg`);
  } finally {
    await started?.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`load: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
