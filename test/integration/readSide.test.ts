import t from 'tap';
import { defineProjection } from '../../src/core/projection.js';
import type { ShopEvent } from '../../actors/shop/shop.events.js';
import { startTestNats, tempDir } from '../helpers/nats.js';
import { commandUrl, get, post, startTestProjector, startWorkers, urlOf } from '../helpers/workers.js';
import { shopPlatform } from '../../app.js';

const { projections } = shopPlatform;

type Body = Record<string, unknown>;

t.test('commands converge into the views, and reads can wait for their own writes', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_DATA_DIR: dataDir });
  await startTestProjector(t, nats.url, dataDir);
  const cmd = commandUrl(worker!);
  const q = urlOf(worker!.queryApp);
  const at = async (path: string, body: unknown) => {
    const res = await post(cmd, path, body);
    t.equal(res.status, 200, `${path} succeeds`);
    return res.body.position as number;
  };

  await at('/shops/s1/register', { name: 'Kimbap Heaven', category: 'korean', ownerId: 'u1', minOrderAmount: 5000, deliveryFee: 3000 });
  await at('/shops/s1/open', {});
  await at('/shops/s1/add-menu-item', { menuId: 'm1', name: 'Tuna kimbap', price: 4500 });
  await at('/shops/s1/add-menu-item', { menuId: 'm2', name: 'Ramen', price: 5000 });
  await at('/shops/s1/mark-menu-sold-out', { menuId: 'm2' });
  const last = await at('/shops/s1/change-menu-price', { menuId: 'm1', price: 4800 });

  t.test('read-your-writes: X-Min-Position waits until the view has the write', async (t) => {
    const res = await get(`${q}/shops/s1`, { 'x-min-position': String(last) });
    t.equal(res.status, 200);
    t.match(res.body, {
      id: 's1',
      name: 'Kimbap Heaven',
      category: 'korean',
      open: true,
      minOrderAmount: 5000,
      deliveryFee: 3000,
      menu: [
        { menuId: 'm1', name: 'Tuna kimbap', price: 4800, soldOut: false },
        { menuId: 'm2', name: 'Ramen', price: 5000, soldOut: true },
      ],
      ratingAverage: 0,
      reviewCount: 0,
      orderCount: 0,
      version: 6,
      position: last,
    });
    t.notOk('ratingSum' in res.body, 'internal fields are not served');
    const etag = res.headers.get('etag');
    t.equal(etag, `"${last}"`);
    t.equal((await fetch(`${q}/shops/s1`, { headers: { 'if-none-match': etag! } })).status, 304, 'unchanged → 304');
  });

  t.test('a position the view cannot reach in time is a 504 not_caught_up', async (t) => {
    const res = await get(`${q}/shops/s1?minPosition=999999&waitMs=50`);
    t.same([res.status, res.body.error], [504, 'not_caught_up']);
    t.equal(res.body.position, last);
    t.equal((await get(`${q}/shops/s1?minPosition=abc`)).status, 400);
    t.equal((await get(`${q}/shops/s1?minPosition=1&waitMs=999999`)).status, 400, 'waitMs has a ceiling');
  });

  t.test('orders and reviews flow into the shop, the order history and the stats', async (t) => {
    for (const [id, customer] of [['o1', 'c1'], ['o2', 'c1'], ['o3', 'c2']] as const) {
      await at(`/orders/${id}/place`, { shopId: 's1', customerId: customer, items: [{ menuId: 'm1', quantity: 2 }] });
    }
    await at('/orders/o1/accept', {});
    await at('/orders/o1/deliver', {});
    await at('/orders/o2/cancel', { reason: 'changed my mind' });
    await at('/reviews/r1/post', { orderId: 'o1', customerId: 'c1', rating: 4, text: 'good' });
    await at('/orders/o3/accept', {});
    await at('/orders/o3/deliver', {});
    await at('/reviews/r3/post', { orderId: 'o3', customerId: 'c2', rating: 5, text: 'great' });
    await at('/reviews/r3/delete', {});
    const pos = await at('/reviews/r4/post', { orderId: 'o3', customerId: 'c2', rating: 3, text: 'ok' });
    const wait = { 'x-min-position': String(pos) };

    const shop = await get(`${q}/shops/s1`, wait);
    t.match(shop.body, { orderCount: 3, reviewCount: 2, ratingAverage: 3.5 }, 'a deleted review leaves the average');
    const mine = await get(`${q}/customers/c1/orders`, wait);
    t.same((mine.body.items as Body[]).map((o) => [o.orderId, o.status]), [['o2', 'cancelled'], ['o1', 'delivered']], 'newest first');
    const delivered = await get(`${q}/shops/s1/orders?status=delivered`, wait);
    t.same((delivered.body.items as Body[]).map((o) => o.orderId), ['o3', 'o1']);
    const today = new Date().toISOString().slice(0, 10);
    const stats = await get(`${q}/shops/s1/stats?from=${today}&to=${today}`, wait);
    t.match(stats.body, { totals: { orders: 3, delivered: 2, cancelled: 1, revenue: 2 * 9600 } });
  });

  t.test('the shop list filters, sorts and pages with a cursor', async (t) => {
    let pos = 0;
    for (let i = 0; i < 5; i++) {
      await at(`/shops/list-${i}/register`, { name: `L${i}`, category: i % 2 ? 'pizza' : 'chicken', ownerId: 'u' });
      pos = await at(`/shops/list-${i}/open`, {});
    }
    const wait = { 'x-min-position': String(pos) };
    const chicken = await get(`${q}/shops?category=chicken&sort=newest&limit=2`, wait);
    t.same((chicken.body.items as Body[]).map((s) => s.id), ['list-4', 'list-2']);
    t.type(chicken.body.next, 'string', 'a next cursor when there is more');
    const rest = await get(`${q}/shops?category=chicken&sort=newest&limit=2&cursor=${chicken.body.next as string}`);
    t.same((rest.body.items as Body[]).map((s) => s.id), ['list-0']);
    t.notOk(rest.body.next, 'no cursor on the last page');
    const byOrders = await get(`${q}/shops?sort=orders&limit=1`);
    t.same((byOrders.body.items as Body[]).map((s) => s.id), ['s1'], 's1 has the most orders');
    const bad = await get(`${q}/shops?cursor=bm90LW91cnM`);
    t.same([bad.status, bad.body.error], [400, 'invalid_cursor']);
  });

  t.test('history and state as of a version come from the event store', async (t) => {
    const history = await get(`${q}/shops/s1/history?fromVersion=5&limit=1`);
    t.match(history.body, { id: 's1', events: [{ version: 5, type: 'MenuItemSoldOut' }], nextFromVersion: 6 });
    const state = await get(`${q}/shops/s1/state?atVersion=3`);
    t.match(state.body, { version: 3, state: { status: 'registered', open: true, menu: { m1: { price: 4500 } } } });
    t.notOk('m2' in ((state.body.state as Body).menu as Body), 'm2 was added after version 3');
    t.equal((await get(`${q}/shops/nobody/history`)).status, 404);
    t.equal((await get(`${q}/shops/s1/state?atVersion=999`)).status, 404);
  });

  t.test('bad queries get a 4xx with a code', async (t) => {
    t.same((await get(`${q}/shops?sort=cheapest`)).status, 400);
    t.same((await get(`${q}/shops?limit=1000`)).status, 400);
    t.same((await get(`${q}/shops/bad%20id`)).status, 400);
    t.same((await get(`${q}/shops/s1/stats?from=yesterday`)).status, 400);
    t.same((await get(`${q}/nothing/here`)).body.error, 'not_found');
    t.same((await get(`${q}/shops/ghost`)).status, 404);
  });
});

/** A projection whose fold throws on one shop, to test parking. */
const poison = defineProjection<ShopEvent, { count: number }>({
  name: 'poison',
  version: 1,
  handles: ['ShopRenamed'],
  key: (_e, meta) => meta.id,
  fold(doc, event) {
    if (event.type === 'ShopRenamed' && event.data.name === 'poison') throw new Error('cannot fold poison');
    return { count: (doc?.count ?? 0) + 1 };
  },
});

t.test('a parked event blocks neither later events nor other projections; it can be retried or dropped', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_DATA_DIR: dataDir });
  const projector = await startTestProjector(t, nats.url, dataDir, { projections: [...projections, poison] });
  const cmd = commandUrl(worker!);
  const admin = urlOf(projector.adminApp);
  await post(cmd, '/shops/p1/register', { name: 'P', category: 'c', ownerId: 'u' });
  const bad = await post(cmd, '/shops/p1/rename', { name: 'poison' });
  const good = await post(cmd, '/shops/p1/rename', { name: 'fine' });
  const view = await get(`${urlOf(worker!.queryApp)}/shops/p1`, { 'x-min-position': String(good.body.position) });
  t.equal(view.body.name, 'fine', 'shopDisplay went on');
  const parked = await get(`${admin}/admin/parked?projection=poison`);
  t.match(parked.body.parked, [{ projection: 'poison', position: bad.body.position, type: 'ShopRenamed', error: 'cannot fold poison' }]);
  t.equal(projector.views.get(poison, 'p1')?.count, 1, 'the later event was folded');
  const status = await get(`${admin}/admin/projections`);
  t.match((status.body.projections as Body[]).find((p) => p.name === 'poison'), { state: 'running', parked: 1, position: good.body.position });

  const retry = await post(admin, `/admin/parked/poison/${bad.body.position}/0/retry`, undefined);
  t.same([retry.status, retry.body.error], [409, 'still_failing'], 'a retry that fails again leaves it parked');
  const drop = await fetch(`${admin}/admin/parked/poison/${bad.body.position}/0`, { method: 'DELETE' });
  t.equal(drop.status, 200);
  t.same((await get(`${admin}/admin/parked`)).body.parked, [], 'dropped');
});

t.test('a rebuild swaps a fresh view in under concurrent reads with no errors', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_DATA_DIR: dataDir });
  const projector = await startTestProjector(t, nats.url, dataDir);
  const cmd = commandUrl(worker!);
  const q = urlOf(worker!.queryApp);
  for (let i = 0; i < 30; i++) await post(cmd, `/shops/rb-${i}/register`, { name: `n${i}`, category: 'c', ownerId: 'u' });
  let pos = 0;
  for (let round = 0; round < 100; round++) {
    const renames = await Promise.all(Array.from({ length: 30 }, (_, i) => post(cmd, `/shops/rb-${i}/rename`, { name: `n${round}-${i}` })));
    pos = Math.max(pos, ...renames.map((r) => r.body.position as number));
  }
  const before = await get(`${q}/shops/rb-7`, { 'x-min-position': String(pos) });
  const generation = projector.views.activeGeneration('shopDisplay');

  let reading = true;
  const statuses = new Map<number, number>();
  const readers = Array.from({ length: 4 }, async () => {
    while (reading) {
      const res = await get(`${q}/shops/rb-${Math.floor(Math.random() * 30)}`);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    }
  });
  const started = await post(urlOf(projector.adminApp), '/admin/projections/shopDisplay/rebuild', undefined);
  t.equal(started.status, 202);
  await projector.runner.rebuild('shopDisplay');
  reading = false;
  await Promise.all(readers);
  t.same([...statuses.keys()], [200], `every read during the rebuild succeeded (${[...statuses.values()][0]} reads)`);
  t.equal(projector.views.activeGeneration('shopDisplay'), generation + 1, 'a new generation is active');
  t.same((await get(`${q}/shops/rb-7`)).body, before.body, 'the rebuilt view equals the one it replaced');
  const after = await post(cmd, '/shops/rb-7/rename', { name: 'after rebuild' });
  t.equal((await get(`${q}/shops/rb-7`, { 'x-min-position': String(after.body.position) })).body.name, 'after rebuild', 'live updates reach the new view');
});

t.test('reads keep working from LMDB while NATS is down', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_DATA_DIR: dataDir });
  await startTestProjector(t, nats.url, dataDir);
  const reg = await post(commandUrl(worker!), '/shops/d1/register', { name: 'D', category: 'c', ownerId: 'u' });
  const q = urlOf(worker!.queryApp);
  t.equal((await get(`${q}/shops/d1`, { 'x-min-position': String(reg.body.position) })).status, 200);
  await nats.stop(true);
  const res = await get(`${q}/shops/d1`);
  t.same([res.status, res.body.name], [200, 'D'], 'the display document is served');
  t.equal((await get(`${q}/shops?category=c`)).status, 200, 'lists are served');
  t.equal((await get(`${q}/ready`)).status, 200, 'the query API stays ready');
  const history = await get(`${q}/shops/d1/history`);
  t.same([history.status, history.body.error], [503, 'event_store_unavailable'], 'history needs the store: a 503, not a hang');
});
