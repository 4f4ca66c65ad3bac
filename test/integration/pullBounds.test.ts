import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { pino } from 'pino';
import type { Commit } from '../../src/core/eventStore.js';
import { connectNats } from '../../src/nats/connection.js';
import { launchNatsServer } from '../../src/nats/server.js';
import { createJetStreamEventStore } from '../../src/store/jetstream.js';
import { ensureEventStream } from '../../src/store/eventStream.js';
import { tempDir } from '../helpers/nats.js';

// Pulls from EVENTS are bounded (docs/architecture.md, "Archive"): every feed from an early
// position passes over the archive's records, up to 16 KiB each, and nats-server drops a
// client as a slow consumer once more than `max_pending` waits for it.
//
// Each test checks the bound itself, on the pull requests the client sends, and then that a
// client busy for half a second on a server whose `max_pending` is twice that bound is not
// dropped. How much of a pull the kernel's socket buffers absorb differs between machines, so
// the margin is wide both ways: the pulls of old (500 commits, 1,000 for a read) are about
// four times the bound.

/**
 * A store on a nats-server that buffers `maxPending` for a client, holding `count` commits
 * of `kib` KiB each (about 20 MB in all), of one aggregate or one each.
 */
async function bigStore(t: Test, opts: { oneAggregate: boolean; count: number; kib: number; maxPending: string }) {
  const { oneAggregate, count: COUNT } = opts;
  const big = 'x'.repeat(opts.kib * 1024);
  const dir = tempDir(t);
  const config = join(dir, 'nats.conf');
  writeFileSync(config, `max_pending: ${opts.maxPending}\n`);
  const server = await launchNatsServer({ port: 0, storeDir: join(dir, 'store'), configFile: config });
  t.teardown(() => server.stop());
  const link = await connectNats(server.url, { name: 'pull-bounds', timeoutMs: 2000, log: pino({ level: 'silent' }) });
  t.teardown(() => link.close());
  await ensureEventStream(link, 60_000);
  const store = createJetStreamEventStore(link, { publishTimeoutMs: 5000 });
  const commit = (n: number): Commit => ({ commandId: `c${n}`, commandType: 'T', aggregate: 'big', id: oneAggregate ? 'b' : `b${n}`, version: oneAggregate ? n : 1, events: [{ type: 'T', data: { big }, at: '2026-01-01T00:00:00.000Z' }] });
  if (oneAggregate) for (let n = 1; n <= COUNT; n++) await store.append(commit(n), n - 1);
  else for (let n = 1; n <= COUNT; n += 20) await Promise.all(Array.from({ length: 20 }, (_, k) => store.append(commit(n + k), 0)));
  let reconnects = 0;
  link.onReconnect(() => reconnects++);
  // Every pull request the client makes is a core NATS message another connection can see.
  const pulls: number[] = [];
  const watch = link.nc.subscribe('$JS.API.CONSUMER.MSG.NEXT.EVENTS.>', {
    callback: (_err, msg) => {
      const batch = (msg.json() as { batch?: number }).batch;
      if (batch) pulls.push(batch);
    },
  });
  t.teardown(() => watch.unsubscribe());
  await link.nc.flush();
  return { store, link, reconnects: () => reconnects, pulls };
}

/** Holds the event loop for half a second, as a large batch being folded does. */
function busy() {
  const until = Date.now() + 500;
  while (Date.now() < until);
}

t.test('a subscription over commits the size of archive records pulls few enough at once that a client busy for half a second is no slow consumer', async (t) => {
  // 128 commits of 12 KiB are 1.6 MB; 500 of them would be 6.4 MB.
  const COUNT = 1600;
  const { store, link, reconnects, pulls } = await bigStore(t, { oneAggregate: false, count: COUNT, kib: 12, maxPending: '3200000' });
  const sub = await store.subscribe(0, { batchSize: 500 });
  // A dropped client may never get the rest: give up after 20 s rather than hang.
  const giveUp = setTimeout(() => sub.close(), 20_000);
  t.teardown(() => clearTimeout(giveUp));
  let seen = 0;
  for await (const { commit } of sub) {
    if (++seen === 1) busy();
    if (commit.position === COUNT) break;
  }
  sub.close();
  t.ok(pulls.length > 0, 'the pulls were seen');
  t.ok(Math.max(...pulls) <= 128, `no pull asks for more than 128 commits (largest: ${Math.max(...pulls)})`);
  t.equal(seen, COUNT, 'every commit delivered');
  t.equal(reconnects(), 0, 'the connection was never dropped');
  t.ok(link.isConnected(), 'and is up');
});

t.test('a read of an aggregate of large commits pulls few enough at once that a client busy for half a second is no slow consumer', async (t) => {
  // At most 4 MiB a pull (81 commits of 50 KiB); 1,000 of them would be 50 MB.
  const COUNT = 400;
  const { store, reconnects, pulls } = await bigStore(t, { oneAggregate: true, count: COUNT, kib: 50, maxPending: '8400000' });
  let seen = 0;
  for await (const _ of store.read('big', 'b', 0)) if (++seen === 1) busy();
  t.ok(pulls.length > 0, 'the pulls were seen');
  t.ok(Math.max(...pulls) * 50 * 1024 <= 4 * 1024 * 1024, `no pull asks for more than 4 MiB (largest: ${Math.max(...pulls)} commits)`);
  t.equal(seen, COUNT, 'every commit read');
  t.equal(reconnects(), 0, 'the connection was never dropped');
});
