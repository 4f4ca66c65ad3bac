/**
 * What the first read of an aggregate costs nats-server as `EVENTS` grows. Every load of an
 * aggregate or process instance not in memory begins with `lastPosition`'s question, a
 * `STREAM.MSG.GET` by `last_by_subj` (docs/architecture.md, "Event store"). The bench fills
 * a stream of its own nats-server with one-commit aggregates, and at each size asks for
 * aggregates that have no commit (a new order) and for random ones that have one (a cold
 * load), 16 at a time, reporting the wall time and nats-server's CPU per lookup.
 *
 *   node dist/test/bench/lookups.js [--sizes 10000,100000,300000,600000 --lookups 2000]
 *
 * Bounded: it stops its nats-server and removes its files at the end.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import type { Commit } from '../../src/core/eventStore.js';
import { connectNats } from '../../src/nats/connection.js';
import { launchNatsServer } from '../../src/nats/server.js';
import { ensureEventStream } from '../../src/store/eventStream.js';
import { createJetStreamEventStore } from '../../src/store/jetstream.js';
import { printTable, writeResult } from './report.js';

const { values } = parseArgs({ options: { sizes: { type: 'string', default: '10000,100000,300000,600000' }, lookups: { type: 'string', default: '2000' } } });
const sizes = values.sizes.split(',').map(Number);
const lookups = Number(values.lookups);
const log = pino({ level: 'warn' });
const at = new Date().toISOString();

/** An order's first commit, about 300 bytes as stored. */
const commitOf = (i: number): Commit => ({
  commandId: `bench-${i}-${'x'.repeat(24)}`,
  commandType: 'PlaceOrder',
  aggregate: 'order',
  id: `o${i}`,
  version: 1,
  events: [{ type: 'OrderPlaced', data: { shopId: `s${i % 1000}`, customerId: `c${i % 997}`, lines: [{ menuId: 'm1', name: 'Tuna kimbap', price: 4500, quantity: 2 }], total: 9000 }, at }],
});

/** nats-server's CPU so far, in ms, from /proc. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'converge-bench-lookups-'));
  const nats = await launchNatsServer({ port: 0, storeDir: join(dir, 'nats') });
  const link = await connectNats(nats.url, { name: 'bench', timeoutMs: 10_000, log });
  try {
    await ensureEventStream(link, 120_000);
    const store = createJetStreamEventStore(link, { publishTimeoutMs: 10_000 });
    let filled = 0;
    const timed = async (idOf: (i: number) => string) => {
      const cpu = cpuMs(nats.pid);
      const started = performance.now();
      for (let i = 0; i < lookups; i += 16) {
        await Promise.all(Array.from({ length: Math.min(16, lookups - i) }, (_, j) => store.lastPosition('order', idOf(i + j))));
      }
      return { wallUs: ((performance.now() - started) * 1000) / lookups, serverCpuUs: ((cpuMs(nats.pid) - cpu) * 1000) / lookups };
    };
    const rows: Array<{ commits: number; megabytes: number; absent: { wallUs: number; serverCpuUs: number }; present: { wallUs: number; serverCpuUs: number } }> = [];
    for (const size of sizes) {
      while (filled < size) {
        const batch = Array.from({ length: Math.min(256, size - filled) }, (_, k) => filled + k);
        await Promise.all(batch.map((i) => store.append(commitOf(i), 0)));
        filled += batch.length;
      }
      const info = await link.jsm.streams.info('EVENTS');
      // Let the writes settle before timing the reads.
      await new Promise((r) => setTimeout(r, 3000));
      const absent = await timed((i) => `new-${size}-${i}`);
      const present = await timed(() => `o${Math.floor(Math.random() * filled)}`);
      rows.push({ commits: size, megabytes: Math.round(info.state.bytes / 1e6), absent, present });
      console.error(`${size} commits: done`);
    }
    printTable(
      `last_by_subj lookups, ${lookups} at each size, 16 in flight: wall time and nats-server CPU per lookup`,
      rows.flatMap((r) => [
        [`${r.commits.toLocaleString('en-US')} commits (${r.megabytes} MB), no commit yet`, `${r.absent.wallUs.toFixed(0)} µs, nats-server ${r.absent.serverCpuUs.toFixed(0)} µs`],
        [`${r.commits.toLocaleString('en-US')} commits (${r.megabytes} MB), a random one`, `${r.present.wallUs.toFixed(0)} µs, nats-server ${r.present.serverCpuUs.toFixed(0)} µs`],
      ] as const),
    );
    writeResult('lookups', { lookups, rows });
  } finally {
    await link.close();
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
