import { spawn } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { shopDisplay } from '../../projections/shopDisplay/shopDisplay.projection.js';
import { viewsOf } from '../../src/host/app.js';
import type { StoredEvent } from '../../src/core/aggregate.js';
import type { Projector } from '../../src/host/projector.js';
import type { VerifyReport } from '../../src/read/verify.js';
import { decodeDoc, encodeDoc } from '../../src/read/viewStore.js';
import { pino } from 'pino';
import { connectNats } from '../../src/nats/connection.js';
import { startTestNats, tempDir } from '../helpers/nats.js';
import { commandUrl, get, post, startTestProjector, startWorkers, urlOf } from '../helpers/workers.js';
import { shopPlatform } from '../../app.js';

const { projections } = shopPlatform;

const CLI = join(import.meta.dirname, '../../dist/src/host/cli.js');

async function verify(admin: string, body: unknown = {}): Promise<{ status: number; body: VerifyReport & { error?: string } }> {
  const res = await fetch(`${admin}/admin/verify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as VerifyReport & { error?: string } };
}

/** Runs `converge verify` against a projector's admin port, as an operator would. */
function cli(adminPort: number, args: string[] = []): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'verify', ...args], {
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', CONVERGE_HTTP_ADMIN_PORT: String(adminPort) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

const report = (r: VerifyReport, name: string) => r.projections.find((p) => p.name === name)!;

/** Shops with menus, an order and its delivery, so that every view has documents and index entries. */
async function populate(cmd: string): Promise<number> {
  let last = 0;
  const at = async (path: string, body: object) => {
    const res = await post(cmd, path, body);
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(res.body)}`);
    last = res.body.position as number;
  };
  for (const id of ['s1', 's2', 's3']) {
    await at(`/shops/${id}/register`, { name: `Shop ${id}`, category: id === 's3' ? 'chinese' : 'korean', ownerId: 'u1' });
    await at(`/shops/${id}/open`, {});
    await at(`/shops/${id}/add-menu-item`, { menuId: 'm1', name: 'Kimbap', price: 4500 });
  }
  await at('/orders/o1/place', { shopId: 's1', customerId: 'c1', items: [{ menuId: 'm1', quantity: 3 }] });
  await at('/orders/o1/accept', {});
  await at('/orders/o1/deliver', {});
  return last;
}

/**
 * The stream's last position once the reactions have handled everything: the order's
 * process appends its decisions after the commands that caused them, so the last command's
 * position is not the stream's.
 */
async function settledPosition(natsUrl: string, admin: string): Promise<number> {
  const link = await connectNats(natsUrl, { name: 'verify-test', timeoutMs: 5000, log: pino({ level: 'silent' }) });
  try {
    for (let i = 0; i < 250; i++) {
      const last = (await link.jsm.streams.info('EVENTS')).state.last_seq;
      const { reactions } = (await (await fetch(`${admin}/admin/reactions`)).json()) as { reactions: { position: number }[] };
      if (reactions.length > 0 && reactions.every((r) => r.position === last) && (await link.jsm.streams.info('EVENTS')).state.last_seq === last) return last;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('the reactions did not settle');
  } finally {
    await link.close();
  }
}

async function caughtUp(q: string, projector: Projector, last: number): Promise<void> {
  await get(`${q}/shops/s1?waitMs=5000`, { 'x-min-position': String(last) });
  for (let i = 0; i < 200 && projector.runner.status().some((s) => s.position < last); i++) await new Promise((r) => setTimeout(r, 20));
}

t.test('verify against the event store', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_DATA_DIR: dataDir });
  const projector = await startTestProjector(t, nats.url, dataDir);
  const admin = urlOf(projector.adminApp);
  const adminPort = Number(new URL(admin).port);
  await populate(commandUrl(worker!));
  const last = await settledPosition(nats.url, admin);
  await caughtUp(urlOf(worker!.queryApp), projector, last);

  t.test('verify says ok on a correct store, and the CLI exits 0', async (t) => {
    const res = await verify(admin);
    t.equal(res.status, 200);
    t.equal(res.body.ok, true, JSON.stringify(res.body));
    t.equal(res.body.streamLastPosition, last);
    t.same(res.body.checkpoints, { ok: true, problems: [] });
    t.same(res.body.projections.map((p) => p.name).sort(), viewsOf(shopPlatform).map((p) => p.name).sort(), 'every projection is reported, converge-processes (the timers\' due index) among them');
    for (const p of res.body.projections) {
      t.same([p.position, p.differenceCount, p.indexDifferences, p.differences], [last, 0, 0, []], `${p.name} matches the fold`);
      t.equal(p.checked, p.documents, `${p.name}: every document was checked`);
    }
    t.equal(report(res.body, 'shopDisplay').documents, 3);
    const run = await cli(adminPort);
    t.equal(run.code, 0, run.out);
    t.match(run.out, /shopDisplay: ok at position \d+ of \d+, 3 of 3 documents checked/);
  });

  t.test('a sample checks documents picked from the view and from the fold', async (t) => {
    const res = await verify(admin, { sample: 1 });
    t.equal(res.body.ok, true);
    const display = report(res.body, 'shopDisplay');
    t.ok(display.checked >= 1 && display.checked <= 2, `checked ${display.checked} of 3`);
  });

  t.test('bad verify input is a 400 invalid_request', async (t) => {
    for (const body of [{ sample: 0 }, { sample: 1.5 }, { sample: 'x' }, { samples: 3 }, []]) {
      const res = await verify(admin, body);
      t.same([res.status, res.body.error], [400, 'invalid_request'], JSON.stringify(body));
    }
    t.equal((await cli(adminPort, ['--sample', 'abc'])).code, 2, 'the CLI refuses a bad --sample with its usage');
    const bare = await fetch(`${admin}/admin/verify`, { method: 'POST' });
    t.same([bare.status, ((await bare.json()) as VerifyReport).ok], [200, true], 'no body at all verifies every document');
  });

  t.test('verify finds documents and an index entry corrupted in LMDB, and the CLI exits 1', async (t) => {
    const { views } = projector;
    const display = views.lmdb('shopDisplay', views.activeGeneration('shopDisplay'));
    const s1 = decodeDoc<{ name: string }>(display.docs.get('s1')!);
    const s2 = decodeDoc(display.docs.get('s2')!);
    const removed = [...display.index.getKeys()].find((k) => k[k.length - 1] === 's3')!;
    t.ok(removed, 's3 has an index entry to remove');
    views.env.transactionSync(() => {
      display.docs.putSync('s1', encodeDoc({ ...s1, name: 'Tampered' }, 1));
      display.docs.removeSync('s2');
      display.docs.putSync('ghost', encodeDoc({ id: 'ghost' }, 1));
      display.index.removeSync(removed);
    });

    const res = await verify(admin);
    t.equal(res.status, 200);
    t.equal(res.body.ok, false);
    const d = report(res.body, 'shopDisplay');
    t.equal(d.differenceCount, 3);
    t.match(d.differences.find((x) => x.key === 's1'), { kind: 'different', expected: { name: 'Shop s1' }, actual: { name: 'Tampered' } }, 'a changed document');
    t.match(d.differences.find((x) => x.key === 's2'), { kind: 'missing', expected: s2 }, 'a deleted document');
    t.match(d.differences.find((x) => x.key === 'ghost'), { kind: 'extra', actual: { id: 'ghost' } }, 'a document the fold does not have');
    // s1's entries moved with its name, s2's are now dangling, and the one removed is missing.
    t.ok(d.indexDifferences >= 1, `index differences: ${d.indexDifferences}`);
    t.equal(report(res.body, 'shopList').differenceCount, 0, 'other views are unaffected');

    const run = await cli(adminPort);
    t.equal(run.code, 1, 'the CLI exits 1');
    t.match(run.out, /shopDisplay: DIFFERS .* 3 document differences/);
    t.match(run.out, /shopDisplay different "s1"/);
    t.match(run.out, /verify: NOT ok/);
  });

  t.test('an index entry removed on its own is found', async (t) => {
    const { views } = projector;
    const orders = views.lmdb('orderHistory', views.activeGeneration('orderHistory'));
    const entry = [...orders.index.getKeys()][0]!;
    views.env.transactionSync(() => orders.index.removeSync(entry));
    const res = await verify(admin);
    t.same([report(res.body, 'orderHistory').differenceCount, report(res.body, 'orderHistory').indexDifferences], [0, 1]);
    const sampled = await verify(admin, { sample: 10 });
    t.equal(report(sampled.body, 'orderHistory').indexDifferences, 1, 'a sample finds it through the document it belongs to');
  });

  t.test('a checkpoint past the stream shows in the checkpoints', async (t) => {
    const { views } = projector;
    const gen = views.activeGeneration('shopStats');
    views.env.transactionSync(() => {
      views.setCheckpoint('~notifier', 0, last + 100);
      views.setCheckpoint('shopStats', gen, last + 50);
    });
    const res = await verify(admin);
    t.equal(res.status, 200, 'verify answers even when a view is past the stream');
    t.equal(res.body.checkpoints.ok, false);
    t.equal(res.body.ok, false);
    t.match(res.body.checkpoints.problems.sort(), [
      new RegExp(`shopStats is at position ${last + 50}, past the stream's last position ${last}`),
      new RegExp(`the notifier is at position ${last + 100}, past the stream's last position ${last}`),
    ]);
    views.env.transactionSync(() => {
      views.setCheckpoint('~notifier', 0, last);
      views.setCheckpoint('shopStats', gen, last);
    });
  });

  t.test('verify without NATS is a 503 event_store_unavailable', async (t) => {
    await nats.stop();
    for (let i = 0; i < 100 && projector.link.isConnected(); i++) await new Promise((r) => setTimeout(r, 20));
    const res = await verify(admin);
    t.same([res.status, res.body.error], [503, 'event_store_unavailable']);
  });
});

t.test('an event parked live is left out of the fold too', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_DATA_DIR: dataDir });
  // Fails once only: the live fold parks the rename, a fold from scratch would apply it.
  let failures = 1;
  const flaky = {
    ...shopDisplay,
    fold: (doc: never, event: StoredEvent, meta: never) => {
      if (event.type === 'ShopRenamed' && failures-- > 0) throw new Error('flaky');
      return shopDisplay.fold(doc, event as never, meta);
    },
  };
  const projector = await startTestProjector(t, nats.url, dataDir, { projections: projections.map((p) => (p.name === 'shopDisplay' ? flaky : p)) });
  const cmd = commandUrl(worker!);
  await post(cmd, '/shops/p1/register', { name: 'Before', category: 'korean', ownerId: 'u1' });
  const renamed = await post(cmd, '/shops/p1/rename', { name: 'After' });
  await caughtUp(urlOf(worker!.queryApp), projector, renamed.body.position as number);
  t.equal(projector.views.parked('shopDisplay').length, 1, 'the rename is parked');
  t.equal(projector.views.get(flaky, 'p1')?.name, 'Before');

  const res = await verify(urlOf(projector.adminApp));
  t.equal(res.body.ok, true, JSON.stringify(report(res.body, 'shopDisplay')));
});

t.test('verify compares the view as of its checkpoint while commands keep changing it', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_DATA_DIR: dataDir });
  const projector = await startTestProjector(t, nats.url, dataDir);
  const cmd = commandUrl(worker!);
  await populate(cmd);
  // History for the fold to read, so that the view moves on while verify folds.
  for (let i = 0; i < 300; i++) await post(cmd, '/shops/s2/rename', { name: `Shop s2 ${i}` });
  let writing = true;
  const writer = (async () => {
    for (let i = 0; writing; i++) await post(cmd, '/shops/s1/rename', { name: `Busy ${i}` });
  })();
  await new Promise((r) => setTimeout(r, 100));
  const before = projector.runner.status().find((s) => s.name === 'shopDisplay')!.position;
  const res = await verify(urlOf(projector.adminApp));
  writing = false;
  await writer;
  const after = projector.runner.status().find((s) => s.name === 'shopDisplay')!.position;
  t.ok(after > report(res.body, 'shopDisplay').position, 'the view moved on while verify ran');
  t.ok(report(res.body, 'shopDisplay').position >= before);
  t.equal(res.body.ok, true, JSON.stringify(res.body.projections.map((p) => p.differences)));
});
