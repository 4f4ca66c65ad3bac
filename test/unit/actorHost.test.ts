import t, { type Test } from 'tap';
import { pino } from 'pino';
import { Type } from 'typebox';
import { defineAggregate, emit, type AnyAggregate, type CommandOf, type Decision } from '../../src/index.js';
import { ConvergeError, OverloadedError, ShuttingDownError } from '../../src/core/errors.js';
import type { Commit, EventStore, StoredCommit } from '../../src/core/eventStore.js';
import { createMemoryEventStore, type MemoryEventStore } from '../../src/store/memory.js';
import type { CommandEnvelope, CommandResult } from '../../src/write/execute.js';
import { createActorHost, type ActorSettings } from '../../src/write/host.js';
import { memorySnapshotStore } from '../../src/write/snapshots.js';
import { rehydrate } from '../../src/write/rehydrate.js';

// A tiny counter aggregate: `Increment` emits the next value, so versions and values show the order commands ran in.
const counterCommands = {
  increment: { type: 'Increment', schema: Type.Object({ by: Type.Number() }) },
} as const;
type CounterEvent = { readonly type: 'Incremented'; readonly data: { readonly by: number; readonly total: number } };
interface CounterState {
  readonly total: number;
  readonly seen: readonly number[];
}
const counter = defineAggregate({
  name: 'counter',
  plural: 'counters',
  snapshotVersion: 1,
  commands: counterCommands,
  initialState: (): CounterState => ({ total: 0, seen: [] }),
  decide: (state, command: CommandOf<typeof counterCommands>): Decision<CounterEvent> =>
    emit({ type: 'Incremented', data: { by: command.data.by, total: state.total + command.data.by } }),
  evolve: (state: CounterState, event: CounterEvent): CounterState => ({ total: event.data.total, seen: [...state.seen, event.data.by] }),
}) as AnyAggregate;

const settings: ActorSettings = { snapshotEvery: 1000, idleMs: 60_000, restMs: 60_000, maxAwake: 0, mailboxSize: 100, recentCommits: 16, conflictRetries: 3 };
const noDeps = () => Promise.reject(new Error('counter reads no other aggregate'));
const log = pino({ level: 'silent' });

let seq = 0;
const increment = (by: number, id = 'c1'): CommandEnvelope => ({
  commandId: `cmd-${++seq}`,
  aggregate: 'counter',
  id,
  type: 'Increment',
  data: { by },
  at: '2026-01-01T00:00:00.000Z',
});

/** The store with `read` counted: how often it was called, after which positions, and how many commits it yielded. */
function countingReads(inner: EventStore) {
  const reads = { calls: [] as number[], commits: 0 };
  const store: EventStore = {
    ...inner,
    read(aggregate, id, after) {
      reads.calls.push(after);
      const source = inner.read(aggregate, id, after);
      return (async function* () {
        for await (const c of source) {
          reads.commits++;
          yield c;
        }
      })();
    },
  };
  return { store, reads };
}

/** A gate that holds every append until opened. */
/** Holds the appends of the aggregates `which` picks (all by default) until `open`. */
function appendGate(store: MemoryEventStore, which: (commit: Commit) => boolean = () => true) {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  let waiting = 0;
  store.beforeAppend(async (commit) => {
    if (!which(commit)) return;
    waiting++;
    await opened;
  });
  return {
    open,
    get waiting() {
      return waiting;
    },
  };
}

function makeHost(t: Test, opts: { store?: EventStore; streamId?: string; snapshots?: ReturnType<typeof memorySnapshotStore>; settings?: Partial<ActorSettings>; now?: () => number } = {}) {
  const memoryStore = createMemoryEventStore();
  const store = opts.store ?? memoryStore;
  const snapshots = opts.snapshots ?? memorySnapshotStore();
  const host = createActorHost({
    aggregates: [counter],
    store,
    snapshots,
    streamId: opts.streamId ?? memoryStore.streamId,
    duplicateWindowMs: 120_000,
    settings: { ...settings, ...opts.settings },
    log,
    ...(opts.now ? { now: opts.now } : {}),
  });
  let drained = false;
  t.teardown(() => (drained ? undefined : host.drain(0)));
  return {
    host,
    snapshots,
    drain: (timeoutMs: number, graceMs?: number) => {
      drained = true;
      return host.drain(timeoutMs, graceMs);
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

t.test('commands to one aggregate run one at a time, in arrival order', async (t) => {
  const store = createMemoryEventStore();
  let appending = 0;
  let most = 0;
  store.beforeAppend(async () => {
    most = Math.max(most, ++appending);
    await sleep(1);
    appending--;
  });
  const { host } = makeHost(t, { store, streamId: store.streamId });
  const commands = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((by) => increment(by));
  const results = await Promise.all(commands.map((c) => host.execute(c, noDeps)));
  t.same(
    results.map((r) => (r.kind === 'accepted' ? r.version : r.kind)),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    'concurrent executes get consecutive versions, in the order they were sent',
  );
  t.same(
    store.commits.map((c) => c.commandId),
    commands.map((c) => c.commandId),
    'committed in arrival order',
  );
  t.same(
    store.commits.map((c) => (c.events[0]!.data as { total: number }).total),
    [1, 3, 6, 10, 15, 21, 28, 36, 45, 55],
    'each decided on the state the previous one left',
  );
  t.equal(most, 1, 'never two appends at once');
});

t.test('commands to different aggregates are not held up behind one another', async (t) => {
  const store = createMemoryEventStore();
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  store.beforeAppend(async (commit) => {
    if (commit.id === 'slow') await held;
  });
  const { host } = makeHost(t, { store, streamId: store.streamId });
  const slow = host.execute(increment(1, 'slow'), noDeps);
  const fast = await host.execute(increment(1, 'fast'), noDeps);
  t.match(fast, { kind: 'accepted', version: 1 }, 'the other aggregate answered while the first was blocked');
  release();
  t.match(await slow, { kind: 'accepted', version: 1 });
});

t.test('a full mailbox answers OverloadedError and loses nothing it accepted', async (t) => {
  const store = createMemoryEventStore();
  const gate = appendGate(store);
  const { host } = makeHost(t, { store, streamId: store.streamId, settings: { mailboxSize: 3 } });
  const commands = [1, 2, 3, 4, 5].map((by) => increment(by));
  const outcomes = commands.map((c) => host.execute(c, noDeps).then((r): CommandResult | Error => r, (err: Error) => err));
  const refused = await Promise.all(outcomes.slice(3));
  t.ok(
    refused.every((e) => e instanceof OverloadedError),
    'the 4th and 5th are refused while three are held',
  );
  t.match(refused[0], { code: 'overloaded', status: 429 });
  await until(() => gate.waiting === 1, 'the first command to reach the store');
  gate.open();
  const accepted = await Promise.all(outcomes.slice(0, 3));
  t.same(
    accepted.map((r) => (r instanceof Error ? r.message : r.kind === 'accepted' ? r.version : r.kind)),
    [1, 2, 3],
    'the three it took all ran, in order',
  );
  t.same(
    store.commits.map((c) => c.commandId),
    commands.slice(0, 3).map((c) => c.commandId),
    'exactly the accepted commands were committed',
  );
  t.match(await host.execute(increment(10), noDeps), { kind: 'accepted', version: 4 }, 'with room again, it takes commands');
});

t.test('readState loads an aggregate from the store', async (t) => {
  const store = createMemoryEventStore();
  const writer = makeHost(t, { store, streamId: store.streamId });
  for (const by of [2, 3, 4]) await writer.host.execute(increment(by), noDeps);

  const reader = makeHost(t, { store, streamId: store.streamId });
  t.equal(reader.host.size, 0, 'nothing resident yet');
  t.same(await reader.host.readState('counter', 'c1'), { state: { total: 9, seen: [2, 3, 4] }, version: 3, position: 3 });
  t.equal(reader.host.size, 1, 'the aggregate is now resident');
  t.same(await reader.host.readState('counter', 'unknown'), { state: { total: 0, seen: [] }, version: 0, position: 0 }, 'an aggregate with no commits reads as its initial state');
  await t.rejects(reader.host.readState('nothing', 'c1'), ConvergeError, 'an unknown aggregate type');
  await t.rejects(reader.host.readState('nothing', 'c1'), { code: 'unknown_aggregate' });
});

t.test('passivation snapshots an idle actor, and a cold start uses the snapshot instead of replaying', async (t) => {
  const inner = createMemoryEventStore();
  let clock = 1_000_000;
  const snapshots = memorySnapshotStore();
  const first = makeHost(t, { store: inner, streamId: inner.streamId, snapshots, now: () => clock });
  for (const by of [1, 2, 3, 4, 5]) await first.host.execute(increment(by), noDeps);
  t.equal(snapshots.saved.size, 0, 'no snapshot yet (snapshotEvery is 1000)');
  t.equal(first.host.passivateIdle(clock + settings.idleMs - 1), 0, 'not idle long enough');
  t.equal(first.host.passivateIdle(clock + settings.idleMs), 1, 'idle for idleMs: passivated');
  t.equal(first.host.size, 0, 'no longer resident');
  t.match(snapshots.saved.get('counter/c1'), { shape: 1, stream: inner.streamId, memory: { version: 5, position: 5, state: { total: 15 } } });

  const cold = countingReads(inner);
  const second = makeHost(t, { store: cold.store, streamId: inner.streamId, snapshots });
  t.same(await second.host.readState('counter', 'c1'), { state: { total: 15, seen: [1, 2, 3, 4, 5] }, version: 5, position: 5 });
  t.same(cold.reads.calls, [5], 'one read, after the snapshot’s position');
  t.equal(cold.reads.commits, 0, 'no commit replayed');

  // Without the snapshot, the same cold start replays every commit.
  const replay = countingReads(inner);
  const third = makeHost(t, { store: replay.store, streamId: inner.streamId });
  await third.host.readState('counter', 'c1');
  t.same(replay.reads.calls, [0]);
  t.equal(replay.reads.commits, 5);

  // A command after the cold start continues from the snapshot's memory.
  t.match(await second.host.execute(increment(6), noDeps), { kind: 'accepted', version: 6 });
  t.match((inner.commits.at(-1)! as StoredCommit).events[0], { data: { total: 21 } });
});

t.test('an actor at rest keeps its memory: reads and commands continue from it without reading the store', async (t) => {
  const inner = createMemoryEventStore();
  const counted = countingReads(inner);
  let clock = 1_000_000;
  const { host } = makeHost(t, { store: counted.store, streamId: inner.streamId, now: () => clock });
  for (const by of [1, 2, 3]) await host.execute(increment(by), noDeps);
  t.equal(host.restIdle(clock + settings.restMs - 1), 0, 'not quiet long enough');
  t.equal(host.awake, 1);
  t.equal(host.restIdle(clock + settings.restMs), 1, 'quiet for restMs: at rest');
  t.equal(host.awake, 0, 'its actor stopped');
  t.equal(host.size, 1, 'its aggregate still resident');
  t.same(await host.readState('counter', 'c1'), { state: { total: 6, seen: [1, 2, 3] }, version: 3, position: 3 }, 'read from the memory kept');
  t.equal(host.awake, 0, 'a read does not wake it');
  clock += 10;
  t.match(await host.execute(increment(4), noDeps), { kind: 'accepted', version: 4 });
  t.equal(host.awake, 1, 'a command woke it');
  t.same(counted.reads.calls, [0], 'the store was read once, by the first load only');
  t.match((inner.commits.at(-1)! as StoredCommit).events[0], { data: { total: 10 } });
  // The retry of a command answered before the rest is still answered from memory.
  const retried = increment(5);
  await host.execute(retried, noDeps);
  host.restIdle(clock + settings.restMs);
  t.match(await host.execute(retried, noDeps), { kind: 'accepted', version: 5 }, 'the same answer again');
  t.equal(inner.commits.length, 5, 'and no second commit');
});

t.test('waking an actor at rest reads none of the event store\'s fields', async (t) => {
  // XState's restore of a snapshot walks every object its context reaches: a wake through it
  // read each field of the store (the in-memory store's whole log), milliseconds per wake.
  const inner = createMemoryEventStore();
  let fieldReads = 0;
  const store: EventStore = { ...inner };
  Object.defineProperty(store, 'probe', { enumerable: true, get: () => ++fieldReads });
  let clock = 1_000_000;
  const { host } = makeHost(t, { store, streamId: inner.streamId, now: () => clock });
  await host.execute(increment(1), noDeps);
  t.equal(host.restIdle(clock + settings.restMs), 1, 'at rest');
  const before = fieldReads;
  clock += 10;
  t.match(await host.execute(increment(2), noDeps), { kind: 'accepted', version: 2 }, 'the command woke it and ran');
  t.equal(host.awake, 1);
  t.equal(fieldReads - before, 0, 'the wake did not walk the store');
});

t.test('an actor with a command running or waiting does not rest', async (t) => {
  const store = createMemoryEventStore();
  let clock = 1_000_000;
  const { host } = makeHost(t, { store, streamId: store.streamId, now: () => clock });
  await host.execute(increment(1), noDeps);
  const gate = appendGate(store);
  const running = host.execute(increment(2), noDeps);
  const queued = host.execute(increment(3), noDeps);
  await until(() => gate.waiting === 1, 'the append to wait');
  t.equal(host.restIdle(clock + 10 * settings.restMs), 0, 'busy: not at rest');
  gate.open();
  t.match(await running, { version: 2 });
  t.match(await queued, { version: 3 });
  t.equal(host.restIdle(clock + 10 * settings.restMs), 1, 'quiet again: at rest');
});

t.test('passivation snapshots a resting aggregate from the memory it kept', async (t) => {
  const store = createMemoryEventStore();
  const snapshots = memorySnapshotStore();
  let clock = 1_000_000;
  const { host } = makeHost(t, { store, streamId: store.streamId, snapshots, now: () => clock });
  for (const by of [5, 6]) await host.execute(increment(by), noDeps);
  host.restIdle(clock + settings.restMs);
  t.equal(host.passivateIdle(clock + settings.idleMs), 1);
  t.equal(host.size, 0);
  t.match(snapshots.saved.get('counter/c1'), { memory: { version: 2, state: { total: 11 } } });
});

t.test('actors rest by themselves once restMs has passed without a command', async (t) => {
  const store = createMemoryEventStore();
  const { host } = makeHost(t, { store, streamId: store.streamId, settings: { restMs: 50 } });
  await host.execute(increment(1), noDeps);
  await host.execute(increment(1, 'c2'), noDeps);
  t.equal(host.awake, 2);
  await until(() => host.awake === 0, 'both actors to rest');
  t.equal(host.size, 2, 'both aggregates still resident');
  t.match(await host.execute(increment(1, 'c2'), noDeps), { version: 2 });
});

t.test('past maxAwake, the quiet actors rest least recently commanded first, and only as many as are over', async (t) => {
  const store = createMemoryEventStore();
  let clock = 1_000_000;
  const { host } = makeHost(t, { store, streamId: store.streamId, now: () => clock, settings: { maxAwake: 2 } });
  // Commanded at 1,000,000 (c1), …001 (c2), …002 (c3), …003 (c4), then c1 again at …004.
  for (const id of ['c1', 'c2', 'c3', 'c4']) {
    await host.execute(increment(1, id), noDeps);
    clock += 1;
  }
  await host.execute(increment(2, 'c1'), noDeps);
  t.equal(host.awake, 4);
  t.equal(host.restIdle(1_000_001 + settings.restMs), 1, 'only c2 has been quiet for restMs');
  t.equal(host.restIdle(clock + settings.restMs), 1, 'then c3, which leaves two running');
  t.equal(host.awake, 2);
  await host.execute(increment(2, 'c4'), noDeps);
  t.equal(host.awake, 2, 'c4 was kept running');
  await host.execute(increment(2, 'c1'), noDeps);
  t.equal(host.awake, 2, 'c1, commanded again, was kept running');
  t.match(await host.execute(increment(2, 'c2'), noDeps), { kind: 'accepted', version: 2 });
  t.equal(host.awake, 3, 'c2 rested and woke');
  t.equal(host.size, 4, 'every aggregate stayed resident');
});

t.test('past maxAwake, a busy actor at the front is passed over and the quiet ones after it rest', async (t) => {
  const store = createMemoryEventStore();
  let clock = 1_000_000;
  const { host } = makeHost(t, { store, streamId: store.streamId, now: () => clock, settings: { maxAwake: 1 } });
  await host.execute(increment(1, 'c1'), noDeps);
  // c1's second append waits; c2's and c3's do not.
  const gate = appendGate(store, (commit) => commit.id === 'c1');
  const running = host.execute(increment(2, 'c1'), noDeps);
  await until(() => gate.waiting === 1, "c1's append to wait");
  clock += 1;
  for (const id of ['c2', 'c3']) await host.execute(increment(1, id), noDeps);
  t.equal(host.awake, 3);
  t.equal(host.restIdle(clock + settings.restMs), 2, 'c2 and c3 rest; c1, running a command, is passed over');
  t.equal(host.awake, 1);
  gate.open();
  t.match(await running, { version: 2 });
});

t.test("a read of an actor's state by another aggregate's command keeps it among the most recently used", async (t) => {
  const store = createMemoryEventStore();
  let clock = 1_000_000;
  const { host } = makeHost(t, { store, streamId: store.streamId, now: () => clock, settings: { maxAwake: 1 } });
  await host.execute(increment(1, 'c1'), noDeps);
  clock += 1;
  await host.execute(increment(1, 'c2'), noDeps);
  clock += 1;
  await host.readState('counter', 'c1');
  t.equal(host.restIdle(clock + settings.restMs), 1);
  await host.execute(increment(2, 'c1'), noDeps);
  t.equal(host.awake, 1, 'c1 was kept running');
  await host.execute(increment(2, 'c2'), noDeps);
  t.equal(host.awake, 2, 'c2 rested and woke');
});

t.test('past maxAwake, actors last used before the clock stepped back do not keep the others from resting', async (t) => {
  const store = createMemoryEventStore();
  let clock = 1_000_000;
  const { host } = makeHost(t, { store, streamId: store.streamId, now: () => clock, settings: { maxAwake: 1 } });
  await host.execute(increment(1, 'c1'), noDeps);
  clock -= 2 * settings.restMs;
  for (const id of ['c2', 'c3']) await host.execute(increment(1, id), noDeps);
  t.equal(host.restIdle(clock + settings.restMs), 2, 'c2 and c3 rest; c1, used "later", is passed over');
  t.equal(host.awake, 1);
});

t.test('with maxAwake actors or fewer running, none rests however long it waits', async (t) => {
  const store = createMemoryEventStore();
  const clock = 1_000_000;
  const { host } = makeHost(t, { store, streamId: store.streamId, now: () => clock, settings: { maxAwake: 2 } });
  for (const id of ['c1', 'c2']) await host.execute(increment(1, id), noDeps);
  t.equal(host.restIdle(clock + 100 * settings.restMs), 0);
  t.equal(host.awake, 2);
});

t.test('a cold start over many commits remembers the last recentCommits of them, in order', async (t) => {
  const store = createMemoryEventStore();
  const writer = makeHost(t, { store, streamId: store.streamId });
  for (let i = 0; i < 50; i++) await writer.host.execute(increment(1), noDeps);
  const { memory } = await rehydrate(counter, 'c1', { store, snapshots: memorySnapshotStore(), streamId: store.streamId, keep: 16 });
  t.equal(memory.version, 50);
  t.same(memory.recent.map((c) => c.version), Array.from({ length: 16 }, (_, i) => 35 + i), 'versions 35 to 50');
  t.same(memory.recent.map((c) => c.fromVersion), Array.from({ length: 16 }, (_, i) => 34 + i));
});

t.test('a resident actor snapshots every snapshotEvery events', async (t) => {
  const store = createMemoryEventStore();
  const snapshots = memorySnapshotStore();
  const { host } = makeHost(t, { store, streamId: store.streamId, snapshots, settings: { snapshotEvery: 3 } });
  const versions: number[] = [];
  for (const by of [1, 1, 1, 1, 1, 1, 1]) {
    await host.execute(increment(by), noDeps);
    const saved = snapshots.saved.get('counter/c1');
    if (saved && saved.memory.version !== versions.at(-1)) versions.push(saved.memory.version);
  }
  t.same(versions, [3, 6], 'snapshots at versions 3 and 6');
  t.match(snapshots.saved.get('counter/c1'), { shape: 1, stream: store.streamId, memory: { version: 6, position: 6, state: { total: 6 } } });
});

t.test('a snapshot of another stream id is ignored', async (t) => {
  const inner = createMemoryEventStore();
  const writer = makeHost(t, { store: inner, streamId: inner.streamId });
  for (const by of [1, 2]) await writer.host.execute(increment(by), noDeps);
  const snapshots = memorySnapshotStore();
  snapshots.put('counter', 'c1', {
    shape: 1,
    stream: 'a-wiped-store',
    memory: { state: { total: 999, seen: [999] }, version: 40, position: 40, recent: [] },
  });
  const cold = countingReads(inner);
  const { host } = makeHost(t, { store: cold.store, streamId: inner.streamId, snapshots });
  t.same(await host.readState('counter', 'c1'), { state: { total: 3, seen: [1, 2] }, version: 2, position: 2 }, 'the state folded from this store');
  t.same(cold.reads.calls, [0], 'replayed from the start');
  t.match(await host.execute(increment(1), noDeps), { kind: 'accepted', version: 3 });
});

t.test('a snapshot of another state shape is ignored', async (t) => {
  const inner = createMemoryEventStore();
  const writer = makeHost(t, { store: inner, streamId: inner.streamId });
  await writer.host.execute(increment(1), noDeps);
  const snapshots = memorySnapshotStore();
  snapshots.put('counter', 'c1', { shape: 0, stream: inner.streamId, memory: { state: { old: true }, version: 1, position: 1, recent: [] } });
  const { host } = makeHost(t, { store: inner, streamId: inner.streamId, snapshots });
  t.same(await host.readState('counter', 'c1'), { state: { total: 1, seen: [1] }, version: 1, position: 1 });
});

t.test('drain answers queued commands with ShuttingDownError past the deadline, and lets the running one finish', async (t) => {
  const store = createMemoryEventStore();
  const gate = appendGate(store);
  const { host, drain } = makeHost(t, { store, streamId: store.streamId });
  const commands = [1, 2, 3].map((by) => increment(by));
  const outcomes = commands.map((c) => host.execute(c, noDeps).then((r): CommandResult | Error => r, (err: Error) => err));
  await until(() => gate.waiting === 1, 'the first command to reach the store');
  // The running command finishes within the grace, once the queued ones have their answer.
  void outcomes[1]!.then(() => gate.open());
  const settled = new Set<number>();
  outcomes.forEach((o, i) => void o.then(() => settled.add(i)));
  const draining = drain(500, 5000);
  await sleep(20);
  t.same([...settled], [], 'before the deadline, every command still waits for its answer');
  await t.rejects(host.execute(increment(1), noDeps), ShuttingDownError, 'a draining host takes no new commands');
  await draining;
  const [running, ...queued] = await Promise.all(outcomes);
  t.match(running, { kind: 'accepted', version: 1 }, 'the running command finished');
  t.ok(
    queued.every((e) => e instanceof ShuttingDownError),
    'the queued commands were answered shutting_down',
  );
  t.match(queued[0], { code: 'shutting_down', status: 503 });
  t.same(
    store.commits.map((c) => c.commandId),
    [commands[0]!.commandId],
    'only the running command committed',
  );
  await t.rejects(host.execute(increment(1), noDeps), ShuttingDownError, 'a drained host takes no new commands');
});

t.test('drain waits for queued commands that finish before the deadline', async (t) => {
  const store = createMemoryEventStore();
  store.beforeAppend(async () => {
    await sleep(5);
  });
  const { host, drain } = makeHost(t, { store, streamId: store.streamId });
  const outcomes = [1, 2, 3].map((by) => host.execute(increment(by), noDeps));
  await drain(2000);
  t.same(
    (await Promise.all(outcomes)).map((r) => r.kind),
    ['accepted', 'accepted', 'accepted'],
  );
  t.equal(store.commits.length, 3);
});
