import t, { type Test } from 'tap';
import { createConverge, createMemoryEventStore, manualClock, type Converge, type MemoryEventStore } from '../../src/index.js';
import { shopPlatform } from '../../app.js';
import { archivedStore, GAP_PAGE } from '../../src/store/archived.js';
import { memoryArchiveIndex } from '../../src/store/archiveIndex.js';
import { ARCHIVE_AGGREGATE, ARCHIVE_ID, ARCHIVED } from '../../src/core/archive.js';
import { startArchiver } from '../../src/lifecycle/archiver.js';
import { pino } from 'pino';

// The archive on the in-process runtime (docs/architecture.md, "Archive"): the reference
// app's orders are finished once delivered, rejected or cancelled, and the archiver moves
// them out of the live store after `archive.afterMs` on the runtime's clock.

const shopBody = { name: 'Kimbap Heaven', category: 'korean', ownerId: 'o1' };
const menu = { menuId: 'm1', name: 'Tuna kimbap', price: 4500 };
const placeBody = { shopId: 's1', customerId: 'c1', items: [{ menuId: 'm1', quantity: 2 }] };
const AFTER_MS = 60_000;

async function runtime(t: Test, store: MemoryEventStore, clock = manualClock('2026-03-01T12:00:00.000Z')) {
  const converge = await createConverge(shopPlatform, { clock, eventStore: store, config: { logLevel: 'silent', archive: { afterMs: AFTER_MS, intervalMs: 20 } } });
  t.teardown(() => converge.stop());
  return { converge, clock };
}

async function send(converge: Converge, aggregate: string, id: string, type: string, data: object = {}) {
  const result = await converge.dispatch({ aggregate, id, type, data } as never);
  if (result.kind !== 'accepted') throw new Error(`${type} ${id}: ${JSON.stringify(result)}`);
  return result;
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

async function until(check: () => boolean | Promise<boolean>, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

/** Every document of every view of the app, by view. */
function allViews(converge: Converge) {
  return Object.fromEntries((shopPlatform.projections ?? []).map((p) => [p.name, converge.views.scan(p as never, undefined, 10_000)]));
}

/** A shop and three orders: one delivered, one cancelled, one still placed. */
async function orders(converge: Converge) {
  await send(converge, 'shop', 's1', 'RegisterShop', shopBody);
  await send(converge, 'shop', 's1', 'OpenShop');
  await send(converge, 'shop', 's1', 'AddMenuItem', menu);
  for (const id of ['o1', 'o2', 'o3']) await send(converge, 'order', id, 'PlaceOrder', placeBody);
  await send(converge, 'order', 'o1', 'AcceptOrder');
  await send(converge, 'order', 'o1', 'DeliverOrder');
  await send(converge, 'order', 'o2', 'CancelOrder', { reason: 'changed my mind' });
  await converge.settled();
}

t.test('a finished order is moved out of the live store after archive.afterMs and its history still reads in full', async (t) => {
  const store = createMemoryEventStore();
  const { converge, clock } = await runtime(t, store);
  await orders(converge);
  const before = await collect(converge.store.read('order', 'o1', 0));
  clock.advance(AFTER_MS - 1000);
  await new Promise((r) => setTimeout(r, 100));
  t.equal((await collect(store.read('order', 'o1', 0))).length, 3, 'not before its time');
  clock.advance(2000);
  t.ok(await until(async () => (await collect(store.read('order', 'o1', 0))).length === 0), 'its commits are gone from the live store');
  t.equal((await collect(store.read('order', 'o2', 0))).length, 0, 'a cancelled order is archived too');
  t.equal((await collect(store.read('order', 'o3', 0))).length, 1, 'an order still placed stays live');
  t.same(await collect(converge.store.read('order', 'o1', 0)), before, 'read through the archive, its history is what it was, positions included');
  t.equal(await converge.store.lastPosition('order', 'o1'), before.at(-1)!.position, 'its last position is still known');
  t.same(await converge.store.commitAt(before[0]!.position).then((c) => c?.commandType), 'PlaceOrder', 'a position is still found');
  const status = converge.status().archive!;
  t.ok(status.archivedAggregates >= 2, `the status counts the archived aggregates (${status.archivedAggregates})`);
  t.ok(status.archivedCommits >= 5 && status.archiveBytes > 0, 'and their commits and size');
});

t.test('a rebuild of every view across the archive and the live store equals the views made before archiving', async (t) => {
  const store = createMemoryEventStore();
  const clock = manualClock('2026-03-01T12:00:00.000Z');
  const first = await runtime(t, store, clock);
  await orders(first.converge);
  const expected = allViews(first.converge);
  t.equal((expected['orderHistory'] as unknown[]).length, 3, 'the views hold the three orders');
  clock.advance(AFTER_MS + 1000);
  t.ok(await until(async () => (await collect(store.read('order', 'o1', 0))).length === 0), 'archived');
  await first.converge.stop();
  // A new runtime on the same store folds every view from position 0, in memory.
  const second = await runtime(t, store, clock);
  await second.converge.settled();
  t.same(allViews(second.converge), expected, 'the same documents in every view');
});

t.test('a command to an archived order brings it back: it is decided on its whole history and appended live', async (t) => {
  const store = createMemoryEventStore();
  const { converge, clock } = await runtime(t, store);
  await orders(converge);
  clock.advance(AFTER_MS + 1000);
  t.ok(await until(async () => (await collect(store.read('order', 'o1', 0))).length === 0), 'archived');
  const cancel = await converge.dispatch({ aggregate: 'order', id: 'o1', type: 'CancelOrder', data: { reason: 'late' } } as never);
  t.same(cancel, { kind: 'rejected', reason: 'invalid_transition' }, 'the delivered order is known, not order_not_found');
  const reviewed = await send(converge, 'order', 'o1', 'RecordOrderReview', { reviewId: 'r1', rating: 5 });
  t.equal(reviewed.version, 4, 'appended after its three archived events');
  const live = await collect(store.read('order', 'o1', 0));
  t.same(
    live.map((c) => c.version),
    [4],
    'the new commit is live, the archived ones stay archived',
  );
  t.same((await collect(converge.store.read('order', 'o1', 0))).map((c) => c.version), [1, 2, 3, 4], 'its history reads whole');
});

t.test('the archiver does nothing while paused and goes on when resumed', async (t) => {
  const store = createMemoryEventStore();
  const { converge, clock } = await runtime(t, store);
  await orders(converge);
  await converge.archive.pause();
  t.equal(converge.status().archive?.archiver.state, 'paused', 'the status says paused');
  clock.advance(AFTER_MS + 1000);
  await new Promise((r) => setTimeout(r, 200));
  t.equal((await collect(store.read('order', 'o1', 0))).length, 3, 'nothing archived while paused');
  await converge.archive.resume();
  t.ok(await until(async () => (await collect(store.read('order', 'o1', 0))).length === 0), 'archived once resumed');
});

t.test('an order that takes a command after it fell due is archived only once it has been finished for archiveAfterMs again', async (t) => {
  const store = createMemoryEventStore();
  const { converge, clock } = await runtime(t, store);
  await orders(converge);
  await converge.archive.pause();
  clock.advance(AFTER_MS + 1000);
  // The review lands after the order was due; the archiver must not take what it did not copy.
  await send(converge, 'order', 'o1', 'RecordOrderReview', { reviewId: 'r1', rating: 4 });
  await converge.settled();
  await converge.archive.resume();
  t.ok(await until(async () => (await collect(store.read('order', 'o2', 0))).length === 0), 'the cancelled order is archived');
  await new Promise((r) => setTimeout(r, 100));
  t.equal((await collect(store.read('order', 'o1', 0))).length, 4, 'the reviewed order, finished again only now, waits its own archiveAfterMs');
  clock.advance(AFTER_MS + 1000);
  t.ok(await until(async () => (await collect(store.read('order', 'o1', 0))).length === 0), 'then it is archived whole');
  t.same((await collect(converge.store.read('order', 'o1', 0))).map((c) => c.version), [1, 2, 3, 4], 'every commit once');
});

t.test('a round that dies after its record is appended is finished by the next: every commit archived once, then removed', async (t) => {
  const store = createMemoryEventStore();
  const { converge, clock } = await runtime(t, store);
  await orders(converge);
  await converge.archive.pause();
  const remove = store.remove;
  let failures = 0;
  (store as { remove: typeof remove }).remove = async () => {
    failures++;
    throw new Error('killed before the removal');
  };
  clock.advance(AFTER_MS + 1000);
  await t.rejects(converge.archive.round(), /killed before the removal/, 'the round dies between copy and removal');
  t.equal((await collect(store.read('order', 'o1', 0))).length, 3, 'nothing is removed yet');
  (store as { remove: typeof remove }).remove = remove;
  await converge.archive.round();
  t.equal((await collect(store.read('order', 'o1', 0))).length, 0, 'the next round removes what the record holds');
  const records = await collect(store.read('~~archive', 'all', 0));
  t.equal(records.length, 1, 'without copying it again');
  const positions = records.flatMap((r) => r.events.flatMap((e) => (e.data as { commits: Array<{ position: number }> }).commits.map((c) => c.position)));
  t.equal(new Set(positions).size, positions.length, 'each archived commit is in the archive once');
  t.same((await collect(converge.store.read('order', 'o1', 0))).map((c) => c.version), [1, 2, 3], 'and reads once');
  t.ok(failures > 0, 'the failing removal was tried');
});

t.test("a host whose index has not applied another archiver's record still reads an archived aggregate whole and appends to it", async (t) => {
  const raw = createMemoryEventStore();
  const at = '2026-03-01T12:00:00.000Z';
  const commit = (version: number, type: string) => ({ commandId: `c${version}`, commandType: type, aggregate: 'order', id: 'o1', version, events: [{ type, data: {}, at }] });
  await raw.append(commit(1, 'Placed'), 0);
  await raw.append(commit(2, 'Delivered'), 1);
  const copied = [];
  for await (const c of raw.readStored('order', 'o1')) copied.push(c);
  await raw.append({ commandId: 'archive-0', commandType: 'Archive', aggregate: '~~archive', id: 'all', version: 1, events: [{ type: '~Archived', data: { aggregate: 'order', id: 'o1', commits: copied }, at }] }, 0);
  await raw.remove([1, 2].map((position) => ({ position, aggregate: 'order', id: 'o1' })));
  // An index that has applied nothing: this host's projector is behind, or down.
  const store = archivedStore(raw, { index: memoryArchiveIndex() });
  t.same((await collect(store.read('order', 'o1', 0))).map((c) => c.version), [1, 2], 'its history is read from the records the index lacks');
  t.equal(await store.lastPosition('order', 'o1'), 2, 'and its last position');
  const appended = await store.append(commit(3, 'Reviewed'), 2);
  t.equal(appended.position, 4, 'an append at its archived position lands live');
  t.same((await collect(store.read('order', 'o1', 0))).map((c) => c.version), [1, 2, 3], 'and the history reads whole');
});

t.test('the reads that meet records the index lacks share one reading of them, and a record appended after it is read by the next read', async (t) => {
  const raw = createMemoryEventStore();
  const at = '2026-03-01T12:00:00.000Z';
  const archiveOf = async (id: string) => {
    const placed = await raw.append({ commandId: `c-${id}`, commandType: 'Place', aggregate: 'order', id, version: 1, events: [{ type: 'Placed', data: {}, at }] }, 0);
    const copied = await collect(raw.readStored('order', id));
    const last = await raw.lastPosition('~~archive', 'all');
    const version = last === 0 ? 1 : (await raw.commitAt(last))!.version + 1;
    await raw.append({ commandId: `archive-${last}`, commandType: 'Archive', aggregate: '~~archive', id: 'all', version, events: [{ type: '~Archived', data: { aggregate: 'order', id, commits: copied }, at }] }, last);
    await raw.remove([{ position: placed.position, aggregate: 'order', id }]);
  };
  await archiveOf('o1');
  const readings: number[] = [];
  const read = raw.read.bind(raw);
  (raw as { read: typeof read }).read = (aggregate, id, after) => {
    if (aggregate === '~~archive') readings.push(after);
    return read(aggregate, id, after);
  };
  // An index that has applied nothing: the projector has not reached the record yet.
  const store = archivedStore(raw, { index: memoryArchiveIndex() });
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => collect(store.read('order', i === 0 ? 'o1' : `new${i}`, 0))));
  t.same(answers[0]!.map((c) => c.version), [1], 'the archived order is read from the record');
  t.ok(answers.slice(1).every((a) => a.length === 0), 'the new orders have no commits');
  t.same(readings, [0], 'twenty reads at once read the records once');
  await collect(store.read('order', 'new99', 0));
  t.same(readings, [0], 'a read after them reads nothing again while no record follows');
  await archiveOf('o2');
  t.same((await collect(store.read('order', 'o2', 0))).map((c) => c.version), [1], 'a record appended since is read by the next read');
  t.equal(readings.length, 2, 'once more');
  t.equal(readings[1], 2, 'from the record it had read before');
});

/**
 * An archiver's surroundings without a runtime: the in-memory store, whose archive records
 * the index applies as soon as they are appended (the archive follower, in step), and a clock.
 */
function standalone() {
  const store = createMemoryEventStore();
  const index = memoryArchiveIndex();
  const append = store.append.bind(store);
  (store as { append: typeof append }).append = async (commit, expected) => {
    const result = await append(commit, expected);
    if (commit.aggregate === '~~archive') index.apply(result.position, commit.events.filter((e) => e.type === ARCHIVED).map((e) => e.data as never));
    return result;
  };
  return { store, index, clock: manualClock('2026-03-01T12:00:00.000Z'), at: '2026-03-01T12:00:00.000Z' };
}

t.test('the archiver announces the head before it removes what a record copied, and again only after a recheck', async (t) => {
  const { store, index, clock, at } = standalone();
  for (let version = 1; version <= 2; version++) {
    await store.append({ commandId: `c${version}`, commandType: 'T', aggregate: 'order', id: 'o1', version, events: [{ type: 'T', data: {}, at }] }, version - 1);
  }
  const announced: Array<{ position: number; liveThen: number }> = [];
  let listed = false;
  const views = {
    scanIndex: () => (listed ? [] : ((listed = true), [['finished', 'order', 0, 'o1']])),
    get: () => ({ position: 2 }),
  };
  const announce = async (position: number) => void announced.push({ position, liveThen: await store.lastPosition('order', 'o1') });
  const archiver = startArchiver({ store, index, views: views as never, afterMs: new Map([['order', 0]]), clock, log: pino({ level: 'silent' }), intervalMs: 10, batchSize: 10, announce });
  t.equal(await archiver.round(), 1, 'the finished order is archived');
  t.equal(await store.lastPosition('order', 'o1'), 0, 'and removed');
  const record = await store.lastPosition('~~archive', 'all');
  t.same(
    announced,
    [
      { position: 0, liveThen: 2 },
      { position: record, liveThen: 2 },
    ],
    'head 0 while nothing was archived, then the record, announced while the order was still live',
  );
  await archiver.round();
  t.equal(announced.length, 2, 'the next round announces nothing again');
  archiver.recheck();
  await archiver.round();
  t.same(announced.map((a) => a.position), [0, record, record], 'a recheck announces it again: nats-server may have lost it with the deletes');
});

t.test('an archiver with nothing to archive announces head 0, so that reads of new aggregates ask the stream for no record', async (t) => {
  const { store, index, clock } = standalone();
  const announced: number[] = [];
  const views = { scanIndex: () => [], get: () => undefined };
  const archiver = startArchiver({ store, index, views: views as never, afterMs: new Map([['order', 0]]), clock, log: pino({ level: 'silent' }), intervalMs: 10, batchSize: 10, announce: async (p) => void announced.push(p) });
  t.equal(await archiver.round(), 0, 'nothing archived');
  t.same(announced, [0], 'head 0, once');
  let asked = 0;
  const counted: MemoryEventStore = { ...store, nextPosition: async (aggregate, id, after) => (asked++, store.nextPosition(aggregate, id, after)) };
  const read = archivedStore(counted, { index, head: async () => announced.at(-1) });
  t.equal(await read.lastPosition('order', 'new'), 0, 'a new aggregate has nothing');
  t.equal(asked, 0, 'and its read asked the stream for no archive record');
});

t.test('an archiver whose index lacks records the store holds announces no head and removes nothing until it has them', async (t) => {
  const { store, clock, at } = standalone();
  // o1 and o2, each archived by a record an earlier archiver wrote (o2's commit not removed yet),
  // and this host's index made again from nothing, so far with the first record alone.
  const commitOf = async (id: string) => {
    const c = { commandId: `c-${id}`, commandType: 'T', aggregate: 'order', id, version: 1, events: [{ type: 'T', data: {}, at }] };
    const { position } = await store.append(c, 0);
    return { ...c, position, storedAt: 0 };
  };
  const o1 = await commitOf('o1');
  const o2 = await commitOf('o2');
  const record = async (c: typeof o1) => {
    const data = { aggregate: 'order', id: c.id, commits: [c] };
    const { position } = await store.append({ commandId: `r-${c.id}`, commandType: 'Archive', aggregate: ARCHIVE_AGGREGATE, id: ARCHIVE_ID, version: c === o1 ? 1 : 2, events: [{ type: ARCHIVED, data: data as never, at }] }, c === o1 ? 0 : await store.lastPosition(ARCHIVE_AGGREGATE, ARCHIVE_ID));
    return { position, data };
  };
  const r1 = await record(o1);
  const r2 = await record(o2);
  const behind = memoryArchiveIndex();
  behind.apply(r1.position, [r1.data as never]);
  const announced: number[] = [];
  const views = { scanIndex: () => [], get: () => undefined };
  const archiver = startArchiver({ store, index: behind, views: views as never, afterMs: new Map([['order', 0]]), clock, log: pino({ level: 'silent' }), intervalMs: 10, batchSize: 10, announce: async (p) => void announced.push(p) });
  await archiver.round();
  t.same(announced, [], 'no head: its first record is not at or after every record the store holds');
  t.equal(await store.lastPosition('order', 'o1'), o1.position, 'and o1, copied by that record, is still live');
  behind.apply(r2.position, [r2.data as never]);
  await archiver.round();
  t.same(announced, [r2.position], 'once the index has every record, the last is announced');
  t.equal(await store.lastPosition('order', 'o1'), 0, 'and what the records copied is removed');
  t.equal(await store.lastPosition('order', 'o2'), 0);
});

t.test('deletes made again by a recheck count as durable only 150 s after the recheck: a second kill within that time is rechecked too', async (t) => {
  const { store, index, clock, at } = standalone();
  for (let version = 1; version <= 3; version++) {
    await store.append({ commandId: `c${version}`, commandType: 'T', aggregate: 'order', id: 'o1', version, events: [{ type: 'T', data: {}, at }] }, version - 1);
  }
  // Every removal of o1's first commit: what a killed nats-server loses is removed again only if the archiver asks again.
  const remove = store.remove.bind(store);
  let removals = 0;
  // A killed nats-server brings o1's deleted messages back: the store shows its first commit live until it is deleted again.
  let back = false;
  const kill = () => void (back = true);
  (store as { remove: typeof remove }).remove = async (list) => {
    if (list.some((c) => c.position === 1)) {
      removals++;
      back = false;
    }
    return remove(list);
  };
  const nextPosition = store.nextPosition.bind(store);
  (store as { nextPosition: typeof nextPosition }).nextPosition = async (aggregate, id, after) => (back && aggregate === 'order' && id === 'o1' && after === 0 ? 1 : nextPosition(aggregate, id, after));
  let listed = false;
  const views = {
    scanIndex: () => (listed ? [] : ((listed = true), [['finished', 'order', 0, 'o1']])),
    get: () => ({ position: 3 }),
  };
  const archiver = startArchiver({ store, index, views: views as never, afterMs: new Map([['order', 0]]), clock, log: pino({ level: 'silent' }), intervalMs: 10, batchSize: 10 });
  t.equal(await archiver.round(), 1, 'the finished order is archived');
  t.equal(removals, 1, 'and removed');
  clock.advance(100_000);
  kill();
  archiver.recheck(); // nats-server came back
  await archiver.round();
  t.equal(removals, 2, 'a reconnect removes it again');
  // 200 s after the first removal, 100 s after the recheck: the server is killed again.
  clock.advance(100_000);
  await archiver.round();
  kill();
  archiver.recheck();
  await archiver.round();
  t.equal(removals, 3, 'the deletes of the recheck, not yet flushed when the server was killed again, are made a third time');
  clock.advance(200_000);
  await archiver.round();
  archiver.recheck();
  await archiver.round();
  t.equal(removals, 3, 'once they are 150 s old they are on disk, and a later reconnect does not look at them');
});

t.test('with archive.maxShare 0.25 the archiver rests three times as long as each round that archived anything took', async (t) => {
  const { store, index, clock, at } = standalone();
  const ids = ['o1', 'o2', 'o3'];
  const last = new Map<string, number>();
  for (const id of ids) last.set(id, (await store.append({ commandId: `c-${id}`, commandType: 'T', aggregate: 'order', id, version: 1, events: [{ type: 'T', data: {}, at }] }, 0)).position);
  // Each copy takes 40 ms; when each round starts and ends.
  const readStored = store.readStored.bind(store);
  (store as { readStored: typeof readStored }).readStored = (aggregate, id) => ({
    async *[Symbol.asyncIterator]() {
      await new Promise((r) => setTimeout(r, 40));
      yield* readStored(aggregate, id);
    },
  });
  const starts: number[] = [];
  const ends: number[] = [];
  const nextPosition = store.nextPosition.bind(store);
  (store as { nextPosition: typeof nextPosition }).nextPosition = async (...args) => (starts.push(performance.now()), nextPosition(...args));
  const remove = store.remove.bind(store);
  (store as { remove: typeof remove }).remove = async (list) => {
    await remove(list);
    if (list.length > 0) ends.push(performance.now());
  };
  const views = {
    scanIndex: () => {
      const id = ids.find((i) => index.lastOf('order', i) === 0);
      return id ? [['finished', 'order', 0, id]] : [];
    },
    get: (_view: unknown, key: [string, string]) => ({ position: last.get(key[1]) }),
  };
  const archiver = startArchiver({ store, index, views: views as never, afterMs: new Map([['order', 0]]), clock, log: pino({ level: 'silent' }), intervalMs: 10, batchSize: 1, maxShare: 0.25 });
  archiver.start();
  t.teardown(() => archiver.stop());
  for (let i = 0; i < 300 && ends.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
  await archiver.stop();
  t.equal(ends.length, 3, 'the three orders are archived, one per round');
  for (let k = 0; k < 2; k++) {
    // The round that removed the k-th order began at or before its start below, and ended after its removal.
    const began = starts.filter((s) => s <= ends[k]!).at(-1)!;
    const next = starts.find((s) => s > ends[k]!)!;
    // Less 5 ms: the rest is measured on the millisecond clock, and a timer may fire a millisecond early.
    t.ok(next - ends[k]! >= 3 * (ends[k]! - began) - 5, `round ${k + 1} took at least ${(ends[k]! - began).toFixed(0)} ms; the next began ${(next - ends[k]!).toFixed(0)} ms after it`);
    t.ok(next - ends[k]! >= 100, 'a rest of three copies of 40 ms at least');
  }
});

t.test('a read of an aggregate with nothing live asks whether a record follows the index, and never fetches the archive’s last record', async (t) => {
  const raw = createMemoryEventStore();
  const index = memoryArchiveIndex();
  const at = '2026-03-01T12:00:00.000Z';
  const record = await raw.append({ commandId: 'archive-0', commandType: 'Archive', aggregate: '~~archive', id: 'all', version: 1, events: [{ type: '~Archived', data: { aggregate: 'order', id: 'o0', commits: [] }, at }] }, 0);
  index.apply(record.position, []);
  const asked: string[] = [];
  const lastPosition = raw.lastPosition.bind(raw);
  (raw as { lastPosition: typeof lastPosition }).lastPosition = async (aggregate, id) => (asked.push(`last ${aggregate}/${id}`), lastPosition(aggregate, id));
  const nextPosition = raw.nextPosition.bind(raw);
  (raw as { nextPosition: typeof nextPosition }).nextPosition = async (aggregate, id, after) => (asked.push(`next ${aggregate}/${id} after ${after}`), nextPosition(aggregate, id, after));
  const store = archivedStore(raw, { index });
  t.same(await collect(store.read('order', 'new', 0)), [], 'a new order has no commits');
  t.equal(await store.lastPosition('order', 'new'), 0);
  t.same(
    asked.filter((a) => a.includes('~~archive')),
    ['next ~~archive/all after 1', 'next ~~archive/all after 1'],
    'one question of a few bytes per read, after the record the index holds',
  );
});

/**
 * A store of `count` one-commit orders of which all but the first and the last are archived,
 * in records of `perRecord` orders appended after them, and removed: a subscription from 0
 * meets them as one gap. Counts the reads of the archive's records made by readers.
 */
async function archivedOrders(count: number, perRecord: number) {
  const raw = createMemoryEventStore();
  const at = '2026-03-01T12:00:00.000Z';
  for (let i = 1; i <= count; i++) await raw.append({ commandId: `c${i}`, commandType: 'T', aggregate: 'order', id: `o${i}`, version: 1, events: [{ type: 'T', data: {}, at }] }, 0);
  const records: { position: number; archived: never[] }[] = [];
  for (let from = 2; from < count; from += perRecord) {
    const archived = [];
    for (let i = from; i < Math.min(from + perRecord, count); i++) archived.push({ aggregate: 'order', id: `o${i}`, commits: [{ ...(await raw.commitAt(i))!, storedAt: Date.now() }] });
    const events = archived.map((data) => ({ type: ARCHIVED, data, at }));
    const { position } = await raw.append({ commandId: `archive-${from}`, commandType: 'Archive', aggregate: '~~archive', id: 'all', version: records.length + 1, events }, records.length === 0 ? 0 : records.at(-1)!.position);
    records.push({ position, archived: archived as never[] });
  }
  await raw.remove(Array.from({ length: count - 2 }, (_, k) => ({ position: k + 2, aggregate: 'order', id: `o${k + 2}` })));
  let recordReads = 0;
  const read = raw.read.bind(raw);
  (raw as { read: typeof read }).read = (aggregate, id, after) => (aggregate === '~~archive' && recordReads++, read(aggregate, id, after));
  return { raw, records, recordReads: () => recordReads };
}

async function positionsUpTo(sub: AsyncIterable<{ commit: { position: number } }> & { close(): void }, last: number) {
  const seen: number[] = [];
  for await (const { commit } of sub) {
    seen.push(commit.position);
    if (commit.position === last) break;
  }
  sub.close();
  return seen;
}

t.test('a subscription fills a gap longer than a page from the archive a page at a time, every position once and in order', async (t) => {
  const total = 2 * GAP_PAGE + 500;
  const { raw, records } = await archivedOrders(total, total);
  const index = memoryArchiveIndex();
  for (const record of records) index.apply(record.position, record.archived);
  const spans: number[] = [];
  const between = index.between.bind(index);
  index.between = (after, before) => (spans.push(before - after - 1), between(after, before));
  const sub = await archivedStore(raw, { index }).subscribe(0, { batchSize: 100 });
  t.same(await positionsUpTo(sub, total), Array.from({ length: total }, (_, i) => i + 1), 'every position once, in order');
  t.ok(spans.length >= 3, `the gap of ${total - 2} positions was read in ${spans.length} pages`);
  t.ok(Math.max(...spans) <= GAP_PAGE, `none larger than ${GAP_PAGE} positions`);
});

t.test('a subscription filling a gap from the index lets the event loop turn between pages', async (t) => {
  const total = 2 * GAP_PAGE + 500;
  const { raw, records } = await archivedOrders(total, total);
  const index = memoryArchiveIndex();
  for (const record of records) index.apply(record.position, record.archived);
  // Counts the turns of the loop: a page taken from the index needs no I/O, so without a turn
  // between pages the whole gap would go by in microtasks, with no timer, ping or lease renewal.
  let turns = 0;
  let ticking = true;
  const tick = () => {
    turns++;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  t.teardown(() => void (ticking = false));
  const sub = await archivedStore(raw, { index }).subscribe(0, { batchSize: 100 });
  const turnsAt = new Map<number, number>();
  for await (const { commit } of sub) {
    turnsAt.set(commit.position, turns);
    if (commit.position === total) break;
  }
  sub.close();
  t.ok(turnsAt.get(GAP_PAGE + 2)! > turnsAt.get(2)!, `the loop turned between the first page and the second (${turnsAt.get(2)} → ${turnsAt.get(GAP_PAGE + 2)})`);
  t.ok(turnsAt.get(2 * GAP_PAGE + 2)! > turnsAt.get(GAP_PAGE + 2)!, 'and between the second and the third');
});

t.test("a subscription across an archived gap waits for the follower's index while it moves, and never reads the archive's records itself", async (t) => {
  const { raw, records, recordReads } = await archivedOrders(400, 50);
  const index = memoryArchiveIndex();
  // The follower making the index again beside the feed, a record every 30 ms: slower than the 50 ms a read waits.
  let k = 0;
  const follower = setInterval(() => {
    const record = records[k++];
    if (record) index.apply(record.position, record.archived);
  }, 30);
  t.teardown(() => clearInterval(follower));
  const sub = await archivedStore(raw, { index }).subscribe(0, { batchSize: 100 });
  t.same(await positionsUpTo(sub, 400), Array.from({ length: 400 }, (_, i) => i + 1), 'every position once, in order');
  t.equal(recordReads(), 0, 'no read of the records: the gap was taken from the index');
});

t.test('a subscription whose index stops moving reads the records it lacks itself after quietMs', async (t) => {
  const { raw, records, recordReads } = await archivedOrders(100, 50);
  const index = memoryArchiveIndex();
  // The follower applied the first record and then stopped (its projector died).
  index.apply(records[0]!.position, records[0]!.archived);
  const began = Date.now();
  const sub = await archivedStore(raw, { index, quietMs: 200 }).subscribe(0, { batchSize: 100 });
  t.same(await positionsUpTo(sub, 100), Array.from({ length: 100 }, (_, i) => i + 1), 'every position once, in order');
  t.ok(recordReads() > 0, 'the records the index lacks were read from the store');
  t.ok(Date.now() - began >= 200, 'after the index stood still for quietMs');
});
