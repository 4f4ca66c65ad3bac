import t, { type Test } from 'tap';
import { pino } from 'pino';
import type { EventStore, StoredCommit } from '../../src/core/eventStore.js';
import { superviseFeed, type FeedSpec } from '../../src/read/feed.js';
import { shareFeeds } from '../../src/read/sharedFeed.js';
import { createMemoryEventStore } from '../../src/store/memory.js';

// Feeds that share one delivery of the event store: each member as if it had its own feed,
// from its own checkpoint, through one subscription.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A memory store with `count` commits alternating between aggregates `a` and `b`, which counts its subscriptions. */
async function store(count: number) {
  const inner = createMemoryEventStore();
  for (let i = 1; i <= count; i++) {
    const aggregate = i % 2 === 1 ? 'a' : 'b';
    await inner.append({ commandId: `c${i}`, commandType: 'C', aggregate, id: `x${i}`, version: 1, events: [{ type: 'E', data: { i }, at: '2026-01-01T00:00:00.000Z' }] }, 0);
  }
  const subscriptions: number[] = [];
  const counted: EventStore = {
    ...inner,
    subscribe(after, opts) {
      subscriptions.push(after);
      return inner.subscribe(after, opts);
    },
  };
  return { store: counted, subscriptions, append: inner.append.bind(inner) };
}

/** A member that applies what it is handed past its checkpoint, as a reaction's feed does. */
interface Member {
  readonly seen: StoredCommit[];
  position: number;
  readonly spec: FeedSpec;
}

function member(name: string, checkpoint: number, apply?: (batch: StoredCommit[]) => Promise<void>, only?: ReadonlySet<string>): Member {
  const seen: StoredCommit[] = [];
  const m: Member = {
    seen,
    position: checkpoint,
    spec: {
      name,
      from: () => m.position,
      ...(only ? { only } : {}),
      apply: async (batch: StoredCommit[]) => {
        const fresh = batch.filter((c) => c.position > m.position);
        if (fresh.length === 0) return;
        await apply?.(fresh);
        seen.push(...fresh);
        m.position = fresh.at(-1)!.position;
      },
    },
  };
  return m;
}

function shared(s: EventStore) {
  const log = pino({ level: 'silent' });
  return shareFeeds((spec) => superviseFeed({ store: s, batchSize: 4, batchMs: 1, stallMs: 10_000, maxBackoffMs: 1, log, ...spec }), 'reactions');
}

/** Starts the members together, as a host starts its reactions, and stops them at the test's end. */
async function startTogether(t: Test, feeds: ReturnType<typeof shared>, ...members: Member[]): Promise<Array<{ stop(): void }>> {
  const started: Array<{ stop(): void }> = [];
  await feeds.together(async () => {
    for (const m of members) started.push(feeds.feed(m.spec));
  });
  t.teardown(() => started.forEach((f) => f.stop()));
  return started;
}

/** A member's apply that takes 30 ms a batch, and whether two of its batches ever ran at once. */
function slowApply() {
  let running = 0;
  let overlapped = false;
  return {
    apply: async () => {
      running++;
      if (running > 1) overlapped = true;
      await sleep(30);
      running--;
    },
    overlapped: () => overlapped,
  };
}

async function until(t: Test, what: string, done: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !done(); i++) await sleep(5);
  t.ok(done(), what);
}

t.test('members started together read one subscription, from the lowest checkpoint, each past its own', async (t) => {
  const s = await store(10);
  const feeds = shared(s.store);
  const early = member('early', 0);
  const late = member('late', 6);
  await startTogether(t, feeds, early, late);
  await until(t, 'both reach the last commit', () => early.position === 10 && late.position === 10);
  t.same(s.subscriptions, [0], 'one subscription, after the lowest checkpoint');
  t.same(early.seen.map((c) => c.position), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'the member at 0 gets every commit');
  t.same(late.seen.map((c) => c.position), [7, 8, 9, 10], 'the member at 6 gets none at or below its checkpoint');
});

t.test("a member is handed another member's aggregates as passed over, without their events", async (t) => {
  const s = await store(6);
  const feeds = shared(s.store);
  const onlyA = member('a-reader', 0, undefined, new Set(['a']));
  const onlyB = member('b-reader', 0, undefined, new Set(['b']));
  await startTogether(t, feeds, onlyA, onlyB);
  await until(t, 'both reach the last commit', () => onlyA.position === 6 && onlyB.position === 6);
  t.same(onlyA.seen.filter((c) => c.events.length > 0).map((c) => c.aggregate), ['a', 'a', 'a'], 'the a-reader gets the events of a alone');
  t.same(onlyB.seen.filter((c) => c.events.length > 0).map((c) => c.aggregate), ['b', 'b', 'b'], 'the b-reader gets the events of b alone');
  t.equal(onlyA.seen.length, 6, 'and every position, in its place');
});

t.test('a member that fails makes the delivery start again from the lowest checkpoint, only after the others finished their batch', async (t) => {
  const s = await store(8);
  const feeds = shared(s.store);
  let failures = 1;
  const failing = member('failing', 0, async () => {
    if (failures-- > 0) throw new Error('down');
  });
  const slowly = slowApply();
  const slow = member('slow', 0, slowly.apply);
  await startTogether(t, feeds, failing, slow);
  await until(t, 'both reach the last commit', () => failing.position === 8 && slow.position === 8);
  t.ok(s.subscriptions.length >= 2, 'the failure started the delivery again');
  t.equal(s.subscriptions[1], 0, 'from the lowest checkpoint');
  t.notOk(slowly.overlapped(), 'the slow member never ran two batches at once');
  t.same(failing.seen.map((c) => c.position), [1, 2, 3, 4, 5, 6, 7, 8], 'the failing member got every commit once it recovered');
  t.same(slow.seen.map((c) => c.position), [1, 2, 3, 4, 5, 6, 7, 8], 'and the slow one every commit once');
});

t.test('a member that joins late is delivered every commit after its checkpoint, and the others nothing twice', async (t) => {
  const s = await store(5);
  const feeds = shared(s.store);
  const first = member('first', 0);
  const f1 = feeds.feed(first.spec);
  t.teardown(() => f1.stop());
  await until(t, 'the first member catches up', () => first.position === 5);
  const resumed = member('resumed', 2);
  const f2 = feeds.feed(resumed.spec);
  t.teardown(() => f2.stop());
  await until(t, 'the late member catches up', () => resumed.position === 5);
  t.same(resumed.seen.map((c) => c.position), [3, 4, 5], 'it gets the commits after its own checkpoint');
  t.same(s.subscriptions, [0, 2], 'through a new subscription from its checkpoint');
  t.same(first.seen.map((c) => c.position), [1, 2, 3, 4, 5], 'the first member is handed nothing twice');
});

t.test('a member that leaves is handed nothing more; the last to leave ends the subscription', async (t) => {
  const s = await store(2);
  const feeds = shared(s.store);
  const staying = member('staying', 0);
  const leaving = member('leaving', 0);
  const fs = await startTogether(t, feeds, staying, leaving);
  await until(t, 'both catch up', () => staying.position === 2 && leaving.position === 2);
  fs[1]!.stop();
  await s.append({ commandId: 'c3', commandType: 'C', aggregate: 'a', id: 'x3', version: 1, events: [] }, 0);
  await until(t, 'the staying member gets the new commit', () => staying.position === 3);
  t.equal(leaving.position, 2, 'the member that left is not handed it');
  fs[0]!.stop();
  await s.append({ commandId: 'c4', commandType: 'C', aggregate: 'a', id: 'x4', version: 1, events: [] }, 0);
  await sleep(50);
  t.equal(staying.position, 3, 'after the last member left, nothing is delivered');
});

t.test('a batch handed while the one before is still running waits for it: the consumer failed and the feed started again', async (t) => {
  let spec: FeedSpec | undefined;
  const feed = { health: () => ({ state: 'running' as const, lastBatchAt: 0 }), unappliedAt: () => undefined, seen: () => 0, check: () => undefined, restart: () => undefined, stop: () => undefined };
  const feeds = shareFeeds((s) => ((spec = s), feed), 'reactions');
  const slowly = slowApply();
  const slow = member('slow', 0, slowly.apply);
  const f = feeds.feed(slow.spec);
  t.teardown(() => f.stop());
  await until(t, 'the shared feed starts', () => spec !== undefined);
  const commit = (position: number): StoredCommit => ({ position, commandId: `c${position}`, commandType: 'C', aggregate: 'a', id: 'x', version: 1, events: [] });
  // The same commits again, as a feed restarted from the unmoved checkpoint hands them.
  await Promise.all([spec!.apply([commit(1), commit(2)]), spec!.apply([commit(1), commit(2)])]);
  t.notOk(slowly.overlapped(), 'the member never ran two batches at once');
  t.same(slow.seen.map((c) => c.position), [1, 2], 'and ran the commits once');
});
