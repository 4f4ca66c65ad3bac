import t from 'tap';

t.setTimeout(240_000);
import { pino } from 'pino';
import { ensureNoticeStreams, NOTIFY, REPLAY } from '../../src/integration/notifier.js';
import { connectNats, type NatsLink } from '../../src/nats/connection.js';
import { createJetStreamEventStore, ensureEventStream, EVENTS } from '../../src/store/jetstream.js';
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
