import t from 'tap';
import { pino } from 'pino';
import { DeliverPolicy } from '@nats-io/jetstream';
import { connectNats } from '../../src/nats/connection.js';
import { EVENTS } from '../../src/store/eventStream.js';
import { startTestNats, tempDir } from '../helpers/nats.js';
import { startCluster, waitReady, workerPids } from '../helpers/cluster.js';

// Starting a cluster and waiting for a replacement worker take long on a loaded 2-core machine.
t.setTimeout(240_000);

t.test('kill -9 of a worker mid-stream loses no acknowledged command and the worker comes back', async (t) => {
  const nats = await startTestNats(t);
  const cluster = await startCluster(t, {
    CONVERGE_NATS_URL: nats.url,
    CONVERGE_DATA_DIR: tempDir(t),
    CONVERGE_CLUSTER_WORKERS: '2',
  });
  await waitReady(cluster, 60_000);
  let before = new Set<number>();
  for (let i = 0; i < 50 && before.size < 2; i++) before = await workerPids(cluster, 10);
  t.equal(before.size, 2, 'two workers serve the command port');

  // Each command registers a new shop, so every one is a write (never a 422) and writes
  // keep being acknowledged up to the kill, across it, and after it.
  const acknowledged = new Map<string, { shop: string; sentAt: number }>();
  const statuses = new Map<number, number>();
  let killedAt = Infinity;
  let stop = false;
  const client = async (c: number) => {
    for (let i = 0; !stop; i++) {
      const key = `k-${c}-${i}`;
      const shop = `e2e-${c}-${i}`;
      const sentAt = performance.now();
      for (let attempt = 0; attempt < 20; attempt++) {
        const res = await fetch(`${cluster.base}/shops/${shop}/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': key },
          body: JSON.stringify({ name: shop, category: 'c', ownerId: 'o' }),
          // A request caught by the kill must fail and be retried, not hang the test.
          signal: AbortSignal.timeout(10_000),
        }).catch(() => undefined);
        const status = res?.status ?? 0;
        await res?.arrayBuffer().catch(() => undefined);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status === 200) {
          acknowledged.set(key, { shop, sentAt });
          break;
        }
        // A retry keeps the key: if the first try was committed before the worker died, this one answers it.
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  const clients = Array.from({ length: 16 }, (_, c) => client(c));
  await new Promise((r) => setTimeout(r, 800));
  const victim = [...before][0]!;
  killedAt = performance.now();
  process.kill(victim, 'SIGKILL');
  // Keep writing until the replacement worker has acknowledged a run of new commands.
  const ackedAfterKill = () => [...acknowledged.values()].filter((a) => a.sentAt > killedAt).length;
  for (let waited = 0; waited < 60_000 && ackedAfterKill() < 50; waited += 100) await new Promise((r) => setTimeout(r, 100));
  stop = true;
  await Promise.all(clients);
  const sentBefore = [...acknowledged.values()].filter((a) => a.sentAt < killedAt).length;
  const sentAfter = ackedAfterKill();
  t.ok(sentBefore > 0, `commands sent before the kill were acknowledged (${sentBefore}); statuses ${JSON.stringify([...statuses])}`);
  t.ok(sentAfter > 0, `commands sent after the kill were acknowledged (${sentAfter})`);
  t.notOk(statuses.has(500), 'no 500 while a worker died');

  const link = await connectNats(nats.url, { name: 'check', timeoutMs: 2000, log: pino({ level: 'silent' }) });
  t.teardown(() => link.close());
  const info = await link.jsm.streams.info(EVENTS);
  const consumer = await link.js.consumers.get(EVENTS, { deliver_policy: DeliverPolicy.All });
  const seen = new Map<string, number>();
  const messages = await consumer.consume();
  for await (const m of messages) {
    const commit = m.json<{ commandId: string }>();
    seen.set(commit.commandId, (seen.get(commit.commandId) ?? 0) + 1);
    if (m.seq >= info.state.last_seq) break;
  }
  const missing = [...acknowledged.keys()].filter((k) => !seen.has(k));
  t.same(missing, [], 'every 2xx command is in EVENTS');
  t.same([...seen].filter(([, n]) => n > 1), [], 'no command is in EVENTS twice');

  let after = new Set<number>();
  for (let i = 0; i < 50 && (after.size < 2 || after.has(victim)); i++) {
    await new Promise((r) => setTimeout(r, 200));
    after = await workerPids(cluster, 10);
  }
  t.equal(after.size, 2, 'two workers serve again');
  t.notOk(after.has(victim), 'the killed worker was replaced');
});
