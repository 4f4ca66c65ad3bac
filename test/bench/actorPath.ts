/**
 * The command path inside a worker, without HTTP or NATS: menu-price changes through an
 * actor host on the in-memory event store, 64 at a time over 1,000 shops, as the command
 * bench sends them. Reports the process's CPU per command for each round. The in-memory
 * store's own append is part of the figure; the shops' memory fills to
 * `actors.recentCommits` (64) commits in the first rounds. With `--wake`, every actor is
 * put to rest before each slice of one command per shop (all but the few still running a
 * command), so nearly every command wakes its actor
 * (docs/architecture.md, "Actors at rest"): the figure is a command's cost plus a rest
 * and a wake.
 *
 *   node dist/test/bench/actorPath.js [--shops 1000 --commands 30000 --rounds 7] [--wake]
 *
 * In-process and bounded; it starts nothing else.
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { shopPlatform } from '../../app.js';
import { createMemoryEventStore } from '../../src/store/memory.js';
import { commandEnvelope } from '../../src/write/envelope.js';
import type { ReadState } from '../../src/write/execute.js';
import { createActorHost } from '../../src/write/host.js';
import { memorySnapshotStore } from '../../src/write/snapshots.js';
import { median, printTable, writeResult } from './report.js';

const { values } = parseArgs({
  options: {
    shops: { type: 'string', default: '1000' },
    commands: { type: 'string', default: '30000' },
    rounds: { type: 'string', default: '7' },
    wake: { type: 'boolean', default: false },
  },
});
const shops = Number(values.shops);
const perRound = Number(values.commands);
const rounds = Number(values.rounds);
const wake = values.wake;

const store = createMemoryEventStore();
const host = createActorHost({
  aggregates: shopPlatform.aggregates,
  store,
  snapshots: memorySnapshotStore(),
  streamId: store.streamId,
  duplicateWindowMs: 120_000,
  settings: { snapshotEvery: 1000, idleMs: 3_600_000, restMs: 3_600_000, maxAwake: 0, mailboxSize: 1000, recentCommits: 64, conflictRetries: 20 },
  log: pino({ level: 'silent' }),
});
const byName = new Map(shopPlatform.aggregates.map((a) => [a.name, a]));
const readState: ReadState = () => Promise.reject(new Error('a menu-price change reads no other aggregate'));
const command = (n: number, type: string, data: object) => commandEnvelope(byName, { aggregate: 'shop', id: `bench-${n % shops}`, type, data }, {}, Date.now());

async function round(n: number): Promise<number> {
  let next = 0;
  let refused = 0;
  const cpu = process.cpuUsage();
  // Under --wake, each slice of `shops` commands (one per shop) begins with every actor at rest.
  const slice = wake ? shops : n;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < n) {
        const i = next++;
        if (wake && i % slice === 0) host.restIdle(Number.POSITIVE_INFINITY);
        const result = await host.execute(command(i, 'ChangeMenuPrice', { menuId: 'm1', price: 1000 + (i % 9000) }), readState);
        if (result.kind !== 'accepted') refused++;
      }
    }),
  );
  const used = process.cpuUsage(cpu);
  if (refused > 0) throw new Error(`${refused} commands were not accepted`);
  return (used.user + used.system) / n;
}

async function main(): Promise<void> {
  for (let i = 0; i < shops; i++) {
    await host.execute(command(i, 'RegisterShop', { name: `Shop ${i}`, category: 'korean', ownerId: 'o' }), readState);
    await host.execute(command(i, 'AddMenuItem', { menuId: 'm1', name: 'Kimbap', price: 4000 }), readState);
  }
  const perCommand: number[] = [];
  for (let r = 0; r < rounds; r++) {
    perCommand.push(await round(perRound));
    console.error(`round ${r + 1}/${rounds}: ${perCommand[r]!.toFixed(1)} µs of CPU per command`);
  }
  await host.drain(1000);
  const last = perCommand.slice(Math.min(2, rounds - 1));
  printTable('the command path in one process (actor host, in-memory store)', [
    ['commands per round, 64 at a time', `${perRound} over ${shops} shops${wake ? ', each waking its actor' : ''}`],
    ['CPU per command, each round (µs)', perCommand.map((v) => v.toFixed(1)).join(', ')],
    ['median after the first two rounds', `${median(last).toFixed(1)} µs`],
  ]);
  writeResult(wake ? 'actorPathWake' : 'actorPath', { shops, perRound, wake, perCommandUs: perCommand });
}

await main();
