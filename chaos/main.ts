/**
 * The chaos run:
 *
 *   npm run chaos -- [--duration 40] [--seed 1] [--faults worker,projector,primary,nats,nats-pause,freeze,fresh-store,archiver]
 *                    [--clients 8] [--workers 2] [--embedded] [--out load-results/chaos-….json]
 *
 * Starts a private cluster (its own nats-server, temp data, free loopback ports), keeps a
 * steady load of careful clients, a write-to-read probe and one subscribing system on it,
 * injects the seeded schedule of faults one at a time, then checks what converge promises:
 * acknowledged commands in EVENTS (or its archive) exactly once, views equal to a rebuild, an
 * archive that holds what EVENTS lacks once and finishes the rounds a fault broke, the subscriber's
 * copy equal to the views, every order settled or waiting on its accept timer, what
 * processes and reactors send applied once, timers fired once and on time, bounded
 * recovery, answers within the contract, nothing left running. Prints one PASS/FAIL line
 * per invariant and exits 1 if any fails.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { faultNames, drawSchedule, type FaultName } from './schedule.js';
import { runChaos } from './run.js';
import { processesUnder, signal } from '../load/procs.js';

const usage = `usage: npm run chaos -- [--duration s] [--seed n] [--faults ${faultNames.join(',')}] [--clients n] [--workers n] [--embedded] [--out file.json]`;

function fail(message: string): never {
  process.stderr.write(`${message}\n${usage}\n`);
  process.exit(2);
}

function whole(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) fail(`--${name} must be a whole number from ${min} to ${max}, not ${raw}`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string' },
      seed: { type: 'string' },
      faults: { type: 'string' },
      clients: { type: 'string' },
      workers: { type: 'string' },
      out: { type: 'string' },
      embedded: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return void process.stdout.write(usage + '\n');
  const durationS = whole('duration', values.duration, 40, 20, 3600);
  const seed = whole('seed', values.seed, 1, 0, 2 ** 31 - 1);
  const clients = whole('clients', values.clients, 8, 1, 64);
  const workers = whole('workers', values.workers, 2, 1, 8);
  const faults = (values.faults ?? faultNames.join(',')).split(',').filter(Boolean);
  for (const f of faults) if (!(faultNames as readonly string[]).includes(f)) fail(`unknown fault ${f}`);
  if (faults.length === 0) fail('--faults names no fault');
  const out = resolve(values.out ?? join('load-results', `chaos-${new Date().toISOString().replace(/[:.]/g, '-')}-seed${seed}.json`));
  const schedule = drawSchedule(seed, durationS, faults as FaultName[], workers);

  const runDir = mkdtempSync(join(tmpdir(), 'converge-chaos-'));
  // The last resort: whatever way the harness exits, nothing of the run stays behind.
  process.on('exit', () => {
    for (const p of processesUnder(runDir)) (signal(p.pid, 'SIGCONT'), signal(p.pid, 'SIGKILL'));
    rmSync(runDir, { recursive: true, force: true });
  });
  let interrupted = false;
  const abort = new AbortController();
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.exitCode = 130;
    process.stderr.write('\ninterrupted: stopping the run and cleaning up…\n');
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const result = await runChaos({
    durationS,
    seed,
    clients,
    workers,
    faults: faults as FaultName[],
    schedule,
    runDir,
    signal: abort.signal,
    embedded: values.embedded,
  });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(result, null, 2));
  const log = out.replace(/\.json$/, '') + '.cluster.log';
  try {
    copyFileSync(join(runDir, 'cluster.log'), log);
  } catch {
    // no log was written
  }
  console.log(`\nwrote ${out} (cluster log: ${log})`);
  if (interrupted) process.exit(130);
  process.exit(result.invariants.every((i) => i.ok) ? 0 : 1);
}

main().catch((err: unknown) => {
  if (process.exitCode === 130) {
    process.stderr.write('chaos: interrupted; everything it started has been stopped\n');
    process.exit(130);
  }
  process.stderr.write(`chaos: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
