import t from 'tap';
import type { StoreHead, StoredCommit } from '../../src/core/eventStore.js';
import { viewLag } from '../../src/read/viewLag.js';
import { decodeDoc, encodeDoc, storedDoc } from '../../src/read/viewStore.js';

/** A store whose head and commit times the test sets, counting the looks at its head. */
function fakeStore(taken: Record<number, number>) {
  const state = { head: 0, heads: 0, down: false };
  return {
    state,
    store: {
      async head(): Promise<StoreHead> {
        state.heads++;
        if (state.down) throw new Error('away');
        return { identity: { stream: 's' }, lastPosition: state.head, firstPosition: 1 };
      },
      async commitAt(position: number) {
        if (state.down) throw new Error('away');
        const at = taken[position];
        return at === undefined ? undefined : ({ position, storedAt: at } as StoredCommit & { storedAt: number });
      },
    },
  };
}

t.test('a view that has applied the head is 0 behind; one that has not is behind by the age of its oldest unapplied commit', async (t) => {
  let now = 10_000;
  const { store, state } = fakeStore({ 4: 9_000, 5: 9_500 });
  const lag = viewLag(store, () => now);
  state.head = 5;
  t.equal(await lag.lagMs(5, 100), 0);
  t.equal(await lag.lagMs(3, 100), 1000, 'position 4 was taken 1,000 ms ago');
  now += 50;
  t.equal(await lag.lagMs(4, 100), 550, 'the next one, 550 ms ago');
});

t.test('positions gone from the store (archived) are passed over to the first one held', async (t) => {
  const { store, state } = fakeStore({ 7: 900 });
  state.head = 7;
  t.equal(await viewLag(store, () => 1000).lagMs(4, 100), 100);
});

t.test('the store is looked at again only when the last look is older than asked, so a budget of 0 always looks', async (t) => {
  let now = 0;
  const { store, state } = fakeStore({ 2: 0 });
  const lag = viewLag(store, () => now);
  state.head = 1;
  await lag.lagMs(1, 100);
  now = 50;
  t.equal(await lag.lagMs(1, 100), 0);
  t.equal(state.heads, 1, 'a look 50 ms old does for 100 ms');
  state.head = 2;
  t.equal(await lag.lagMs(1, 100), 0, 'so a commit after the look is not counted');
  t.equal(await lag.lagMs(1, 0), 50, 'a budget of 0 looks again and finds it');
  t.equal(state.heads, 2);
});

t.test('a store that cannot be asked gives no lag rather than a made-up one', async (t) => {
  let now = 0;
  const { store, state } = fakeStore({});
  const lag = viewLag(store, () => now);
  state.down = true;
  t.equal(await lag.lagMs(0, 100), null);
  state.down = false;
  await lag.lagMs(0, 100);
  state.down = true;
  now = 500;
  t.equal(await lag.lagMs(0, 100), null, 'nor one from a look older than asked');
});

t.test('a stored document keeps its position, sends its JSON without its hidden fields, and gives the fold them all', async (t) => {
  const doc = { id: 's1', ratingAverage: 4.5, ratingSum: 9, name: 'Ünïcode' };
  const bytes = encodeDoc(doc, 42, ['ratingSum']);
  const stored = storedDoc(bytes);
  t.equal(stored.position, 42);
  t.same(JSON.parse(stored.json.toString()), { id: 's1', ratingAverage: 4.5, name: 'Ünïcode' });
  t.same(decodeDoc(bytes), doc);
  t.same(decodeDoc(encodeDoc({ id: 'x' }, 1, ['ratingSum'])), { id: 'x' }, 'a document without the hidden field');
  t.same(JSON.parse(storedDoc(encodeDoc(doc, 7)).json.toString()), doc, 'nothing hidden: all of it is served');
});

t.test('a document stored with its schema\'s serializer is served in the schema\'s order, and fields the schema does not name stay for the fold', async (t) => {
  const serializer = { serialize: (doc: object) => JSON.stringify({ id: (doc as { id: string }).id, name: (doc as { name: string }).name }), fields: new Set(['id', 'name']) };
  const bytes = encodeDoc({ name: 'Kimbap', extra: [1, 2], id: 's1', ratingSum: 9 }, 3, ['ratingSum'], serializer);
  t.equal(storedDoc(bytes).json.toString(), '{"id":"s1","name":"Kimbap"}');
  t.same(decodeDoc(bytes), { id: 's1', name: 'Kimbap', extra: [1, 2], ratingSum: 9 });
});
