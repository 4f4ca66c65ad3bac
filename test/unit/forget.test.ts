import t, { type Test } from 'tap';
import { createConverge, createMemoryEventStore, manualClock, type Converge, type MemoryEventStore } from '../../src/index.js';
import { shopPlatform } from '../../app.js';
import { orderHistory } from '../../projections/orderHistory/orderHistory.projection.js';

// Forgetting a customer on the in-process runtime (docs/architecture.md, "Forgetting"): the
// reference app declares the customer's id in every order event and the id and text of a
// review as personal data, sealed with the customer's key; forgetting deletes the key.

const placeBody = (customerId: string) => ({ shopId: 's1', customerId, items: [{ menuId: 'm1', quantity: 2 }] });

async function runtime(t: Test, store: MemoryEventStore, clock = manualClock('2026-03-01T12:00:00.000Z')) {
  const converge = await createConverge(shopPlatform, { clock, eventStore: store, config: { logLevel: 'silent', archive: { afterMs: 60_000, intervalMs: 20 } } });
  t.teardown(() => converge.stop());
  return { converge, clock };
}

async function send(converge: Converge, aggregate: string, id: string, type: string, data: object = {}) {
  const result = await converge.dispatch({ aggregate, id, type, data } as never);
  if (result.kind !== 'accepted') throw new Error(`${type} ${id}: ${JSON.stringify(result)}`);
  return result;
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

async function until(check: () => boolean | Promise<boolean>, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

/** Two customers' orders, the first delivered and reviewed. */
async function orders(converge: Converge) {
  await send(converge, 'shop', 's1', 'RegisterShop', { name: 'Kimbap Heaven', category: 'korean', ownerId: 'o1' });
  await send(converge, 'shop', 's1', 'OpenShop');
  await send(converge, 'shop', 's1', 'AddMenuItem', { menuId: 'm1', name: 'Tuna kimbap', price: 4500 });
  await send(converge, 'order', 'o1', 'PlaceOrder', placeBody('kim-minji'));
  await send(converge, 'order', 'o2', 'PlaceOrder', placeBody('lee-jun'));
  await send(converge, 'order', 'o1', 'AcceptOrder');
  await send(converge, 'order', 'o1', 'DeliverOrder');
  await send(converge, 'review', 'r1', 'PostReview', { orderId: 'o1', customerId: 'kim-minji', rating: 5, text: 'Minji loved the tuna' });
  await converge.settled();
}

const customerOf = (converge: Converge, id: string) => converge.views.get(orderHistory, id)?.customerId;

t.test('personal fields are stored sealed and read back as they were', async (t) => {
  const store = createMemoryEventStore();
  const { converge } = await runtime(t, store);
  await orders(converge);
  const stored = JSON.stringify(store.commits);
  t.notOk(stored.includes('kim-minji'), "the customer's id is nowhere in the store as it is");
  t.notOk(stored.includes('loved the tuna'), 'nor the text of their review');
  t.equal(customerOf(converge, 'o1'), 'kim-minji', 'the view reads it');
  const [placed] = await collect(converge.store.read('order', 'o1', 0));
  t.equal((placed!.events[0]!.data as { customerId: string }).customerId, 'kim-minji', 'and so does history');
});

t.test("forgetting a customer redacts their fields in history and views, keeps everyone else's, and is recorded", async (t) => {
  const store = createMemoryEventStore();
  const { converge } = await runtime(t, store);
  await orders(converge);
  const positions = (await collect(converge.store.read('order', 'o1', 0))).map((c) => c.position);
  const forgotten = await converge.forget('kim-minji');
  t.ok(await until(() => customerOf(converge, 'o1') === '[forgotten]'), 'the order view says forgotten once it is rebuilt');
  t.equal(customerOf(converge, 'o2'), 'lee-jun', "another customer's order is untouched");
  const history = await collect(converge.store.read('order', 'o1', 0));
  t.same(history.map((c) => c.position), positions, 'no position is rewritten');
  t.ok(history.every((c) => (c.events[0]!.data as { customerId: string }).customerId === '[forgotten]'), 'every event of the order reads forgotten');
  const [review] = await collect(converge.store.read('review', 'r1', 0));
  t.match(review!.events[0]!.data, { customerId: '[forgotten]', text: '[forgotten]', rating: 5 }, "the review's id and text are forgotten, its rating is not");
  const record = store.commits.find((c) => c.aggregate === '~~forget');
  t.match(record, { id: forgotten.keyId, position: forgotten.position, events: [{ type: '~Forgotten', data: { keyId: forgotten.keyId } }] }, 'the act is recorded under the key id');
  t.notOk(JSON.stringify(store.commits).includes('kim-minji'), "and the record does not name the customer");
});

t.test('an order of a forgotten customer still takes commands, and a rebuild after forgetting shows the fields forgotten', async (t) => {
  const store = createMemoryEventStore();
  const clock = manualClock('2026-03-01T12:00:00.000Z');
  const first = await runtime(t, store, clock);
  await orders(first.converge);
  await first.converge.forget('kim-minji');
  await send(first.converge, 'order', 'o3', 'PlaceOrder', placeBody('kim-minji'));
  t.ok(await until(() => customerOf(first.converge, 'o1') === '[forgotten]'), 'forgotten');
  await first.converge.stop();
  const second = await runtime(t, store, clock);
  await second.converge.settled();
  t.equal(customerOf(second.converge, 'o1'), '[forgotten]', 'views made from nothing read the forgotten fields as forgotten');
  t.equal(customerOf(second.converge, 'o3'), 'kim-minji', 'an order placed after forgetting is under a new key, and reads');
  t.equal(customerOf(second.converge, 'o2'), 'lee-jun', 'others read as they were');
  const cancelled = await send(second.converge, 'order', 'o2', 'CancelOrder', { reason: 'too late' });
  t.equal(cancelled.version, 2, 'others still take commands');
  const reviewed = await second.converge.dispatch({ aggregate: 'order', id: 'o1', type: 'RecordOrderReview', data: { reviewId: 'r9', rating: 3 } } as never);
  t.equal(reviewed.kind, 'accepted', "the forgotten customer's delivered order still takes a command");
  const last = (await collect(second.converge.store.read('order', 'o1', 0))).at(-1)!;
  t.equal((last.events[0]!.data as { customerId: string }).customerId, '[forgotten]', 'and its new event carries the redaction, not a key made for the word');
});

t.test('an archived order of a forgotten customer reads forgotten from the archive', async (t) => {
  const store = createMemoryEventStore();
  const { converge, clock } = await runtime(t, store);
  await orders(converge);
  const commits = (await collect(converge.store.read('order', 'o1', 0))).length;
  clock.advance(61_000);
  t.ok(await until(async () => (await collect(store.read('order', 'o1', 0))).length === 0), 'archived');
  await converge.forget('kim-minji');
  const history = await collect(converge.store.read('order', 'o1', 0));
  t.equal(history.length, commits, 'its history reads from the archive, every commit');
  t.ok(history.every((c) => (c.events[0]!.data as { customerId: string }).customerId === '[forgotten]'), 'with the fields forgotten');
  t.notOk(JSON.stringify(store.commits).includes('kim-minji'), 'the archive records hold the fields sealed');
});
