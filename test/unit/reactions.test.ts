import t, { type Test } from 'tap';
import { createConverge, manualClock, type Converge } from '../../src/index.js';
import { shopPlatform } from '../../app.js';
import { orderHistory } from '../../projections/orderHistory/orderHistory.projection.js';

// The reference app's reactions on the in-process runtime with a clock the test moves: the
// same feeds, outbox, timers and dispatch the cluster runs, on the in-memory store.

const shopBody = { name: 'Kimbap Heaven', category: 'korean', ownerId: 'o1' };
const menu = { menuId: 'm1', name: 'Tuna kimbap', price: 4500 };
const placeBody = { shopId: 's1', customerId: 'c1', items: [{ menuId: 'm1', quantity: 2 }] };

async function runtime(t: Test, acceptTimeoutMs = 60_000) {
  const clock = manualClock('2026-03-01T12:00:00.000Z');
  const converge = await createConverge(shopPlatform, { clock, config: { logLevel: 'silent', orders: { acceptTimeoutMs } } });
  t.teardown(() => converge.stop());
  const send = async (aggregate: string, id: string, type: string, data: object) => {
    const result = await converge.dispatch({ aggregate, id, type, data } as never);
    if (result.kind !== 'accepted') throw new Error(`${type} ${id}: ${JSON.stringify(result)}`);
    return result;
  };
  await send('shop', 's1', 'RegisterShop', shopBody);
  await send('shop', 's1', 'OpenShop', {});
  await send('shop', 's1', 'AddMenuItem', menu);
  return { converge, clock, send };
}

/** The order's status and history as its view shows them, once it has caught up with everything. */
async function orderOf(converge: Converge, id: string) {
  await converge.waitFor(await converge.store.head().then((h) => h.lastPosition));
  return converge.views.get(orderHistory, id);
}

/** Waits until `check` holds (the reactions work after commit, asynchronously). */
async function until(check: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

t.test('an order not accepted within orders.acceptTimeoutMs is rejected with not_accepted_in_time', async (t) => {
  const { converge, clock, send } = await runtime(t, 60_000);
  await send('order', 'o1', 'PlaceOrder', placeBody);
  t.ok(await until(async () => converge.status().reactions?.find((r) => r.name === 'orderAcceptance')?.instances?.timersPending === 1), 'the accept timer is pending');
  clock.advance(59_000);
  await new Promise((r) => setTimeout(r, 100));
  t.equal((await orderOf(converge, 'o1'))?.status, 'placed', 'not before its time');
  clock.advance(1_000);
  t.ok(await until(async () => (await orderOf(converge, 'o1'))?.status === 'rejected'), 'rejected once the timer fires');
  const history = await converge.store.read('order', 'o1', 0)[Symbol.asyncIterator]().next();
  t.ok(history.value, 'the order has commits');
  const commits: Array<{ aggregate: string; id: string; events: ReadonlyArray<{ type: string; data: { reason?: string } }>; metadata?: { caller?: string } }> = [];
  for await (const c of converge.store.read('order', 'o1', 0)) commits.push(c as never);
  const rejection = commits.find((c) => c.aggregate === 'order' && c.events[0]?.type === 'OrderRejected');
  t.equal(rejection?.events[0]?.data.reason, 'not_accepted_in_time');
  t.equal(rejection?.metadata?.caller, 'process:orderAcceptance', 'sent by the process');
});

t.test('an order accepted in time is left alone and its timer is cancelled', async (t) => {
  const { converge, clock, send } = await runtime(t, 60_000);
  await send('order', 'o1', 'PlaceOrder', placeBody);
  await send('order', 'o1', 'AcceptOrder', {});
  t.ok(await until(async () => {
    const p = converge.status().reactions?.find((r) => r.name === 'orderAcceptance');
    return p?.instances?.timersPending === 0 && p.lagEvents === 0;
  }), 'no timer is pending');
  clock.advance(120_000);
  await new Promise((r) => setTimeout(r, 200));
  t.equal((await orderOf(converge, 'o1'))?.status, 'accepted');
});

t.test("when a shop closes, its orders still placed are rejected with shop_closed, and only those", async (t) => {
  const { converge, send } = await runtime(t, 3_600_000);
  await send('order', 'o1', 'PlaceOrder', placeBody);
  await send('order', 'o2', 'PlaceOrder', placeBody);
  await send('order', 'o2', 'AcceptOrder', {});
  await send('shop', 's1', 'CloseShop', {});
  t.ok(await until(async () => (await orderOf(converge, 'o1'))?.status === 'rejected'), 'the waiting order is rejected');
  t.equal((await orderOf(converge, 'o2'))?.status, 'accepted', 'the accepted one is not');
});

t.test('a review posted on a delivered order is recorded on the order, which its history shows', async (t) => {
  const { converge, send } = await runtime(t, 3_600_000);
  await send('order', 'o1', 'PlaceOrder', placeBody);
  await send('order', 'o1', 'AcceptOrder', {});
  await send('order', 'o1', 'DeliverOrder', {});
  await send('review', 'r1', 'PostReview', { orderId: 'o1', customerId: 'c1', rating: 4, text: 'good' });
  t.ok(await until(async () => (await orderOf(converge, 'o1'))?.review?.rating === 4), 'the order history shows the review');
  await send('review', 'r1', 'DeleteReview', {});
  t.ok(await until(async () => (await orderOf(converge, 'o1'))?.review === undefined), 'and drops it when the review is deleted');
});
