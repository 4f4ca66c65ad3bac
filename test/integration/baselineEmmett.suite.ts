import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import pg from 'pg';
import { buildEmmettApp, migrateEmmettSchema } from '../../baselines/emmett/emmett.app.js';
import { postgres } from '../helpers/postgres.js';

const server = `postgres://${postgres.user}@${postgres.host}:${postgres.port}`;
const database = `emmett_test_${randomBytes(6).toString('hex')}`;

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: `${server}/postgres` });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

t.test('the Emmett baseline serves converge routes from PostgreSQL', async (t) => {
  await admin(`CREATE DATABASE ${database}`);
  const connectionString = `${server}/${database}`;
  await migrateEmmettSchema(connectionString);
  const { app, close } = await buildEmmettApp({ connectionString });
  t.teardown(async () => {
    await close();
    await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  });

  const post = async (url: string, body?: object) => {
    const res = await app.inject({ method: 'POST', url, ...(body === undefined ? {} : { payload: body }) });
    return { status: res.statusCode, body: res.json() };
  };
  const get = async (url: string) => {
    const res = await app.inject({ method: 'GET', url });
    return { status: res.statusCode, body: res.json() };
  };
  const ok = async (url: string, body?: object) => {
    const res = await post(url, body);
    if (res.status !== 200) throw new Error(`${url}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.version as number;
  };
  const openShop = async (id: string, category = 'korean') => {
    await ok(`/shops/${id}/register`, { name: `Shop ${id}`, category, ownerId: 'o1', minOrderAmount: 1000, deliveryFee: 3000 });
    await ok(`/shops/${id}/open`);
    await ok(`/shops/${id}/add-menu-item`, { menuId: 'm1', name: 'Bibimbap', price: 8000 });
  };
  const deliveredOrder = async (orderId: string, shopId: string) => {
    await ok(`/orders/${orderId}/place`, { shopId, customerId: 'c1', items: [{ menuId: 'm1', quantity: 1 }] });
    await ok(`/orders/${orderId}/accept`);
    await ok(`/orders/${orderId}/deliver`);
  };

  await t.test('a shop, its orders and reviews show on its display document', async (t) => {
    await openShop('s1');
    await ok('/shops/s1/add-menu-item', { menuId: 'm2', name: 'Kimbap', price: 4000 });
    await ok('/shops/s1/mark-menu-sold-out', { menuId: 'm2' });
    t.equal(await ok('/orders/o1/place', { shopId: 's1', customerId: 'c1', items: [{ menuId: 'm1', quantity: 2 }] }), 1);
    t.equal(await ok('/orders/o1/accept'), 2);
    t.equal(await ok('/orders/o1/deliver'), 3);
    t.equal(await ok('/reviews/r1/post', { orderId: 'o1', customerId: 'c1', rating: 4, text: 'good' }), 1);
    for (const [order, review, rating] of [['o2', 'r2', 5], ['o3', 'r3', 5]] as const) {
      await deliveredOrder(order, 's1');
      await ok(`/reviews/${review}/post`, { orderId: order, customerId: 'c1', rating, text: '' });
    }
    const shop = await get('/shops/s1');
    t.equal(shop.status, 200);
    t.same(shop.body, {
      id: 's1', name: 'Shop s1', category: 'korean', open: true, minOrderAmount: 1000, deliveryFee: 3000,
      menu: [
        { menuId: 'm1', name: 'Bibimbap', price: 8000, soldOut: false },
        { menuId: 'm2', name: 'Kimbap', price: 4000, soldOut: true },
      ],
      ratingAverage: 4.67, reviewCount: 3, orderCount: 3, version: 5,
    }, 'menu in the order added, (4+5+5)/3 rounded to 2 decimals, only shop events move the version');
    await ok('/reviews/r3/delete');
    t.match((await get('/shops/s1')).body, { ratingAverage: 4.5, reviewCount: 2 }, 'a deleted review leaves the average');
    t.same(await get('/shops/nope'), { status: 404, body: { code: 'not_found' } });
  });

  await t.test('decider rejections are 422 with the decider reason', async (t) => {
    t.same(await post('/shops/s1/register', { name: 'Again', category: 'korean', ownerId: 'o1' }), {
      status: 422, body: { code: 'rejected', reason: 'already_registered' },
    });
    await ok('/shops/closed/register', { name: 'Closed', category: 'korean', ownerId: 'o1' });
    await ok('/shops/closed/add-menu-item', { menuId: 'm1', name: 'Soup', price: 5000 });
    const place = await post('/orders/oc/place', { shopId: 'closed', customerId: 'c1', items: [{ menuId: 'm1', quantity: 1 }] });
    t.same(place, { status: 422, body: { code: 'rejected', reason: 'shop_closed' } });
    await ok('/orders/o4/place', { shopId: 's1', customerId: 'c1', items: [{ menuId: 'm1', quantity: 1 }] });
    const review = await post('/reviews/r4/post', { orderId: 'o4', customerId: 'c1', rating: 5, text: '' });
    t.same(review.body, { code: 'rejected', reason: 'order_not_delivered' }, 'the review read the order it names');
  });

  await t.test('bad input is a 400 before any decider runs', async (t) => {
    const raw = await app.inject({ method: 'POST', url: '/shops/s1/rename', headers: { 'content-type': 'application/json' }, payload: '{"name":' });
    t.same([raw.statusCode, raw.json().code], [400, 'invalid_command'], 'malformed JSON');
    t.same((await post('/shops/s1/rename', { name: 'X', extra: 1 })).status, 400, 'unknown property');
    t.same((await post('/shops/s1/change-menu-price', { menuId: 'm1', price: '9000' })).status, 400, 'a string price is not coerced');
    t.same((await post('/shops/s1/change-menu-price', { menuId: 'm1', price: 50 })).status, 400, 'below the minimum price');
    t.same((await post('/shops/bad.id/open')).body.code, 'invalid_command', 'id outside the pattern');
    t.same((await post(`/shops/${'x'.repeat(65)}/open`)).status, 400, 'id too long');
    t.same((await get('/shops?limit=0')).status, 400, 'limit below 1');
    t.same((await get('/shops?sort=cheapest')).status, 400, 'unknown sort');
    t.same((await get('/shops/s1')).body.name, 'Shop s1', 'nothing above changed the shop');
  });

  await t.test('parallel writers over real HTTP all succeed through conflict retries', async (t) => {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    const send = (path: string, body: object) =>
      fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
        .then(async (res) => ({ status: res.status, body: (await res.json()) as { version?: number } }));

    await openShop('hot');
    const prices = await Promise.all(Array.from({ length: 30 }, (_, i) => send('/shops/hot/change-menu-price', { menuId: 'm1', price: 1000 + i })));
    t.same(prices.filter((r) => r.status !== 200), [], 'every price change answered 200');
    const versions = prices.map((r) => r.body.version ?? 0).sort((a, b) => a - b);
    t.same(versions, Array.from({ length: 30 }, (_, i) => i + 4), 'each got its own version after register, open, add-menu-item');
    t.equal((await get('/shops/hot')).body.version, 33, 'the shop ends at 3 + 30');

    const orders = await Promise.all(
      Array.from({ length: 20 }, (_, i) => send(`/orders/hot-${i}/place`, { shopId: 'hot', customerId: 'c', items: [{ menuId: 'm1', quantity: 1 }] })),
    );
    t.same(orders.filter((r) => r.status !== 200), [], 'every order answered 200');
    t.equal((await get('/shops/hot')).body.orderCount, 20, 'concurrent orders at one shop lose no count');
  });

  await t.test('the listing filters by category and open and sorts', async (t) => {
    await openShop('l1', 'listing');
    await openShop('l2', 'listing');
    await ok('/shops/l3/register', { name: 'Shop l3', category: 'listing', ownerId: 'o1' });
    await deliveredOrder('l1-a', 'l1');
    await deliveredOrder('l1-b', 'l1');
    await ok('/reviews/l1-r/post', { orderId: 'l1-a', customerId: 'c1', rating: 3, text: '' });
    await deliveredOrder('l2-a', 'l2');
    await ok('/reviews/l2-r/post', { orderId: 'l2-a', customerId: 'c1', rating: 5, text: '' });
    const ids = async (query: string) => ((await get(`/shops?category=listing&${query}`)).body.items as { id: string }[]).map((s) => s.id);

    t.same(await ids('sort=newest'), ['l3', 'l2', 'l1'], 'newest registered first');
    t.same(await ids(''), ['l3', 'l2', 'l1'], 'newest is the default');
    t.same(await ids('sort=rating'), ['l2', 'l1', 'l3'], 'best rated first');
    t.same(await ids('sort=orders'), ['l1', 'l2', 'l3'], 'most ordered first');
    t.same(await ids('sort=orders&open=true'), ['l1', 'l2'], 'open shops only');
    t.same(await ids('open=false'), ['l3'], 'closed shops only');
    t.same(await ids('sort=orders&limit=1'), ['l1'], 'limit');
    t.same((await get('/shops?category=listing&sort=rating&limit=1')).body.items, [
      { id: 'l2', name: 'Shop l2', category: 'listing', open: true, ratingAverage: 5, reviewCount: 1, orderCount: 1 },
    ], 'an item has the listing fields only');
    const all = (await get('/shops?limit=100')).body.items as { category: string }[];
    t.ok(all.some((s) => s.category === 'korean') && all.some((s) => s.category === 'listing'), 'no category: every shop');
  });
});
