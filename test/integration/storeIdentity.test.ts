import { join } from 'node:path';
import t, { type Test } from 'tap';
import { pino } from 'pino';
import { createJetStreamEventStore } from '../../src/store/jetstream.js';
import { ensureEventStream, storeIdentityOf } from '../../src/store/eventStream.js';
import { connectNats } from '../../src/nats/connection.js';
import { startProjector, type Projector } from '../../src/host/projector.js';
import { viewsPath } from '../../src/host/paths.js';
import { bindViewsToHead, recordedIdentity } from '../../src/read/storeIdentity.js';
import { shopDisplay } from '../../projections/shopDisplay/shopDisplay.projection.js';
import { openSnapshotStore } from '../../src/write/snapshots.js';
import { FORMAT_KEY, openViewStore, VIEW_FORMAT } from '../../src/read/lmdbViews.js';
import { decodeDoc } from '../../src/read/viewStore.js';
import { startWorker, type Worker } from '../../src/host/worker.js';
import { startTestNats, tempDir } from '../helpers/nats.js';
import { commandUrl, get, post, testConfig, urlOf } from '../helpers/workers.js';
import { shopPlatform } from '../../app.js';

const { aggregates, projections, routes: queryRoutes } = shopPlatform;

const names = projections.map((p) => p.name);

/**
 * One worker and the projector on `natsUrl` and `dataDir`, the projector's log lines
 * collected; `beforeProjector` runs once the worker serves and before the projector starts.
 */
async function startHost(t: Test, natsUrl: string, dataDir: string, beforeProjector?: (q: string) => Promise<void>) {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const config = testConfig(t, natsUrl, { CONVERGE_DATA_DIR: dataDir, CONVERGE_CLUSTER_WORKERS: '1' });
  const worker: Worker = await startWorker(config, pino({ level: 'silent' }), { aggregates, projections, routes: queryRoutes });
  t.teardown(() => worker.stop());
  await beforeProjector?.(urlOf(worker.queryApp));
  const projector: Projector = await startProjector(config, log, { aggregates, projections });
  const stop = async () => {
    await worker.stop();
    await projector.stop();
  };
  t.teardown(stop);
  return { cmd: commandUrl(worker), q: urlOf(worker.queryApp), projector, lines, stop };
}

const register = (cmd: string, id: string, name: string) => post(cmd, `/shops/${id}/register`, { name, category: 'korean', ownerId: 'u1' });
const warnings = (lines: Array<Record<string, unknown>>) => lines.filter((l) => l.level === 40).map((l) => String(l.msg));

t.test('views of another event store are emptied and rebuilt from the new one', async (t) => {
  const dataDir = tempDir(t);
  const a = await startTestNats(t);
  const onA = await startHost(t, a.url, dataDir);
  t.equal((await register(onA.cmd, 'a1', 'Only on A')).status, 200);
  // Enough commits for a snapshot, and the drain at stop snapshots every resident actor anyway.
  t.equal((await register(onA.cmd, 's1', 'Same id on A')).status, 200);
  let last = 0;
  for (let i = 0; i < 25; i++) last = (await post(onA.cmd, '/shops/s1/rename', { name: `A name ${i}` })).body.position as number;
  t.equal((await get(`${onA.q}/shops/a1`, { 'x-min-position': String(last) })).status, 200, 'A serves its shop');
  for (let i = 0; i < 100 && onA.projector.notifier!.position() < last; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(onA.projector.notifier!.position(), last, 'the notifier is past the first commits of B to come');
  await onA.stop();
  const snapshots = openSnapshotStore(join(dataDir, 'snapshots'), () => undefined);
  const streamOfA = snapshots.get('shop', 's1')?.stream;
  await snapshots.close();
  t.ok(streamOfA, 'A left a snapshot of s1');

  const b = await startTestNats(t);
  const onB = await startHost(t, b.url, dataDir, async (q) => {
    const early = await get(`${q}/shops/a1`);
    t.same([early.status, early.body.error], [503, 'views_rebuilding'], 'before the projector resets them, the old views are not served');
  });
  t.equal((await get(`${onB.q}/shops/a1`)).status, 404, 'a shop of A is not served once converge runs on B');
  const s1 = await register(onB.cmd, 's1', 'Same id on B');
  t.equal(s1.status, 200, 'a snapshot of A does not make s1 registered on B');
  const b1 = await register(onB.cmd, 'b1', 'Only on B');
  t.equal(b1.status, 200);
  const shown = await get(`${onB.q}/shops/b1`, { 'x-min-position': String(b1.body.position) });
  t.same([shown.status, shown.body.name], [200, 'Only on B'], 'a shop registered on B is served after catching up');
  t.match((await get(`${onB.q}/shops/s1`)).body, { name: 'Same id on B', version: 1 }, 's1 has the state of B');
  t.match((await get(`${onB.q}/shops/s1/state`)).body, { version: 1, state: { name: 'Same id on B' } }, 'B holds s1 at its first version');
  for (let i = 0; i < 100 && onB.projector.notifier!.position() < (b1.body.position as number); i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(onB.projector.notifier!.position(), b1.body.position, 'the notifier announces the commits of B');
  const warned = warnings(onB.lines);
  t.equal(warned.filter((m) => m.includes('another event store')).length, 1, 'one warning names the mismatch');
  const line = onB.lines.find((l) => String(l.msg).includes('another event store'))!;
  t.not((line.recorded as { stream: string }).stream, (line.identity as { stream: string }).stream, 'the warning gives the old and the new identity');
  t.ok(((line.checkpoints as Record<string, number>)['shopDisplay.1'] ?? 0) >= last, 'and the positions the views had reached');
});

t.test('a checkpoint past the stream’s last sequence empties the views as well', async (t) => {
  const dataDir = tempDir(t);
  const nats = await startTestNats(t);
  const first = await startHost(t, nats.url, dataDir);
  const reg = await register(first.cmd, 'k1', 'Kept');
  await get(`${first.q}/shops/k1`, { 'x-min-position': String(reg.body.position) });
  await first.stop();

  // As after restoring an older backup of the same stream: the views are ahead of it.
  const views = openViewStore(viewsPath(testConfig(t, nats.url, { CONVERGE_DATA_DIR: dataDir })));
  views.env.transactionSync(() => {
    views.setCheckpoint('shopDisplay', views.activeGeneration('shopDisplay'), 1000);
    views.setCheckpoint('~notifier', 0, 1000);
  });
  await views.close();

  const second = await startHost(t, nats.url, dataDir);
  const next = await register(second.cmd, 'k2', 'After the restore');
  t.equal((await get(`${second.q}/shops/k2`, { 'x-min-position': String(next.body.position) })).status, 200, 'a commit below the old checkpoint is folded');
  t.equal((await get(`${second.q}/shops/k1`)).status, 200, 'the view was rebuilt from the stream');
  t.match(warnings(second.lines), [/past the stream's last sequence 1: shopDisplay\.1=1000, ~notifier\.0=1000;/], 'one warning names the checkpoints and the end of the stream');
  for (let i = 0; i < 100 && second.projector.notifier!.position() < (next.body.position as number); i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(second.projector.notifier!.position(), next.body.position, 'the notifier checkpoint was reset too');
});

t.test('a restart of the same nats-server keeps the views bound', async (t) => {
  const dataDir = tempDir(t);
  const nats = await startTestNats(t);
  const first = await startHost(t, nats.url, dataDir);
  const reg = await register(first.cmd, 'r1', 'Kept');
  await get(`${first.q}/shops/r1`, { 'x-min-position': String(reg.body.position) });
  await first.stop();
  await nats.stop();
  await nats.restart();

  const link = await connectNats(nats.url, { name: 'identity-test', timeoutMs: 2000, log: pino({ level: 'silent' }) });
  t.teardown(() => link.close());
  const views = openViewStore(viewsPath(testConfig(t, nats.url, { CONVERGE_DATA_DIR: dataDir })));
  t.teardown(() => views.close());
  const before = recordedIdentity(views);
  const head = await createJetStreamEventStore(link, { publishTimeoutMs: 1500 }).head();
  t.equal(bindViewsToHead(views, names, head, pino({ level: 'silent' })), 'same', 'the restarted server holds the same store');
  t.same(recordedIdentity(views), before);
  t.same(before, head.identity, 'the identity does not depend on the server id');
  t.ok(views.get(shopDisplay, 'r1'), 'the views are kept');
  t.equal(views.position('shopDisplay'), reg.body.position);
});

t.test('a named server or a cluster is part of the identity; an unnamed server’s id is not', async (t) => {
  const stream = 'b0c6e3a2-5d1f-4f7e-9a57-0c1d2e3f4a5b';
  const info = { config: { description: `converge event store ${stream}` }, created: '2026-12-01T00:00:00Z' } as Parameters<typeof storeIdentityOf>[0];
  t.same(storeIdentityOf(info, { server_id: 'NABC', server_name: 'NABC' }), { stream }, 'an unnamed server');
  t.same(storeIdentityOf(info, { server_id: 'NABC', server_name: 'n1' }), { stream, server: 'n1' }, 'a named server');
  t.same(storeIdentityOf(info, { server_id: 'NABC', server_name: 'n2', cluster: 'east' }), { stream, server: 'east' }, 'a cluster');
});

t.test('a running projector stops following EVENTS once it is another stream, even one longer than the checkpoints', async (t) => {
  const nats = await startTestNats(t);
  const host = await startHost(t, nats.url, tempDir(t));
  const reg = await register(host.cmd, 'x1', 'Before');
  await get(`${host.q}/shops/x1`, { 'x-min-position': String(reg.body.position) });
  const link = await connectNats(nats.url, { name: 'identity-test', timeoutMs: 2000, log: pino({ level: 'silent' }) });
  t.teardown(() => link.close());
  await link.jsm.streams.delete('EVENTS');
  await ensureEventStream(link, 120_000);
  // More commits than the views have applied: no checkpoint is past the new stream's end.
  for (let i = 0; i < 5; i++) await link.js.publish(`events.shop.y${i}`, JSON.stringify({ commandId: `y${i}`, commandType: 'RegisterShop', aggregate: 'shop', id: `y${i}`, version: 1, events: [] }));
  const said = () => host.lines.filter((l) => l.level === 50).map((l) => String(l.msg));
  for (let i = 0; i < 150 && said().length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  t.match(said(), [/the event store changed under the running projector: EVENTS is now stream [0-9a-f-]+, not [0-9a-f-]+ that the views were built from/], 'it says so once, naming both streams');
  t.equal(host.projector.views.position('shopDisplay'), reg.body.position, 'and folded nothing of the other stream into the views');
});

t.test('views stored in the format before documents were stored as bytes are emptied at the projector start and rebuilt, and not served meanwhile', async (t) => {
  const dataDir = tempDir(t);
  const nats = await startTestNats(t);
  const first = await startHost(t, nats.url, dataDir);
  const registered = await register(first.cmd, 'f1', 'Written before');
  t.equal(registered.status, 200);
  t.equal((await get(`${first.q}/shops/f1`, { 'x-min-position': String(registered.body.position) })).status, 200);
  await first.stop();

  // What an older converge left: each document as MessagePack in `<view>.<gen>.docs`, no format recorded.
  const views = openViewStore(viewsPath(testConfig(t, nats.url, { CONVERGE_DATA_DIR: dataDir })));
  const gen = views.activeGeneration('shopDisplay');
  const old = views.env.openDB<unknown, string>({ name: `shopDisplay.${gen}.docs` });
  views.env.transactionSync(() => {
    for (const { key, value } of views.lmdb('shopDisplay', gen).docs.getRange()) old.putSync(key as string, decodeDoc(value));
    views.lmdb('shopDisplay', gen).docs.clearSync();
    views.meta.removeSync(FORMAT_KEY);
  });
  t.same(old.get('f1'), { ...(old.get('f1') as object), name: 'Written before' }, 'the old-format document is there');
  await views.close();

  const second = await startHost(t, nats.url, dataDir, async (q) => {
    const early = await get(`${q}/shops/f1`);
    t.same([early.status, early.body.error], [503, 'views_rebuilding'], 'before the projector empties them, the old views are not served');
  });
  t.ok(warnings(second.lines).some((w) => w.includes('stored in an older format')), 'the projector says why it rebuilds');
  const rebuilt = await get(`${second.q}/shops/f1`, { 'x-min-position': String(registered.body.position), 'x-max-staleness': '5s' });
  t.same([rebuilt.status, rebuilt.body.name, rebuilt.headers.get('etag')], [200, 'Written before', `"${registered.body.position}"`], 'rebuilt from the event store');
  const { views: live } = second.projector;
  t.equal(live.meta.get(FORMAT_KEY), VIEW_FORMAT, 'the format is recorded');
  t.equal(live.env.openDB({ name: `shopDisplay.${gen}.docs` }).getCount(), 0, 'the old documents are gone');
});
