import t from 'tap';
import { join } from 'node:path';
import { startCluster, waitReady } from '../helpers/cluster.js';
import { tempDir } from '../helpers/nats.js';

// The examples run as clusters, as `npm run example:cart` and `npm run example:coupons` start
// them: runConverge with the embedded nats-server, from their built entry files, on free ports
// and a temp data dir. The same apps run in-process in their own tests (test/examples).

const built = (example: string) => join(import.meta.dirname, '../../dist/examples', example, 'main.js');
t.setTimeout(180_000);

async function send(url: string, method: string, body?: unknown) {
  const res = await fetch(url, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

t.test('the cart example runs on runConverge: its own routes, the server-side price list, read-your-writes, its expiry from CONVERGE_CARTS_EXPIRE_AFTER_MS, a clean stop', async (t) => {
  const cluster = await startCluster(t, { CONVERGE_DATA_DIR: tempDir(t), CONVERGE_CARTS_EXPIRE_AFTER_MS: '2000' }, built('cart'));
  await waitReady(cluster, 60_000);
  const id = '0b1c2d3e-4f50-4a2e-9a2f-3f1c9a2e6b7d';
  const opened = await send(`${cluster.base}/carts/${id}`, 'POST', { clientId: 'c1' });
  t.same([opened.status, opened.body?.events], [201, ['CartOpened']], 'POST /carts/:id answers 201');
  const added = await send(`${cluster.base}/carts/${id}/items`, 'POST', { productId: 'kimbap', quantity: 2 });
  t.equal(added.status, 204, 'an item is added with 204');
  const position = added.headers.get('x-position');
  t.match(position, /^\d+$/, 'the 204 carries the position in X-Position');
  const cart = await fetch(`${cluster.query}/carts/${id}`, { headers: { 'x-min-position': position! } }).then((r) => r.json() as Promise<Record<string, unknown>>);
  t.match(cart, { id, clientId: 'c1', status: 'open', totalAmount: 7000, items: [{ productId: 'kimbap', quantity: 2, unitPrice: 3500 }] }, 'priced from the catalogue on the server');
  const unknown = await send(`${cluster.base}/carts/${id}/items`, 'POST', { productId: 'pizza', quantity: 1 });
  t.same([unknown.status, unknown.body?.reason], [422, 'product_not_found']);
  t.equal((await send(`${cluster.base}/carts/${id}/items/kimbap`, 'DELETE')).status, 204, 'DELETE /carts/:id/items/:productId');
  // The app's own setting reaches its process in the cluster: the cart is cancelled 2 s after its last change.
  let status: unknown;
  for (let i = 0; i < 100 && status !== 'cancelled'; i++) {
    await new Promise((r) => setTimeout(r, 200));
    status = ((await send(`${cluster.query}/carts/${id}`, 'GET')).body ?? {})['status'];
  }
  t.equal(status, 'cancelled', 'left untouched for carts.expireAfterMs, the cart is cancelled by its expiry process');
  cluster.proc.kill('SIGTERM');
  t.equal(await cluster.exited, 0, 'it drains and exits 0 on SIGTERM');
});

t.test('the coupons example runs on runConverge, dating redemptions by the server clock', async (t) => {
  const cluster = await startCluster(t, { CONVERGE_DATA_DIR: tempDir(t) }, built('coupons'));
  await waitReady(cluster, 60_000);
  const terms = { shopId: 's1', code: 'WELCOME', discount: 1000, minOrderAmount: 0, expiresAt: '2999-01-01T00:00:00Z', maxRedemptions: 5 };
  t.equal((await send(`${cluster.base}/coupons/k1/issue`, 'POST', terms)).status, 200);
  const redeemed = await send(`${cluster.base}/coupons/k1/redeem`, 'POST', { customerId: 'c1', orderId: 'o1' });
  t.equal(redeemed.status, 200, 'redeemed with no redeemedAt in the body');
  const history = await fetch(`${cluster.query}/coupons/k1/history`).then((r) => r.json() as Promise<{ events: Array<{ type: string; data: { redeemedAt?: string } }> }>);
  const at = Date.parse(history.events[1]?.data.redeemedAt ?? '');
  t.ok(Math.abs(at - Date.now()) < 60_000, 'redeemedAt is the time the server received the command');
  cluster.proc.kill('SIGTERM');
  t.equal(await cluster.exited, 0);
});
