import t, { type Test } from 'tap';
import { pino } from 'pino';
import { createConverge, type Converge } from '../../src/index.js';
import { connectNats } from '../../src/nats/connection.js';
import { shopPlatform } from '../../app.js';
import { startTestNats, tempDir, type TestNats } from '../helpers/nats.js';
import { eventually } from '../helpers/processes.js';

// Reactions on a real nats-server and LMDB, through the public API: two runtimes share the
// NATS (partitions by lease), the reactions run once in the cluster under their own lease,
// timers fire once, survive the runtime that scheduled them, and fire on recovery when they
// fell due while nothing ran.

const ACCEPT_MS = 1500;
const placeBody = { shopId: 's1', customerId: 'c1', items: [{ menuId: 'm1', quantity: 2 }] };

async function runtime(t: Test, nats: TestNats, dataDir = tempDir(t), acceptMs = ACCEPT_MS): Promise<Converge> {
  const converge = await createConverge(shopPlatform, {
    config: { nats: { url: nats.url }, dataDir, logLevel: 'silent', cluster: { leaseTtlMs: 2000 }, orders: { acceptTimeoutMs: acceptMs } },
    logger: pino({ level: 'silent' }),
  });
  t.teardown(() => converge.stop());
  return converge;
}

async function send(converge: Converge, aggregate: string, id: string, type: string, data: object) {
  const result = await converge.dispatch({ aggregate, id, type, data } as never);
  if (result.kind !== 'accepted') throw new Error(`${type} ${id}: ${JSON.stringify(result)}`);
  return result;
}

async function openShop(converge: Converge) {
  await send(converge, 'shop', 's1', 'RegisterShop', { name: 'K', category: 'korean', ownerId: 'o1' });
  await send(converge, 'shop', 's1', 'OpenShop', {});
  await send(converge, 'shop', 's1', 'AddMenuItem', { menuId: 'm1', name: 'Kimbap', price: 4500 });
}

/** Every commit of `EVENTS`, read straight from the stream. */
async function commits(nats: TestNats): Promise<Array<{ aggregate: string; id: string; events: Array<{ type: string; data: Record<string, unknown> }> }>> {
  const link = await connectNats(nats.url, { name: 'test-reader', timeoutMs: 2000, log: pino({ level: 'silent' }) });
  try {
    const info = await link.jsm.streams.info('EVENTS');
    const out = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const msg = await link.jsm.streams.getMessage('EVENTS', { seq });
      if (msg) out.push(msg.json<{ aggregate: string; id: string; events: Array<{ type: string; data: Record<string, unknown> }> }>());
    }
    return out;
  } finally {
    await link.close();
  }
}

const rejections = async (nats: TestNats, order: string) =>
  (await commits(nats)).filter((c) => c.aggregate === 'order' && c.id === order && c.events.some((e) => e.type === 'OrderRejected')).length;

t.test('two runtimes on one NATS: one runs the reactions, and every timer fires once', async (t) => {
  const nats = await startTestNats(t);
  const a = await runtime(t, nats);
  const b = await runtime(t, nats);
  await openShop(a);
  t.ok(await eventually(() => [a, b].filter((c) => c.status().reactions?.every((r) => r.state === 'running')).length === 1, 10_000), 'one of them holds the reactions lease and runs them');
  t.ok([a, b].some((c) => c.status().reactions?.every((r) => r.state === 'idle')), 'the other reports them idle');
  const orders = ['o1', 'o2', 'o3', 'o4', 'o5', 'o6'];
  for (const [i, id] of orders.entries()) await send(i % 2 ? a : b, 'order', id, 'PlaceOrder', placeBody);
  t.ok(await eventually(async () => (await Promise.all(orders.map((o) => rejections(nats, o)))).every((n) => n >= 1), 15_000), 'every order is rejected by its timer');
  await new Promise((r) => setTimeout(r, 1000));
  t.same(await Promise.all(orders.map((o) => rejections(nats, o))), orders.map(() => 1), 'each exactly once');
  const fired = (await commits(nats)).filter((c) => c.aggregate === '~orderAcceptance' && c.events.some((e) => e.type === '~Fired'));
  t.equal(fired.length, orders.length, 'each timer recorded one firing');
});

t.test("the runtime that held the reactions stops: the other takes them over and fires the timers it had scheduled", async (t) => {
  const nats = await startTestNats(t);
  const acceptMs = 4000;
  const a = await runtime(t, nats, tempDir(t), acceptMs);
  await openShop(a);
  t.ok(await eventually(() => a.status().reactions?.every((r) => r.state === 'running') ?? false, 10_000), 'the first runtime runs them');
  const b = await runtime(t, nats, tempDir(t), acceptMs);
  await send(a, 'order', 'o1', 'PlaceOrder', placeBody);
  await a.settled();
  t.equal(a.status().reactions?.find((r) => r.name === 'orderAcceptance')?.instances?.timersPending, 1, 'its timer is scheduled');
  await a.stop();
  t.ok(await eventually(async () => (await rejections(nats, 'o1')) === 1, 15_000), 'the second runtime fires it');
  t.ok(await eventually(() => b.status().reactions?.every((r) => r.state === 'running') ?? false, 5000), 'and now runs the reactions');
});

t.test('a timer that fell due while no runtime ran fires when one starts again; one that did not is left', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  // Long enough for the first runtime to record both decisions before o1's timer falls due, on a busy machine too.
  const acceptMs = 4000;
  const first = await runtime(t, nats, dataDir, acceptMs);
  await openShop(first);
  await send(first, 'order', 'o1', 'PlaceOrder', placeBody);
  await send(first, 'order', 'o2', 'PlaceOrder', placeBody);
  await send(first, 'order', 'o2', 'AcceptOrder', {});
  await first.settled();
  t.equal(first.status().reactions?.find((r) => r.name === 'orderAcceptance')?.instances?.timersPending, 1, 'one timer pending');
  await first.stop();
  await new Promise((r) => setTimeout(r, acceptMs + 500));
  t.equal(await rejections(nats, 'o1'), 0, 'nothing fired while nothing ran');
  await nats.stop();
  await nats.restart();
  await runtime(t, nats, dataDir, acceptMs);
  t.ok(await eventually(async () => (await rejections(nats, 'o1')) === 1, 15_000), 'the order whose timer fell due is rejected on recovery, after a nats-server restart too');
  t.equal(await rejections(nats, 'o2'), 0, 'the accepted one is left alone');
});
