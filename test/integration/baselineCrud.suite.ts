import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import pg from 'pg';
import { buildCrudApp } from '../../baselines/crud/app.js';
import { createSchema } from '../../baselines/crud/schema.js';
import { postgres } from '../helpers/postgres.js';

type Body = Record<string, unknown>;

const connection = postgres;
const database = `crud_test_${randomBytes(6).toString('hex')}`;
const admin = new pg.Client({ ...connection, database: 'postgres' });
await admin.connect();
await admin.query(`CREATE DATABASE ${database}`);
const pool = new pg.Pool({ ...connection, database, max: 10 });
// `end()` resolves before the backends are gone, so DROP … WITH (FORCE) may still cut one; that is expected.
pool.on('error', () => {});
await createSchema(pool);
const app = await buildCrudApp({ pool, logLevel: 'silent' });
t.teardown(async () => {
  await app.close();
  await pool.end();
  await admin.query(`DROP DATABASE ${database} WITH (FORCE)`);
  await admin.end();
});

async function send(path: string, body?: unknown): Promise<{ status: number; body: Body }> {
  const res = await app.inject({ method: 'POST', url: path, ...(body === undefined ? {} : { payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) });
  return { status: res.statusCode, body: res.json() };
}
async function get(path: string): Promise<{ status: number; body: Body }> {
  const res = await app.inject({ method: 'GET', url: path });
  return { status: res.statusCode, body: res.json() };
}
/** Runs a command that must succeed and returns the new version. */
async function ok(path: string, body: unknown = {}): Promise<number> {
  const res = await send(path, body);
  if (res.status !== 200) throw new Error(`${path} answered ${res.status} ${JSON.stringify(res.body)}`);
  return Number(res.body['version']);
}
/** The reason a command was refused with, or its status when it was not a 422. */
async function reason(path: string, body: unknown = {}): Promise<unknown> {
  const res = await send(path, body);
  return res.status === 422 && res.body['code'] === 'rejected' ? res.body['reason'] : `status ${res.status}`;
}
async function openShop(id: string, opts: { category?: string; minOrderAmount?: number; menu?: Array<[string, number]> } = {}) {
  await ok(`/shops/${id}/register`, { name: `Shop ${id}`, category: opts.category ?? 'korean', ownerId: 'u1', minOrderAmount: opts.minOrderAmount ?? 0, deliveryFee: 3000 });
  await ok(`/shops/${id}/open`);
  for (const [menuId, price] of opts.menu ?? []) await ok(`/shops/${id}/add-menu-item`, { menuId, name: `Item ${menuId}`, price });
}
async function deliveredOrder(orderId: string, shopId: string, items: Array<[string, number]>) {
  await ok(`/orders/${orderId}/place`, { shopId, customerId: 'c1', items: items.map(([menuId, quantity]) => ({ menuId, quantity })) });
  await ok(`/orders/${orderId}/accept`);
  await ok(`/orders/${orderId}/deliver`);
}

t.test('a shop from registration to a reviewed delivery, and the display computed from it', async (t) => {
  t.equal(await ok('/shops/s1/register', { name: 'Kimbap Heaven', category: 'korean', ownerId: 'u1', minOrderAmount: 10000, deliveryFee: 3000 }), 1);
  t.equal(await ok('/shops/s1/open'), 2, 'a bodiless command counts as {}');
  t.equal(await ok('/shops/s1/add-menu-item', { menuId: 'm1', name: 'Bibimbap', price: 9000 }), 3);
  t.equal(await ok('/shops/s1/add-menu-item', { menuId: 'm2', name: 'Kimbap', price: 4000 }), 4);
  t.equal(await ok('/shops/s1/add-menu-item', { menuId: 'm3', name: 'Ramen', price: 5000 }), 5);
  t.equal(await ok('/shops/s1/remove-menu-item', { menuId: 'm1' }), 6);
  t.equal(await ok('/shops/s1/add-menu-item', { menuId: 'm1', name: 'Bibimbap', price: 9500 }), 7, 're-added: now last on the menu');
  t.equal(await ok('/shops/s1/mark-menu-sold-out', { menuId: 'm3' }), 8);

  t.equal(await ok('/orders/o1/place', { shopId: 's1', customerId: 'c1', items: [{ menuId: 'm1', quantity: 1 }, { menuId: 'm2', quantity: 2 }] }), 1);
  const [order] = (await pool.query('SELECT total::int, delivery_fee, status FROM orders WHERE id = $1', ['o1'])).rows;
  t.same(order, { total: 17500, delivery_fee: 3000, status: 'placed' }, 'total priced from the menu, fee from the shop');
  const lines = (await pool.query('SELECT menu_id, name, price, quantity FROM order_lines WHERE order_id = $1 ORDER BY line_no', ['o1'])).rows;
  t.same(lines, [{ menu_id: 'm1', name: 'Bibimbap', price: 9500, quantity: 1 }, { menu_id: 'm2', name: 'Kimbap', price: 4000, quantity: 2 }]);
  t.equal(await ok('/orders/o1/accept'), 2);
  t.equal(await ok('/orders/o1/deliver'), 3);
  await deliveredOrder('o2', 's1', [['m1', 2]]);
  await ok('/orders/o3/place', { shopId: 's1', customerId: 'c2', items: [{ menuId: 'm1', quantity: 2 }] });
  t.equal(await ok('/orders/o3/cancel', { reason: 'changed my mind' }), 2);

  t.equal(await ok('/reviews/r1/post', { orderId: 'o1', customerId: 'c1', rating: 5, text: 'great' }), 1);
  await ok('/reviews/r2/post', { orderId: 'o2', customerId: 'c1', rating: 4, text: '' });
  await ok('/reviews/r3/post', { orderId: 'o2', customerId: 'c1', rating: 4, text: 'again' });
  t.match((await get('/shops/s1')).body, { ratingAverage: 4.33, reviewCount: 3 }, '13 / 3 rounded to 2 decimals');
  t.equal(await ok('/reviews/r1/delete'), 2);

  const shop = await get('/shops/s1');
  t.equal(shop.status, 200);
  t.same(shop.body, {
    id: 's1', name: 'Kimbap Heaven', category: 'korean', open: true, minOrderAmount: 10000, deliveryFee: 3000,
    menu: [
      { menuId: 'm2', name: 'Kimbap', price: 4000, soldOut: false },
      { menuId: 'm3', name: 'Ramen', price: 5000, soldOut: true },
      { menuId: 'm1', name: 'Bibimbap', price: 9500, soldOut: false },
    ],
    ratingAverage: 4, reviewCount: 2, orderCount: 3, version: 8,
  }, 'deleted review left out; the cancelled order still counts as placed; orders do not move the shop version');
  t.same(await get('/shops/nope'), { status: 404, body: { code: 'not_found' } });
});

t.test('business rejections are 422 with the deciders\' reasons and change nothing', async (t) => {
  await openShop('s2', { minOrderAmount: 10000, menu: [['a', 5000], ['b', 3000]] });
  await ok('/shops/s2/mark-menu-sold-out', { menuId: 'b' });
  const before = (await get('/shops/s2')).body['version'];
  const items = (...ids: string[]) => ids.map((menuId) => ({ menuId, quantity: 1 }));
  const place = (shopId: string, ...ids: string[]) => ({ shopId, customerId: 'c1', items: items(...ids) });

  t.equal(await reason('/shops/s2/register', { name: 'X', category: 'korean', ownerId: 'u1' }), 'already_registered');
  t.equal(await reason('/shops/ghost/rename', { name: 'X' }), 'shop_not_registered');
  t.equal(await reason('/shops/ghost/open'), 'shop_not_registered');
  t.equal(await reason('/shops/s2/add-menu-item', { menuId: 'a', name: 'A', price: 100 }), 'menu_item_exists');
  t.equal(await reason('/shops/s2/change-menu-price', { menuId: 'zz', price: 100 }), 'menu_not_found');
  t.equal(await reason('/shops/s2/remove-menu-item', { menuId: 'zz' }), 'menu_not_found');
  t.equal((await get('/shops/s2')).body['version'], before, 'rejected commands leave the version alone');

  t.equal(await reason('/orders/x1/place', place('ghost', 'a')), 'shop_not_found');
  t.equal(await reason('/orders/x1/place', place('s2', 'zz', 'a', 'a')), 'menu_not_found');
  t.equal(await reason('/orders/x1/place', place('s2', 'b', 'zz')), 'menu_not_found', 'existence is checked before stock');
  t.equal(await reason('/orders/x1/place', place('s2', 'a', 'b', 'a')), 'menu_sold_out');
  t.equal(await reason('/orders/x1/place', place('s2', 'a')), 'below_min_order');
  t.equal(await ok('/orders/x1/place', place('s2', 'a', 'a')), 1, 'the same item twice reaches the minimum');
  t.equal(await reason('/orders/x1/place', place('s2', 'a', 'a')), 'already_placed');
  await ok('/shops/s2/close');
  t.equal(await reason('/orders/x2/place', place('s2', 'a', 'a')), 'shop_closed');
  t.equal(await reason('/orders/x1/place', place('s2', 'a', 'a')), 'already_placed', 'checked before the shop');

  t.equal(await reason('/orders/ghost/accept'), 'order_not_found');
  t.equal(await reason('/orders/x1/deliver'), 'invalid_transition', 'placed → delivered skips accepted');
  t.equal(await reason('/reviews/v1/post', { orderId: 'x1', customerId: 'c1', rating: 3, text: '' }), 'order_not_delivered');
  t.equal(await reason('/reviews/v1/post', { orderId: 'ghost', customerId: 'c1', rating: 3, text: '' }), 'order_not_delivered');
  await ok('/orders/x1/accept');
  t.equal(await reason('/orders/x1/accept'), 'invalid_transition');
  t.equal(await reason('/orders/x1/reject', { reason: 'too late' }), 'invalid_transition');
  await ok('/orders/x1/deliver');
  t.equal(await reason('/orders/x1/cancel', { reason: 'too late' }), 'invalid_transition', 'delivered is final');
  await ok('/shops/s2/open');
  await ok('/orders/x3/place', place('s2', 'a', 'a'));
  await ok('/orders/x3/accept');
  t.equal(await ok('/orders/x3/cancel', { reason: 'out of rice' }), 3, 'an accepted order can still be cancelled');
  t.equal(await reason('/orders/x3/deliver'), 'invalid_transition');

  await ok('/reviews/v1/post', { orderId: 'x1', customerId: 'c1', rating: 3, text: '' });
  t.equal(await reason('/reviews/v1/post', { orderId: 'x1', customerId: 'c1', rating: 3, text: '' }), 'already_reviewed');
  t.equal(await reason('/reviews/ghost/delete'), 'review_not_found');
  await ok('/reviews/v1/delete');
  t.equal(await reason('/reviews/v1/delete'), 'review_not_found');
  t.equal(await reason('/reviews/v1/post', { orderId: 'x1', customerId: 'c1', rating: 3, text: '' }), 'already_reviewed', 'an id is used once');

  await ok('/shops/full/register', { name: 'Full', category: 'korean', ownerId: 'u1' });
  await pool.query(`INSERT INTO menu_items (shop_id, menu_id, name, price) SELECT 'full', 'm' || i, 'x', 100 FROM generate_series(1, 199) i`);
  t.equal(await ok('/shops/full/add-menu-item', { menuId: 'last', name: 'Last', price: 100 }), 2, 'the 200th item fits');
  t.equal(await reason('/shops/full/add-menu-item', { menuId: 'more', name: 'More', price: 100 }), 'menu_full');
});

t.test('bad input is a 400 and never reaches the database', async (t) => {
  const bad = async (path: string, payload: string, code = 'invalid_command') => {
    const res = await app.inject({ method: 'POST', url: path, payload, headers: { 'content-type': 'application/json' } });
    t.same([res.statusCode, res.json().code], [400, code], `${path} ${payload}`);
    t.type(res.json().message, 'string');
  };
  await bad('/shops/b1/register', '{"name": "X", ');
  await bad('/shops/b1/register', JSON.stringify({ name: 'X', category: 'korean' }));
  await bad('/shops/b1/register', JSON.stringify({ name: 'X', category: 'korean', ownerId: 'u1', extra: 1 }));
  await bad('/shops/b1/register', JSON.stringify({ name: 'X', category: 'korean', ownerId: 'u1', deliveryFee: '3000' }));
  await bad('/shops/s1/change-menu-price', JSON.stringify({ menuId: 'm1', price: 99 }));
  await bad('/shops/s1/open', JSON.stringify({ now: true }));
  await bad(`/shops/${'x'.repeat(65)}/register`, JSON.stringify({ name: 'X', category: 'korean', ownerId: 'u1' }));
  await bad('/shops/b%2E1/register', JSON.stringify({ name: 'X', category: 'korean', ownerId: 'u1' }));
  await bad('/orders/b1/place', JSON.stringify({ shopId: 's1', customerId: 'c1', items: [{ menuId: 'm2', quantity: 1, price: 1 }] }));
  await bad('/orders/b1/place', JSON.stringify({ shopId: 's1', customerId: 'c1', items: [] }));
  await bad('/reviews/b1/post', JSON.stringify({ orderId: 'o1', customerId: 'c1', rating: 6, text: '' }));
  for (const query of ['limit=0', 'limit=101', 'sort=cheapest', 'open=maybe', 'color=red']) {
    const res = await get(`/shops?${query}`);
    t.same([res.status, res.body['code']], [400, 'invalid_query'], query);
  }
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM shops WHERE id = 'b1'`);
  t.equal(rows[0].n, 0);
});

t.test('50 concurrent commands on one shop over HTTP all succeed, one version each', async (t) => {
  await openShop('hot', { menu: [['m1', 1000]] });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const call = (path: string, body: unknown) =>
    fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      .then(async (res) => ({ status: res.status, body: (await res.json()) as Body }));

  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => call('/shops/hot/change-menu-price', { menuId: 'm1', price: 2000 + i })));
  t.same(results.filter((r) => r.status !== 200), [], 'every command succeeded');
  const versions = results.map((r) => Number(r.body['version'])).sort((a, b) => a - b);
  t.same(versions, Array.from({ length: 50 }, (_, i) => i + 4), 'versions 4…53, each given once');
  const last = results.findIndex((r) => r.body['version'] === 53);
  const shop = await call('/shops/hot/rename', { name: 'Hot' });
  t.equal(shop.body['version'], 54);
  t.match((await get('/shops/hot')).body, { version: 54, menu: [{ menuId: 'm1', price: 2000 + last }] }, 'the last writer\'s price stands');

  const places = await Promise.all(Array.from({ length: 20 }, () => call('/orders/race/place', { shopId: 'hot', customerId: 'c1', items: [{ menuId: 'm1', quantity: 1 }] })));
  t.equal(places.filter((r) => r.status === 200).length, 1, 'one placement of an id wins');
  t.same(new Set(places.filter((r) => r.status !== 200).map((r) => r.body['reason'])), new Set(['already_placed']));
  t.equal((await get('/shops/hot')).body['orderCount'], 1);
});

t.test('the shop list filters by category and open, and sorts', async (t) => {
  await openShop('p1', { category: 'pizza', menu: [['m', 1000]] });
  await openShop('p2', { category: 'pizza', menu: [['m', 1000]] });
  await openShop('p3', { category: 'pizza', menu: [['m', 1000]] });
  await deliveredOrder('p1-o1', 'p1', [['m', 1]]);
  await deliveredOrder('p1-o2', 'p1', [['m', 1]]);
  await deliveredOrder('p2-o1', 'p2', [['m', 1]]);
  await ok('/reviews/p1-r1/post', { orderId: 'p1-o1', customerId: 'c1', rating: 3, text: '' });
  await ok('/reviews/p2-r1/post', { orderId: 'p2-o1', customerId: 'c1', rating: 5, text: '' });
  await ok('/shops/p3/close');
  const ids = async (query: string) => ((await get(`/shops?${query}`)).body['items'] as Body[]).map((item) => item['id']);

  t.same(await ids('category=pizza'), ['p3', 'p2', 'p1'], 'newest first by default');
  t.same(await ids('category=pizza&sort=rating'), ['p2', 'p1', 'p3']);
  t.same(await ids('category=pizza&sort=orders'), ['p1', 'p2', 'p3']);
  t.same(await ids('category=pizza&open=false'), ['p3']);
  t.same(await ids('category=pizza&open=true&sort=orders&limit=1'), ['p1']);
  t.same(await ids('category=sushi'), []);
  t.same((await get('/shops?category=pizza&sort=rating&limit=1')).body, {
    items: [{ id: 'p2', name: 'Shop p2', category: 'pizza', open: true, ratingAverage: 5, reviewCount: 1, orderCount: 1 }],
  });
  const all = await ids('sort=orders&limit=100');
  t.equal(all[0], 's1', 's1 has the most placed orders of all shops');
  t.ok(all.includes('p1') && all.includes('hot') && all.length > 6, 'no category: every shop');
  t.equal((await ids('')).length, 7, 'all 7 shops: the default limit is 20');
});

t.test('GET /health names the process', async (t) => {
  t.same((await get('/health')).body, { status: 'ok', pid: process.pid });
});
