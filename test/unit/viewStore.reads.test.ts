import t, { type Test } from 'tap';
import { defineProjection, type DomainEvent } from '../../src/index.js';
import { openViewStore } from '../../src/read/lmdbViews.js';
import { createMemoryViews } from '../../src/read/memoryViews.js';
import { encodeDoc, type ViewStore } from '../../src/read/viewStore.js';
import { tempDir } from '../helpers/nats.js';

type Doc = { id: string };

/** The view the reads name; its fold is never run here. */
const v = defineProjection<DomainEvent, Doc>({ name: 'v', version: 1, handles: [], key: () => undefined, fold: (doc) => doc });

// The same reads, against both view stores: the query side must not tell LMDB from the in-memory one.
const stores: Array<[string, (t: Test) => ViewStore]> = [
  ['lmdb', (t) => {
    const views = openViewStore(tempDir(t, 'converge-views-'));
    t.teardown(() => views.close());
    return views;
  }],
  ['memory', () => createMemoryViews()],
];

for (const [kind, open] of stores) {
/** A store whose active `v` view holds `ids` as documents, plus a tuple key (sorted among the strings). */
function storeWith(t: Test, ids: readonly string[]): ViewStore {
  const views = open(t);
  const { docs, index } = views.generation('v', views.activeGeneration('v'));
  views.transaction(() => {
    for (const id of ids) docs.put(id, encodeDoc({ id }, 1));
    docs.put(['a', 1], encodeDoc({ id: 'tuple key' }, 1));
    for (const [i, id] of ids.entries()) index.put(['position', (i + 1) * 10, id]);
  });
  return views;
}

t.test(`${kind}: scan: string-keyed documents in key order, after a key, at most a limit`, async (t) => {
  const views = storeWith(t, ['b', 'a', 'a-', 'c']);
  const keys = (after: string | undefined, limit: number) => views.scan(v, after, limit).map((e) => e.key);
  t.same(keys(undefined, 10), ['a', 'a-', 'b', 'c'], 'the tuple key is skipped');
  t.same(keys(undefined, 2), ['a', 'a-']);
  t.same(keys('a-', 10), ['b', 'c'], 'strictly after the key');
  t.same(keys('a0', 10), ['b', 'c'], 'after a key that is not there');
  t.same(keys('c', 10), []);
  t.same(keys(undefined, 0), []);
  t.same(views.scan(v, 'b', 1), [{ key: 'c', doc: { id: 'c' } }]);
});

t.test(`${kind}: byIndexFrom: entries from a start key, paged with the cursor of byIndex`, async (t) => {
  const views = storeWith(t, ['s1', 's2', 's3', 's4']);
  const ids = (page: { items: Doc[] }) => page.items.map((d) => d.id);
  t.same(ids(views.byIndexFrom(v, ['position'], [21], { limit: 10 })), ['s3', 's4'], 'from 21: positions 30 and 40');
  t.same(ids(views.byIndexFrom(v, ['position'], [20], { limit: 10 })), ['s2', 's3', 's4'], 'the start is inclusive');
  const first = views.byIndexFrom(v, ['position'], [0], { limit: 3 });
  t.same(ids(first), ['s1', 's2', 's3']);
  t.type(first.next, 'string');
  const rest = views.byIndexFrom(v, ['position'], [0], { limit: 3, cursor: first.next! });
  t.same([ids(rest), rest.next], [['s4'], undefined]);
  t.same(ids(views.byIndexFrom(v, ['position'], [35], { limit: 3, cursor: first.next! })), ['s4'], 'a cursor before the start counts as none');
  t.same(views.byIndex(v, ['position'], { limit: 3, cursor: first.next! }).items.map((d) => d.id), ['s4'], 'byIndex takes the same cursor');
  t.throws(() => views.byIndexFrom(v, ['at'], [''], { limit: 3, cursor: first.next! }), { code: 'invalid_cursor' }, "another listing's cursor");
});
}
