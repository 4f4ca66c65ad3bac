import t from 'tap';
import { connect } from '@nats-io/transport-node';
import { commandSubject } from '../../src/write/router.js';
import { ownerOf, partitionOf } from '../../src/core/partition.js';
import { startTestNats } from '../helpers/nats.js';
import { pino } from 'pino';
import type { Test } from 'tap';
import { startWorker } from '../../src/host/worker.js';
import { commandUrl, startWorkers, testConfig } from '../helpers/workers.js';
import { shopPlatform } from '../../app.js';

const { aggregates, projections, routes: queryRoutes } = shopPlatform;

/** Worker 0 of a two-worker cluster whose worker 1 is not started. */
async function firstOfTwo(t: Test, natsUrl: string, requestTimeoutMs: number) {
  const config = testConfig(t, natsUrl, {
    CONVERGE_CLUSTER_WORKERS: '2',
    CONVERGE_CLUSTER_WORKER_INDEX: '0',
    CONVERGE_NATS_REQUEST_TIMEOUT_MS: String(requestTimeoutMs),
  });
  const worker = await startWorker(config, pino({ level: 'silent' }), { aggregates, projections, routes: queryRoutes });
  t.teardown(() => worker.stop());
  return worker;
}

/** An id of `aggregate` whose partition worker `owner` of `workers` owns. */
function idOwnedBy(aggregate: string, owner: number, workers: number, prefix: string): string {
  for (let i = 0; ; i++) if (ownerOf(partitionOf(aggregate, `${prefix}${i}`, 64), workers) === owner) return `${prefix}${i}`;
}

async function send(base: string, path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Record<string, unknown> };
}

t.test('an error raised on the owning worker keeps its status and Retry-After when forwarded', async (t) => {
  const nats = await startTestNats(t);
  const [w0, w1, w2] = await startWorkers(t, nats.url, 3);
  // The review's owner (w1) reads the order from its owner (w2), which is gone: w1 fails
  // with partition_unavailable, and w0, which took the request, must answer the same.
  const reviewId = idOwnedBy('review', 1, 3, 'rv');
  const orderId = idOwnedBy('order', 2, 3, 'od');
  await w2!.stop();
  const res = await send(commandUrl(w0!), `/reviews/${reviewId}/post`, { orderId, customerId: 'c1', rating: 5, text: '' });
  t.same([res.status, res.body.error], [503, 'partition_unavailable'], 'the owner’s 503, not a 500');
  t.equal(res.retryAfter, '1', 'with its Retry-After');
  t.equal(w1!.host.size, 1, 'the command did reach the review’s owner');
});

t.test('a forwarded command with no answer in time is outcome_unknown, not partition_unavailable', async (t) => {
  const nats = await startTestNats(t);
  const w0 = await firstOfTwo(t, nats.url, 300);
  // Worker 1 takes the request off its partition's subject and never answers, as an owner
  // does that committed the command and then stalled or died before replying.
  const owner = await connect({ servers: nats.url });
  t.teardown(() => owner.close());
  const shopId = idOwnedBy('shop', 1, 2, 'ou');
  let received = 0;
  owner.subscribe(commandSubject(partitionOf('shop', shopId, 64)), { queue: 'converge', callback: () => void received++ });
  await owner.flush();

  const res = await send(commandUrl(w0), `/shops/${shopId}/register`, { name: 'S', category: 'c', ownerId: 'o' }, { 'idempotency-key': 'k1' });
  t.equal(received, 1, 'the owner received the command');
  t.same([res.status, res.body.error], [504, 'outcome_unknown']);
  t.match(res.body.message, /may have been applied; retry with the same Idempotency-Key/);
  t.equal(res.retryAfter, '1', 'a retry (with the same key) is the advice');
});

t.test('a forwarded command nobody listens for is partition_unavailable: it ran nowhere', async (t) => {
  const nats = await startTestNats(t);
  const w0 = await firstOfTwo(t, nats.url, 5000);
  const shopId = idOwnedBy('shop', 1, 2, 'nr');
  const started = Date.now();
  const res = await send(commandUrl(w0), `/shops/${shopId}/register`, { name: 'S', category: 'c', ownerId: 'o' });
  t.same([res.status, res.body.error, res.retryAfter], [503, 'partition_unavailable', '1']);
  t.ok(Date.now() - started < 5000, 'answered from the server’s no-responders notice, not after the request timeout');
});
