import t from 'tap';
import { Type } from 'typebox';
import { defineAggregate, emit, type AnyAggregate, type CommandOf } from '../../src/index.js';
import { OverloadedError } from '../../src/core/errors.js';
import { createMetrics, watchActors, watchReadSide } from '../../src/observe/metrics.js';
import { createMemoryEventStore } from '../../src/store/memory.js';
import { executeCommand, type ExecutionContext } from '../../src/write/execute.js';
import { emptyMemory } from '../../src/write/rehydrate.js';
import { parseMetrics, sample } from '../helpers/metrics.js';

const scrape = async (m: ReturnType<typeof createMetrics>) => parseMetrics(await m.registry.metrics());

t.test('a command is timed under its outcome: the result kind, or the error code it failed with', async (t) => {
  const m = createMetrics();
  await m.timeCommand('shop', 'OpenShop', async () => ({ kind: 'accepted' }), (r) => r.kind);
  await m.timeCommand('shop', 'OpenShop', async () => ({ kind: 'rejected' }), (r) => r.kind);
  await t.rejects(m.timeCommand('shop', 'OpenShop', () => Promise.reject(new OverloadedError('shop/s1')), () => 'never'));
  await t.rejects(m.timeCommand('shop', 'OpenShop', () => Promise.reject(new Error('a bug')), () => 'never'));
  const s = await scrape(m);
  const count = (outcome: string) => sample(s, 'converge_command_duration_seconds_count', { aggregate: 'shop', command: 'OpenShop', outcome });
  t.same(
    ['accepted', 'rejected', 'overloaded', 'internal_error'].map(count),
    [1, 1, 1, 1],
  );
  t.ok((sample(s, 'process_cpu_user_seconds_total', {}) ?? 0) > 0, 'the default process metrics are in the registry');
});

t.test('conflicts count every append another writer got to first, retries only those decided again', async (t) => {
  const commands = { set: { type: 'Set', schema: Type.Object({ value: Type.Number() }) } } as const;
  type ValueSet = { type: 'ValueSet'; data: { value: number } };
  const aggregate = defineAggregate({
    name: 'kv',
    plural: 'kvs',
    snapshotVersion: 1,
    commands,
    initialState: (): { value: number } => ({ value: 0 }),
    decide: (_state, command: CommandOf<typeof commands>) => emit<ValueSet>({ type: 'ValueSet', data: { value: command.data.value } }),
    evolve: (_state, event: ValueSet) => ({ value: event.data.value }),
  }) as AnyAggregate;
  const store = createMemoryEventStore();
  const m = createMetrics();
  const ctx: ExecutionContext = {
    aggregate,
    store,
    readState: () => Promise.reject(new Error('none')),
    keep: 10,
    conflictRetries: 2,
    duplicateWindowMs: 120_000,
    onConflict: (name, retrying) => {
      m.conflict(name);
      if (retrying) m.retry(name);
    },
  };
  // Another writer appends before each of this command's appends, so it always loses.
  let n = 0;
  store.beforeAppend(async (commit) => {
    if (commit.commandId.startsWith('other')) return;
    const last = await store.lastPosition('kv', 'x');
    await store.append({ commandId: `other-${++n}`, commandType: 'Set', aggregate: 'kv', id: 'x', version: n, events: [{ type: 'ValueSet', data: { value: n }, at: 'now' }] }, last);
  });
  const { result } = await executeCommand(ctx, emptyMemory(aggregate), { commandId: 'c1', aggregate: 'kv', id: 'x', type: 'Set', data: { value: 1 }, at: new Date().toISOString() });
  t.equal(result.kind, 'conflict');
  const s = await scrape(m);
  t.equal(sample(s, 'converge_command_conflicts_total', { aggregate: 'kv' }), 3, 'three appends lost');
  t.equal(sample(s, 'converge_command_retries_total', { aggregate: 'kv' }), 2, 'two of them were decided again (conflictRetries)');
});

t.test('the actor gauges read the host when scraped', async (t) => {
  const m = createMetrics();
  const host = { inFlight: 3, size: 7, awake: 2 };
  watchActors(m, host);
  let s = await scrape(m);
  t.same([sample(s, 'converge_mailbox_depth', {}), sample(s, 'converge_resident_actors', {}), sample(s, 'converge_awake_actors', {})], [3, 7, 2]);
  host.inFlight = 0;
  s = await scrape(m);
  t.equal(sample(s, 'converge_mailbox_depth', {}), 0, 'and again at the next scrape');
});

t.test('the read-side gauges follow the projector: lag in events and seconds, unknown lag left out, subscribers', async (t) => {
  const m = createMetrics();
  watchReadSide(
    m,
    () => ({
      projections: [
        { name: 'a', state: 'failing', position: 10, lagEvents: 5, lagMs: 2500, parked: 1 },
        { name: 'b', state: 'running', position: 15, lagEvents: 0, lagMs: null, parked: 0 },
      ],
      lastPosition: 15,
      notifierLagEvents: 2,
    }),
    async () => [{ name: 'search', pending: 4 }],
  );
  const s = await scrape(m);
  t.equal(sample(s, 'converge_projection_lag_events', { projection: 'a' }), 5);
  t.equal(sample(s, 'converge_projection_lag_seconds', { projection: 'a' }), 2.5);
  t.equal(sample(s, 'converge_projection_lag_seconds', { projection: 'b' }), undefined, 'an unknown lag is not reported as 0');
  t.equal(sample(s, 'converge_projection_parked', { projection: 'a' }), 1);
  t.equal(sample(s, 'converge_projection_state', { projection: 'a', state: 'failing' }), 1);
  t.equal(sample(s, 'converge_projection_state', { projection: 'a', state: 'running' }), 0);
  t.equal(sample(s, 'converge_events_position', {}), 15);
  t.equal(sample(s, 'converge_notifier_lag_events', {}), 2);
  t.equal(sample(s, 'converge_subscriber_pending_notices', { subscriber: 'search' }), 4);
});
