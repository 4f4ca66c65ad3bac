import t, { type Test } from 'tap';
import { openViewStore, type ViewStore } from '../../src/read/lmdbViews.js';
import { tempDir } from '../helpers/nats.js';

type Doc = { id: string };

/** A store whose active `v` view holds `ids` as documents, plus a tuple key (sorted among the strings). */
function storeWith(t: Test, ids: readonly string[]): ViewStore {
  const views = openViewStore(tempDir(t, 'converge-views-'));
  t.teardown(() => views.close());
  const { docs, index } = views.generation('v', views.activeGeneration('v'));
  views.env.transactionSync(() => {
    for (const id of ids) docs.putSync(id, { id });
    docs.putSync(['a', 1], { id: 'tuple key' });
    for (const [i, id] of ids.entries()) index.putSync(['position', (i + 1) * 10, id], null);
  });
  return views;
}

t.test('scan: string-keyed documents in key order, after a key, at most a limit', async (t) => {
  const views = storeWith(t, ['b', 'a', 'a-', 'c']);
  const keys = (after: string | undefined, limit: number) => views.scan<Doc>('v', after, limit).map((e) => e.key);
  t.same(keys(undefined, 10), ['a', 'a-', 'b', 'c'], 'the tuple key is skipped');
  t.same(keys(undefined, 2), ['a', 'a-']);
  t.same(keys('a-', 10), ['b', 'c'], 'strictly after the key');
  t.same(keys('a0', 10), ['b', 'c'], 'after a key that is not there');
  t.same(keys('c', 10), []);
  t.same(keys(undefined, 0), []);
  t.same(views.scan<Doc>('v', 'b', 1), [{ key: 'c', doc: { id: 'c' } }]);
});

t.test('byIndexFrom: entries from a start key, paged with the cursor of byIndex', async (t) => {
  const views = storeWith(t, ['s1', 's2', 's3', 's4']);
  const ids = (page: { items: Doc[] }) => page.items.map((d) => d.id);
  t.same(ids(views.byIndexFrom<Doc>('v', ['position'], [21], { limit: 10 })), ['s3', 's4'], 'from 21: positions 30 and 40');
  t.same(ids(views.byIndexFrom<Doc>('v', ['position'], [20], { limit: 10 })), ['s2', 's3', 's4'], 'the start is inclusive');
  const first = views.byIndexFrom<Doc>('v', ['position'], [0], { limit: 3 });
  t.same(ids(first), ['s1', 's2', 's3']);
  t.type(first.next, 'string');
  const rest = views.byIndexFrom<Doc>('v', ['position'], [0], { limit: 3, cursor: first.next! });
  t.same([ids(rest), rest.next], [['s4'], undefined]);
  t.same(ids(views.byIndexFrom<Doc>('v', ['position'], [35], { limit: 3, cursor: first.next! })), ['s4'], 'a cursor before the start counts as none');
  t.same(views.byIndex<Doc>('v', ['position'], { limit: 3, cursor: first.next! }).items.map((d) => d.id), ['s4'], 'byIndex takes the same cursor');
  t.throws(() => views.byIndexFrom<Doc>('v', ['at'], [''], { limit: 3, cursor: first.next! }), { code: 'invalid_cursor' }, "another listing's cursor");
});
