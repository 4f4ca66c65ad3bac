import t from 'tap';
import { fnv1a, ownerOf, partitionOf } from '../../src/core/partition.js';

t.test('fnv1a matches the published 32-bit test vectors', async (t) => {
  t.equal(fnv1a(''), 0x811c9dc5);
  t.equal(fnv1a('a'), 0xe40c292c);
  t.equal(fnv1a('foobar'), 0xbf9cf968);
});

t.test('partitions spread aggregates and owners are partition mod workers', async (t) => {
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) seen.add(partitionOf('shop', `s${i}`, 64));
  t.equal(seen.size, 64, '1,000 shops land in every one of 64 partitions');
  t.equal(partitionOf('shop', 's1', 64), fnv1a('shop:s1') % 64);
  t.equal(ownerOf(5, 2), 1);
  t.equal(ownerOf(6, 2), 0);
});
