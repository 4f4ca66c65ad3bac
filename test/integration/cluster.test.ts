import t from 'tap';
import { ownerOf, partitionOf } from '../../src/core/partition.js';
import type { Worker } from '../../src/host/worker.js';
import { startTestNats } from '../helpers/nats.js';
import { commandUrl, post, startWorkers } from '../helpers/workers.js';

async function storedVersions(worker: Worker, id: string) {
  const versions: number[] = [];
  const ids: string[] = [];
  for await (const c of worker.store.read('shop', id, 0)) {
    versions.push(c.version);
    ids.push(c.commandId);
  }
  return { versions, ids };
}

/** A shop id whose partition worker `owner` of 2 owns. */
function shopOwnedBy(owner: number, prefix: string): string {
  for (let i = 0; ; i++) if (ownerOf(partitionOf('shop', `${prefix}${i}`, 64), 2) === owner) return `${prefix}${i}`;
}

t.test('a non-owner forwards commands to the owner of the partition', async (t) => {
  const nats = await startTestNats(t);
  const [w0, w1] = await startWorkers(t, nats.url, 2);
  const remote = shopOwnedBy(1, 'fwd');
  const res = await post(commandUrl(w0!), `/shops/${remote}/register`, { name: 'F', category: 'c', ownerId: 'o' });
  t.same([res.status, res.body.version], [200, 1]);
  t.equal(w0!.host.size, 0, 'the receiving worker hosts no actor for it');
  t.equal(w1!.host.size, 1, 'the owner does');
  const second = await post(commandUrl(w1!), `/shops/${remote}/rename`, { name: 'G' });
  t.same([second.status, second.body.version], [200, 2], 'the owner handles its own directly');

  await w1!.stop();
  const down = await post(commandUrl(w0!), `/shops/${remote}/rename`, { name: 'H' });
  t.same([down.status, down.body.error], [503, 'partition_unavailable'], 'an absent owner is a 503, not a hang');
});

t.test('two workers racing on one aggregate never lose an update', async (t) => {
  const nats = await startTestNats(t);
  // Both believe they own every partition, as two actors for one aggregate may during a restart.
  const a = (await startWorkers(t, nats.url, 1))[0]!;
  const b = (await startWorkers(t, nats.url, 1))[0]!;
  await post(commandUrl(a), '/shops/race/register', { name: 'R', category: 'c', ownerId: 'o' });
  await post(commandUrl(a), '/shops/race/add-menu-item', { menuId: 'm', name: 'm', price: 1000 });
  const results = await Promise.all(
    Array.from({ length: 100 }, (_, i) =>
      post(commandUrl(i % 2 ? a : b), '/shops/race/change-menu-price', { menuId: 'm', price: 1000 + i }, { 'idempotency-key': `race-${i}` }),
    ),
  );
  t.same(results.filter((r) => r.status !== 200).map((r) => r.body), [], 'every command succeeded');
  const { versions, ids } = await storedVersions(a, 'race');
  t.same(versions, Array.from({ length: 102 }, (_, i) => i + 1), 'versions are contiguous: nothing overwritten');
  t.equal(new Set(ids).size, 102, 'each command is stored once');
  t.same(new Set(results.map((r) => r.body.version)).size, 100, 'each reply names its own version');
});
