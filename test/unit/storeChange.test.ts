import t from 'tap';
import { storeChange, type Checkpoint } from '../../src/read/storeIdentity.js';

const live = { stream: 's2', server: 'c1' };
const at = (position: number): Checkpoint[] => [
  { projection: 'shopList', gen: 1, position },
  { projection: '~notifier', gen: 0, position: 3 },
];

t.test('views of the live store with checkpoints within the stream belong to it', async (t) => {
  t.equal(storeChange({ built: live, live, checkpoints: at(10), lastPosition: 10 }), undefined, 'the recorded identity');
  t.equal(storeChange({ built: 's2', live, checkpoints: at(10), lastPosition: 10 }), undefined, "a running projector's stream id");
  t.equal(storeChange({ built: undefined, live, checkpoints: at(10), lastPosition: 10 }), undefined, 'nothing recorded yet');
});

t.test('a recorded identity of another store is a change, whatever the checkpoints', async (t) => {
  t.equal(storeChange({ built: { stream: 's2', server: 'c0' }, live, checkpoints: at(1), lastPosition: 10 }), 'the views were built from another event store');
});

t.test('a stream id compares the stream alone, and names both streams', async (t) => {
  t.equal(storeChange({ built: 's1', live, checkpoints: at(1), lastPosition: 10 }), 'EVENTS is now stream s2, not s1 that the views were built from');
});

t.test('a checkpoint past the stream’s end is a change, and the reason names each one', async (t) => {
  t.equal(
    storeChange({ built: undefined, live, checkpoints: [...at(12), { projection: 'shopList', gen: 2, position: 11 }], lastPosition: 10 }),
    "checkpoints are past the stream's last sequence 10: shopList.1=12, shopList.2=11",
  );
});
