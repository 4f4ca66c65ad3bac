import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import t, { type Test } from 'tap';
import { pino } from 'pino';
import { createConverge, type Converge } from '../../src/index.js';
import { connectNats } from '../../src/nats/connection.js';
import { subscribers } from '../../src/integration/subscribers.js';
import { shopPlatform } from '../../app.js';
import { startTestNats, tempDir, type TestNats } from '../helpers/nats.js';
import { eventually } from '../helpers/processes.js';

// The archive on a real nats-server and LMDB (docs/architecture.md, "Archive"): finished
// orders leave EVENTS and NOTIFY, every read still sees them, and views rebuilt from
// nothing across the archive and EVENTS equal the views made before archiving.

const AFTER_MS = 500;
const placeBody = { shopId: 's1', customerId: 'c1', items: [{ menuId: 'm1', quantity: 2 }] };

async function runtime(t: Test, nats: TestNats, dataDir: string): Promise<Converge> {
  const converge = await createConverge(shopPlatform, {
    config: { nats: { url: nats.url }, dataDir, logLevel: 'silent', cluster: { leaseTtlMs: 2000 }, archive: { afterMs: AFTER_MS, intervalMs: 50 } },
    logger: pino({ level: 'silent' }),
  });
  t.teardown(() => converge.stop());
  return converge;
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

/** The subjects a stream holds under a filter, as nats-server counts them. */
async function subjects(nats: TestNats, stream: string, filter: string): Promise<string[]> {
  const link = await connectNats(nats.url, { name: 'test-reader', timeoutMs: 2000, log: pino({ level: 'silent' }) });
  try {
    const info = await link.jsm.streams.info(stream, { subjects_filter: filter });
    return Object.keys(info.state.subjects ?? {}).sort();
  } finally {
    await link.close();
  }
}

/** Every document of the app's views with string keys, by view. */
function allViews(converge: Converge) {
  return Object.fromEntries((shopPlatform.projections ?? []).map((p) => [p.name, converge.views.scan(p as never, undefined, 10_000)]));
}

/** Twelve orders: six delivered, three cancelled, three still placed. */
async function orders(converge: Converge): Promise<string[]> {
  await send(converge, 'shop', 's1', 'RegisterShop', { name: 'K', category: 'korean', ownerId: 'o1' });
  await send(converge, 'shop', 's1', 'OpenShop');
  await send(converge, 'shop', 's1', 'AddMenuItem', { menuId: 'm1', name: 'Kimbap', price: 4500 });
  const ids = Array.from({ length: 12 }, (_, i) => `o${i + 1}`);
  for (const id of ids) await send(converge, 'order', id, 'PlaceOrder', placeBody);
  for (const id of ids.slice(0, 6)) {
    await send(converge, 'order', id, 'AcceptOrder');
    await send(converge, 'order', id, 'DeliverOrder');
  }
  for (const id of ids.slice(6, 9)) await send(converge, 'order', id, 'CancelOrder', { reason: 'changed my mind' });
  await converge.settled();
  return ids;
}

t.test('finished orders leave EVENTS and NOTIFY, and every read, rebuild and command still sees their whole history', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  let converge = await runtime(t, nats, dataDir);
  await converge.archive.pause();
  const ids = await orders(converge);
  const histories = await Promise.all(ids.map((id) => collect(converge.store.read('order', id, 0))));
  const views = allViews(converge);
  t.equal((views['orderHistory'] as unknown[]).length, 12, 'the views hold the twelve orders');
  t.equal((await subjects(nats, 'EVENTS', 'events.order.>')).length, 12, 'before: twelve order subjects in EVENTS');
  t.equal((await subjects(nats, 'NOTIFY', 'notify.order.>')).length, 12, 'and twelve in NOTIFY');

  await converge.archive.resume();
  const live = ['o10', 'o11', 'o12'].map((id) => `events.order.${id}`);
  t.ok(await eventually(async () => (await subjects(nats, 'EVENTS', 'events.order.>')).join() === live.join(), 15_000), 'after: only the three open orders are left in EVENTS');
  t.same(await subjects(nats, 'NOTIFY', 'notify.order.>'), live.map((s) => s.replace('events.', 'notify.')), 'and in NOTIFY');
  t.same(await subjects(nats, 'EVENTS', 'events.~~archive.>'), ['events.~~archive.all'], 'the archive is one subject');
  t.ok(await eventually(async () => (await subjects(nats, 'EVENTS', 'events.~orderAcceptance.>')).length < 12, 5000), 'ended process instances are archived too');
  const status = converge.status().archive!;
  t.ok(status.archivedAggregates >= 9 && status.archivedCommits >= 21, `the status counts what is archived (${status.archivedAggregates} aggregates, ${status.archivedCommits} commits)`);

  t.same(await Promise.all(ids.map((id) => collect(converge.store.read('order', id, 0)))), histories, 'every order reads as it did, positions included');
  const link = await connectNats(nats.url, { name: 'test-subscribers', timeoutMs: 2000, log: pino({ level: 'silent' }) });
  t.teardown(() => link.close());
  const record = await link.jsm.streams.getMessage('EVENTS', { last_by_subj: 'events.~~archive.all' });
  t.equal(record?.data[0], 0x1f, 'an archive record is stored gzipped');
  t.match(JSON.parse(gunzipSync(record!.data).toString('utf8')), { aggregate: '~~archive', events: [{ type: '~Archived' }] }, 'and holds the commit of the archive it is');
  const registry = subscribers(link, converge.store);
  await registry.add('billing', 'new');
  t.same(await registry.republish('billing', { ids: [{ aggregate: 'order', id: 'o2' }] }), { republished: 1 }, 're-publish by id works for an archived order');
  const replayed = await link.jsm.streams.getMessage('REPLAY', { last_by_subj: 'replay.billing.order.o2' });
  t.match(replayed?.json(), { aggregate: 'order', id: 'o2', version: 3, position: histories[1]!.at(-1)!.position }, 'with the notice of its last commit, made from the archive');
  // Nothing moves from here on: the pause is kept in NATS, for the next runtime too.
  await converge.archive.pause();
  const reviewed = await send(converge, 'order', 'o1', 'RecordOrderReview', { reviewId: 'r1', rating: 5 });
  t.equal(reviewed.version, 4, 'a command to an archived order is decided on its whole history');
  t.same(await subjects(nats, 'EVENTS', 'events.order.o1'), ['events.order.o1'], 'and brings it back to EVENTS');
  await converge.settled();
  const afterReview = allViews(converge);
  const archivedCommits = converge.status().archive!.archivedCommits;

  // Views and the archive's index made from nothing: LMDB is deleted, EVENTS and its archive remain.
  await converge.stop();
  rmSync(join(dataDir, 'views'), { recursive: true, force: true });
  converge = await runtime(t, nats, dataDir);
  await converge.settled({ timeoutMs: 20_000 });
  t.same(allViews(converge), afterReview, 'a rebuild across the archive and EVENTS equals the views it replaced');
  t.equal(converge.status().archive!.archiver.state, 'paused', 'the pause holds for the next runtime');
  t.equal(converge.status().archive!.archivedCommits, archivedCommits, 'the index is made again from the archive records');
  t.same(
    (await collect(converge.store.read('order', 'o2', 0))).map((c) => c.position),
    histories[1]!.map((c) => c.position),
    'and an archived order reads from it',
  );
});

t.test('commits whose removal a killed nats-server lost come back, and the archiver removes them again once it reconnects', async (t) => {
  const nats = await startTestNats(t);
  const converge = await runtime(t, nats, tempDir(t));
  await orders(converge);
  t.ok(await eventually(async () => (await subjects(nats, 'EVENTS', 'events.order.>')).length === 3, 15_000), 'the finished orders are archived');
  // nats-server 2.9.10 keeps deletes in memory until it flushes: a kill -9 brings the messages back.
  await nats.stop(true);
  await nats.restart();
  t.ok(await eventually(async () => (await subjects(nats, 'EVENTS', 'events.order.>').catch(() => [])).length === 3, 20_000), 'after the restart, only the open orders are left in EVENTS again');
  t.same((await collect(converge.store.read('order', 'o1', 0))).map((c) => c.version), [1, 2, 3], 'and an archived order reads once, whole');
});
