import t from 'tap';
import { defineProjection, type ErrorPolicy, type StoredEvent } from '../../src/index.js';
import type { StoredCommit } from '../../src/core/eventStore.js';
import { applyBatch, type Target } from '../../src/read/apply.js';
import { createMemoryViews, type MemoryViews } from '../../src/read/memoryViews.js';

type ValueSet = { readonly type: 'ValueSet'; readonly data: { readonly key: string; readonly value: number } };
type ValueCleared = { readonly type: 'ValueCleared'; readonly data: { readonly key: string } };
type KvEvent = ValueSet | ValueCleared;
interface ValueDoc {
  readonly key: string;
  readonly value: number;
  /** How many events were folded into it: an event applied twice shows here. */
  readonly applied: number;
  readonly positions: readonly number[];
}

/** A value that makes the fold throw, and one that makes `indexes` throw (outside the fold). */
const BAD_FOLD = -1;
const BAD_INDEX = 666;

function valuesProjection(opts: { onError?: ErrorPolicy; failFold?: (value: number) => boolean } = {}) {
  const calls = { fold: 0 };
  const failFold = opts.failFold ?? ((value: number) => value === BAD_FOLD);
  const projection = defineProjection<KvEvent, ValueDoc>({
    name: 'values',
    version: 1,
    handles: ['ValueSet', 'ValueCleared'],
    key: (event) => event.data.key,
    fold(doc, event, meta) {
      calls.fold++;
      if (event.type === 'ValueCleared') return undefined;
      if (failFold(event.data.value)) throw new Error(`cannot fold ${event.data.value}`);
      return { key: event.data.key, value: event.data.value, applied: (doc?.applied ?? 0) + 1, positions: [...(doc?.positions ?? []), meta.position] };
    },
    indexes(doc) {
      if (doc.value === BAD_INDEX) throw new Error('cannot index 666');
      return [['byValue', doc.value]];
    },
    ...(opts.onError ? { onError: opts.onError } : {}),
  });
  return { projection, calls };
}

const AT = '2026-01-01T00:00:00.000Z';
const set = (key: string, value: number): StoredEvent => ({ type: 'ValueSet', data: { key, value }, at: AT });
const clear = (key: string): StoredEvent => ({ type: 'ValueCleared', data: { key }, at: AT });
const other = (): StoredEvent => ({ type: 'SomethingElse', data: {}, at: AT });
const commit = (position: number, ...events: StoredEvent[]): StoredCommit => ({
  commandId: `c${position}`,
  commandType: 'Set',
  aggregate: 'kv',
  id: 'x',
  version: position,
  events,
  position,
});

const NOW = '2026-02-02T00:00:00.000Z';
const noUpcast = (_aggregate: string, event: StoredEvent) => event;
const apply = (views: MemoryViews, targets: Target[], commits: StoredCommit[]) => applyBatch(views, targets, commits, noUpcast, () => NOW);
const docs = (views: MemoryViews, gen = 1) => Object.fromEntries(views.documents('values', gen).map(({ key, doc }) => [String(key), doc]));

t.test('each event applies once: commits at or below the checkpoint are skipped when a batch is applied again', async (t) => {
  const views = createMemoryViews();
  const { projection } = valuesProjection();
  const target: Target = { projection, gen: 1 };
  apply(views, [target], [commit(1, set('a', 1)), commit(2, set('a', 2), set('b', 1))]);
  t.equal(views.checkpoint('values', 1), 2);
  apply(views, [target], [commit(1, set('a', 1)), commit(2, set('a', 2), set('b', 1)), commit(3, set('b', 5))]);
  t.equal(views.checkpoint('values', 1), 3, 'the checkpoint moved to the last commit');
  t.same(docs(views), {
    a: { key: 'a', value: 2, applied: 2, positions: [1, 2] },
    b: { key: 'b', value: 5, applied: 2, positions: [2, 3] },
  });
  apply(views, [target], [commit(2, set('a', 100)), commit(3, set('b', 100))]);
  t.same(docs(views).a, { key: 'a', value: 2, applied: 2, positions: [1, 2] }, 'a batch wholly below the checkpoint changes nothing');
  t.equal(views.checkpoint('values', 1), 3);
});

t.test('events of types the projection does not handle never reach it, but still move the checkpoint', async (t) => {
  const views = createMemoryViews();
  const { projection, calls } = valuesProjection();
  apply(views, [{ projection, gen: 1 }], [commit(1, other()), commit(2, other(), set('a', 1))]);
  t.equal(calls.fold, 1);
  t.equal(views.checkpoint('values', 1), 2);
});

t.test('index entries follow the document: the old entries are removed', async (t) => {
  const views = createMemoryViews();
  const { projection } = valuesProjection();
  const target: Target = { projection, gen: 1 };
  apply(views, [target], [commit(1, set('a', 1), set('b', 1))]);
  t.same(views.indexEntries('values', 1), [
    ['byValue', 1, 'a'],
    ['byValue', 1, 'b'],
  ]);
  apply(views, [target], [commit(2, set('a', 3))]);
  t.same(
    views.indexEntries('values', 1),
    [
      ['byValue', 1, 'b'],
      ['byValue', 3, 'a'],
    ],
    'a’s entry moved',
  );
  apply(views, [target], [commit(3, set('b', 2), set('b', 4))]);
  t.same(
    views.indexEntries('values', 1),
    [
      ['byValue', 3, 'a'],
      ['byValue', 4, 'b'],
    ],
    'two changes in one batch leave only the last entry',
  );
  apply(views, [target], [commit(4, clear('a'))]);
  t.same(views.indexEntries('values', 1), [['byValue', 4, 'b']], 'a deleted document leaves no entry');
  t.same(Object.keys(docs(views)), ['b']);
  t.same(
    views.byIndex(projection, ['byValue'], { limit: 10 }).items.map((d) => d.key),
    ['b'],
  );
});

t.test('index entries follow the document when the fold changes the document it was given in place', async (t) => {
  const views = createMemoryViews();
  const mutating = defineProjection<KvEvent, { key: string; value: number }>({
    name: 'values',
    version: 1,
    handles: ['ValueSet'],
    key: (event) => event.data.key,
    fold(doc, event) {
      if (event.type !== 'ValueSet') return doc;
      if (!doc) return { key: event.data.key, value: event.data.value };
      doc.value = event.data.value;
      return doc;
    },
    indexes: (doc) => [['byValue', doc.value]],
  });
  const target: Target = { projection: mutating, gen: 1 };
  apply(views, [target], [commit(1, set('a', 1))]);
  apply(views, [target], [commit(2, set('a', 2)), commit(3, set('a', 3))]);
  t.same(views.indexEntries('values', 1), [['byValue', 3, 'a']], 'the entry of the value as stored before the batch is gone');
});

t.test('index entries follow the document when its entries change place, repeat, or number in the hundreds', async (t) => {
  const views = createMemoryViews();
  // A document indexed under each of its tags, in the order the event lists them.
  const tagged = defineProjection<{ type: 'Tagged'; data: { key: string; tags: string[] } }, { key: string; tags: string[] }>({
    name: 'values',
    version: 1,
    handles: ['Tagged'],
    key: (event) => event.data.key,
    fold: (_doc, event) => ({ key: event.data.key, tags: event.data.tags }),
    indexes: (doc) => doc.tags.map((tag) => ['tag', tag]),
  });
  const target: Target = { projection: tagged, gen: 1 };
  const tag = (position: number, ...tags: string[]) => apply(views, [target], [commit(position, { type: 'Tagged', data: { key: 'a', tags }, at: AT })]);
  const entries = () => views.indexEntries('values', 1).map((e) => e[1]);
  tag(1, 'x', 'y');
  tag(2, 'y', 'x');
  t.same(entries(), ['x', 'y'], 'the same entries in another order are all kept');
  tag(3, 'x', 'x');
  t.same(entries(), ['x'], 'an entry given twice is kept once, the one dropped is removed');
  tag(4, 'x', 'z');
  t.same(entries(), ['x', 'z'], 'an entry given twice before and once now is kept');
  const many = Array.from({ length: 300 }, (_, i) => `t${String(i).padStart(3, '0')}`);
  tag(5, ...many);
  t.same(entries(), many, 'hundreds of entries');
  tag(6, ...many.slice(100), 'x', ...many.slice(0, 50));
  t.same(entries(), [...many.slice(0, 50), ...many.slice(100), 'x'].sort(), 'hundreds of entries, some gone, one added, in another order');
});

t.test('an index entry holding NaN, unequal to itself, stays indexed when its document is written again', async (t) => {
  const views = createMemoryViews();
  const scored = defineProjection<KvEvent, { key: string; value: number }>({
    name: 'values',
    version: 1,
    handles: ['ValueSet'],
    key: (event) => event.data.key,
    fold: (_doc, event) => (event.type === 'ValueSet' ? { key: event.data.key, value: event.data.value } : undefined),
    indexes: () => [['score', Number.NaN]],
  });
  const target: Target = { projection: scored, gen: 1 };
  apply(views, [target], [commit(1, set('a', 1))]);
  apply(views, [target], [commit(2, set('a', 2))]);
  // The entry is removed and put again, in that order.
  t.equal(views.indexEntries('values', 1).length, 1, 'its entry is there');
});

t.test('a throwing fold under the default policy parks the event and goes on', async (t) => {
  const views = createMemoryViews();
  const { projection } = valuesProjection();
  apply(views, [{ projection, gen: 1 }], [commit(1, set('a', 1)), commit(2, set('b', 7), set('a', BAD_FOLD)), commit(3, set('a', 3))]);
  t.same(views.parked('values'), [
    { projection: 'values', position: 2, eventIndex: 1, aggregate: 'kv', id: 'x', type: 'ValueSet', error: `cannot fold ${BAD_FOLD}`, parkedAt: NOW },
  ]);
  t.same(docs(views), {
    a: { key: 'a', value: 3, applied: 2, positions: [1, 3] },
    b: { key: 'b', value: 7, applied: 1, positions: [2] },
  }, 'the other event of the commit and the later commit applied');
  t.equal(views.checkpoint('values', 1), 3, 'the checkpoint passed the parked event');
});

t.test('under retry, a fold that fails fewer times than allowed is applied', async (t) => {
  const views = createMemoryViews();
  let failures = 2;
  const { projection, calls } = valuesProjection({ onError: { kind: 'retry', times: 2 }, failFold: () => failures-- > 0 });
  apply(views, [{ projection, gen: 1 }], [commit(1, set('a', 1))]);
  t.equal(calls.fold, 3, 'tried three times');
  t.same(views.parked('values'), [], 'nothing parked');
  t.same(docs(views).a, { key: 'a', value: 1, applied: 1, positions: [1] });
  t.equal(views.checkpoint('values', 1), 1);
});

t.test('under retry, a fold that keeps failing is retried `times` more and then parked', async (t) => {
  const views = createMemoryViews();
  const { projection, calls } = valuesProjection({ onError: { kind: 'retry', times: 3 } });
  apply(views, [{ projection, gen: 1 }], [commit(1, set('a', BAD_FOLD)), commit(2, set('b', 1))]);
  t.equal(calls.fold, 4 + 1, 'four attempts at the failing event, then the next one');
  t.match(views.parked('values'), [{ position: 1, eventIndex: 0, error: `cannot fold ${BAD_FOLD}` }]);
  t.same(Object.keys(docs(views)), ['b'], 'went on after parking');
  t.equal(views.checkpoint('values', 1), 2);
});

t.test('under stop, the target stops at the failing commit, its checkpoint stays before it, and later batches skip it', async (t) => {
  const views = createMemoryViews();
  const { projection } = valuesProjection({ onError: { kind: 'stop' } });
  const target: Target = { projection, gen: 1 };
  apply(views, [target], [commit(1, set('a', 1)), commit(2, set('b', 2), set('a', BAD_FOLD)), commit(3, set('c', 3))]);
  t.same(target.stopped, { position: 2, error: `cannot fold ${BAD_FOLD}` });
  t.equal(views.checkpoint('values', 1), 1, 'the checkpoint is before the failing commit');
  t.same(docs(views), { a: { key: 'a', value: 1, applied: 1, positions: [1] } }, 'nothing of the failing commit (not even its good event) nor after it');
  t.same(views.parked('values'), [], 'nothing parked');
  apply(views, [target], [commit(4, set('d', 4))]);
  t.equal(views.checkpoint('values', 1), 1, 'a later batch does not move it');
  t.same(Object.keys(docs(views)), ['a'], 'nor write anything');
});

t.test('a stopped target does not hold up the other targets of the batch', async (t) => {
  const views = createMemoryViews();
  const stopping: Target = { projection: valuesProjection({ onError: { kind: 'stop' } }).projection, gen: 1 };
  const { projection: healthy } = valuesProjection({ failFold: () => false });
  const other: Target = { projection: { ...healthy, name: 'healthy' }, gen: 1 };
  apply(views, [stopping, other], [commit(1, set('a', BAD_FOLD)), commit(2, set('b', 2))]);
  t.equal(views.checkpoint('values', 1), 0);
  t.equal(views.checkpoint('healthy', 1), 2);
  t.same(
    views.documents('healthy', 1).map((d) => d.key),
    ['a', 'b'],
  );
});

t.test('a batch that throws as a whole leaves documents, index entries, parked events and checkpoints unchanged', async (t) => {
  const views = createMemoryViews();
  const { projection } = valuesProjection();
  const { projection: healthy } = valuesProjection({ failFold: () => false });
  const second: Target = { projection: { ...healthy, name: 'second', indexes: undefined }, gen: 1 };
  const targets: Target[] = [{ projection, gen: 1 }, second];
  apply(views, targets, [commit(1, set('a', 1))]);
  const before = { docs: docs(views), index: views.indexEntries('values', 1), second: views.documents('second', 1), checkpoint: views.checkpoint('values', 1) };

  // `indexes` runs outside the fold, where no error policy applies: the whole transaction fails.
  t.throws(() => apply(views, targets, [commit(2, set('a', 2), set('b', BAD_FOLD)), commit(3, set('c', BAD_INDEX))]), /cannot index 666/);
  t.same(docs(views), before.docs, 'documents unchanged');
  t.same(views.indexEntries('values', 1), before.index, 'index entries unchanged');
  t.same(views.parked(), [], 'the event parked within the batch was not kept');
  t.equal(views.checkpoint('values', 1), 1, 'checkpoint unchanged');
  t.same(views.documents('second', 1), before.second, 'the other target’s writes were undone too');
  t.equal(views.checkpoint('second', 1), 1);

  // And when the view store itself cannot write.
  const failing: MemoryViews = {
    ...views,
    transaction: () => {
      throw new Error('MDB_MAP_FULL');
    },
  };
  t.throws(() => apply(failing, targets, [commit(2, set('a', 2))]), /MDB_MAP_FULL/);
  t.same(docs(views), before.docs);
  t.equal(views.checkpoint('values', 1), 1);

  apply(views, targets, [commit(2, set('a', 2))]);
  t.equal(views.checkpoint('values', 1), 2, 'the next batch applies from the unchanged checkpoint');
  t.same(docs(views).a, { key: 'a', value: 2, applied: 2, positions: [1, 2] });
});
