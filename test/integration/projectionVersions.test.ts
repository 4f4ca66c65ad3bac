import t from 'tap';
import { pino } from 'pino';
import { shopDisplay } from '../../projections/shopDisplay/shopDisplay.projection.js';
import { connectNats } from '../../src/nats/connection.js';
import { eventSubject } from '../../src/store/eventStream.js';
import { startTestNats, tempDir } from '../helpers/nats.js';
import { commandUrl, get, post, startTestProjector, startWorkers, urlOf } from '../helpers/workers.js';
import { shopPlatform } from '../../app.js';

const { projections } = shopPlatform;

t.test('a projection whose version was bumped is rebuilt at start, serving the old view meanwhile', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_DATA_DIR: dataDir });
  const first = await startTestProjector(t, nats.url, dataDir);
  const reg = await post(commandUrl(worker!), '/shops/v1/register', { name: 'Old', category: 'c', ownerId: 'u' });

  // Thousands of other shops, so that a rebuild one event per transaction takes a while.
  const link = await connectNats(nats.url, { name: 'bulk-writer', timeoutMs: 5000, log: pino({ level: 'silent' }) });
  t.teardown(() => link.close());
  let head = reg.body.position as number;
  for (let chunk = 0; chunk < 4; chunk++) {
    const acks = await Promise.all(
      Array.from({ length: 500 }, (_, i) => {
        const id = `bulk-${chunk}-${i}`;
        const commit = {
          commandId: `bulk-${id}`, aggregate: 'shop', id, version: 1,
          events: [{ type: 'ShopRegistered', data: { name: id, category: 'c', ownerId: 'u', minOrderAmount: 0, deliveryFee: 0 }, at: new Date().toISOString() }],
        };
        return link.js.publish(eventSubject('shop', id), JSON.stringify(commit));
      }),
    );
    head = Math.max(head, ...acks.map((a) => a.seq));
  }
  const q = urlOf(worker!.queryApp);
  t.equal((await get(`${q}/shops/v1?waitMs=10000`, { 'x-min-position': String(head) })).status, 200, 'the first projector caught up');
  t.equal(first.views.activeGeneration('shopDisplay'), 1);
  await first.stop();

  // The next version of the view upper-cases names: a change only a rebuild brings to old documents.
  const bumped = { ...shopDisplay, version: shopDisplay.version + 1, fold: (doc: never, event: never, meta: never) => {
    const next = shopDisplay.fold(doc, event, meta);
    return next && { ...next, name: next.name.toUpperCase() };
  } };
  const second = await startTestProjector(t, nats.url, dataDir, {
    env: { CONVERGE_PROJECTIONS_BATCH_SIZE: '1' },
    projections: projections.map((p) => (p.name === 'shopDisplay' ? bumped : p)),
  });
  const admin = urlOf(second.adminApp);
  const shopDisplayState = async () =>
    ((await get(`${admin}/admin/projections`)).body.projections as { name: string; state: string }[]).find((p) => p.name === 'shopDisplay')!.state;
  const duringRebuild: unknown[] = [];
  for (let i = 0; i < 600 && second.views.activeGeneration('shopDisplay') !== 2; i++) {
    const before = await shopDisplayState();
    const read = await get(`${q}/shops/v1`);
    if (before === 'rebuilding' && (await shopDisplayState()) === 'rebuilding') duringRebuild.push([read.status, read.body.name]);
    await new Promise((r) => setTimeout(r, 20));
  }
  t.ok(duringRebuild.length > 0, `the view was read while status said rebuilding (${duringRebuild.length} reads)`);
  t.same(new Set(duringRebuild.map((r) => JSON.stringify(r))), new Set([JSON.stringify([200, 'Old'])]), 'each of those reads answered from the old view');
  t.equal(second.views.activeGeneration('shopDisplay'), 2, 'a fresh generation replaced the old one');
  t.equal(second.views.builtVersion('shopDisplay', 2), shopDisplay.version + 1, 'built by the bumped version');
  t.equal((await get(`${q}/shops/v1`)).body.name, 'OLD', 'old events were folded by the new version');
  t.equal(second.views.activeGeneration('shopList'), 1, 'other views were left alone');
});

t.test('events stored in an older shape are read as the current one', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_DATA_DIR: dataDir });
  await startTestProjector(t, nats.url, dataDir);
  const cmd = commandUrl(worker!);
  await post(cmd, '/shops/legacy/register', { name: 'L', category: 'c', ownerId: 'u' });
  const added = await post(cmd, '/shops/legacy/add-menu-item', { menuId: 'm1', name: 'Kimbap', price: 4000 });

  // As an early version of converge wrote it: another type name and field.
  const link = await connectNats(nats.url, { name: 'legacy-writer', timeoutMs: 2000, log: pino({ level: 'silent' }) });
  t.teardown(() => link.close());
  const legacy = {
    commandId: 'legacy-1', commandType: 'ChangeMenuPrice', aggregate: 'shop', id: 'legacy', version: 3,
    events: [{ type: 'MenuItemPriceChanged', data: { menuId: 'm1', amount: 5500 }, at: new Date().toISOString() }],
  };
  const ack = await link.js.publish(eventSubject('shop', 'legacy'), JSON.stringify(legacy), { expect: { lastSubjectSequence: added.body.position as number } });

  const q = urlOf(worker!.queryApp);
  const view = await get(`${q}/shops/legacy`, { 'x-min-position': String(ack.seq) });
  t.match(view.body.menu, [{ menuId: 'm1', price: 5500 }], 'the view folded the upcast event');
  t.match((await get(`${q}/shops/legacy/history?fromVersion=3`)).body.events, [{ type: 'MenuPriceChanged', data: { menuId: 'm1', price: 5500 } }], 'history shows the current shape');
  const next = await post(cmd, '/shops/legacy/change-menu-price', { menuId: 'm1', price: 6000 });
  t.same([next.status, next.body.version], [200, 4], 'the actor caught up through the legacy commit');
  t.match((await get(`${q}/shops/legacy/state?atVersion=3`)).body.state, { menu: { m1: { price: 5500 } } }, 'state as of the legacy commit');
});
