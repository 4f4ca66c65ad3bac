/**
 * Actor benchmarks: cold start of a shop with 10,000 events with and without a
 * snapshot, and RSS with 100,000 resident aggregates: right after their commands, with
 * their actors running, then once the actors beyond `actors.maxAwake` rest
 * (`actors.restMs`), then after passivating them.
 *
 *   node --expose-gc dist/test/bench/actors.js [--events 10000 --shops 3 --actors 100000 --rest-ms 1000 --max-awake 10000]
 *
 * Uses its own nats-server and temp LMDB; stops them when done.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import type { ReadState } from '../../src/write/execute.js';
import { createActorHost, type ActorHost } from '../../src/write/host.js';
import { loadConfig } from '../../src/host/config.js';
import { createJetStreamEventStore } from '../../src/store/jetstream.js';
import { ensureEventStream, eventSubject } from '../../src/store/eventStream.js';
import { shopHistoryCommit } from './history.js';
import { connectNats, type NatsLink } from '../../src/nats/connection.js';
import { launchNatsServer } from '../../src/nats/server.js';
import { openSnapshotStore, type SnapshotStore } from '../../src/write/snapshots.js';
import { median, printTable, writeResult } from './report.js';
import { shopPlatform } from '../../app.js';

const { aggregates } = shopPlatform;

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '10000' },
    shops: { type: 'string', default: '3' },
    actors: { type: 'string', default: '100000' },
    'rest-ms': { type: 'string', default: '1000' },
    'max-awake': { type: 'string', default: '10000' },
  },
});
const eventCount = Number(values.events);
const at = new Date().toISOString();
const log = pino({ level: 'silent' });

/** Writes a shop's history straight to the stream, pipelined: registration, one menu item, then price changes. */
async function seedHistory(link: NatsLink, id: string): Promise<void> {
  const commit = (version: number) => shopHistoryCommit(id, version, at);
  for (let v = 1; v <= eventCount; v += 500) {
    const batch = [];
    for (let k = v; k < Math.min(v + 500, eventCount + 1); k++) batch.push(link.js.publish(eventSubject('shop', id), JSON.stringify(commit(k))));
    await Promise.all(batch);
  }
}

function makeHost(link: NatsLink, snapshots: SnapshotStore, streamId: string, overrides: Record<string, string> = {}): ActorHost {
  const config = loadConfig({ env: { CONVERGE_ACTORS_SNAPSHOT_EVERY: '100', ...overrides } });
  const store = createJetStreamEventStore(link, config.eventStore);
  return createActorHost({ aggregates, store, snapshots, streamId, duplicateWindowMs: config.eventStore.duplicateWindowMs, settings: config.actors, log });
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

async function coldStart(link: NatsLink, streamId: string, dir: string) {
  const snapshots = openSnapshotStore(join(dir, 'cold'), () => undefined);
  const host = makeHost(link, snapshots, streamId);
  const without: number[] = [];
  const withSnapshot: number[] = [];
  for (let s = 0; s < Number(values.shops); s++) {
    const id = `cold-${s}`;
    await seedHistory(link, id);
    without.push(await timed(() => host.readState('shop', id)));
    host.passivateIdle(Date.now() + 3_600_000);
    while (snapshots.get('shop', id)?.memory.version !== eventCount) await new Promise((r) => setTimeout(r, 10));
    withSnapshot.push(await timed(() => host.readState('shop', id)));
    const { version } = await host.readState('shop', id);
    if (version !== eventCount) throw new Error(`rehydrated to version ${version}, expected ${eventCount}`);
  }
  await host.drain(1000);
  await snapshots.close();
  return { without, withSnapshot };
}

/** Shops read no other aggregate; a command that tried would be a bug in this benchmark. */
const readState: ReadState = (ref) => Promise.reject(new Error(`unexpected read of ${ref.aggregate} ${ref.id}`));

/** The resident set split into anonymous memory (the heaps) and mapped files (LMDB, the binary), from /proc. */
function rssParts(): { rssAnon: number; rssFile: number } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rssAnon: kb('RssAnon'), rssFile: kb('RssFile') };
}

async function residentActors(link: NatsLink, streamId: string, dir: string) {
  const snapshots = openSnapshotStore(join(dir, 'resident'), () => undefined);
  const restMs = Number(values['rest-ms']);
  const maxAwake = Number(values['max-awake']);
  const host = makeHost(link, snapshots, streamId, { CONVERGE_ACTORS_IDLE_MS: '3600000', CONVERGE_ACTORS_REST_MS: String(restMs), CONVERGE_ACTORS_MAX_AWAKE: String(maxAwake) });
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const baseline = process.memoryUsage().rss;
  const total = Number(values.actors);
  let n = 0;
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 256 }, async () => {
      for (let i = n++; i < total; i = n++) {
        const id = `r-${i}`;
        const base = { aggregate: 'shop', id, at };
        await host.execute({ ...base, commandId: `${id}-1`, type: 'RegisterShop', data: { name: id, category: 'korean', ownerId: 'o' } }, readState);
        await host.execute({ ...base, commandId: `${id}-2`, type: 'AddMenuItem', data: { menuId: 'm1', name: 'Kimbap', price: 4000 } }, readState);
      }
    }),
  );
  const commandsPerSec = (2 * total) / ((performance.now() - started) / 1000);
  clearInterval(sampler);
  gc?.();
  const filled = { actors: host.size, awake: host.awake, ...process.memoryUsage(), ...rssParts() };
  // The actors beyond maxAwake rest once restMs has passed since their last command; the sweep runs every restMs / 2.
  const deadline = Date.now() + Math.min(2 * restMs + 1000, 10_000);
  while (host.awake > maxAwake && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  gc?.();
  const resident = { actors: host.size, awake: host.awake, ...process.memoryUsage(), ...rssParts() };
  const passivated = host.passivateIdle(Date.now() + 7_200_000);
  await new Promise((r) => setTimeout(r, 500));
  gc?.();
  const after = { actors: host.size, ...process.memoryUsage(), ...rssParts() };
  await host.drain(1000);
  await snapshots.close();
  return { baseline, peakRss, filled, resident, passivated, after, commandsPerSec, restMs, maxAwake };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'converge-bench-actors-'));
  const nats = await launchNatsServer({ port: 0, storeDir: join(dir, 'nats') });
  const link = await connectNats(nats.url, { name: 'bench', timeoutMs: 5000, log });
  try {
    const streamId = await ensureEventStream(link, 120_000);
    const cold = await coldStart(link, streamId, dir);
    const mem = await residentActors(link, streamId, dir);
    const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
    printTable('actors (medians)', [
      [`cold start, ${eventCount} events, no snapshot (target ≤ 100 ms)`, `${median(cold.without).toFixed(1)} ms`],
      [`cold start, ${eventCount} events, snapshot (target ≤ 5 ms)`, `${median(cold.withSnapshot).toFixed(2)} ms`],
      [`RSS with ${mem.filled.actors} resident aggregates, ${mem.filled.awake} actors running`, `${mb(mem.filled.rss)} (heap ${mb(mem.filled.heapUsed)} of ${mb(mem.filled.heapTotal)}, before ${mb(mem.baseline)}, peak while filling ${mb(mem.peakRss)})`],
      [`RSS with ${mem.resident.actors} resident aggregates, ${mem.resident.awake} actors running, after restMs ${mem.restMs} with maxAwake ${mem.maxAwake} (target ≤ 1 GB)`, `${mb(mem.resident.rss)} (heap ${mb(mem.resident.heapUsed)} of ${mb(mem.resident.heapTotal)})`],
      [`RSS after passivating ${mem.passivated}`, `${mb(mem.after.rss)} (heap ${mb(mem.after.heapUsed)}, ${mem.after.actors} resident)`],
      ['in-process commands/s while filling (no HTTP)', mem.commandsPerSec.toFixed(0)],
    ]);
    writeResult('actors', { eventCount, cold, mem });
    console.error(JSON.stringify(mem));
  } finally {
    await link.close();
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
