import t, { type Test } from 'tap';
import { pino } from 'pino';
import { defineProjection, type AnyProjection, type ErrorPolicy, type StoredEvent } from '../../src/index.js';
import type { CommitSubscription, Delivered, EventStore } from '../../src/core/eventStore.js';
import { applyBatch } from '../../src/read/apply.js';
import { createMemoryViews, type MemoryViews } from '../../src/read/memoryViews.js';
import { createProjectionRunner, type ProjectionRunner, type RunnerOptions } from '../../src/read/runner.js';
import { createMemoryEventStore, type MemoryEventStore } from '../../src/store/memory.js';

type ValueSet = { readonly type: 'ValueSet'; readonly data: { readonly key: string; readonly value: number } };
interface ValueDoc {
  readonly key: string;
  readonly value: number;
  /** Events folded into it: one applied twice shows here. */
  readonly applied: number;
  readonly positions: readonly number[];
}

const BAD = -1;

/** A projection of `ValueSet` events by key; its fold throws on `BAD` while `failing()` says so. */
function valuesProjection(opts: { name?: string; onError?: ErrorPolicy; failing?: () => boolean } = {}) {
  const failing = opts.failing ?? (() => true);
  return defineProjection<ValueSet, ValueDoc>({
    name: opts.name ?? 'values',
    version: 1,
    handles: ['ValueSet'],
    key: (event) => event.data.key,
    fold(doc, event, meta) {
      if (event.data.value === BAD && failing()) throw new Error(`cannot fold ${BAD}`);
      return { key: event.data.key, value: event.data.value, applied: (doc?.applied ?? 0) + 1, positions: [...(doc?.positions ?? []), meta.position] };
    },
    indexes: (doc) => [['byValue', doc.value]],
    ...(opts.onError ? { onError: opts.onError } : {}),
  });
}

const AT = '2026-01-01T00:00:00.000Z';
let seq = 0;
/** Appends a commit setting `key` to `value`, each on an aggregate of its own. */
async function appendSet(store: EventStore, key: string, value: number): Promise<number> {
  const n = ++seq;
  const event: StoredEvent = { type: 'ValueSet', data: { key, value }, at: AT };
  return (await store.append({ commandId: `c${n}`, commandType: 'SetValue', aggregate: 'kv', id: `k${n}`, version: 1, events: [event] }, 0)).position;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const docs = (views: MemoryViews, name: string, gen: number) => Object.fromEntries(views.documents(name, gen).map(({ key, doc }) => [String(key), doc]));

function startRunner(t: Test, opts: Partial<RunnerOptions> & { store: EventStore; views: MemoryViews; projections: readonly AnyProjection[] }): ProjectionRunner {
  const runner = createProjectionRunner({
    aggregates: [],
    batchSize: 2,
    batchMs: 5,
    stallMs: 60_000,
    maxBackoffMs: 1000,
    statusIntervalMs: 20,
    log: pino({ level: 'silent' }),
    ...opts,
  });
  t.teardown(() => runner.stop());
  runner.start();
  return runner;
}

/** The store with its subscriptions recorded, and those made while `hold` is set held back until it resolves. */
function recordingStore(inner: MemoryEventStore) {
  const subscribedFrom: number[] = [];
  let hold: Promise<void> | undefined;
  const store: EventStore = {
    ...inner,
    async subscribe(after, opts) {
      subscribedFrom.push(after);
      const sub = await inner.subscribe(after, opts);
      const gate = hold;
      if (!gate) return sub;
      return {
        close: () => sub.close(),
        async *[Symbol.asyncIterator](): AsyncIterator<Delivered> {
          await gate;
          yield* sub;
        },
      } satisfies CommitSubscription;
    },
  };
  return {
    store,
    subscribedFrom,
    holdNewSubscriptions(): () => void {
      let release!: () => void;
      hold = new Promise<void>((r) => (release = r));
      return () => {
        hold = undefined;
        release();
      };
    },
  };
}

t.test('the runner catches up from the checkpoint and follows new appends', async (t) => {
  const inner = createMemoryEventStore();
  const { store, subscribedFrom } = recordingStore(inner);
  const views = createMemoryViews();
  const projection = valuesProjection();
  for (const [key, value] of [['a', 1], ['b', 1], ['a', 2], ['c', 1]] as const) await appendSet(inner, key, value);
  // The first two commits were applied before a restart.
  applyBatch(views, [{ projection, gen: 1 }], inner.commits.slice(0, 2), (_a, e) => e, () => AT);
  t.equal(views.checkpoint('values', 1), 2);

  const runner = startRunner(t, { store, views, projections: [projection], streamId: inner.streamId });
  await until(() => views.checkpoint('values', 1) === 4, 'catching up to position 4');
  t.equal(subscribedFrom[0], 2, 'subscribed after the checkpoint');
  t.same(docs(views, 'values', 1), {
    a: { key: 'a', value: 2, applied: 2, positions: [1, 3] },
    b: { key: 'b', value: 1, applied: 1, positions: [2] },
    c: { key: 'c', value: 1, applied: 1, positions: [4] },
  }, 'each commit applied once');

  await appendSet(inner, 'b', 7);
  await appendSet(inner, 'd', 1);
  await until(() => views.checkpoint('values', 1) === 6, 'following to position 6');
  t.match(views.get(projection, 'b'), { value: 7, applied: 2, positions: [2, 5] });
  t.match(views.get(projection, 'd'), { value: 1, positions: [6] });
  await until(() => runner.status()[0]!.lagEvents === 0 && runner.stream().lastPosition === 6, 'the status to catch up');
  t.match(runner.status(), [{ name: 'values', generation: 1, state: 'running', position: 6, lagEvents: 0, parked: 0 }]);
});

t.test('rebuild fills a fresh generation while the old one serves, then swaps it in', async (t) => {
  const inner = createMemoryEventStore();
  const { store, holdNewSubscriptions } = recordingStore(inner);
  const views = createMemoryViews();
  const projection = valuesProjection();
  for (const [key, value] of [['a', 1], ['b', 2], ['a', 3], ['c', 4], ['b', 5]] as const) await appendSet(inner, key, value);
  const runner = startRunner(t, { store, views, projections: [projection], streamId: inner.streamId });
  await until(() => views.checkpoint('values', 1) === 5, 'the live feed to catch up');

  const release = holdNewSubscriptions();
  t.teardown(release);
  const rebuilt = runner.rebuild('values');
  await until(() => runner.status()[0]!.state === 'rebuilding' && runner.status()[0]!.rebuild !== undefined, 'the rebuild to start');
  t.match(runner.status()[0], { generation: 1, state: 'rebuilding', rebuild: { generation: 2, position: 0 } });
  t.equal(views.activeGeneration('values'), 1, 'the old generation is still active');
  t.match(views.get(projection, 'a'), { value: 3 }, 'and serves reads');

  await appendSet(inner, 'd', 6);
  await until(() => views.checkpoint('values', 1) === 6, 'the live feed to apply a commit made during the rebuild');
  t.match(views.get(projection, 'd'), { value: 6 }, 'the old generation keeps up while the new one is built');
  const served = docs(views, 'values', 1);

  release();
  await rebuilt;
  t.equal(views.activeGeneration('values'), 2, 'the active generation went up by one');
  t.same(docs(views, 'values', 2), served, 'the rebuilt documents equal the ones served before');
  t.same(views.indexEntries('values', 2), [['byValue', 3, 'a'], ['byValue', 4, 'c'], ['byValue', 5, 'b'], ['byValue', 6, 'd']], 'with their index entries');
  t.equal(views.checkpoint('values', 2), 6);
  t.same(views.documents('values', 1), [], 'the old generation was dropped');
  t.match(runner.status()[0], { generation: 2, state: 'running', position: 6 });
  t.notOk('lastRebuildError' in runner.status()[0]!);

  await appendSet(inner, 'e', 7);
  await until(() => views.get(projection, 'e') !== undefined, 'the live feed to write to the new generation');
  t.equal(views.checkpoint('values', 2), 7);
});

t.test('a rebuild in progress reports its position, the stream head as its target, its rate and an ETA', async (t) => {
  const inner = createMemoryEventStore();
  const views = createMemoryViews();
  const projection = valuesProjection();
  for (let i = 0; i < 10; i++) await appendSet(inner, `k${i}`, i);
  let clock = 1_000_000;
  let holdAfter: number | undefined;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  t.teardown(() => release());
  // Subscriptions made once `holdAfter` is set deliver that many commits, then wait for the gate.
  const store: EventStore = {
    ...inner,
    async subscribe(after, opts) {
      const sub = await inner.subscribe(after, opts);
      const limit = holdAfter;
      if (limit === undefined) return sub;
      return {
        close: () => sub.close(),
        async *[Symbol.asyncIterator](): AsyncIterator<Delivered> {
          let n = 0;
          for await (const d of sub) {
            if (n++ === limit) await gate;
            yield d;
          }
        },
      } satisfies CommitSubscription;
    },
  };
  const runner = startRunner(t, { store, views, projections: [projection], streamId: inner.streamId, now: () => clock });
  await until(() => views.checkpoint('values', 1) === 10 && runner.stream().lastPosition === 10, 'the live feed to catch up');

  holdAfter = 4;
  const started = clock;
  const rebuilt = runner.rebuild('values');
  await until(() => views.checkpoint('values', 2) === 4, 'the rebuild to apply 4 commits and wait');
  t.match(runner.status()[0]!.rebuild, { generation: 2, position: 4, target: 10, ratePerS: null, etaMs: null }, 'no rate before any time has passed');
  clock += 2000;
  t.match(
    runner.status()[0]!.rebuild,
    { generation: 2, position: 4, target: 10, startedAt: new Date(started).toISOString(), ratePerS: 2, etaMs: 3000, state: 'running' },
    '4 commits in 2 s: 2 a second, and 6 to go take 3 s',
  );
  release();
  await rebuilt;
  t.notOk('rebuild' in runner.status()[0]!, 'no progress once it swapped in');
});

t.test('a rebuild whose projection stops rejects and leaves the old generation active', async (t) => {
  const inner = createMemoryEventStore();
  const views = createMemoryViews();
  let failing = false;
  const projection = valuesProjection({ onError: { kind: 'stop' }, failing: () => failing });
  await appendSet(inner, 'a', 1);
  await appendSet(inner, 'b', BAD);
  await appendSet(inner, 'c', 3);
  const runner = startRunner(t, { store: inner, views, projections: [projection], streamId: inner.streamId });
  await until(() => views.checkpoint('values', 1) === 3, 'the live feed to catch up');
  const served = docs(views, 'values', 1);

  failing = true;
  await t.rejects(runner.rebuild('values'), /the fold stopped at position 2: cannot fold -1/);
  t.equal(views.activeGeneration('values'), 1, 'the old generation is still active');
  t.same(docs(views, 'values', 1), served, 'and unchanged');
  t.match(views.get(projection, 'c'), { value: 3 }, 'and serves reads');
  const status = runner.status()[0]!;
  t.match(status, { generation: 1, state: 'running', position: 3, lastRebuildError: /the fold stopped at position 2/ });
  t.notOk('rebuild' in status, 'no rebuild in progress');
  await until(() => views.documents('values', 2).length === 0, 'the failed generation to be dropped');

  failing = false;
  await runner.rebuild('values');
  t.equal(views.activeGeneration('values'), 2, 'a later rebuild that succeeds swaps in');
  t.notOk('lastRebuildError' in runner.status()[0]!, 'and clears the error');
  t.same(docs(views, 'values', 2), served);
});

t.test('status reports lagEvents against the store head', async (t) => {
  const inner = createMemoryEventStore();
  const views = createMemoryViews();
  const stopping = valuesProjection({ onError: { kind: 'stop' } });
  const healthy = valuesProjection({ name: 'healthy', failing: () => false });
  await appendSet(inner, 'a', 1);
  await appendSet(inner, 'b', 2);
  await appendSet(inner, 'c', BAD);
  await appendSet(inner, 'd', 4);
  await appendSet(inner, 'e', 5);
  const runner = startRunner(t, { store: inner, views, projections: [stopping, healthy], streamId: inner.streamId });
  const byName = () => Object.fromEntries(runner.status().map((s) => [s.name, s]));
  await until(() => views.checkpoint('healthy', 1) === 5 && runner.stream().lastPosition === 5, 'the healthy view to catch up and the head to be read');
  t.match(byName().values, { state: 'stopped', position: 2, lagEvents: 3, error: `cannot fold ${BAD}` }, 'stopped at 3: commits 3, 4 and 5 are behind');
  t.match(byName().healthy, { state: 'running', position: 5, lagEvents: 0, lagMs: 0 });

  await appendSet(inner, 'f', 6);
  await appendSet(inner, 'g', 7);
  await until(() => views.checkpoint('healthy', 1) === 7 && runner.stream().lastPosition === 7, 'the next commits');
  t.match(byName().values, { position: 2, lagEvents: 5 }, 'the lag grows with the store');
  t.match(byName().healthy, { position: 7, lagEvents: 0 });
  t.type(byName().values!.lagMs, 'number', 'the age of the oldest unapplied commit is known');
});

t.test('a store with another stream id than the views were built from calls onStoreChanged, once, and applies nothing', async (t) => {
  const inner = createMemoryEventStore({ streamId: 'new-stream' });
  await appendSet(inner, 'a', 1);
  await appendSet(inner, 'b', 2);
  const views = createMemoryViews();
  const projection = valuesProjection();
  const reasons: string[] = [];
  startRunner(t, { store: inner, views, projections: [projection], streamId: 'old-stream', onStoreChanged: (reason) => reasons.push(reason) });
  await until(() => reasons.length > 0, 'onStoreChanged');
  await sleep(100); // several status polls and feed retries later
  t.equal(reasons.length, 1, 'called once');
  t.match(reasons[0], /new-stream/);
  t.match(reasons[0], /old-stream/);
  t.equal(views.checkpoint('values', 1), 0, 'nothing applied');
  t.same(views.documents('values', 1), []);
});
