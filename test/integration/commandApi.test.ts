import t from 'tap';
import type { Snapshot } from '../../src/write/snapshots.js';
import { startTestNats, tempDir } from '../helpers/nats.js';
import { commandUrl, post, startWorkers } from '../helpers/workers.js';
import type { Worker } from '../../src/host/worker.js';

async function commits(worker: Worker, aggregate: string, id: string) {
  const all = [];
  for await (const c of worker.store.read(aggregate, id, 0)) all.push(c);
  return all;
}

async function openShop(base: string, id: string, menu: Array<[string, number]> = []) {
  await post(base, `/shops/${id}/register`, { name: `Shop ${id}`, category: 'korean', ownerId: 'o1', minOrderAmount: 10_000 });
  await post(base, `/shops/${id}/open`, undefined);
  for (const [menuId, price] of menu) await post(base, `/shops/${id}/add-menu-item`, { menuId, name: menuId, price });
}

t.test('command API on one worker, real NATS and LMDB', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t, 'converge-data-');
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_DATA_DIR: dataDir });
  const base = commandUrl(worker!);

  t.test('a command answers 200 with id, version, position and event types', async (t) => {
    const res = await post(base, '/shops/s1/register', { name: 'Kimbap Heaven', category: 'korean', ownerId: 'o1' });
    t.equal(res.status, 200);
    t.match(res.body, { id: 's1', version: 1, position: Number, events: ['ShopRegistered'] });
    const again = await post(base, '/shops/s1/register', { name: 'Other', category: 'korean', ownerId: 'o1' });
    t.same([again.status, again.body.error, again.body.reason], [422, 'rejected', 'already_registered']);
  });

  t.test('a retried command takes effect once and gets the same answer', async (t) => {
    const headers = { 'idempotency-key': 'retry-1' };
    const first = await post(base, '/shops/retry/register', { name: 'R', category: 'pizza', ownerId: 'o' }, headers);
    const second = await post(base, '/shops/retry/register', { name: 'R', category: 'pizza', ownerId: 'o' }, headers);
    t.equal(first.status, 200);
    t.same(second, first, 'the replay is the original reply, not already_registered');
    t.equal((await commits(worker!, 'shop', 'retry')).length, 1, 'one commit in EVENTS');
    const reused = await post(base, '/shops/retry/rename', { name: 'X' }, headers);
    t.same([reused.status, reused.body.error], [422, 'idempotency_key_reused']);
  });

  t.test('200 concurrent commands to one shop all take effect, one at a time', async (t) => {
    await openShop(base, 'hot', [['m1', 1000]]);
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => post(base, '/shops/hot/change-menu-price', { menuId: 'm1', price: 1000 + i })),
    );
    t.same(results.filter((r) => r.status !== 200), [], 'every command succeeded');
    const versions = results.map((r) => r.body.version as number).sort((a, b) => a - b);
    t.same(versions, Array.from({ length: 200 }, (_, i) => i + 4), 'each got its own version: a serial order');
    const stored = await commits(worker!, 'shop', 'hot');
    t.equal(stored.length, 203, 'final version = count of commands');
    t.same(stored.map((c) => c.version), Array.from({ length: 203 }, (_, i) => i + 1), 'versions are contiguous in the store');
    const byVersion = new Map(results.map((r) => [r.body.version, r.body.position]));
    t.ok(stored.every((c) => c.version < 4 || byVersion.get(c.version) === c.position), 'replies match the stored commits');
  });

  t.test('commands over 1,000 shops in parallel all succeed', async (t) => {
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => post(base, `/shops/many-${i}/register`, { name: `S${i}`, category: 'c', ownerId: 'o' })),
    );
    t.equal(results.filter((r) => r.status === 200 && r.body.version === 1).length, 1000);
    t.equal(worker!.host.size >= 1000, true, 'one actor per shop');
  });

  t.test('If-Match: a stale command merges when it touches something else, else 409', async (t) => {
    await openShop(base, 'merge', [['a', 1000], ['b', 2000]]);
    const v = (await post(base, '/shops/merge/change-menu-price', { menuId: 'a', price: 1100 })).body.version as number;
    const stale = String(v - 1);
    const other = await post(base, '/shops/merge/change-menu-price', { menuId: 'b', price: 2100 }, { 'if-match': `"${stale}"` });
    t.same([other.status, other.body.version], [200, v + 1], 'item b was not touched since the stale version');
    const same = await post(base, '/shops/merge/change-menu-price', { menuId: 'a', price: 1200 }, { 'if-match': `"${stale}"` });
    t.same([same.status, same.body.error, same.body.currentVersion], [409, 'version_conflict', v + 1]);
    const current = await post(base, '/shops/merge/change-menu-price', { menuId: 'a', price: 1200 }, { 'if-match': String(v + 1) });
    t.equal(current.status, 200, 'the current version always goes ahead');
    const future = await post(base, '/shops/merge/rename', { name: 'Z' }, { 'if-match': '"999"' });
    t.equal(future.status, 409, 'a version from the future conflicts');
  });

  t.test('placing an order reads the shop as it is now, not a lagging view', async (t) => {
    await openShop(base, 'food', [['kimbap', 4000], ['ramen', 5000]]);
    const place = (id: string, items: Array<{ menuId: string; quantity: number }>) =>
      post(base, `/orders/${id}/place`, { shopId: 'food', customerId: 'c1', items });
    await post(base, '/shops/food/mark-menu-sold-out', { menuId: 'ramen' });
    t.equal((await place('o1', [{ menuId: 'ramen', quantity: 2 }, { menuId: 'kimbap', quantity: 2 }])).body.reason, 'menu_sold_out');
    t.equal((await place('o2', [{ menuId: 'kimbap', quantity: 1 }])).body.reason, 'below_min_order');
    t.equal((await place('o3', [{ menuId: 'nope', quantity: 3 }])).body.reason, 'menu_not_found');
    t.equal((await post(base, '/orders/o4/place', { shopId: 'ghost', customerId: 'c1', items: [{ menuId: 'x', quantity: 1 }] })).body.reason, 'shop_not_found');
    const ok = await place('o5', [{ menuId: 'kimbap', quantity: 3 }]);
    t.same([ok.status, ok.body.events], [200, ['OrderPlaced']]);
    const [placed] = await commits(worker!, 'order', 'o5');
    t.match(placed?.events[0]?.data, { total: 12_000 }, 'the total comes from the shop prices');
    await post(base, '/shops/food/close', undefined);
    t.equal((await place('o6', [{ menuId: 'kimbap', quantity: 3 }])).body.reason, 'shop_closed');
  });

  t.test('an order moves only along its lifecycle, and a review needs a delivered order', async (t) => {
    await openShop(base, 'life', [['m', 10_000]]);
    await post(base, '/orders/L1/place', { shopId: 'life', customerId: 'c9', items: [{ menuId: 'm', quantity: 1 }] });
    const review = { orderId: 'L1', customerId: 'c9', rating: 5, text: 'great' };
    t.equal((await post(base, '/reviews/r1/post', review)).body.reason, 'order_not_delivered');
    t.equal((await post(base, '/orders/L1/deliver', {})).body.reason, 'invalid_transition', 'not accepted yet');
    t.equal((await post(base, '/orders/L1/accept', {})).status, 200);
    t.equal((await post(base, '/orders/L1/deliver', {})).status, 200);
    t.equal((await post(base, '/orders/L1/cancel', { reason: 'late' })).body.reason, 'invalid_transition');
    t.equal((await post(base, '/reviews/r1/post', review)).status, 200);
    t.equal((await post(base, '/reviews/r1/post', review)).body.reason, 'already_reviewed');
    t.equal((await post(base, '/reviews/r1/delete', {})).status, 200);
    t.equal((await post(base, '/reviews/r1/delete', {})).body.reason, 'review_not_found');
  });

  t.test('actors snapshot, passivate when idle, and come back from the snapshot with the same state', async (t) => {
    await openShop(base, 'snap', [['m', 1000]]);
    for (let i = 0; i < 45; i++) await post(base, '/shops/snap/change-menu-price', { menuId: 'm', price: 2000 + i });
    const before = await worker!.host.readState('shop', 'snap');
    const stopped = worker!.host.passivateIdle(Date.now() + 10 * 60_000);
    t.ok(stopped >= 1, 'idle actors were stopped');

    // The worker's snapshot store (an LMDB environment is opened once per process).
    const snapshots = worker!.snapshots;
    let saved: Snapshot | undefined;
    for (let i = 0; i < 100 && saved?.memory.version !== before.version; i++) {
      saved = snapshots.get('shop', 'snap');
      if (saved?.memory.version !== before.version) await new Promise((r) => setTimeout(r, 20));
    }
    t.same([saved?.memory.version, saved?.memory.position, saved?.memory.state], [before.version, before.position, before.state], 'passivation wrote a snapshot of the last version');

    // Record where each replay of this shop starts; the cold start must start at the snapshot.
    const replays: number[] = [];
    const read = worker!.store.read.bind(worker!.store);
    worker!.store.read = (aggregate, id, afterPosition) => {
      if (aggregate === 'shop' && id === 'snap') replays.push(afterPosition);
      return read(aggregate, id, afterPosition);
    };
    t.teardown(() => void (worker!.store.read = read));
    const after = await worker!.host.readState('shop', 'snap');
    t.same(after, before, 'state, version and position are the same after rehydration');
    t.same(replays, [before.position], 'the cold start read only the commits after the snapshot');
    const next = await post(base, '/shops/snap/change-menu-price', { menuId: 'm', price: 9999 });
    t.equal(next.body.version, before.version + 1);
  });

  t.test('docs, health and readiness', async (t) => {
    const page = await fetch(`${base}/docs`);
    t.match([page.status, page.headers.get('content-type'), await page.text()], [200, /^text\/html/, /swagger-ui/], '/docs is the browsable page');
    const docs = (await (await fetch(`${base}/docs/json`)).json()) as { openapi: string; paths: Record<string, unknown> };
    t.match(docs.openapi, /^3\./);
    t.ok(docs.paths['/shops/{id}/change-menu-price'], 'every command is documented');
    t.ok(docs.paths['/orders/{id}/place']);
    t.equal((await fetch(`${base}/health`)).status, 200);
    t.equal((await fetch(`${base}/ready`)).status, 200);
  });
});

t.test('a full mailbox answers 429 and loses nothing it accepted', async (t) => {
  const nats = await startTestNats(t);
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_ACTORS_MAILBOX_SIZE: '2' });
  const base = commandUrl(worker!);
  await openShop(base, 'busy', [['m', 1000]]);
  // With the broker paused, the first command waits in its append, so the mailbox fills
  // however fast this machine is; the broker comes back well within the publish timeout.
  nats.signal('SIGSTOP');
  let answered = 0;
  const pending = Array.from({ length: 60 }, (_, i) =>
    post(base, '/shops/busy/change-menu-price', { menuId: 'm', price: 1000 + i }).finally(() => answered++),
  );
  for (let waited = 0; answered < 58 && waited < 1000; waited += 10) await new Promise((r) => setTimeout(r, 10));
  nats.signal('SIGCONT');
  const results = await Promise.all(pending);
  const refused = results.filter((r) => r.status === 429);
  t.ok(refused.length > 0, `commands past the mailbox's 2 places were refused (${refused.length} of 60)`);
  t.same([...new Set(results.map((r) => r.status))].sort(), [200, 429], 'the others were accepted, and nothing else was answered');
  t.equal(refused[0]?.body.error, 'overloaded', 'a refusal says overloaded');
  const accepted = results.filter((r) => r.status === 200).length;
  t.equal((await commits(worker!, 'shop', 'busy')).length, 3 + accepted, 'every 200 is in the store');
});

t.test('bearer tokens guard commands when configured', async (t) => {
  const nats = await startTestNats(t);
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_HTTP_TOKENS: 'let-me-in-please' });
  const base = commandUrl(worker!);
  const body = { name: 'A', category: 'c', ownerId: 'o' };
  const none = await post(base, '/shops/a/register', body);
  t.same([none.status, none.body.error], [401, 'unauthorized']);
  t.equal((await post(base, '/shops/a/register', body, { authorization: 'Bearer wrong-token-x' })).status, 401);
  t.equal((await post(base, '/shops/a/register', body, { authorization: 'Bearer let-me-in-please' })).status, 200);
  t.equal((await fetch(`${base}/health`)).status, 200, 'health needs no token');
});
