import t from 'tap';
import { pino } from 'pino';
import { Type } from 'typebox';
import { defineAggregate, emit, reject, type AnyAggregate, type CommandOf, type Decision } from '../../src/index.js';
import { EventStoreUnavailableError, IdempotencyKeyReusedError } from '../../src/core/errors.js';
import { createMemoryEventStore, type MemoryEventStore } from '../../src/store/memory.js';
import { executeCommand, type CommandEnvelope, type CommandResult, type ExecutionContext } from '../../src/write/execute.js';
import { createActorHost } from '../../src/write/host.js';
import { emptyMemory, type Memory } from '../../src/write/rehydrate.js';
import { fnv1a } from '../../src/core/partition.js';
import { memorySnapshotStore } from '../../src/write/snapshots.js';

// A tiny aggregate: named numeric values. Each command touches one key, so stale If-Match
// commands on other keys can merge.
const kvCommands = {
  set: { type: 'SetValue', schema: Type.Object({ key: Type.String(), value: Type.Number() }) },
  increment: { type: 'Increment', schema: Type.Object({ key: Type.String() }) },
  init: { type: 'Init', schema: Type.Object({ key: Type.String() }) },
  refuse: { type: 'Refuse', schema: Type.Object({ reason: Type.String() }) },
} as const;
type KvCommand = CommandOf<typeof kvCommands>;
type KvEvent = { readonly type: 'ValueSet'; readonly data: { readonly key: string; readonly value: number } };
interface KvState {
  readonly values: Readonly<Record<string, number>>;
}

/** The aggregate, and every state its `decide` was called with, in order. */
function makeKv() {
  const decided: Array<{ type: string; values: Record<string, number> }> = [];
  const decide = (state: KvState, command: KvCommand): Decision<KvEvent> => {
    decided.push({ type: command.type, values: { ...state.values } });
    switch (command.type) {
      case 'SetValue':
        return emit({ type: 'ValueSet', data: { key: command.data.key, value: command.data.value } });
      case 'Increment':
        return emit({ type: 'ValueSet', data: { key: command.data.key, value: (state.values[command.data.key] ?? 0) + 1 } });
      case 'Init':
        if (command.data.key in state.values) return reject('already_set');
        return emit({ type: 'ValueSet', data: { key: command.data.key, value: 0 } });
      case 'Refuse':
        return reject(command.data.reason);
    }
  };
  const aggregate = defineAggregate({
    name: 'kv',
    plural: 'kvs',
    snapshotVersion: 1,
    commands: kvCommands,
    initialState: (): KvState => ({ values: {} }),
    decide,
    evolve: (state: KvState, event: KvEvent): KvState => ({ values: { ...state.values, [event.data.key]: event.data.value } }),
    touches: (command) => (command.type === 'Refuse' ? [] : [command.data.key]),
    eventTouches: (event) => [event.data.key],
  });
  return { aggregate: aggregate as AnyAggregate, decided };
}

const AT = '2026-01-01T00:00:00.000Z';

function cmd(commandId: string, type: KvCommand['type'], data: object, extra: { expectedVersion?: number; id?: string } = {}): CommandEnvelope {
  return { commandId, aggregate: 'kv', id: extra.id ?? 'x', type, data, at: AT, ...(extra.expectedVersion === undefined ? {} : { expectedVersion: extra.expectedVersion }) };
}

function setup(opts: { keep?: number; conflictRetries?: number } = {}) {
  const { aggregate, decided } = makeKv();
  const store = createMemoryEventStore();
  const ctx: ExecutionContext = {
    aggregate,
    store,
    readState: () => Promise.reject(new Error('kv reads no other aggregate')),
    keep: opts.keep ?? 10,
    conflictRetries: opts.conflictRetries ?? 3,
    duplicateWindowMs: 120_000,
  };
  /** Runs commands one after another from `memory`, as an actor would. */
  const run = async (memory: Memory, ...commands: CommandEnvelope[]) => {
    let m = memory;
    const results: CommandResult[] = [];
    for (const c of commands) {
      const executed = await executeCommand(ctx, m, c);
      m = executed.memory;
      results.push(executed.result);
    }
    return { memory: m, results };
  };
  return { aggregate, decided, store, ctx, run, empty: emptyMemory(aggregate) };
}

/** A commit of another writer, appended behind the actor's back. */
async function competingSet(store: MemoryEventStore, commandId: string, key: string, value: number) {
  const last = await store.lastPosition('kv', 'x');
  const version = store.commits.filter((c) => c.aggregate === 'kv' && c.id === 'x').reduce((v, c) => Math.max(v, c.version), 0) + 1;
  await store.append({ commandId, commandType: 'SetValue', aggregate: 'kv', id: 'x', version, events: [{ type: 'ValueSet', data: { key, value }, at: AT }] }, last);
}

t.test('an accepted command appends one commit and answers its version and position', async (t) => {
  const { ctx, empty, store } = setup();
  const { memory, result } = await executeCommand(ctx, empty, cmd('c1', 'SetValue', { key: 'a', value: 7 }));
  t.same(result, { kind: 'accepted', id: 'x', version: 1, position: 1, events: ['ValueSet'] });
  t.match(memory, { state: { values: { a: 7 } }, version: 1, position: 1 });
  t.match(store.commits, [{ commandId: 'c1', commandType: 'SetValue', aggregate: 'kv', id: 'x', version: 1, position: 1, events: [{ type: 'ValueSet', data: { key: 'a', value: 7 }, at: AT }] }]);
});

t.test('a retried command id answers the original reply from memory, without deciding or appending again', async (t) => {
  const { run, empty, store, decided } = setup();
  const first = await run(empty, cmd('c1', 'SetValue', { key: 'a', value: 1 }), cmd('c2', 'SetValue', { key: 'b', value: 2 }));
  const retried = await run(first.memory, cmd('c1', 'SetValue', { key: 'a', value: 1 }));
  t.same(retried.results[0], first.results[0], 'the original answer (version 1, position 1), not the current version');
  t.equal(store.commits.length, 2, 'nothing appended');
  t.equal(decided.length, 2, 'decide did not run for the retry');
  t.same(retried.memory, first.memory, 'memory unchanged');
});


t.test('a retry is answered from memory saved before commits kept the hash of their command id', async (t) => {
  const { run, empty, store, decided } = setup();
  const first = await run(empty, cmd('c1', 'SetValue', { key: 'a', value: 1 }), cmd('c2', 'SetValue', { key: 'b', value: 2 }));
  // A snapshot written by an older build: its remembered commits have no idHash.
  const older: Memory = { ...first.memory, recent: first.memory.recent.map(({ idHash: _, ...c }) => c) };
  t.ok(older.recent.every((c) => !('idHash' in c)));
  const retried = await run(older, cmd('c1', 'SetValue', { key: 'a', value: 1 }));
  t.same(retried.results[0], first.results[0], 'the original answer');
  t.equal(decided.length, 2, 'from memory: decide did not run for the retry');
  t.equal(store.commits.length, 2, 'nothing appended');
});

t.test('a remembered commit whose id hash matches but whose id differs is not taken for a retry', async (t) => {
  const { run, empty, store } = setup();
  const first = await run(empty, cmd('c1', 'SetValue', { key: 'a', value: 1 }));
  // The hash of `c9` on a commit of `c1`: as a collision of two ids would look.
  const colliding: Memory = { ...first.memory, recent: first.memory.recent.map((c) => ({ ...c, idHash: fnv1a('c9') })) };
  const next = await run(colliding, cmd('c9', 'SetValue', { key: 'a', value: 5 }));
  t.match(next.results[0], { kind: 'accepted', version: 2 }, 'decided and appended as a new command');
  t.equal(store.commits.length, 2);
});
t.test('a retry after a lost ack, unknown to memory, is answered from the store’s duplicate without a second commit', async (t) => {
  const { ctx, empty, store } = setup();
  const before = await executeCommand(ctx, empty, cmd('c0', 'SetValue', { key: 'a', value: 1 }));
  store.disconnect({ appendLands: true });
  await t.rejects(executeCommand(ctx, before.memory, cmd('c1', 'SetValue', { key: 'b', value: 5 })), EventStoreUnavailableError, 'the ack is lost');
  t.equal(store.commits.length, 2, 'but the commit landed');
  store.reconnect();
  // The actor kept its memory from before the failed append.
  const retried = await executeCommand(ctx, before.memory, cmd('c1', 'SetValue', { key: 'b', value: 5 }));
  t.same(retried.result, { kind: 'accepted', id: 'x', version: 2, position: 2, events: ['ValueSet'] }, 'the original commit’s answer');
  t.equal(store.commits.length, 2, 'no second commit');
  t.match(retried.memory, { state: { values: { a: 1, b: 5 } }, version: 2, position: 2 }, 'memory caught up with the store');
  const again = await executeCommand(ctx, retried.memory, cmd('c1', 'SetValue', { key: 'b', value: 5 }));
  t.same(again.result, retried.result, 'a further retry is answered from memory alike');
});

t.test('a retry whose commit has left the remembered window gets the original answer from the store’s duplicate, even where deciding again would reject', async (t) => {
  const { run, empty, store } = setup({ keep: 2 });
  const init = cmd('init-a', 'Init', { key: 'a' });
  const first = await run(empty, init, cmd('c2', 'SetValue', { key: 'b', value: 1 }), cmd('c3', 'SetValue', { key: 'c', value: 1 }));
  t.notOk(
    first.memory.recent.some((c) => c.commandId === 'init-a'),
    'memory no longer holds init-a',
  );
  t.same(await store.append({ commandId: 'init-a', commandType: 'Init', aggregate: 'kv', id: 'x', version: 4, events: [] }, 3), { position: 1, duplicate: true }, 'the store still knows init-a');
  const retried = await run(first.memory, init);
  t.same(retried.results[0], first.results[0], 'the original answer: accepted at version 1');
  t.equal(store.commits.length, 3, 'nothing appended');
});

t.test('a command id reused by a different command type throws IdempotencyKeyReusedError and appends nothing', async (t) => {
  const { run, empty, store, ctx } = setup();
  const { memory } = await run(empty, cmd('key-1', 'SetValue', { key: 'a', value: 1 }));
  await t.rejects(executeCommand(ctx, memory, cmd('key-1', 'Increment', { key: 'a' })), IdempotencyKeyReusedError);
  t.equal(store.commits.length, 1);
});

t.test('a command id reused by a different command type after a lost ack throws IdempotencyKeyReusedError, not the other command’s answer', async (t) => {
  const { ctx, empty, store } = setup();
  store.disconnect({ appendLands: true });
  await t.rejects(executeCommand(ctx, empty, cmd('key-1', 'SetValue', { key: 'a', value: 1 })), EventStoreUnavailableError);
  store.reconnect();
  // Memory never learnt of key-1's commit; the store reports it as a duplicate.
  const reused = await executeCommand(ctx, empty, cmd('key-1', 'Increment', { key: 'b' })).then(
    (executed) => executed.result,
    (err: unknown) => err,
  );
  t.ok(reused instanceof IdempotencyKeyReusedError, `IdempotencyKeyReusedError expected, got ${JSON.stringify(reused)}`);
  t.equal(store.commits.length, 1, 'nothing appended');
});

t.test('a competing writer makes the command catch up and decide again on the new state', async (t) => {
  const { ctx, run, empty, store, decided } = setup();
  const { memory } = await run(empty, cmd('c1', 'SetValue', { key: 'a', value: 1 }));
  store.beforeAppend(async () => {
    store.beforeAppend(undefined);
    await competingSet(store, 'other-writer', 'a', 10);
  });
  const { result, memory: after } = await executeCommand(ctx, memory, cmd('c2', 'Increment', { key: 'a' }));
  t.same(result, { kind: 'accepted', id: 'x', version: 3, position: 3, events: ['ValueSet'] });
  t.same(
    decided.slice(1).map((d) => d.values),
    [{ a: 1 }, { a: 10 }],
    'decided on the stale state, then again on the state the other writer left',
  );
  t.match(after, { state: { values: { a: 11 } }, version: 3, position: 3 });
  t.same(
    store.commits.map((c) => [c.commandId, c.version]),
    [
      ['c1', 1],
      ['other-writer', 2],
      ['c2', 3],
    ],
  );
  t.same(store.commits[2]!.events[0]!.data, { key: 'a', value: 11 }, 'the increment applied to the other writer’s value');
});

t.test('when conflicts persist past conflictRetries the answer is a conflict and nothing of the command is appended', async (t) => {
  const { ctx, run, empty, store, decided } = setup({ conflictRetries: 2 });
  const { memory } = await run(empty, cmd('c1', 'SetValue', { key: 'a', value: 1 }));
  let competing = 0;
  let inHook = false;
  store.beforeAppend(async () => {
    if (inHook) return;
    inHook = true;
    try {
      await competingSet(store, `other-${++competing}`, 'a', 100 + competing);
    } finally {
      inHook = false;
    }
  });
  t.teardown(() => store.beforeAppend(undefined));
  const decidedBefore = decided.length;
  const { result } = await executeCommand(ctx, memory, cmd('c2', 'Increment', { key: 'a' }));
  t.match(result, { kind: 'conflict', currentVersion: Number });
  t.equal(decided.length - decidedBefore, 3, 'decided once and retried twice');
  t.notOk(
    store.commits.some((c) => c.commandId === 'c2'),
    'the command was never appended',
  );
});

t.test('If-Match', async (t) => {
  t.test('the current version goes ahead', async (t) => {
    const { run, empty, store } = setup();
    const { memory } = await run(empty, cmd('c1', 'SetValue', { key: 'a', value: 1 }), cmd('c2', 'SetValue', { key: 'b', value: 1 }));
    const { results } = await run(memory, cmd('c3', 'SetValue', { key: 'a', value: 2 }, { expectedVersion: 2 }));
    t.match(results[0], { kind: 'accepted', version: 3 });
    t.equal(store.commits.length, 3);
  });

  t.test('a stale version whose later commits touched other keys merges', async (t) => {
    const { run, empty, store } = setup();
    const { memory } = await run(empty, cmd('c1', 'SetValue', { key: 'a', value: 1 }), cmd('c2', 'SetValue', { key: 'b', value: 1 }), cmd('c3', 'SetValue', { key: 'c', value: 1 }));
    const { results, memory: after } = await run(memory, cmd('c4', 'SetValue', { key: 'a', value: 2 }, { expectedVersion: 1 }));
    t.match(results[0], { kind: 'accepted', version: 4 });
    t.same((after.state as KvState).values, { a: 2, b: 1, c: 1 });
    t.equal(store.commits.length, 4);
  });

  t.test('a stale version whose later commits touched the same key is a conflict', async (t) => {
    const { run, empty, store } = setup();
    const { memory } = await run(empty, cmd('c1', 'SetValue', { key: 'a', value: 1 }), cmd('c2', 'SetValue', { key: 'b', value: 1 }), cmd('c3', 'SetValue', { key: 'c', value: 1 }));
    const { results } = await run(memory, cmd('c4', 'SetValue', { key: 'b', value: 2 }, { expectedVersion: 1 }));
    t.same(results[0], { kind: 'conflict', currentVersion: 3 });
    t.equal(store.commits.length, 3, 'nothing appended');
  });

  t.test('a stale version older than the remembered window is a conflict, though it would merge within it', async (t) => {
    const commands = ['a', 'b', 'c', 'd'].map((key, i) => cmd(`c${i + 1}`, 'SetValue', { key, value: 1 }));
    const stale = cmd('late', 'SetValue', { key: 'e', value: 1 }, { expectedVersion: 1 });

    const narrow = setup({ keep: 2 });
    const n = await narrow.run(narrow.empty, ...commands);
    t.equal(n.memory.recent.length, 2, 'memory holds the last 2 commits');
    const { results } = await narrow.run(n.memory, stale);
    t.same(results[0], { kind: 'conflict', currentVersion: 4 }, 'commits since version 1 are not all known');
    t.equal(narrow.store.commits.length, 4, 'nothing appended');

    const wide = setup({ keep: 10 });
    const w = await wide.run(wide.empty, ...commands);
    t.match((await wide.run(w.memory, stale)).results[0], { kind: 'accepted', version: 5 }, 'with every commit since known, it merges');
  });

  t.test('a version in the future is a conflict', async (t) => {
    const { run, empty, store } = setup();
    const { memory } = await run(empty, cmd('c1', 'SetValue', { key: 'a', value: 1 }));
    const { results } = await run(memory, cmd('c2', 'SetValue', { key: 'b', value: 1 }, { expectedVersion: 5 }));
    t.same(results[0], { kind: 'conflict', currentVersion: 1 });
    t.equal(store.commits.length, 1);
  });
});

t.test('a rejection is a value and appends nothing', async (t) => {
  const { run, empty, store, ctx } = setup();
  const { memory } = await run(empty, cmd('c1', 'SetValue', { key: 'a', value: 1 }));
  const executed = await executeCommand(ctx, memory, cmd('c2', 'Refuse', { reason: 'not today' }));
  t.same(executed.result, { kind: 'rejected', reason: 'not today' });
  t.equal(store.commits.length, 1, 'nothing appended');
  t.same(executed.memory, memory, 'memory unchanged');
});

t.test('through the actor host: a lost ack is answered from the store on retry, and the key cannot then be reused by another command', async (t) => {
  const { aggregate } = makeKv();
  const store = createMemoryEventStore();
  const host = createActorHost({
    aggregates: [aggregate],
    store,
    snapshots: memorySnapshotStore(),
    streamId: store.streamId,
    duplicateWindowMs: 120_000,
    settings: { snapshotEvery: 1000, idleMs: 60_000, restMs: 60_000, maxAwake: 0, mailboxSize: 10, recentCommits: 10, conflictRetries: 3 },
    log: pino({ level: 'silent' }),
  });
  t.teardown(() => host.drain(0));
  const noDeps = () => Promise.reject(new Error('none'));
  await host.execute(cmd('c0', 'SetValue', { key: 'a', value: 1 }), noDeps);
  store.disconnect({ appendLands: true });
  await t.rejects(host.execute(cmd('c1', 'Increment', { key: 'a' }), noDeps), EventStoreUnavailableError);
  store.reconnect();
  const retried = await host.execute(cmd('c1', 'Increment', { key: 'a' }), noDeps);
  t.same(retried, { kind: 'accepted', id: 'x', version: 2, position: 2, events: ['ValueSet'] });
  t.same(await host.readState('kv', 'x'), { state: { values: { a: 2 } }, version: 2, position: 2 }, 'the actor caught up: the increment counted once');
  await t.rejects(host.execute(cmd('c1', 'SetValue', { key: 'a', value: 9 }), noDeps), IdempotencyKeyReusedError, 'now that memory knows the key');
  t.equal(store.commits.length, 2);
});

t.test('a fenced duplicate for an append not stored yet is answered as an unknown outcome once the retries run out, not as a conflict', async (t) => {
  const { ctx, empty, store } = setup({ conflictRetries: 2 });
  // A replicated stream before nats-server 2.9.21, with appends fenced by position: every try collides with an append still in flight.
  const staged: ExecutionContext = { ...ctx, store: { ...store, append: async () => ({ position: 0, duplicate: true }) } };
  await t.rejects(executeCommand(staged, empty, cmd('c1', 'SetValue', { key: 'a', value: 1 })), EventStoreUnavailableError, 'the caller is told to retry with the same key');
  t.equal(store.commits.length, 0, 'nothing appended');
});

t.test('a fenced duplicate that turns out to be this same command, run by another owner, is answered as that commit', async (t) => {
  const { ctx, empty, store } = setup();
  const command = cmd('c1', 'SetValue', { key: 'a', value: 1 });
  let tries = 0;
  const staged: ExecutionContext = {
    ...ctx,
    store: {
      ...store,
      append: async (commit, expected) => {
        if (tries++ > 0) return store.append(commit, expected);
        // The partition's old owner is appending this very command; it lands just after.
        await store.append({ ...commit }, expected);
        return { position: 0, duplicate: true };
      },
    },
  };
  const { result } = await executeCommand(staged, empty, command);
  t.same(result, { kind: 'accepted', id: 'x', version: 1, position: 1, events: ['ValueSet'] }, 'the original commit is the answer');
  t.equal(store.commits.length, 1, 'and it is stored once');
});
