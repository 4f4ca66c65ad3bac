import { rmSync } from 'node:fs';
import t from 'tap';
import { pino } from 'pino';
import { ensureEventStream } from '../../src/store/eventStream.js';
import { connectNats } from '../../src/nats/connection.js';
import { defineProjection } from '../../src/core/projection.js';
import type { ShopEvent } from '../../actors/shop/shop.events.js';
import { shopDisplay } from '../../projections/shopDisplay/shopDisplay.projection.js';
import { startProjector } from '../../src/host/projector.js';
import { startTestNats, tempDir } from '../helpers/nats.js';
import { commandUrl, get, post, startTestProjector, startWorkers, testConfig, urlOf } from '../helpers/workers.js';
import { shopPlatform } from '../../app.js';

const { aggregates, projections } = shopPlatform;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('after nats-server is killed and restarted, the views resume from their checkpoints with no restart of the projector', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_DATA_DIR: dataDir });
  const projector = await startTestProjector(t, nats.url, dataDir, { env: { CONVERGE_PROJECTIONS_STALL_MS: '2000' } });
  const cmd = commandUrl(worker!);
  const q = urlOf(worker!.queryApp);
  for (let i = 0; i < 20; i++) t.equal((await post(cmd, `/shops/nf${i}/register`, { name: `S${i}`, category: 'c', ownerId: 'o' })).status, 200);

  // Commands keep flowing through the outage, as they would in production.
  let flowing = true;
  const writers = Array.from({ length: 4 }, async (_, w) => {
    for (let i = 0; flowing; i++) {
      await post(cmd, `/shops/nf${(w * 5 + i) % 20}/rename`, { name: `R${w}-${i}` }).catch(() => undefined);
    }
  });
  await sleep(1000);
  await nats.stop(true);
  await sleep(3000);
  await nats.restart();
  await sleep(1000);

  let res = { status: 0, body: {} as Record<string, unknown> };
  for (let i = 0; i < 100 && res.status !== 200; i++) {
    await sleep(100);
    res = await post(cmd, '/shops/after/register', { name: 'After', category: 'c', ownerId: 'o' }, { 'idempotency-key': 'after-1' });
  }
  t.equal(res.status, 200, 'commands succeed again');
  flowing = false;
  await Promise.all(writers);
  const position = res.body.position as number;
  const shop = await get(`${q}/shops/after`, { 'x-min-position': String(position) }).then(async (first) => {
    for (let i = 0; i < 30 && first.status !== 200; i++) first = await get(`${q}/shops/after?minPosition=${position}&waitMs=1000`);
    return first;
  });
  t.equal(shop.status, 200, 'a shop registered after the restart reaches the view');
  const status = projector.runner.status();
  t.ok(status.every((s) => s.position >= position), `every projection reached ${position}: ${JSON.stringify(status.map((s) => [s.name, s.state, s.position]))}`);
  t.ok(status.every((s) => s.state === 'running' && s.lagEvents === 0), 'and says running with no lag');
});

t.test('a view store that cannot write: the projection says failing with the error and a true lag, /ready/views is 503, and it recovers by itself', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_DATA_DIR: dataDir });
  const lines: Array<{ level: number; msg: string }> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
  const config = testConfig(t, nats.url, { CONVERGE_DATA_DIR: dataDir, CONVERGE_PROJECTIONS_MAX_BACKOFF_MS: '1000', CONVERGE_QUERY_READY_MAX_LAG_MS: '60000' });
  const projector = await startProjector(config, log, { aggregates, projections });
  t.teardown(() => projector.stop());
  const cmd = commandUrl(worker!);
  const q = urlOf(worker!.queryApp);
  const admin = urlOf(projector.adminApp);
  const first = await post(cmd, '/shops/w0/register', { name: 'W', category: 'c', ownerId: 'o' });
  t.equal((await get(`${q}/shops/w0`, { 'x-min-position': String(first.body.position) })).status, 200);

  // The disk under the views refuses writes, as a full or failing disk does (LMDB reports it from its commit).
  const env = projector.views.env;
  const transactionSync = env.transactionSync.bind(env);
  let diskFull = true;
  env.transactionSync = ((fn: () => unknown) => {
    if (diskFull) throw new Error('Input/output error');
    return transactionSync(fn);
  }) as typeof env.transactionSync;
  const failedAt = Date.now();
  let last = 0;
  for (let i = 1; i <= 30; i++) {
    const res = await post(cmd, `/shops/w${i}/register`, { name: `W${i}`, category: 'c', ownerId: 'o' });
    t.equal(res.status, 200, 'commands are still acknowledged: the events live on NATS');
    last = res.body.position as number;
  }
  await sleep(2500);

  const failing = (await get(`${admin}/admin/projections`)).body as { projections: Array<Record<string, unknown>>; eventStore: Record<string, unknown> };
  t.comment(JSON.stringify(failing.projections[0]));
  t.equal(failing.eventStore.lastPosition, last, 'the stream’s last position comes from stream info');
  for (const p of failing.projections) {
    t.equal(p.state, 'failing', `${p.name} says failing`);
    t.match(p.error, /Input\/output error/, `${p.name} gives the last error`);
    t.equal(p.position, first.body.position, `${p.name} stays at its last good position`);
    t.equal(p.lagEvents, last - (first.body.position as number), `${p.name} counts the lag against the stream`);
    t.ok((p.lagMs as number) > 2000 && (p.lagMs as number) < Date.now() - failedAt + 1000, `${p.name} lagMs (${p.lagMs}) is the age of the oldest unapplied commit`);
    t.ok((p.sinceLastBatchMs as number) >= 2000, `${p.name} says how long since its last good batch (${p.sinceLastBatchMs} ms)`);
  }
  const readyViews = await get(`${q}/ready/views`);
  t.same([readyViews.status, readyViews.body.error], [503, 'views_not_ready'], 'the query API’s /ready/views is 503');
  t.match(readyViews.body.message, /shopDisplay is failing: Input\/output error/);
  t.equal((await get(`${admin}/ready/views`)).status, 503, 'so is the admin API’s');
  t.equal((await get(`${q}/ready`)).status, 200, 'the query API stays ready: stale views still serve');
  t.equal((await get(`${q}/shops/w0`)).status, 200, 'and it serves them');
  // In one process, without the cluster primary to sum the registries, the projector's own /metrics has the read side.
  const metrics = await (await fetch(`${admin}/metrics`)).text();
  t.match(metrics, /converge_projection_state\{projection="shopDisplay",state="failing"\} 1/, '/metrics carries the state');
  t.match(metrics, /converge_projection_lag_seconds\{projection="shopDisplay"\} (0\.\d*[1-9]|[1-9])/, 'and the lag in seconds');

  diskFull = false;
  const view = await get(`${q}/shops/w30?minPosition=${last}&waitMs=10000`);
  t.equal(view.status, 200, 'once the disk takes writes again the view catches up with no restart');
  await sleep(1200);
  const recovered = (await get(`${admin}/admin/projections`)).body as { projections: Array<Record<string, unknown>> };
  t.comment(JSON.stringify(recovered.projections[0]));
  t.ok(recovered.projections.every((p) => p.state === 'running' && p.position === last && p.lagEvents === 0 && p.lagMs === 0 && p.error === undefined), 'every projection is running, caught up, with no error');
  t.equal((await get(`${q}/ready/views`)).status, 200, '/ready/views is 200 again');
  for (let i = 1; i <= 30; i++) if ((await get(`${q}/shops/w${i}`)).status !== 200) t.fail(`shop w${i} is missing`);

  const projectionLines = lines.filter((l) => /^projections /.test(l.msg));
  const warnings = projectionLines.filter((l) => l.level === 40);
  t.match(warnings[0]?.msg, /^projections cannot apply its batch: Input\/output error; retrying/, 'one warning when it starts failing');
  t.ok(warnings.length <= 1 + Math.ceil((Date.now() - failedAt) / 250), `then at most one line per backoff step (${warnings.length} warnings)`);
  t.ok(warnings.slice(1).every((l) => /still failing/.test(l.msg)), 'each later line is a backoff step');
  t.match(projectionLines.find((l) => l.level === 30)?.msg, /^projections recovered after \d/, 'and an info line when it recovers that says how long it was down');
});

t.test('a rebuild that cannot finish fails visibly instead of hanging, and the next one starts afresh', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_DATA_DIR: dataDir });
  let poisoned = false;
  const strict = defineProjection<ShopEvent, { n: number }>({
    name: 'strict',
    version: 1,
    handles: ['ShopRegistered'],
    key: (_e, meta) => meta.id,
    fold: (doc) => {
      if (poisoned) throw new Error('cannot fold');
      return { n: (doc?.n ?? 0) + 1 };
    },
    onError: { kind: 'stop' },
  });
  const projector = await startTestProjector(t, nats.url, dataDir, { projections: [strict] });
  const cmd = commandUrl(worker!);
  const admin = urlOf(projector.adminApp);
  const res = await post(cmd, '/shops/rbf/register', { name: 'R', category: 'c', ownerId: 'o' });
  await get(`${urlOf(worker!.queryApp)}/shops/rbf?minPosition=${res.body.position}`);
  for (let i = 0; i < 50 && projector.views.position('strict') < (res.body.position as number); i++) await sleep(50);

  poisoned = true;
  await t.rejects(projector.runner.rebuild('strict'), /the fold stopped at position/, 'a rebuild whose fold hits `stop` rejects');
  const status = (await get(`${admin}/admin/projections`)).body as { projections: Array<Record<string, unknown>> };
  t.match(status.projections[0], { name: 'strict', state: 'running', generation: 1, lastRebuildError: /the fold stopped/ }, 'status says the rebuild failed; the old generation still serves');

  poisoned = false;
  await projector.runner.rebuild('strict');
  t.equal(projector.views.activeGeneration('strict'), 2, 'the next rebuild request starts afresh and swaps in');

  // A rebuild pending when the projector stops is rejected, not left hanging.
  await nats.stop(true);
  const rejected = t.rejects(projector.runner.rebuild('strict'), /the projector stopped/, 'stop() ends the rebuild pipeline and rejects its promise');
  await projector.runner.stop();
  await rejected;
});

t.test('a running projector that finds its stream replaced by another store stops following it and says why', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_DATA_DIR: dataDir });
  const lines: Array<{ level: number; msg: string }> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
  const projector = await startProjector(testConfig(t, nats.url, { CONVERGE_DATA_DIR: dataDir }), log, { aggregates, projections });
  t.teardown(() => projector.stop());
  const cmd = commandUrl(worker!);
  let last = 0;
  for (let i = 0; i < 5; i++) last = (await post(cmd, `/shops/x${i}/register`, { name: 'X', category: 'c', ownerId: 'o' })).body.position as number;
  await get(`${urlOf(worker!.queryApp)}/shops/x4?minPosition=${last}`);

  // The store is wiped under the running system; a fresh EVENTS stream appears on the same server.
  await nats.stop(true);
  rmSync(nats.storeDir, { recursive: true, force: true });
  await nats.restart();
  const link = await connectNats(nats.url, { name: 'test', timeoutMs: 2000, log: pino({ level: 'silent' }) });
  t.teardown(() => link.close());
  await ensureEventStream(link, 120_000);

  let changed: { msg: string } | undefined;
  for (let i = 0; i < 100 && !changed; i++) {
    await sleep(100);
    changed = lines.find((l) => l.level === 50 && /the event store changed under the running projector/.test(l.msg));
  }
  t.match(changed?.msg, /EVENTS is now stream [0-9a-f-]+, not [0-9a-f-]+ that the views were built from/, 'the projector logs that the store changed, and why');
  t.equal(projector.views.get(shopDisplay, 'x0') !== undefined, true, 'it did not fold the new store into the old views');
});
