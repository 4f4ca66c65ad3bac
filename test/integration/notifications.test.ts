import t, { type Test } from 'tap';
import { pino } from 'pino';
import { connectNats, type NatsLink } from '../../src/nats/connection.js';
import type { Notice } from '../../src/integration/notifier.js';
import { startTestNats, tempDir } from '../helpers/nats.js';
import { commandUrl, get, post, startTestProjector, startWorkers, urlOf } from '../helpers/workers.js';

type Body = Record<string, unknown>;

/** Pulls whatever a durable consumer has for us (until it goes quiet), acking each. */
async function drain(link: NatsLink, stream: string, name: string): Promise<{ subject: string; notice: Notice }[]> {
  const consumer = await link.js.consumers.get(stream, name);
  const out: { subject: string; notice: Notice }[] = [];
  for (;;) {
    const batch = await consumer.fetch({ max_messages: 1000, expires: 1000 });
    let n = 0;
    for await (const m of batch) {
      out.push({ subject: m.subject, notice: m.json<Notice>() });
      m.ack();
      n++;
    }
    if (n === 0) return out;
  }
}

async function setup(t: Test) {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_DATA_DIR: dataDir });
  const projector = await startTestProjector(t, nats.url, dataDir);
  const link = await connectNats(nats.url, { name: 'subscriber', timeoutMs: 5000, log: pino({ level: 'silent' }) });
  t.teardown(() => link.close());
  const admin = urlOf(projector.adminApp);
  const caughtUp = async (position: number) => {
    for (let i = 0; i < 400 && projector.notifier!.position() < position; i++) await new Promise((r) => setTimeout(r, 25));
  };
  return { nats, worker: worker!, projector, link, admin, cmd: commandUrl(worker!), query: urlOf(worker!.queryApp), caughtUp };
}

t.test('notices are zero-payload, and the latest one per aggregate names its current version', async (t) => {
  const { link, admin, cmd, caughtUp } = await setup(t);
  t.equal((await post(admin, '/admin/subscribers', { name: 'live' })).status, 201);
  await post(cmd, '/shops/n1/register', { name: 'N', category: 'c', ownerId: 'u' });
  await post(cmd, '/shops/n1/open', {});
  const last = await post(cmd, '/shops/n1/rename', { name: 'N2' });
  await caughtUp(last.body.position as number);
  const got = await drain(link, 'NOTIFY', 'live');
  t.ok(got.length >= 1, `notices arrived (${got.length})`);
  t.ok(got.every((g) => g.subject === 'notify.shop.n1'), 'on the aggregate subject');
  t.same(Object.keys(got[0]!.notice).sort(), ['aggregate', 'at', 'id', 'position', 'version'], 'nothing but what changed');
  t.match(got[got.length - 1]!.notice, { aggregate: 'shop', id: 'n1', version: 3, position: last.body.position });
});

t.test('a subscriber that was down through 10,000 changes to 1,000 shops gets one notice per shop and ends equal to the views', async (t) => {
  const { link, admin, cmd, query, caughtUp } = await setup(t);
  await post(admin, '/admin/subscribers', { name: 'search' });
  let last = 0;
  const shops = Array.from({ length: 1000 }, (_, i) => `d${i}`);
  for (let i = 0; i < shops.length; i += 100) {
    const batch = await Promise.all(shops.slice(i, i + 100).map((s) => post(cmd, `/shops/${s}/register`, { name: s, category: 'c', ownerId: 'u' })));
    last = Math.max(last, ...batch.map((r) => r.body.position as number));
  }
  for (let round = 0; round < 9; round++) {
    for (let i = 0; i < shops.length; i += 200) {
      const batch = await Promise.all(shops.slice(i, i + 200).map((s) => post(cmd, `/shops/${s}/rename`, { name: `${s}-${round}` })));
      t.equal(batch.filter((r) => r.status !== 200).length, 0);
      last = Math.max(last, ...batch.map((r) => r.body.position as number));
    }
  }
  await caughtUp(last);
  const listed = ((await get(`${admin}/admin/subscribers`)).body.subscribers as Body[]).find((s) => s.name === 'search');
  t.match(listed, { name: 'search', pending: 1000 }, 'one pending notice per changed shop');

  const got = await drain(link, 'NOTIFY', 'search');
  const ids = got.map((g) => g.notice.id);
  t.equal(got.length, 1000, 'at most one notice per changed shop');
  t.equal(new Set(ids).size, 1000, 'every changed shop once');
  t.ok(got.every((g) => g.notice.version === 10), 'each notice names the final version');

  const copy = new Map<string, unknown>();
  for (let i = 0; i < ids.length; i += 500) {
    const res = await post(query, '/import/shops/batch', { ids: ids.slice(i, i + 500) }, { 'x-min-position': String(last) });
    for (const doc of res.body.items as Body[]) copy.set(doc.id as string, doc);
  }
  t.equal(copy.size, 1000, 'the batch import returned every shop');
  let same = 0;
  for (const id of ids) if (JSON.stringify((await get(`${query}/shops/${id}`)).body) === JSON.stringify(copy.get(id))) same++;
  t.equal(same, 1000, 'the local copy equals the views');
  t.equal(((await get(`${admin}/admin/subscribers`)).body.subscribers as Body[])[0]!.pending, 0, 'nothing left pending');
});

t.test('a re-publish reaches only the named subscriber', async (t) => {
  const { link, admin, cmd, caughtUp } = await setup(t);
  for (const name of ['ads', 'recs']) await post(admin, '/admin/subscribers', { name });
  const before = new Date(Date.now() - 1000).toISOString();
  let last = 0;
  for (const s of ['x1', 'x2', 'x3']) last = (await post(cmd, `/shops/${s}/register`, { name: s, category: 'c', ownerId: 'u' })).body.position as number;
  await caughtUp(last);
  t.equal((await drain(link, 'NOTIFY', 'ads')).length, 3);
  t.equal((await drain(link, 'NOTIFY', 'recs')).length, 3);

  const byIds = await post(admin, '/admin/subscribers/ads/republish', { ids: [{ aggregate: 'shop', id: 'x2' }, { aggregate: 'shop', id: 'nope' }] });
  t.match(byIds.body, { republished: 1, missing: ['shop/nope'] });
  const replayed = await drain(link, 'REPLAY', 'ads');
  t.same(replayed.map((r) => [r.subject, r.notice.id]), [['replay.ads.shop.x2', 'x2']], 'ads got x2 on its own replay subject');
  t.same(await drain(link, 'REPLAY', 'recs'), [], 'recs got nothing on REPLAY');

  const since = await post(admin, '/admin/subscribers/ads/republish', { since: before });
  t.match(since, { status: 200, body: { republished: 3 } });
  t.same((await drain(link, 'REPLAY', 'ads')).map((r) => r.notice.id).sort(), ['x1', 'x2', 'x3'], 'ads got every change since then again');
  t.same(await drain(link, 'NOTIFY', 'ads'), [], "ads's own NOTIFY consumer was left as it was");
  t.same(await drain(link, 'NOTIFY', 'recs'), [], 'recs got nothing on NOTIFY');
  t.same(await drain(link, 'REPLAY', 'recs'), [], 'recs got nothing on REPLAY');

  const sincePosition = await post(admin, '/admin/subscribers/ads/republish', { sincePosition: last });
  t.match(sincePosition, { status: 200, body: { republished: 1 } });
  t.same((await drain(link, 'REPLAY', 'ads')).map((r) => r.notice.id), ['x3'], 'since a position: exactly the aggregates changed at or after it');
  t.same(await drain(link, 'REPLAY', 'recs'), [], 'recs still got nothing');

  const future = await post(admin, '/admin/subscribers/ads/republish', { since: new Date(Date.now() + 60_000).toISOString() });
  t.match(future, { status: 200, body: { republished: 0 } }, 'nothing changed since a time to come');
});

t.test('the subscriber admin API validates and explains', async (t) => {
  const { admin } = await setup(t);
  t.equal((await post(admin, '/admin/subscribers', { name: 'dup' })).status, 201);
  t.same((await post(admin, '/admin/subscribers', { name: 'dup' })).body.error, 'subscriber_exists');
  t.same((await post(admin, '/admin/subscribers', { name: 'bad name!' })).status, 400);
  t.same((await post(admin, '/admin/subscribers/ghost/republish', { since: new Date().toISOString() })).body.error, 'unknown_subscriber');
  t.same((await post(admin, '/admin/subscribers/dup/republish', { since: 'yesterday' })).status, 400);
  t.same((await post(admin, '/admin/subscribers/dup/republish', { sincePosition: 999999 })).body.error, 'position_not_found');
  t.equal((await fetch(`${admin}/admin/subscribers/dup`, { method: 'DELETE' })).status, 200);
  t.same((await get(`${admin}/admin/subscribers`)).body.subscribers, []);
});

t.test('notices expire after notices.maxAgeMs, and the projector sets that age on NOTIFY and REPLAY at start', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  const projector = await startTestProjector(t, nats.url, dataDir, { env: { CONVERGE_NOTICES_MAX_AGE_MS: '1500' } });
  const link = await connectNats(nats.url, { name: 'subscriber', timeoutMs: 5000, log: pino({ level: 'silent' }) });
  t.teardown(() => link.close());
  for (const stream of ['NOTIFY', 'REPLAY']) {
    const { config } = await link.jsm.streams.info(stream);
    t.same([config.max_age, config.duplicate_window], [1500 * 1e6, 1500 * 1e6], `${stream}: kept 1.5 s, duplicates dropped within that, not the 2 min default`);
  }
  await link.js.publish('notify.shop.gone', JSON.stringify({ aggregate: 'shop', id: 'gone', version: 1, position: 1, at: new Date().toISOString() }));
  t.equal((await link.jsm.streams.info('NOTIFY', { subjects_filter: '>' })).state.num_subjects, 1, 'the notice is stored');
  let subjects = 1;
  for (let i = 0; i < 100 && subjects > 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    subjects = (await link.jsm.streams.info('NOTIFY')).state.num_subjects ?? 0;
  }
  t.equal(subjects, 0, 'after its age, the notice and its subject are gone');
  await projector.stop();
  await startTestProjector(t, nats.url, dataDir);
  t.equal((await link.jsm.streams.info('NOTIFY')).config.max_age, 7 * 86_400_000 * 1e6, 'an existing NOTIFY takes the new age at start');
});

t.test("a process's instance streams are never announced: an order placed gives a notice for the order and none for its acceptance process", async (t) => {
  const { link, admin, cmd, projector } = await setup(t);
  t.equal((await post(admin, '/admin/subscribers', { name: 'orders' })).status, 201);
  await post(cmd, '/shops/p1/register', { name: 'P', category: 'korean', ownerId: 'u' });
  await post(cmd, '/shops/p1/open', {});
  await post(cmd, '/shops/p1/add-menu-item', { menuId: 'm1', name: 'Kimbap', price: 4500 });
  const placed = await post(cmd, '/orders/o1/place', { shopId: 'p1', customerId: 'c1', items: [{ menuId: 'm1', quantity: 1 }] });
  t.equal(placed.status, 200);
  // The process records its decision (the accept timer) in its own stream, after the order's commit.
  let last = 0;
  for (let i = 0; i < 400; i++) {
    const info = await link.jsm.streams.info('EVENTS', { subjects_filter: 'events.~orderAcceptance.>' });
    last = info.state.last_seq;
    if (Object.keys(info.state.subjects ?? {}).length > 0 && projector.notifier!.position() >= last) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  t.ok(last > (placed.body.position as number), 'the process recorded its decision after the order');
  t.equal(projector.notifier!.position(), last, 'the notifier went past it');
  const subjects = (await drain(link, 'NOTIFY', 'orders')).map((g) => g.subject);
  t.ok(subjects.includes('notify.order.o1'), 'the order is announced');
  t.same(subjects.filter((s) => s.includes('~')), [], 'its process instance is not');
});
