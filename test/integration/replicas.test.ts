import t from 'tap';

t.setTimeout(240_000);
import { pino } from 'pino';
import { Type } from 'typebox';
import { ensureNoticeStreams, NOTIFY, REPLAY } from '../../src/integration/notifier.js';
import { connectNats, type NatsLink } from '../../src/nats/connection.js';
import { createJetStreamEventStore } from '../../src/store/jetstream.js';
import { appendsNeedFence, ensureEventStream, EVENTS, replicatedAppendsAreSafe } from '../../src/store/eventStream.js';
import { defineAggregate, emit, type AnyAggregate, type CommandOf, type Decision } from '../../src/index.js';
import { createActorHost } from '../../src/write/host.js';
import { kvReactionStore } from '../../src/react/reactionStore.js';
import { memorySnapshotStore } from '../../src/write/snapshots.js';
import { startTestNatsCluster } from '../helpers/natsCluster.js';

const log = pino({ level: 'silent' });

// A counter whose events carry the running total, so a commit decided on a stale state shows.
const counterCommands = { increment: { type: 'Increment', schema: Type.Object({ by: Type.Number() }) } } as const;
type CounterEvent = { readonly type: 'Incremented'; readonly data: { readonly by: number; readonly total: number } };
const counter = defineAggregate({
  name: 'counter',
  plural: 'counters',
  snapshotVersion: 1,
  commands: counterCommands,
  initialState: (): { readonly total: number } => ({ total: 0 }),
  decide: (state, command: CommandOf<typeof counterCommands>): Decision<CounterEvent> =>
    emit({ type: 'Incremented', data: { by: command.data.by, total: state.total + command.data.by } }),
  evolve: (_state: { readonly total: number }, event: CounterEvent) => ({ total: event.data.total }),
}) as AnyAggregate;

/**
 * JetStream on a fresh cluster answers only once its meta leader is elected, and places a
 * stream of 3 copies only once every node has joined it: retry for a while. On a machine
 * busy with other test files, 20 s was once not enough for a stream of 3 copies; the error
 * that outlasts the wait is thrown with what it said.
 */
async function eventually<T>(fn: () => Promise<T>, ms = 60_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > until) throw new Error(`still failing after ${ms / 1000} s: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
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
    await eventually(() => ensureNoticeStreams(link, { duplicateWindowMs: 60_000, maxAgeMs: 86_400_000, replicas: 3 }));
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

t.test('a stream and the reactions bucket made with one copy are scaled to nats.replicas', async (t) => {
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

  // The reactions' checkpoints too: a bucket made with one copy is scaled at start.
  await eventually(() => kvReactionStore(link, 1));
  t.equal((await link.jsm.streams.info('KV_converge-reactions')).config.num_replicas, 1);
  await eventually(() => kvReactionStore(link, 3));
  t.equal((await link.jsm.streams.info('KV_converge-reactions')).config.num_replicas, 3, 'the converge-reactions bucket, scaled to 3 copies');
});

t.test('racing appends with one expected sequence, on a replicated stream and on a single copy', async (t) => {
  const cluster = await startTestNatsCluster(t);
  const links = await Promise.all(cluster.urls.map((url) => eventually(() => connectNats(url, { name: 'racer', timeoutMs: 3000, log }))));
  t.teardown(() => Promise.all(links.map((l) => l.close())));
  const version = links[0]!.nc.info!.version;
  const storesOf = (fenced: boolean) => links.map((l) => createJetStreamEventStore(l, { publishTimeoutMs: 5000, fenced }));
  const commit = (id: string, commandId: string, v: number) => ({
    commandId,
    commandType: 'RenameShop',
    aggregate: 'shop',
    id,
    version: v,
    events: [{ type: 'ShopRenamed', data: { name: commandId }, at: '2026-01-01T00:00:00.000Z' }],
  });
  /** For each of `n` aggregates: one commit, then 6 appends at once (2 through each node) expecting its position; how many of them were stored. */
  const race = async (prefix: string, n: number, fenced = false): Promise<number[]> => {
    const stores = storesOf(fenced);
    return Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const id = `${prefix}${i}`;
        // Retried: just after a scale, the stream may be electing its leader.
        const first = await eventually(() => stores[i % 3]!.append(commit(id, `first-${i}`, 1), 0));
        const results = await Promise.allSettled(Array.from({ length: 6 }, (_, k) => stores[k % 3]!.append(commit(id, `race-${i}-${k}`, 2), first.position)));
        return results.filter((r) => r.status === 'fulfilled' && !r.value.duplicate).length;
      }),
    );
  };

  await eventually(() => ensureEventStream(links[0]!, 60_000, 1));
  const single = await race('single', 20);
  t.ok(single.every((stored) => stored === 1), `one copy: exactly one racer is stored each time (${single.join(',')})`);

  await eventually(() => ensureEventStream(links[0]!, 60_000, 3));
  await eventually(async () => {
    if (((await links[0]!.jsm.streams.info(EVENTS)).cluster?.replicas?.length ?? 0) < 2) throw new Error('not scaled yet');
  });
  t.equal(await appendsNeedFence(links[0]!), !replicatedAppendsAreSafe(version), `nats-server ${version}, 3 copies: appends are fenced exactly when the server is older than 2.9.21`);
  const replicated = await race('replicated', 20);
  if (replicatedAppendsAreSafe(version)) {
    t.ok(replicated.every((stored) => stored === 1), `nats-server ${version}, 3 copies: exactly one racer is stored each time`);
  } else {
    t.ok(replicated.some((stored) => stored > 1), `nats-server ${version}, 3 copies: racers with one expected sequence are stored together (${replicated.join(',')}), as nats-server#4320 says`);
  }
  const fenced = await race('fenced', 60, true);
  t.ok(fenced.every((stored) => stored === 1), `nats-server ${version}, 3 copies, fenced by position: exactly one racer is stored each time (${fenced.join(',')})`);
});

t.test('two actor hosts on fenced stores, racing for the same aggregates on a replicated stream, commit every command once and in order', async (t) => {
  const cluster = await startTestNatsCluster(t);
  const links = await Promise.all(cluster.urls.slice(0, 2).map((url) => eventually(() => connectNats(url, { name: 'host', timeoutMs: 3000, log }))));
  t.teardown(() => Promise.all(links.map((l) => l.close())));
  await eventually(() => ensureEventStream(links[0]!, 60_000, 3));
  await eventually(async () => {
    if (((await links[0]!.jsm.streams.info(EVENTS)).cluster?.replicas?.length ?? 0) < 2) throw new Error('not scaled yet');
  });
  const stores = links.map((l) => createJetStreamEventStore(l, { publishTimeoutMs: 5000, fenced: true }));
  const hosts = stores.map((store) =>
    createActorHost({
      aggregates: [counter],
      store,
      snapshots: memorySnapshotStore(),
      streamId: 'race',
      duplicateWindowMs: 60_000,
      settings: { snapshotEvery: 1000, idleMs: 60_000, restMs: 1, maxAwake: 0, mailboxSize: 100, recentCommits: 64, conflictRetries: 100 },
      log,
    }),
  );
  const noDeps = () => Promise.reject(new Error('the counter reads no other aggregate'));
  const increment = (id: string, commandId: string) => ({ commandId, aggregate: 'counter', id, type: 'Increment', data: { by: 1 }, at: new Date().toISOString() });
  const ids = Array.from({ length: 60 }, (_, i) => `c${i}`);
  // Each aggregate's first commit, so that both hosts load it at the same position.
  await Promise.all(ids.map((id) => hosts[0]!.execute(increment(id, `${id}-first`), noDeps)));
  await Promise.all(ids.map((id) => hosts[1]!.readState('counter', id)));
  const perHost = 3;
  const results = await Promise.all(
    ids.flatMap((id) => hosts.flatMap((host, h) => Array.from({ length: perHost }, (_, i) => host.execute(increment(id, `${id}-h${h}-${i}`), noDeps)))),
  );
  t.ok(results.every((r) => r.kind === 'accepted'), 'every command is accepted');
  const perAggregate = 1 + 2 * perHost;
  const expected = Array.from({ length: perAggregate }, (_, i) => i + 1);
  const histories = await Promise.all(
    ids.map(async (id) => {
      const commits = [];
      for await (const c of stores[0]!.read('counter', id, 0)) commits.push(c);
      return commits;
    }),
  );
  t.ok(histories.every((h) => h.length === perAggregate), 'each command is one commit');
  t.ok(histories.every((h) => h.map((c) => c.version).join() === expected.join()), 'at versions 1, 2, 3 … with none stored twice');
  t.ok(histories.every((h) => new Set(h.map((c) => c.commandId)).size === perAggregate), 'and no command twice');
  t.ok(
    histories.every((h) => h.every((c) => (c.events[0]!.data as { total: number }).total === c.version)),
    'each decided on the state its version follows',
  );
  await Promise.all(hosts.map((h) => h.drain(1000)));
});

t.test('replicated appends are trusted from nats-server 2.9.21 on', async (t) => {
  for (const v of ['2.9.10', '2.9.20', '2.8.4', '1.4.1']) t.notOk(replicatedAppendsAreSafe(v), v);
  for (const v of ['2.9.21', '2.9.25', '2.10.0', '2.11.3', '3.0.0', '2.10.0-beta.1']) t.ok(replicatedAppendsAreSafe(v), v);
});
