import t, { type Test } from 'tap';
import { pino } from 'pino';
import { WrongExpectedPositionError } from '../../src/core/errors.js';
import { StoreChangedError, type Commit, type CommitSubscription, type Delivered, type EventStore, type StoredCommit } from '../../src/core/eventStore.js';
import { isArchivable } from '../../src/core/archive.js';
import { connectNats } from '../../src/nats/connection.js';
import { createJetStreamEventStore } from '../../src/store/jetstream.js';
import { ensureEventStream } from '../../src/store/eventStream.js';
import { createMemoryEventStore } from '../../src/store/memory.js';
import { startTestNats } from '../helpers/nats.js';

/**
 * The event store contract (src/core/eventStore.ts), run against every implementation:
 * the in-memory store the unit tests use must behave as JetStream does, or the unit
 * tests prove nothing about production.
 */

/** A fresh, empty store and the id of its stream. */
type MakeStore = (t: Test) => Promise<{ store: EventStore; streamId: string }>;

const commit = (commandId: string, version: number, id = 's1', aggregate = 'shop'): Commit => ({
  commandId,
  commandType: 'RenameShop',
  aggregate,
  id,
  version,
  events: [{ type: 'ShopRenamed', data: { name: `${id}-v${version}` }, at: '2026-01-01T00:00:00.000Z' }],
});

async function readAll(store: EventStore, aggregate: string, id: string, after: number): Promise<StoredCommit[]> {
  const out: StoredCommit[] = [];
  for await (const c of store.read(aggregate, id, after)) out.push(c);
  return out;
}

/** Pulls deliveries from one iterator of a subscription, failing if one does not come in time. */
function puller(sub: CommitSubscription) {
  const it = sub[Symbol.asyncIterator]();
  return async (n: number, timeoutMs = 5000): Promise<Delivered[]> => {
    const out: Delivered[] = [];
    for (let i = 0; i < n; i++) {
      let timer: NodeJS.Timeout | undefined;
      const next = await Promise.race([
        it.next(),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`delivery ${out.length + 1} of ${n} did not come within ${timeoutMs} ms`)), timeoutMs))),
      ]).finally(() => clearTimeout(timer));
      if (next.done) throw new Error(`the subscription ended after ${out.length} of ${n} deliveries`);
      out.push(next.value);
    }
    return out;
  };
}

function contract(t: Test, makeStore: MakeStore): void {
  t.test('positions start at 1 and grow by one per commit, across aggregates', async (t) => {
    const { store } = await makeStore(t);
    const a1 = await store.append(commit('a1', 1, 'a'), 0);
    const b1 = await store.append(commit('b1', 1, 'b', 'order'), 0);
    const a2 = await store.append(commit('a2', 2, 'a'), a1.position);
    const c1 = await store.append(commit('c1', 1, 'c'), 0);
    t.same(
      [a1, b1, a2, c1].map((r) => r.position),
      [1, 2, 3, 4],
    );
    t.same(
      [a1, b1, a2, c1].map((r) => r.duplicate),
      [false, false, false, false],
      'none is a duplicate',
    );
  });

  t.test('an append with the aggregate’s last position succeeds; a stale one throws WrongExpectedPositionError and appends nothing', async (t) => {
    const { store } = await makeStore(t);
    const first = await store.append(commit('c1', 1), 0);
    const second = await store.append(commit('c2', 2), first.position);
    t.equal(second.duplicate, false);
    await store.append(commit('other', 1, 'other'), 0);
    await t.rejects(store.append(commit('c3', 3), first.position), WrongExpectedPositionError, 'stale expected position');
    await t.rejects(store.append(commit('c4', 3), 0), WrongExpectedPositionError, 'expecting 0 on an aggregate that has commits');
    t.equal(await store.lastPosition('shop', 's1'), second.position, 'the aggregate did not move');
    t.same(
      (await readAll(store, 'shop', 's1', 0)).map((c) => c.commandId),
      ['c1', 'c2'],
      'nothing was appended to the aggregate',
    );
    t.equal((await store.head()).lastPosition, 3, 'nothing was appended to the stream');
    const third = await store.append(commit('c3', 3), second.position);
    t.equal(third.position, 4, 'the refused command goes in with the right expected position');
  });

  t.test('a new aggregate expects position 0; any other expectation is refused', async (t) => {
    const { store } = await makeStore(t);
    await store.append(commit('x', 1, 'busy'), 0);
    await t.rejects(store.append(commit('n1', 1, 'new'), 1), WrongExpectedPositionError);
    t.equal(await store.lastPosition('shop', 'new'), 0, 'still no commits');
    t.same(await store.append(commit('n1', 1, 'new'), 0), { position: 2, duplicate: false });
  });

  t.test('a repeated command id on the same aggregate answers the original position as a duplicate, even with a stale expected position', async (t) => {
    const { store } = await makeStore(t);
    const original = await store.append(commit('dup', 1), 0);
    const later = await store.append(commit('later', 2), original.position);
    t.same(await store.append(commit('dup', 1), 0), { position: original.position, duplicate: true }, 'same expected position as the original');
    t.same(await store.append(commit('dup', 1), later.position), { position: original.position, duplicate: true }, 'the current expected position');
    t.equal((await store.head()).lastPosition, later.position, 'no commit was added');
    t.same(
      (await readAll(store, 'shop', 's1', 0)).map((c) => c.commandId),
      ['dup', 'later'],
    );
  });

  t.test('the same command id on another aggregate is a new commit', async (t) => {
    const { store } = await makeStore(t);
    const a = await store.append(commit('key', 1, 'a'), 0);
    const b = await store.append(commit('key', 1, 'b'), 0);
    const other = await store.append(commit('key', 1, 'a', 'order'), 0);
    t.same(a, { position: 1, duplicate: false });
    t.same(b, { position: 2, duplicate: false }, 'another id of the same aggregate type');
    t.same(other, { position: 3, duplicate: false }, 'the same id of another aggregate type');
  });

  t.test('read gives one aggregate’s commits in order, after a position', async (t) => {
    const { store } = await makeStore(t);
    const p1 = (await store.append(commit('a1', 1, 'a'), 0)).position;
    await store.append(commit('b1', 1, 'b'), 0);
    const p2 = (await store.append(commit('a2', 2, 'a'), p1)).position;
    await store.append(commit('b2', 2, 'b'), 2);
    const p3 = (await store.append(commit('a3', 3, 'a'), p2)).position;

    const all = await readAll(store, 'shop', 'a', 0);
    t.same(
      all.map((c) => [c.commandId, c.version, c.position]),
      [
        ['a1', 1, p1],
        ['a2', 2, p2],
        ['a3', 3, p3],
      ],
    );
    t.match(all[0], { commandType: 'RenameShop', aggregate: 'shop', id: 'a', events: [{ type: 'ShopRenamed', data: { name: 'a-v1' }, at: '2026-01-01T00:00:00.000Z' }] }, 'commits come back whole');
    t.same(
      (await readAll(store, 'shop', 'a', p1)).map((c) => c.commandId),
      ['a2', 'a3'],
      'after the first commit',
    );
    t.same(
      (await readAll(store, 'shop', 'a', p2 + 1)).map((c) => c.commandId),
      ['a3'],
      'after a position between two of its commits',
    );
    t.same(await readAll(store, 'shop', 'a', p3), [], 'after its last commit: nothing');
    t.same(await readAll(store, 'shop', 'none', 0), [], 'an aggregate with no commits: nothing');
  });

  t.test('readSince gives one aggregate’s commits stored from a time on, and none when its last commit is older', async (t) => {
    const { store } = await makeStore(t);
    await store.append(commit('a1', 1, 'a'), 0);
    await store.append(commit('b1', 1, 'b'), 0);
    const since = async (ms: number) => {
      const out: string[] = [];
      for await (const c of store.readSince('shop', 'a', ms)) out.push(c.commandId);
      return out;
    };
    const first = (await store.commitAt(1))!.storedAt;
    t.same(await since(first - 60_000), ['a1'], 'from a minute before: its commit, not the other aggregate’s');
    t.same(await since(Date.now() + 60_000), [], 'from after its last commit: none, at once');
    await store.append(commit('a2', 2, 'a'), 1);
    t.same(await since(first - 60_000), ['a1', 'a2'], 'in order');
    t.same(await since(Date.now() + 60_000), [], 'still none from a later time');
    for await (const c of store.readSince('shop', 'none', 0)) t.fail(`an aggregate with no commits has none: ${c.commandId}`);
  });

  t.test('lastPosition is the position of the aggregate’s last commit, 0 without one', async (t) => {
    const { store } = await makeStore(t);
    t.equal(await store.lastPosition('shop', 'a'), 0);
    await store.append(commit('a1', 1, 'a'), 0);
    await store.append(commit('b1', 1, 'b'), 0);
    t.equal(await store.lastPosition('shop', 'a'), 1);
    t.equal(await store.lastPosition('shop', 'b'), 2);
    await store.append(commit('a2', 2, 'a'), 1);
    t.equal(await store.lastPosition('shop', 'a'), 3);
    t.equal(await store.lastPosition('order', 'a'), 0, 'the same id of another aggregate type is another aggregate');
  });

  t.test('nextPosition is the position of the aggregate’s first commit after a position, 0 when none follows', async (t) => {
    const { store } = await makeStore(t);
    if (!isArchivable(store)) return void t.fail('the store can be archived from');
    t.equal(await store.nextPosition('shop', 'a', 0), 0, 'none yet');
    await store.append(commit('a1', 1, 'a'), 0);
    await store.append(commit('b1', 1, 'b'), 0);
    await store.append(commit('a2', 2, 'a'), 1);
    t.equal(await store.nextPosition('shop', 'a', 0), 1);
    t.equal(await store.nextPosition('shop', 'a', 1), 3, 'another aggregate’s commit between is passed over');
    t.equal(await store.nextPosition('shop', 'a', 3), 0, 'none after the last');
    t.equal(await store.nextPosition('shop', 'b', 2), 0);
    await store.remove([{ position: 1, aggregate: 'shop', id: 'a' }]);
    t.equal(await store.nextPosition('shop', 'a', 0), 3, 'a removed commit is not there');
  });

  t.test('commitAt returns the commit at a position with when it was stored, and undefined past the end', async (t) => {
    const { store } = await makeStore(t);
    const before = Date.now();
    await store.append(commit('a1', 1, 'a'), 0);
    await store.append(commit('b1', 1, 'b'), 0);
    const after = Date.now();
    const second = await store.commitAt(2);
    t.match(second, { commandId: 'b1', commandType: 'RenameShop', aggregate: 'shop', id: 'b', version: 1, position: 2, events: [{ type: 'ShopRenamed' }] });
    t.type(second?.storedAt, 'number');
    t.ok(second!.storedAt >= before - 1000 && second!.storedAt <= after + 1000, `storedAt ${second!.storedAt} is when it was appended`);
    t.match(await store.commitAt(1), { commandId: 'a1', position: 1 });
    t.equal(await store.commitAt(3), undefined, 'past the end');
    t.equal(await store.commitAt(100), undefined, 'far past the end');
  });

  t.test('head gives the last position and a stable stream identity', async (t) => {
    const { store, streamId } = await makeStore(t);
    const empty = await store.head();
    t.equal(empty.lastPosition, 0, 'an empty store');
    t.equal(empty.identity.stream, streamId, 'the stream id is the store’s');
    await store.append(commit('a1', 1, 'a'), 0);
    await store.append(commit('b1', 1, 'b'), 0);
    const head = await store.head();
    t.equal(head.lastPosition, 2);
    t.equal(head.firstPosition, 1);
    t.same(head.identity, empty.identity, 'appends do not change the identity');
  });

  t.test('subscribe delivers every commit after the position in order, then the ones appended later', async (t) => {
    const { store } = await makeStore(t);
    await store.append(commit('a1', 1, 'a'), 0);
    await store.append(commit('b1', 1, 'b'), 0);
    await store.append(commit('a2', 2, 'a'), 1);
    await store.append(commit('c1', 1, 'c'), 0);
    const sub = await store.subscribe(1, { batchSize: 2 });
    t.teardown(() => sub.close());
    const pull = puller(sub);
    const existing = await pull(3);
    t.same(
      existing.map((d) => [d.commit.position, d.commit.commandId]),
      [
        [2, 'b1'],
        [3, 'a2'],
        [4, 'c1'],
      ],
      'the commits after position 1, more than one batch of them',
    );
    for (const d of existing) t.ok(d.head >= d.commit.position, `head ${d.head} ≥ position ${d.commit.position}`);
    t.ok(existing.every((d) => typeof d.storedAt === 'number' && d.storedAt > 0), 'each with when it was stored');
    t.match(existing[1]!.commit, { aggregate: 'shop', id: 'a', version: 2, events: [{ type: 'ShopRenamed', data: { name: 'a-v2' } }] });

    await store.append(commit('d1', 1, 'd'), 0);
    await store.append(commit('a3', 3, 'a'), 3);
    const live = await pull(2);
    t.same(
      live.map((d) => [d.commit.position, d.commit.commandId]),
      [
        [5, 'd1'],
        [6, 'a3'],
      ],
      'then the commits appended later',
    );
    for (const d of live) t.ok(d.head >= d.commit.position, `head ${d.head} ≥ position ${d.commit.position}`);
  });

  t.test('subscribe from 0 delivers from the first commit; from the end only what comes later', async (t) => {
    const { store } = await makeStore(t);
    await store.append(commit('a1', 1, 'a'), 0);
    await store.append(commit('b1', 1, 'b'), 0);
    const fromStart = await store.subscribe(0, { batchSize: 10 });
    t.teardown(() => fromStart.close());
    t.same(
      (await puller(fromStart)(2)).map((d) => d.commit.position),
      [1, 2],
    );
    const fromEnd = await store.subscribe(2, { batchSize: 10 });
    t.teardown(() => fromEnd.close());
    const pull = puller(fromEnd);
    const next = pull(1);
    await store.append(commit('c1', 1, 'c'), 0);
    t.same(
      (await next).map((d) => [d.commit.position, d.commit.commandId]),
      [[3, 'c1']],
    );
  });

  t.test('subscribe with its own stream id delivers; with another one it rejects with StoreChangedError', async (t) => {
    const { store, streamId } = await makeStore(t);
    await store.append(commit('a1', 1, 'a'), 0);
    const same = await store.subscribe(0, { batchSize: 10, stream: streamId });
    t.teardown(() => same.close());
    t.same(
      (await puller(same)(1)).map((d) => d.commit.commandId),
      ['a1'],
    );
    // StoreChangedError keeps the name `Error`, so t.rejects(…, StoreChangedError) cannot match it: check the class.
    const refused = await store.subscribe(0, { batchSize: 10, stream: 'another-stream' }).then(
      (sub) => (sub.close(), undefined),
      (err: unknown) => err,
    );
    t.ok(refused instanceof StoreChangedError, `rejects with StoreChangedError (got ${String(refused)})`);
    t.match(refused, { code: 'store_changed', message: /another-stream/ });
  });

  t.test('isAvailable is true when connected', async (t) => {
    const { store } = await makeStore(t);
    t.equal(store.isAvailable(), true);
  });
}

t.test('in-memory event store', async (t) => {
  contract(t, async () => {
    const store = createMemoryEventStore();
    return { store, streamId: store.streamId };
  });
});

t.test('JetStream event store on a real nats-server', async (t) => {
  contract(t, async (t) => {
    const nats = await startTestNats(t);
    const link = await connectNats(nats.url, { name: 'contract', timeoutMs: 2000, log: pino({ level: 'silent' }) });
    t.teardown(() => link.close());
    const streamId = await ensureEventStream(link, 60_000);
    return { store: createJetStreamEventStore(link, { publishTimeoutMs: 1500 }), streamId };
  });
});
