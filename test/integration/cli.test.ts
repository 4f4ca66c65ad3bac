import t from 'tap';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { defineProjection } from '../../src/core/projection.js';
import type { ShopEvent } from '../../actors/shop/shop.events.js';
import { freePort } from '../../src/nats/server.js';
import { startTestNats, tempDir } from '../helpers/nats.js';
import { commandUrl, post, startTestProjector, startWorkers, urlOf } from '../helpers/workers.js';
import { shopPlatform } from '../../app.js';

// Each step runs the CLI as a process of its own; a busy 2-core machine makes that slow.
t.setTimeout(240_000);

const CLI = join(import.meta.dirname, '../../dist/src/host/cli.js');
const TOKEN = 'cli-admin-token';

/** A view whose fold takes 2 ms an event, so that its rebuild lasts long enough to follow. */
const slow = defineProjection<ShopEvent, { n: number }>({
  name: 'slow',
  version: 1,
  handles: ['ShopRegistered', 'ShopRenamed'],
  key: (_e, meta) => meta.id,
  fold(doc) {
    const until = Date.now() + 2;
    while (Date.now() < until) {
      // Costly on purpose.
    }
    return { n: (doc?.n ?? 0) + 1 };
  },
});

/** Runs the built CLI as an operator would, from a directory with no config/. */
function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: tempDir(t), env: { PATH: process.env.PATH ?? '' } }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

t.test('the converge CLI against a running projector', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  const env = { CONVERGE_HTTP_TOKENS: TOKEN, CONVERGE_PROJECTIONS_BATCH_SIZE: '20', CONVERGE_PROJECTIONS_STATUS_INTERVAL_MS: '200' };
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_DATA_DIR: dataDir, ...env });
  const projector = await startTestProjector(t, nats.url, dataDir, { env, projections: [...shopPlatform.projections, slow] });
  const admin = urlOf(projector.adminApp);
  const cmd = commandUrl(worker!);
  const auth = { authorization: `Bearer ${TOKEN}` };
  let last = 0;
  for (let i = 0; i < 200; i++) last = (await post(cmd, `/shops/c${i}/register`, { name: `S${i}`, category: 'c', ownerId: 'u' }, auth)).body.position as number;
  while (projector.views.position('slow') < last) await new Promise((r) => setTimeout(r, 50));
  const as = ['--url', admin, '--token', TOKEN];

  t.test('reactions lists the reactors and processes, with who runs them', async (t) => {
    let run = await cli(...as, 'reactions');
    for (let i = 0; i < 50 && !/orderAcceptance +process +running/.test(run.stdout); i++) {
      await new Promise((r) => setTimeout(r, 100));
      run = await cli(...as, 'reactions');
    }
    t.equal(run.code, 0);
    for (const [name, kind] of [['orderAcceptance', 'process'], ['closedShopOrders', 'process'], ['reviewedOrders', 'reactor']]) {
      t.match(run.stdout, new RegExp(`\\n${name} +${kind} +running +\\d+ +0 +0`), `${name}: a ${kind}, running, no lag, nothing parked`);
    }
    t.match(run.stdout, /reactions run by \S+/, 'and which host runs them');
    const json = await cli(...as, '--json', 'reactions');
    t.match(JSON.parse(json.stdout), { reactions: [{ name: String, kind: String, state: String }] });
    const parked = await cli(...as, '--json', 'reactions', 'parked');
    t.same(JSON.parse(parked.stdout), [], 'nothing parked');
    const unknown = await cli(...as, 'reactions', 'resume', 'nope');
    t.equal(unknown.code, 1, 'an unknown reaction exits 1');
    t.match(unknown.stderr, /unknown_reaction|no reactor or process named nope/);
  });

  t.test('status prints one screen: the event store, every projection, the notifier, parked events and subscribers', async (t) => {
    await post(admin, '/admin/subscribers', { name: 'search', from: 'all' }, auth);
    const run = await cli(...as, 'status');
    t.equal(run.code, 0);
    t.match(run.stdout, new RegExp(`^EVENTS: last position ${last}`));
    for (const name of ['shopDisplay', 'shopList', 'orderHistory', 'shopStats', 'slow']) t.match(run.stdout, new RegExp(`\\n${name} +running +1 +${last} +0 +0 +0`), name);
    t.match(run.stdout, /\n\(notifier\) +running/);
    t.match(run.stdout, /\nparked events: 0\n/);
    t.match(run.stdout, /\npartitions: 64 static: \S+\.0 32, \S+\.1 32\n/, "the partitions, by owning worker");
    t.match(run.stdout, new RegExp(`\\n  search: ${last} pending, 0 unacknowledged`));
    t.ok(run.stdout.split('\n').length < 25, 'it fits on one screen');
  });

  t.test('--json prints the answers as JSON', async (t) => {
    const status = JSON.parse((await cli(...as, '--json', 'status')).stdout) as { views: { projections: { name: string }[] }; parked: unknown[]; subscribers: { name: string }[] };
    t.same(status.views.projections.map((p) => p.name), ['shopDisplay', 'shopList', 'orderHistory', 'shopStats', 'slow', 'converge-processes', 'converge-lifecycle']);
    t.same([status.parked, status.subscribers.map((s) => s.name)], [[], ['search']]);
    t.same(JSON.parse((await cli(...as, '--json', 'parked')).stdout), []);
    t.match(JSON.parse((await cli(...as, '--json', 'subscribers')).stdout), [{ name: 'search', pending: last }]);
    t.match(JSON.parse((await cli(...as, '--json', 'projections')).stdout), [{ name: 'shopDisplay', position: last }]);
    const verify = await cli(...as, '--json', 'verify', '--sample', '10');
    t.match([verify.code, JSON.parse(verify.stdout)], [0, { ok: true, streamLastPosition: last }], 'verify');
  });

  t.test('subscribers add says which consumers it made on NOTIFY and REPLAY, as text and as JSON; remove says it removed them', async (t) => {
    const added = await cli(...as, 'subscribers', 'add', 'warehouse');
    t.equal(added.code, 0, added.stderr);
    t.equal(
      added.stdout,
      [
        'added subscriber warehouse (0 notices pending)',
        '  NOTIFY: consumer warehouse, subjects notify.>, delivering messages from now on',
        '  REPLAY: consumer warehouse, subjects replay.warehouse.>, delivering every message the stream holds for it, then new ones',
        '',
      ].join('\n'),
    );
    const json = await cli(...as, '--json', 'subscribers', 'add', 'crm', '--all');
    t.same(JSON.parse(json.stdout), {
      name: 'crm',
      pending: last,
      ackPending: 0,
      replayPending: 0,
      ackedSequence: 0,
      consumers: [
        { stream: 'NOTIFY', name: 'crm', filter: 'notify.>', deliver: 'all' },
        { stream: 'REPLAY', name: 'crm', filter: 'replay.crm.>', deliver: 'all' },
      ],
    }, '--json: the subscriber with its consumers; --all: every shop’s notice pending');
    t.match(await cli(...as, 'subscribers', 'remove', 'warehouse'), { code: 0, stdout: 'removed subscriber warehouse and its consumers\n' });
    t.same(JSON.parse((await cli(...as, '--json', 'subscribers', 'remove', 'crm')).stdout), { removed: 'crm' });
    t.same((JSON.parse((await cli(...as, '--json', 'subscribers')).stdout) as { name: string }[]).map((s) => s.name), ['search'], 'both are gone');
  });

  t.test('rebuild shows position/target and an ETA until the swap', async (t) => {
    const run = await cli(...as, 'rebuild', 'slow');
    t.equal(run.code, 0, run.stderr);
    t.match(run.stdout, new RegExp(`slow: \\d+/${last} \\(\\d+%\\)(, \\d+/s)?, ETA `), 'a progress line');
    t.match(run.stdout, /slow: generation 2 swapped in after \d+ ms\n$/);
    const json = await cli(...as, '--json', 'rebuild', 'shopList');
    t.match(JSON.parse(json.stdout), { projection: 'shopList', generation: 2 }, '--json: the outcome only');
  });

  t.test('failures exit 1 with one line saying why', async (t) => {
    const oneLine = (run: { stderr: string }) => run.stderr.trim().split('\n').length === 1;
    const unknown = await cli(...as, 'rebuild', 'nothing');
    t.match(unknown, { code: 1, stderr: /^converge: no projection named nothing\n$/ }, 'an unknown projection');
    const refused = await cli('--url', admin, '--token', 'wrong', 'status');
    t.match(refused, { code: 1, stderr: /refused the token \(401 unauthorized\)/ }, 'a wrong token');
    t.ok(oneLine(refused));
    const none = await cli('--url', admin, 'status');
    t.match(none, { code: 1, stderr: /401 unauthorized/ }, 'no token');
    const closed = await cli('--url', `http://127.0.0.1:${await freePort()}`, 'status');
    t.match(closed, { code: 1, stderr: /is not reachable \(is converge running\?\): ECONNREFUSED/ }, 'nothing listening');
    t.ok(oneLine(closed));
    const timedOut = await cli(...as, '--timeout', '0.3', 'rebuild', 'slow');
    t.match(timedOut, { code: 1, stderr: /^converge: slow: the rebuild did not swap in within 0.3 s( at \d+\/\d+)?; it goes on in the projector\n$/ }, 'a rebuild past --timeout');
    while (projector.runner.status().find((s) => s.name === 'slow')?.rebuild) await new Promise((r) => setTimeout(r, 50));
    t.match(await cli(...as, '--timeout', 'soon', 'status'), { code: 2, stderr: /--timeout must be a number of seconds above 0/ }, 'a bad --timeout is a usage error');
    t.match(await cli(...as, 'frobnicate'), { code: 2, stderr: /^usage: converge/ }, 'an unknown command');
  });

  t.test('status still shows the views while NATS is away, and says the subscribers cannot be read', async (t) => {
    await nats.stop();
    t.teardown(() => nats.restart());
    await new Promise((r) => setTimeout(r, 1000));
    const run = await cli(...as, 'status');
    t.equal(run.code, 0, run.stderr);
    t.match(run.stdout, /^EVENTS: NOT reachable/);
    t.match(run.stdout, new RegExp(`\\nshopDisplay +\\w+ +1 +${last}`), 'the projections with their positions');
    t.match(run.stdout, /\nsubscribers: unavailable \(GET \/admin\/subscribers answered 5\d\d /);
  });
});
