import t, { type Test } from 'tap';
import { connect } from '@nats-io/transport-node';
import { pino } from 'pino';
import { commandSubject } from '../../src/write/router.js';
import { ownerOf, partitionOf } from '../../src/core/partition.js';
import { startWorker } from '../../src/host/worker.js';
import { startTestNats } from '../helpers/nats.js';
import { commandUrl, testConfig } from '../helpers/workers.js';
import { shopPlatform } from '../../app.js';

const { aggregates, projections, routes: queryRoutes } = shopPlatform;

/** An id of `aggregate` whose partition worker `owner` of two owns. */
function idOwnedBy(aggregate: string, owner: number, prefix: string): string {
  for (let i = 0; ; i++) if (ownerOf(partitionOf(aggregate, `${prefix}${i}`, 64), 2) === owner) return `${prefix}${i}`;
}

/** Worker 0 of two, with five `place` commands queued on one order whose first hangs on a shop read nobody answers. */
async function queuedBehindAStall(t: Test) {
  const nats = await startTestNats(t);
  const config = testConfig(t, nats.url, {
    CONVERGE_CLUSTER_WORKERS: '2',
    CONVERGE_CLUSTER_WORKER_INDEX: '0',
    CONVERGE_CLUSTER_SHUTDOWN_TIMEOUT_MS: '300',
    CONVERGE_NATS_REQUEST_TIMEOUT_MS: '1000',
  });
  const worker = await startWorker(config, pino({ level: 'silent' }), { aggregates, projections, routes: queryRoutes });
  t.teardown(() => worker.stop());

  // The shop's owner (worker 1) takes the order's read of the shop and never answers, so
  // the first `place` runs for the whole request timeout and the others wait behind it.
  const stalled = await connect({ servers: nats.url });
  t.teardown(() => stalled.close());
  const shopId = idOwnedBy('shop', 1, 'dr');
  const orderId = idOwnedBy('order', 0, 'do');
  let reads = 0;
  stalled.subscribe(commandSubject(partitionOf('shop', shopId, 64)), { queue: 'converge', callback: () => void reads++ });
  await stalled.flush();

  const body = JSON.stringify({ shopId, customerId: 'c1', items: [{ menuId: 'm', quantity: 1 }] });
  const replies = Array.from({ length: 5 }, (_, i) =>
    fetch(`${commandUrl(worker)}/orders/${orderId}/place`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': `drain-${i}` },
      body,
    }).then(
      async (res) => ({ status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { error: string; message: string } }),
      (err: Error) => ({ status: 0, retryAfter: null, body: { error: 'no answer', message: err.message } }),
    ),
  );
  while (reads === 0) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 100));
  t.equal(worker.host.size, 1, 'all five wait in one actor');
  return { worker, answers: () => Promise.all(replies) };
}

t.test('past the drain deadline every queued command is answered before the HTTP server closes', async (t) => {
  const { worker, answers } = await queuedBehindAStall(t);
  await worker.stop();
  const all = await answers();
  t.same(all.map((a) => a.status), [503, 503, 503, 503, 503], 'every caller got an HTTP answer, none a reset connection');
  const errors = all.map((a) => a.body.error).sort();
  t.same(errors, ['partition_unavailable', 'shutting_down', 'shutting_down', 'shutting_down', 'shutting_down'], 'the running one got its own outcome, those waiting got shutting_down');
  t.ok(all.every((a) => a.retryAfter === '1'), 'each with Retry-After');
});

t.test('a command still running after the drain grace is answered as possibly applied', async (t) => {
  const { worker, answers } = await queuedBehindAStall(t);
  await worker.host.drain(50, 50);
  const all = await answers();
  const running = all.filter((a) => a.body.error !== 'shutting_down');
  t.equal(running.length, 1, 'the four waiting were refused');
  t.same([running[0]?.status, running[0]?.body.error], [503, 'event_store_unavailable']);
  t.match(running[0]?.body.message, /may have been applied; retry with the same Idempotency-Key/);
});
