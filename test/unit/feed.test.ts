import t from 'tap';
import { pino } from 'pino';
import type { Commit, CommitSubscription, Delivered, EventStore, StoredCommit } from '../../src/core/eventStore.js';
import { superviseFeed } from '../../src/read/feed.js';
import { createMemoryEventStore } from '../../src/store/memory.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const commit = (seq: number): Commit => ({ commandId: `c${seq}`, commandType: 'Register', aggregate: 'shop', id: `s${seq}`, version: 1, events: [] });

/**
 * An event store whose subscriptions deliver what the test says: one that delivers
 * nothing and raises no error is what a JetStream ordered consumer can do after a server
 * restart. Everything but `subscribe` is the in-memory store's.
 */
function scriptedStore(deliveries: Array<number[] | 'hang'>) {
  const starts: number[] = [];
  const store: EventStore = {
    ...createMemoryEventStore(),
    async subscribe(afterPosition) {
      starts.push(afterPosition + 1);
      const script = deliveries[starts.length - 1] ?? 'hang';
      let closed = false;
      let release: () => void = () => undefined;
      return {
        close() {
          closed = true;
          release();
        },
        async *[Symbol.asyncIterator](): AsyncIterator<Delivered> {
          if (script !== 'hang') {
            for (const seq of script) {
              if (seq <= afterPosition) continue;
              yield { commit: { ...commit(seq), position: seq }, storedAt: Date.now(), head: seq };
            }
          }
          while (!closed) await new Promise<void>((r) => (release = r));
        },
      } satisfies CommitSubscription;
    },
  };
  return { store, starts };
}

t.test('a consumer that delivers nothing while the stream has more is declared stalled, logged, and recreated from the checkpoint', async (t) => {
  const { store, starts } = scriptedStore([[1, 2], 'hang', [3, 4, 5]]);
  const applied: number[] = [];
  const lines: Array<{ level: number; msg: string }> = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { level: number; msg: string }) });
  const feed = superviseFeed({
    store,
    batchSize: 10,
    batchMs: 1,
    name: 'projections',
    from: () => applied.at(-1) ?? 0,
    apply: (batch: StoredCommit[]) => void applied.push(...batch.map((c) => c.position)),
    stallMs: 100,
    maxBackoffMs: 1000,
    log,
  });
  t.teardown(() => feed.stop());
  await sleep(50);
  t.same(applied, [1, 2], 'the first consumer delivered');
  feed.check(2);
  t.equal(feed.health().state, 'running', 'caught up with the stream: running, however long it is quiet');

  feed.restart(); // the second consumer hangs
  await sleep(150);
  feed.check(5);
  t.equal(feed.health().state, 'running', 'behind, but not yet for stallMs');
  await sleep(150);
  feed.check(5);
  t.same(starts, [1, 3, 3], 'after stallMs behind the stream with no batch, the consumer is recreated from the checkpoint');
  await sleep(50);
  t.same(applied, [1, 2, 3, 4, 5], 'the new consumer delivers the rest, in order, once each');
  t.equal(feed.health().state, 'running', 'and the feed is running again');
  t.match(lines.find((l) => l.level === 40)?.msg, /^projections stalled: no progress for 0\.\d s while EVENTS has 3 more commits; recreating its consumer/);
  t.match(lines.find((l) => l.level === 30)?.msg, /^projections recovered after/);
});

t.test('a stalled feed says so until a batch applies', async (t) => {
  const { store } = scriptedStore(['hang', 'hang']);
  const feed = superviseFeed({
    store,
    batchSize: 10,
    batchMs: 1,
    name: 'notifier',
    from: () => 0,
    apply: () => undefined,
    stallMs: 50,
    maxBackoffMs: 1000,
    log: pino({ level: 'silent' }),
  });
  t.teardown(() => feed.stop());
  feed.check(3);
  await sleep(80);
  feed.check(3);
  t.match(feed.health(), { state: 'stalled', error: /no progress for .* while EVENTS has 3 more commits/ });
});

t.test('commits that arrive while a batch is applied go as one batch once it is done, not as a queue of small ones', async (t) => {
  const store = createMemoryEventStore();
  for (let i = 1; i <= 3; i++) await store.append(commit(i), 0);
  const batches: number[][] = [];
  let release: () => void = () => undefined;
  const feed = superviseFeed({
    store,
    batchSize: 100,
    batchMs: 1,
    name: 'projections',
    from: () => batches.flat().at(-1) ?? 0,
    apply: async (batch: StoredCommit[]) => {
      batches.push(batch.map((c) => c.position));
      // The first batch is slow: the rest arrive meanwhile.
      if (batches.length === 1) await new Promise<void>((r) => (release = r));
    },
    stallMs: 60_000,
    maxBackoffMs: 1000,
    log: pino({ level: 'silent' }),
  });
  t.teardown(() => feed.stop());
  for (let i = 0; i < 100 && batches.length === 0; i++) await sleep(5);
  for (let i = 4; i <= 40; i++) {
    await store.append(commit(i), 0);
    await sleep(1);
  }
  await sleep(20);
  release();
  for (let i = 0; i < 100 && batches.flat().length < 40; i++) await sleep(5);
  t.same(batches.flat(), Array.from({ length: 40 }, (_, i) => i + 1), 'every commit once, in order');
  t.equal(batches.length, 2, `the 37 that came during the slow batch were applied together: ${JSON.stringify(batches.map((b) => b.length))}`);
});

t.test('a batch slower than stallMs is not taken for a stalled consumer: its commits are not read again beside it', async (t) => {
  const store = createMemoryEventStore();
  for (let i = 1; i <= 3; i++) await store.append(commit(i), 0);
  const applied: number[] = [];
  let starts = 0;
  const subscribe = store.subscribe.bind(store);
  store.subscribe = (after, opts) => {
    starts++;
    return subscribe(after, opts);
  };
  const feed = superviseFeed({
    store,
    batchSize: 100,
    batchMs: 1,
    name: 'process slow',
    from: () => applied.at(-1) ?? 0,
    apply: async (batch: StoredCommit[]) => {
      await sleep(300);
      applied.push(...batch.map((c) => c.position));
    },
    stallMs: 50,
    maxBackoffMs: 1000,
    log: pino({ level: 'silent' }),
  });
  t.teardown(() => feed.stop());
  for (let i = 0; i < 12; i++) {
    feed.check(3);
    await sleep(30);
  }
  for (let i = 0; i < 100 && applied.length < 3; i++) await sleep(10);
  t.same(applied, [1, 2, 3], 'each commit applied once');
  t.equal(starts, 1, 'the consumer was never recreated');
  t.equal(feed.health().state, 'running');
});
