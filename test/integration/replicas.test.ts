import t from 'tap';

t.setTimeout(240_000);
import { pino } from 'pino';
import { ensureNoticeStreams, NOTIFY, REPLAY } from '../../src/integration/notifier.js';
import { connectNats, type NatsLink } from '../../src/nats/connection.js';
import { createJetStreamEventStore, ensureEventStream, EVENTS, replicatedAppendsAreSafe } from '../../src/store/jetstream.js';
import { startCluster } from '../helpers/cluster.js';
import { tempDir } from '../helpers/nats.js';
import { startTestNatsCluster } from '../helpers/natsCluster.js';

const log = pino({ level: 'silent' });

/** JetStream on a fresh cluster answers only once its meta leader is elected: retry for a while. */
async function eventually<T>(fn: () => Promise<T>, ms = 20_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

t.test('on a 3-node NATS cluster', async (t) => {
  const cluster = await startTestNatsCluster(t);
  const link: NatsLink = await eventually(() => connectNats(cluster.url, { name: 'test', timeoutMs: 3000, log }));
  t.teardown(() => link.close());

  t.test('EVENTS, NOTIFY and REPLAY get nats.replicas copies', async (t) => {
    const id = await eventually(() => ensureEventStream(link, 60_000, 3));
    await eventually(() => ensureNoticeStreams(link, 60_000, 3));
    for (const name of [EVENTS, NOTIFY, REPLAY]) {
      const info = await link.jsm.streams.info(name);
      t.equal(info.config.num_replicas, 3, `${name} asks for 3 copies`);
      t.equal((info.cluster?.replicas?.length ?? 0) + 1, 3, `${name} has a leader and 2 replicas`);
    }
    t.equal(await ensureEventStream(link, 60_000, 3), id, 'setting it up again keeps the same stream');
  });

  t.test('an acknowledged append survives the loss of the node that leads EVENTS', async (t) => {
    const store = createJetStreamEventStore(link, { publishTimeoutMs: 5000 });
    const commit = { commandId: 'c1', commandType: 'RenameShop', aggregate: 'shop', id: 'r1', version: 1, events: [{ type: 'ShopRenamed', data: { name: 'a' }, at: '2026-01-01T00:00:00.000Z' }] };
    const { position } = await store.append(commit, 0);
    const leader = (await link.jsm.streams.info(EVENTS)).cluster?.leader;
    const index = ['n1', 'n2', 'n3'].indexOf(leader ?? '');
    t.ok(index >= 0, `EVENTS is led by ${leader}`);
    await cluster.kill(index);
    const after = await eventually(async () => {
      const info = await link.jsm.streams.info(EVENTS);
      if (!info.cluster?.leader || info.cluster.leader === leader) throw new Error('no new leader yet');
      return info;
    });
    t.not(after.cluster?.leader, leader, `a new leader, ${after.cluster?.leader}, took over`);
    t.equal((await store.commitAt(position))?.commandId, 'c1', 'the commit is still there');
    const next = await eventually(() => store.append({ ...commit, commandId: 'c2', version: 2 }, position));
    t.ok(next.position > position, 'and appends go on with two of three nodes');
    await cluster.restart(index);
    await eventually(async () => {
      const info = await link.jsm.streams.info(EVENTS);
      const current = info.cluster?.replicas?.filter((r) => r.current).length ?? 0;
      if (current < 2) throw new Error('the restarted node has not caught up yet');
    }, 30_000);
    t.pass('the restarted node rejoins and catches up');
  });
});

t.test('a stream made with one copy is scaled to nats.replicas', async (t) => {
  const cluster = await startTestNatsCluster(t);
  const link = await eventually(() => connectNats(cluster.url, { name: 'test', timeoutMs: 3000, log }));
  t.teardown(() => link.close());
  const id = await eventually(() => ensureEventStream(link, 60_000, 1));
  t.equal((await link.jsm.streams.info(EVENTS)).config.num_replicas, 1);
  t.equal(await eventually(() => ensureEventStream(link, 60_000, 3)), id, 'the same stream, scaled');
  const info = await eventually(async () => {
    const i = await link.jsm.streams.info(EVENTS);
    if ((i.cluster?.replicas?.length ?? 0) < 2) throw new Error('not scaled yet');
    return i;
  });
  t.equal(info.config.num_replicas, 3, 'now with 3 copies');
});

t.test('racing appends with one expected sequence, on a replicated stream and on a single copy', async (t) => {
  const cluster = await startTestNatsCluster(t);
  const links = await Promise.all(cluster.urls.map((url) => eventually(() => connectNats(url, { name: 'racer', timeoutMs: 3000, log }))));
  t.teardown(() => Promise.all(links.map((l) => l.close())));
  const version = links[0]!.nc.info!.version;
  const stores = links.map((l) => createJetStreamEventStore(l, { publishTimeoutMs: 5000 }));
  const commit = (id: string, commandId: string, v: number) => ({
    commandId,
    commandType: 'RenameShop',
    aggregate: 'shop',
    id,
    version: v,
    events: [{ type: 'ShopRenamed', data: { name: commandId }, at: '2026-01-01T00:00:00.000Z' }],
  });
  /** For each of `n` aggregates: one commit, then 6 appends at once (2 through each node) expecting its position; how many of them were stored. */
  const race = async (prefix: string, n: number): Promise<number[]> =>
    Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const id = `${prefix}${i}`;
        // Retried: just after a scale, the stream may be electing its leader.
        const first = await eventually(() => stores[i % 3]!.append(commit(id, `first-${i}`, 1), 0));
        const results = await Promise.allSettled(Array.from({ length: 6 }, (_, k) => stores[k % 3]!.append(commit(id, `race-${i}-${k}`, 2), first.position)));
        return results.filter((r) => r.status === 'fulfilled').length;
      }),
    );

  await eventually(() => ensureEventStream(links[0]!, 60_000, 1));
  const single = await race('single', 20);
  t.ok(single.every((stored) => stored === 1), `one copy: exactly one racer is stored each time (${single.join(',')})`);

  await eventually(() => ensureEventStream(links[0]!, 60_000, 3));
  await eventually(async () => {
    if (((await links[0]!.jsm.streams.info(EVENTS)).cluster?.replicas?.length ?? 0) < 2) throw new Error('not scaled yet');
  });
  const replicated = await race('replicated', 20);
  if (replicatedAppendsAreSafe(version)) {
    t.ok(replicated.every((stored) => stored === 1), `nats-server ${version}, 3 copies: exactly one racer is stored each time`);
  } else {
    t.ok(replicated.some((stored) => stored > 1), `nats-server ${version}, 3 copies: racers with one expected sequence are stored together (${replicated.join(',')}), as nats-server#4320 says`);
    const host = await startCluster(t, { CONVERGE_NATS_URL: cluster.url, CONVERGE_NATS_REPLICAS: '3', CONVERGE_DATA_DIR: tempDir(t) });
    t.equal(await host.exited, 1, 'so converge refuses nats.replicas 3 on this server');
    t.match(host.output(), /nats-server#4320, fixed in 2\.9\.21/, 'and says why in one line');
  }
});

t.test('replicated appends are trusted from nats-server 2.9.21 on', async (t) => {
  for (const v of ['2.9.10', '2.9.20', '2.8.4', '1.4.1']) t.notOk(replicatedAppendsAreSafe(v), v);
  for (const v of ['2.9.21', '2.9.25', '2.10.0', '2.11.3', '3.0.0', '2.10.0-beta.1']) t.ok(replicatedAppendsAreSafe(v), v);
});
