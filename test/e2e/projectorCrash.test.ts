import t from 'tap';
import { pino } from 'pino';
import { connectNats } from '../../src/nats/connection.js';
import type { Notice } from '../../src/integration/notifier.js';
import { startTestNats, tempDir } from '../helpers/nats.js';
import { startCluster, waitReady } from '../helpers/cluster.js';

// The cluster restarts a projector killed twice and rebuilds four views: minutes on a busy machine.
t.setTimeout(240_000);

type Body = Record<string, unknown>;
// Every request has a timeout: one caught by a kill fails (and the clients go on) instead of hanging the test.
const json = async (url: string, init?: RequestInit) => (await (await fetch(url, { signal: AbortSignal.timeout(10_000), ...init })).json()) as Body;
const post = (url: string, body: object) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) }).then(async (r) => ({
    status: r.status,
    body: (await r.json()) as Body,
  }));

const SHOPS = 12;
const CUSTOMERS = 5;

/** Everything the views serve for the shops and customers of this test; any answer but 200 fails it. */
async function snapshotViews(query: string, wait: number) {
  const h = { headers: { 'x-min-position': String(wait), connection: 'close' } };
  const json = async (url: string, init: RequestInit) => {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
    const body = (await res.json()) as Body;
    if (res.status !== 200) throw new Error(`${url} answered ${res.status}: ${JSON.stringify(body)}`);
    return body;
  };
  const today = new Date().toISOString().slice(0, 10);
  const views: Record<string, unknown> = {};
  for (let s = 0; s < SHOPS; s++) {
    views[`shop ${s}`] = await json(`${query}/shops/k${s}?waitMs=10000`, h);
    views[`orders ${s}`] = await json(`${query}/shops/k${s}/orders?limit=100`, h);
    views[`stats ${s}`] = await json(`${query}/shops/k${s}/stats?from=${today}`, h);
  }
  for (let c = 0; c < CUSTOMERS; c++) views[`customer ${c}`] = await json(`${query}/customers/c${c}/orders?limit=100`, h);
  views['list by orders'] = await json(`${query}/shops?sort=orders&limit=100`, h);
  return views;
}

t.test('kill -9 of the projector mid-stream: every view equals a from-scratch rebuild and no notice is lost', async (t) => {
  const nats = await startTestNats(t);
  const cluster = await startCluster(t, { CONVERGE_NATS_URL: nats.url, CONVERGE_DATA_DIR: tempDir(t), CONVERGE_CLUSTER_WORKERS: '2' });
  await waitReady(cluster, 60_000);
  t.equal((await post(`${cluster.admin}/admin/subscribers`, { name: 'watcher' })).status, 201);
  for (let s = 0; s < SHOPS; s++) {
    await post(`${cluster.base}/shops/k${s}/register`, { name: `K${s}`, category: s % 2 ? 'pizza' : 'korean', ownerId: 'u' });
    await post(`${cluster.base}/shops/k${s}/open`, {});
    await post(`${cluster.base}/shops/k${s}/add-menu-item`, { menuId: 'm', name: 'M', price: 1000 });
  }

  let stop = false;
  let last = 0;
  let accepted = 0;
  const orders = new Set<string>();
  const client = async (c: number) => {
    for (let i = 0; !stop; i++) {
      const order = `o-${c}-${i}`;
      const shop = `k${(c + i) % SHOPS}`;
      const placed = await post(`${cluster.base}/orders/${order}/place`, { shopId: shop, customerId: `c${i % CUSTOMERS}`, items: [{ menuId: 'm', quantity: 1 + (i % 3) }] }).catch(() => undefined);
      if (placed?.status !== 200) continue;
      accepted++;
      orders.add(order);
      const next = await post(`${cluster.base}/orders/${order}/${i % 2 ? 'accept' : 'cancel'}`, i % 2 ? {} : { reason: 'r' }).catch(() => undefined);
      if (next?.status === 200 && i % 2) await post(`${cluster.base}/orders/${order}/deliver`, {}).catch(() => undefined);
      last = Math.max(last, placed.body.position as number, (next?.body.position as number) ?? 0);
    }
  };
  const clients = Array.from({ length: 8 }, (_, c) => client(c));
  const kills: number[] = [];
  for (let k = 0; k < 2; k++) {
    let health: Body | undefined;
    for (let i = 0; i < 100 && !(health?.pid && !kills.includes(health.pid as number)); i++) {
      await new Promise((r) => setTimeout(r, 100));
      health = await json(`${cluster.admin}/health`, { headers: { connection: 'close' } }).catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 500));
    if (health?.pid) {
      process.kill(health.pid as number, 'SIGKILL');
      kills.push(health.pid as number);
    }
  }
  await new Promise((r) => setTimeout(r, 500));
  stop = true;
  await Promise.all(clients);
  t.equal(kills.length, 2, 'the projector was killed twice while commands streamed');
  t.ok(accepted > 50, `orders were placed meanwhile (${accepted})`);

  // The projector killed last is starting again: its admin API answers once it is up.
  for (let i = 0; i < 200 && !(await fetch(`${cluster.admin}/health`).then((r) => r.ok, () => false)); i++) await new Promise((r) => setTimeout(r, 100));
  const before = await snapshotViews(cluster.query, last);
  const projections = ((await json(`${cluster.admin}/admin/projections`)).projections as Body[]).map((p) => p.name as string);
  t.same(projections.sort(), ['converge-lifecycle', 'converge-processes', 'orderHistory', 'shopDisplay', 'shopList', 'shopStats']);
  for (const name of projections) {
    const generation = ((await json(`${cluster.admin}/admin/projections`)).projections as Body[]).find((p) => p.name === name)!.generation as number;
    t.equal((await fetch(`${cluster.admin}/admin/projections/${name}/rebuild`, { method: 'POST' })).status, 202);
    let status: Body | undefined;
    for (let i = 0; i < 600; i++) {
      status = ((await json(`${cluster.admin}/admin/projections`)).projections as Body[]).find((p) => p.name === name)!;
      if (status.generation === generation + 1 && status.state === 'running') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    t.same([status?.generation, status?.state], [generation + 1, 'running'], `${name}: the rebuilt generation swapped in`);
  }
  const after = await snapshotViews(cluster.query, last);
  t.same(after, before, 'nothing lost, nothing applied twice');

  // The notifier lives in the projector process: after its restarts, every aggregate's latest notice is there.
  const link = await connectNats(nats.url, { name: 'watcher', timeoutMs: 5000, log: pino({ level: 'silent' }) });
  t.teardown(() => link.close());
  for (let i = 0; i < 200; i++) {
    const status = await json(`${cluster.admin}/admin/projections`);
    if (((status.notifier as Body).position as number) >= last) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const consumer = await link.js.consumers.get('NOTIFY', 'watcher');
  const latest = new Map<string, Notice>();
  for (let quiet = false; !quiet; ) {
    quiet = true;
    for await (const m of await consumer.fetch({ max_messages: 1000, expires: 1000 })) {
      const notice = m.json<Notice>();
      latest.set(`${notice.aggregate}/${notice.id}`, notice);
      m.ack();
      quiet = false;
    }
  }
  t.same([...orders].filter((o) => !latest.has(`order/${o}`)), [], 'every placed order was announced');
  const stale = Object.entries(before)
    .filter(([k]) => k.startsWith('shop '))
    .filter(([, v]) => latest.get(`shop/${(v as Body).id as string}`)?.version !== (v as Body).version);
  t.same(stale, [], "each shop's latest notice names its current version");

  const totals = Object.entries(before).filter(([k]) => k.startsWith('shop ')).reduce((n, [, v]) => n + ((v as Body).orderCount as number), 0);
  t.equal(totals, accepted, 'every accepted order is counted once in the shop views');
});
