import t from 'tap';
import { pino } from 'pino';
import type { StoredCommit } from '../../src/core/eventStore.js';
import type { Feed, FeedSpec } from '../../src/read/feed.js';
import { reactionFeed, type ReactionInput } from '../../src/react/reactionFeed.js';
import { memoryReactionStore } from '../../src/react/reactionStore.js';

// A reaction's feed runs a batch's inputs as their keys allow: one key in order, different
// keys at once, an input without a key alone.

const commit = (position: number): StoredCommit => ({ position, commandId: `c${position}`, commandType: 'C', aggregate: 'a', id: `i${position}`, version: 1, events: [] });
const tick = () => new Promise<void>((r) => setTimeout(r, 5));

/** A feed whose batches the test hands in, as the supervised feed would. */
function manualFeed() {
  let spec: FeedSpec | undefined;
  const feed: Feed = { health: () => ({ state: 'running', lastBatchAt: 0 }), unappliedAt: () => undefined, seen: () => 0, check: () => undefined, restart: () => undefined, stop: () => undefined };
  return { start: (s: FeedSpec) => ((spec = s), feed), deliver: (batch: StoredCommit[]) => spec!.apply(batch) };
}

t.test('inputs of different keys run at once, those of one key in order, and one without a key alone', async (t) => {
  const log: string[] = [];
  let running = 0;
  let most = 0;
  const input = (name: string, key: string | undefined): ReactionInput => ({
    eventIndex: 0,
    type: name,
    ...(key === undefined ? {} : { key }),
    run: async () => {
      running++;
      most = Math.max(most, running);
      log.push(`start ${name}`);
      await tick();
      log.push(`end ${name}`);
      running--;
    },
  });
  const inputs: Record<number, ReactionInput[]> = {
    1: [input('a1', 'a')],
    2: [input('b1', 'b')],
    3: [input('a2', 'a')],
    4: [input('barrier', undefined)],
    5: [input('c1', 'c')],
  };
  const reactions = memoryReactionStore();
  const manual = manualFeed();
  const feed = reactionFeed({ name: 'r', kind: 'process', policy: { kind: 'stop' }, reactions, feed: manual.start, inputs: (c) => inputs[c.position] ?? [], log: pino({ level: 'silent' }) });
  await feed.start();
  await manual.deliver([1, 2, 3, 4, 5].map(commit));
  t.ok(log.indexOf('end a1') < log.indexOf('start a2'), 'a2 starts after a1 ended: one key in order');
  t.ok(log.indexOf('start b1') < log.indexOf('end a1'), 'b1 starts before a1 ends: different keys at once');
  t.ok(log.indexOf('end a2') < log.indexOf('start barrier') && log.indexOf('end barrier') < log.indexOf('start c1'), 'the input without a key runs after all before it and before all after it');
  t.equal(most, 2, 'at most the two keys ran at once');
  t.equal(await reactions.checkpoint('r'), 5, 'the checkpoint is the batch\'s last position');
});

t.test('an input stopped by its policy leaves the checkpoint before its commit, whatever other keys did', async (t) => {
  const ran: string[] = [];
  const ok = (name: string, key: string): ReactionInput => ({ eventIndex: 0, type: name, key, run: async () => void ran.push(name) });
  const inputs: Record<number, ReactionInput[]> = {
    1: [ok('a1', 'a')],
    2: [{ eventIndex: 0, type: 'b1', key: 'b', run: async () => Promise.reject(new Error('down')) }],
    3: [ok('a2', 'a')],
    4: [ok('b2', 'b')],
  };
  const reactions = memoryReactionStore();
  const manual = manualFeed();
  const feed = reactionFeed({ name: 'r', kind: 'process', policy: { kind: 'stop' }, reactions, feed: manual.start, inputs: (c) => inputs[c.position] ?? [], log: pino({ level: 'silent' }) });
  await feed.start();
  await manual.deliver([1, 2, 3, 4].map(commit));
  t.equal(await reactions.checkpoint('r'), 1, 'the checkpoint stays before the commit that stopped it');
  t.notOk(ran.includes('b2'), 'the stopped key goes no further');
  t.same(feed.health(), { state: 'stopped', error: 'down' }, 'and the reaction reports itself stopped');
});

t.test('a batch still running when the reaction is stopped and started again changes neither the new feed nor its position', async (t) => {
  let release: () => void = () => undefined;
  const inputs: Record<number, ReactionInput[]> = {
    // Fails once it is let go: under the `stop` policy that stops the reaction, were its feed still the current one.
    1: [{ eventIndex: 0, type: 'slow', key: 'a', run: () => new Promise<void>((_, reject) => (release = () => reject(new Error('down')))) }],
  };
  const reactions = memoryReactionStore();
  const specs: FeedSpec[] = [];
  const stops: number[] = [];
  const start = (s: FeedSpec): Feed => {
    const n = specs.push(s);
    return { health: () => ({ state: 'running', lastBatchAt: 0 }), unappliedAt: () => undefined, seen: () => 0, check: () => undefined, restart: () => undefined, stop: () => void stops.push(n) };
  };
  const feed = reactionFeed({ name: 'r', kind: 'process', policy: { kind: 'stop' }, reactions, feed: start, inputs: (c) => inputs[c.position] ?? [], log: pino({ level: 'silent' }) });
  await feed.start();
  const old = specs[0]!.apply([commit(1)]);
  await tick();
  // The lease is lost and taken again while the input runs.
  feed.stop();
  await feed.start();
  t.equal(specs.length, 2, 'a second feed started');
  release();
  await old;
  t.notOk(stops.includes(2), 'the old batch did not stop the new feed');
  t.equal(feed.position(), 0, 'nor move the position the new feed goes on from');
  t.equal(await reactions.checkpoint('r'), 0, 'nor save a checkpoint');
  t.same(feed.health(), { state: 'running' }, 'and the reaction runs on, not stopped');
});

t.test("a subscription with `only` passes over other aggregates' commits: their place without their events", async (t) => {
  const { createMemoryEventStore } = await import('../../src/store/memory.js');
  const store = createMemoryEventStore();
  const append = (aggregate: string, id: string) =>
    store.append({ commandId: `${aggregate}-${id}`, commandType: 'C', aggregate, id, version: 1, events: [{ type: 'E', data: { id }, at: '2026-01-01T00:00:00.000Z' }] }, 0);
  await append('order', 'o1');
  await append('shop', 's1');
  await append('order', 'o2');
  const sub = await store.subscribe(0, { batchSize: 10, only: new Set(['order']) });
  const seen = [];
  for await (const { commit } of sub) {
    seen.push([commit.position, commit.aggregate, commit.id, commit.events.length]);
    if (commit.position === 3) break;
  }
  sub.close();
  t.same(seen, [[1, 'order', 'o1', 1], [2, 'shop', 's1', 0], [3, 'order', 'o2', 1]], 'every position is delivered, only the orders with their events');
});

t.test('a batch that runs nothing moves the position at once and saves it within a second, not with a write of its own per batch', async (t) => {
  const reactions = memoryReactionStore();
  let saves = 0;
  const setCheckpoint = reactions.setCheckpoint.bind(reactions);
  reactions.setCheckpoint = async (name, position) => {
    saves++;
    return setCheckpoint(name, position);
  };
  const manual = manualFeed();
  const feed = reactionFeed({ name: 'r', kind: 'reactor', policy: undefined, reactions, feed: manual.start, inputs: () => [], log: pino({ level: 'silent' }) });
  await feed.start();
  for (let p = 1; p <= 20; p++) await manual.deliver([commit(p)]);
  t.equal(feed.position(), 20, 'the position moved with every batch');
  t.equal(saves, 0, 'twenty batches that ran nothing wrote no checkpoint yet');
  await new Promise((r) => setTimeout(r, 1200));
  t.equal(saves, 1, 'one write within a second covers them');
  t.equal(await reactions.checkpoint('r'), 20, 'at the last position');
  feed.stop();
});

t.test('a batch that ran inputs saves its checkpoint before the next batch is taken', async (t) => {
  const reactions = memoryReactionStore();
  const manual = manualFeed();
  const ran: number[] = [];
  const feed = reactionFeed({ name: 'r', kind: 'reactor', policy: undefined, reactions, feed: manual.start, inputs: (c) => [{ eventIndex: 0, type: 'E', key: c.id, run: async () => void ran.push(c.position) }], log: pino({ level: 'silent' }) });
  await feed.start();
  await manual.deliver([commit(1), commit(2)]);
  t.same(ran, [1, 2]);
  t.equal(await reactions.checkpoint('r'), 2, 'saved as the batch ends');
  feed.stop();
});

t.test('a stop waits for the input under way, starts none after it, and saves the checkpoint through it', async (t) => {
  let release: () => void = () => undefined;
  const ran: number[] = [];
  const inputs: Record<number, ReactionInput[]> = {
    1: [{ eventIndex: 0, type: 'slow', run: () => new Promise<void>((r) => (release = () => (ran.push(1), r()))) }],
    2: [{ eventIndex: 0, type: 'next', run: async () => void ran.push(2) }],
  };
  const reactions = memoryReactionStore();
  const manual = manualFeed();
  const feed = reactionFeed({ name: 'r', kind: 'reactor', policy: undefined, reactions, feed: manual.start, inputs: (c) => inputs[c.position] ?? [], log: pino({ level: 'silent' }) });
  await feed.start();
  const batch = manual.deliver([commit(1), commit(2)]);
  await tick();
  let stopped = false;
  const stopping = feed.stop().then(() => (stopped = true));
  await tick();
  t.notOk(stopped, 'the stop waits while the input runs');
  release();
  await stopping;
  await batch;
  t.same(ran, [1], 'the input under way finished; the one after it did not start');
  t.equal(await reactions.checkpoint('r'), 1, 'the checkpoint covers the input that ran');
});

t.test('a stop ends a pause between attempts without waiting it out', async (t) => {
  let attempts = 0;
  const inputs: Record<number, ReactionInput[]> = {
    1: [{ eventIndex: 0, type: 'failing', run: () => (attempts++, Promise.reject(new Error('down'))) }],
  };
  const reactions = memoryReactionStore();
  const manual = manualFeed();
  // A pause that never ends by itself.
  const feed = reactionFeed({ name: 'r', kind: 'reactor', policy: { kind: 'retry', times: 5 }, reactions, feed: manual.start, inputs: (c) => inputs[c.position] ?? [], log: pino({ level: 'silent' }), sleep: () => new Promise<void>(() => undefined) });
  await feed.start();
  const batch = manual.deliver([commit(1)]);
  await tick();
  t.equal(attempts, 1, 'the first attempt failed and the feed pauses');
  await feed.stop();
  await batch;
  t.equal(attempts, 1, 'no attempt after the stop');
  t.equal(await reactions.checkpoint('r'), 0, 'the input runs again at the next start');
});

t.test('a stop goes on without an input that never ends, after stopWaitMs', async (t) => {
  const inputs: Record<number, ReactionInput[]> = {
    1: [{ eventIndex: 0, type: 'stuck', run: () => new Promise<void>(() => undefined) }],
  };
  const reactions = memoryReactionStore();
  const manual = manualFeed();
  const warnings: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line).msg) });
  const feed = reactionFeed({ name: 'r', kind: 'reactor', policy: undefined, reactions, feed: manual.start, inputs: (c) => inputs[c.position] ?? [], log, stopWaitMs: 20 });
  await feed.start();
  void manual.deliver([commit(1)]);
  await tick();
  await feed.stop();
  t.match(warnings, [/reactor r stopped with an input still running after 20 ms/], 'it says so');
  t.equal(await reactions.checkpoint('r'), 0, 'the input runs again at the next start');
});

t.test('an input that fails once the stop has begun is no failure: nothing is logged above debug, and it runs again at the next start', async (t) => {
  let fail: (err: Error) => void = () => undefined;
  const inputs: Record<number, ReactionInput[]> = {
    1: [{ eventIndex: 0, type: 'dispatch', run: () => new Promise<void>((_resolve, reject) => (fail = reject)) }],
  };
  const reactions = memoryReactionStore();
  const manual = manualFeed();
  const logged: Array<{ level: number; msg: string }> = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logged.push(JSON.parse(line) as { level: number; msg: string }) });
  const feed = reactionFeed({ name: 'r', kind: 'reactor', policy: { kind: 'retry', times: 5 }, reactions, feed: manual.start, inputs: (c) => inputs[c.position] ?? [], log });
  await feed.start();
  const batch = manual.deliver([commit(1)]);
  await tick();
  const stopping = feed.stop();
  // The workers the command went to are stopping too: no one answers it.
  fail(new Error('no responders on converge.cmd.38'));
  await stopping;
  await batch;
  t.same(
    logged.filter((l) => l.level > 20).map((l) => l.msg),
    [],
    'no warning and no park',
  );
  t.ok(logged.some((l) => l.level === 20 && /runs again at the next start/.test(l.msg)), 'a debug line says it runs again');
  t.equal(await reactions.checkpoint('r'), 0, 'the checkpoint stays before it');
  t.same(await reactions.parked(), [], 'nothing parked');
});
