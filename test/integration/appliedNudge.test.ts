import t, { type Test } from 'tap';
import { pino } from 'pino';
import { connectNats } from '../../src/nats/connection.js';
import { followApplied, nudgeApplied, viewsAppliedSubject, viewsStatusSubject } from '../../src/read/status.js';
import { startTestNats } from '../helpers/nats.js';

/** A nats-server of the test's own, with a projector's connection and a worker's, and a host's nudge subject. */
async function projectorAndWorker(t: Test) {
  const nats = await startTestNats(t);
  const log = pino({ level: 'silent' });
  const projector = await connectNats(nats.url, { name: 'projector', timeoutMs: 2000, log });
  const worker = await connectNats(nats.url, { name: 'worker', timeoutMs: 2000, log });
  t.teardown(async () => {
    await projector.close();
    await worker.close();
  });
  return { projector, worker, subject: viewsAppliedSubject('host-a', '/data/views') };
}

t.test("a read waiting for a position is woken by the projector's nudge, on a real nats-server", async (t) => {
  const { projector, worker, subject } = await projectorAndWorker(t);
  t.not(subject, viewsStatusSubject('host-a', '/data/views'), 'nudges and status have subjects of their own');
  const applied = followApplied(worker, subject);
  t.teardown(() => applied.stop());
  await worker.nc.flush();
  const nudge = nudgeApplied(projector, subject);

  const started = performance.now();
  const waits = [applied.next(10_000), applied.next(10_000), applied.next(10_000)];
  setTimeout(nudge, 50);
  await Promise.all(waits);
  const took = performance.now() - started;
  t.ok(took >= 45 && took < 2000, `every waiting read woke at the nudge, after ${Math.round(took)} ms, not at its 10 s fallback`);

  const alone = performance.now();
  await applied.next(100);
  t.ok(performance.now() - alone >= 95, 'without a nudge a read looks again after its fallback');

  applied.stop();
  const afterStop = performance.now();
  await applied.next(150);
  t.ok(performance.now() - afterStop >= 145, 'a stopped waiter still times out rather than hang');
});

t.test('the worker\'s hook runs at each nudge before the waiting reads resume, and not when the waiter stops', async (t) => {
  const { projector, worker, subject } = await projectorAndWorker(t);
  let refreshed = 0;
  const applied = followApplied(worker, subject, () => refreshed++);
  await worker.nc.flush();
  const nudge = nudgeApplied(projector, subject);
  const seen: number[] = [];
  const waits = [applied.next(10_000), applied.next(10_000)].map((w) => w.then(() => seen.push(refreshed)));
  nudge();
  await Promise.all(waits);
  t.same(seen, [1, 1], 'both reads resumed after the hook had run, once');
  nudge();
  await applied.next(10_000);
  t.equal(refreshed, 2, 'once per nudge');
  applied.stop();
  t.equal(refreshed, 2, 'stopping wakes the waiters without the hook');
});
