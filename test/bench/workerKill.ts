/**
 * The worker-kill audit (docs/architecture.md, "Running"): `--commands` commands (each
 * registers a new shop) through the command API, `--connections` at a time on keep-alive
 * connections, against the cluster with `--workers` workers (as many as `npm start` runs by
 * default); once a quarter of them are sent, one worker is killed with SIGKILL. Every answer
 * is counted by status and code, and every request with no answer by its error: a refused
 * or reset connection, or a timeout. Requests are not retried: the count is what a client
 * without retries sees. At the end, every acknowledged command is looked up in `EVENTS`.
 *
 *   npm run build --silent && node dist/test/bench/workerKill.js [--commands 20000 --connections 64 --workers n]
 *
 * Loopback only; bounded by the count (and a 10 s timeout per request); the script stops
 * everything it started.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { connectNats } from '../../src/nats/connection.js';
import { launchNatsServer } from '../../src/nats/server.js';
import { EVENTS } from '../../src/store/eventStream.js';
import { startCluster } from '../../load/cluster.js';
import { clusterChildren } from '../../load/procs.js';
import { defaultWorkers } from '../../src/host/config.js';
import { printTable, writeResult } from './report.js';

const { values } = parseArgs({
  options: {
    commands: { type: 'string', default: '20000' },
    connections: { type: 'string', default: '64' },
    workers: { type: 'string', default: String(defaultWorkers()) },
  },
});
const COMMANDS = Number(values.commands);
const CONNECTIONS = Number(values.connections);
const WORKERS = Number(values.workers);
for (const [name, n] of Object.entries({ commands: COMMANDS, connections: CONNECTIONS, workers: WORKERS })) {
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive whole number`);
}

async function main(): Promise<void> {
  const storeDir = mkdtempSync(join(tmpdir(), 'converge-bench-nats-'));
  const dataDir = mkdtempSync(join(tmpdir(), 'converge-bench-data-'));
  const nats = await launchNatsServer({ port: 0, storeDir });
  const link = await connectNats(nats.url, { name: 'bench-worker-kill', timeoutMs: 5000, log: pino({ level: 'silent' }) });
  const cluster = await startCluster(nats.url, dataDir, WORKERS);
  try {
    const outcomes = new Map<string, number>();
    const count = (what: string) => outcomes.set(what, (outcomes.get(what) ?? 0) + 1);
    const acknowledged: string[] = [];
    let sent = 0;
    let killed: { pid: number; role: string; atCommand: number } | undefined;
    const started = performance.now();
    const loop = async () => {
      while (sent < COMMANDS) {
        const n = sent++;
        if (n === Math.floor(COMMANDS / 4) && !killed) {
          const [role, pid] = [...clusterChildren(cluster.pid)].find(([r]) => r.startsWith('worker'))!;
          killed = { pid, role, atCommand: n };
          process.kill(pid, 'SIGKILL');
          console.error(`killed ${role} (pid ${pid}) at command ${n}`);
        }
        const id = `wk-${n}`;
        try {
          const res = await fetch(`${cluster.command}/shops/${id}/register`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ name: id, category: 'c', ownerId: 'o' }),
            signal: AbortSignal.timeout(10_000),
          });
          const body = (await res.json().catch(() => ({}))) as { error?: string };
          count(res.status === 200 ? '200' : `${res.status} ${body.error ?? ''}`.trim());
          if (res.status === 200) acknowledged.push(id);
        } catch (err) {
          const e = err as Error & { cause?: { code?: string } };
          count(`no answer: ${e.cause?.code ?? e.name}`);
        }
      }
    };
    await Promise.all(Array.from({ length: CONNECTIONS }, loop));
    const seconds = (performance.now() - started) / 1000;

    // Every acknowledged command is a shop with a subject in EVENTS.
    const info = await link.jsm.streams.info(EVENTS, { subjects_filter: 'events.shop.>' });
    const subjects = new Set(Object.keys(info.state.subjects ?? {}));
    const missing = acknowledged.filter((id) => !subjects.has(`events.shop.${id}`));
    const noAnswer = [...outcomes].filter(([k]) => k.startsWith('no answer')).reduce((s, [, n]) => s + n, 0);
    const unavailable = [...outcomes].filter(([k]) => k.startsWith('503')).reduce((s, [, n]) => s + n, 0);
    printTable(`worker kill: ${COMMANDS.toLocaleString('en-US')} commands, ${CONNECTIONS} connections, ${WORKERS} worker(s), ${killed?.role ?? 'nobody'} killed at command ${killed?.atCommand ?? '-'}`, [
      ...[...outcomes].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => [k, n.toLocaleString('en-US')] as const),
      ['no answer at all (dropped, refused, timed out)', noAnswer.toLocaleString('en-US')],
      ['503 (safe to retry)', unavailable.toLocaleString('en-US')],
      ['acknowledged / missing from EVENTS', `${acknowledged.length.toLocaleString('en-US')} / ${missing.length}`],
      ['commands/s over the run', (COMMANDS / seconds).toFixed(0)],
    ]);
    writeResult('workerKill', { commands: COMMANDS, connections: CONNECTIONS, workers: WORKERS, killed, outcomes: Object.fromEntries(outcomes), noAnswer, unavailable, acknowledged: acknowledged.length, missing: missing.length, seconds });
  } finally {
    await cluster.stop().catch(() => undefined);
    await link.close().catch(() => undefined);
    await nats.stop().catch(() => undefined);
    rmSync(storeDir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
