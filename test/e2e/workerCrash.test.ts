import t from 'tap';
import { pino } from 'pino';
import { DeliverPolicy } from '@nats-io/jetstream';
import { connectNats } from '../../src/natsConnection.js';
import { EVENTS } from '../../src/eventStore.js';
import { startTestNats, tempDir } from '../helpers/nats.js';
import { startCluster, waitReady, workerPids } from '../helpers/cluster.js';

t.test('kill -9 of a worker mid-stream loses no acknowledged command and the worker comes back', async (t) => {
  const nats = await startTestNats(t);
  const cluster = await startCluster(t, {
    CONVERGE_NATS_URL: nats.url,
    CONVERGE_DATA_DIR: tempDir(t),
    CONVERGE_CLUSTER_WORKERS: '2',
  });
  await waitReady(cluster);
  let before = new Set<number>();
  for (let i = 0; i < 50 && before.size < 2; i++) before = await workerPids(cluster, 10);
  t.equal(before.size, 2, 'two workers serve the command port');

  const acknowledged = new Map<string, string>();
  const statuses = new Map<number, number>();
  let stop = false;
  const client = async (c: number) => {
    for (let i = 0; !stop; i++) {
      const key = `k-${c}-${i}`;
      const shop = `e2e-${(c * 7 + i) % 40}`;
      for (let attempt = 0; attempt < 5; attempt++) {
        const res = await fetch(`${cluster.base}/shops/${shop}/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': key },
          body: JSON.stringify({ name: shop, category: 'c', ownerId: 'o' }),
        }).catch(() => undefined);
        const status = res?.status ?? 0;
        await res?.arrayBuffer();
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status === 200 || status === 422) {
          if (status === 200) acknowledged.set(key, shop);
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  const clients = Array.from({ length: 16 }, (_, c) => client(c));
  await new Promise((r) => setTimeout(r, 800));
  const victim = [...before][0]!;
  process.kill(victim, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 2000));
  stop = true;
  await Promise.all(clients);
  t.ok(acknowledged.size > 0, `commands were acknowledged (${acknowledged.size}); statuses ${JSON.stringify([...statuses])}`);
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
