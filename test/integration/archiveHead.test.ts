import t from 'tap';
import { pino } from 'pino';
import { createConverge } from '../../src/index.js';
import { connectNats } from '../../src/nats/connection.js';
import { kvArchiveHead } from '../../src/lifecycle/archiveHead.js';
import { archivedStore } from '../../src/store/archived.js';
import { memoryArchiveIndex } from '../../src/store/archiveIndex.js';
import { createJetStreamEventStore } from '../../src/store/jetstream.js';
import { shopPlatform } from '../../app.js';
import { startTestNats, tempDir } from '../helpers/nats.js';
import { eventually } from '../helpers/processes.js';

// The archive's head on a real nats-server (docs/architecture.md, "Archive"): the archiver
// announces it before it removes what a record copied, and a read whose index is behind it
// reads the records itself.

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

t.test("the head is unknown before any announcement, never moves back, and another stream's counts as none", async (t) => {
  const nats = await startTestNats(t);
  const link = await connectNats(nats.url, { name: 'test-head', timeoutMs: 2000, log: pino({ level: 'silent' }) });
  t.teardown(() => link.close());
  const head = kvArchiveHead(link, 'stream-a');
  t.equal(await head.read(), undefined, 'no bucket yet: no head');
  await link.jsm.streams.add({ name: 'KV_converge-reactions', subjects: ['$KV.converge-reactions.>'], max_msgs_per_subject: 1, allow_direct: true, allow_rollup_hdrs: true, deny_delete: true });
  t.equal(await head.read(), undefined, 'a bucket without the key: no head');
  // An archiver with nothing archived yet announces 0: a head, not none.
  await head.announce(0);
  t.equal(await head.read(), 0, 'head 0 is a head');
  await head.announce(10);
  t.equal(await head.read(), 10, 'announced');
  await kvArchiveHead(link, 'stream-a').announce(5);
  t.equal(await head.read(), 10, 'a lower announcement, from another archiver, leaves it');
  await Promise.all([head.announce(20), kvArchiveHead(link, 'stream-a').announce(15), kvArchiveHead(link, 'stream-a').announce(12)]);
  t.equal(await head.read(), 20, 'announcements at once end at the highest');
  // EVENTS recreated or restored while the bucket was kept: its records start again from the beginning.
  const other = kvArchiveHead(link, 'stream-b');
  t.equal(await other.read(), undefined, "another stream's head is none for this one");
  await other.announce(3);
  t.equal(await other.read(), 3, 'and its first announcement replaces it, though lower');
  t.equal(await head.read(), undefined, 'after which the first stream has none');
  const { Kvm } = await import('@nats-io/kv');
  await (await new Kvm(link.js).open('converge-reactions')).delete('archive.head');
  t.equal(await other.read(), undefined, 'a deleted key is no head');
  await other.announce(4);
  t.equal(await other.read(), 4, 'and the next announcement makes it again');
});

t.test('a read whose index has applied nothing finds the archived orders through the announced head', async (t) => {
  const nats = await startTestNats(t);
  const converge = await createConverge(shopPlatform, {
    config: { nats: { url: nats.url }, dataDir: tempDir(t), logLevel: 'silent', cluster: { leaseTtlMs: 2000 }, archive: { afterMs: 0, intervalMs: 50 } },
    logger: pino({ level: 'silent' }),
  });
  t.teardown(() => converge.stop());
  const send = async (aggregate: string, id: string, type: string, data: object = {}) => {
    const result = await converge.dispatch({ aggregate, id, type, data } as never);
    if (result.kind !== 'accepted') throw new Error(`${type} ${id}: ${JSON.stringify(result)}`);
  };
  await send('shop', 's1', 'RegisterShop', { name: 'K', category: 'korean', ownerId: 'o1' });
  await send('shop', 's1', 'OpenShop');
  await send('shop', 's1', 'AddMenuItem', { menuId: 'm1', name: 'Kimbap', price: 4500 });
  for (const id of ['o1', 'o2']) {
    await send('order', id, 'PlaceOrder', { shopId: 's1', customerId: 'c1', items: [{ menuId: 'm1', quantity: 1 }] });
    await send('order', id, 'CancelOrder', { reason: 'changed my mind' });
  }
  const history = await collect(converge.store.read('order', 'o1', 0));
  const link = await connectNats(nats.url, { name: 'test-reader', timeoutMs: 2000, log: pino({ level: 'silent' }) });
  t.teardown(() => link.close());
  const raw = createJetStreamEventStore(link, { publishTimeoutMs: 1500 });
  t.ok(await eventually(async () => (await raw.lastPosition('order', 'o1')) === 0 && (await raw.lastPosition('order', 'o2')) === 0, 15_000), 'both orders are archived and gone from EVENTS');
  const stream = (await raw.head()).identity.stream;
  const head = await kvArchiveHead(link, stream).read();
  t.ok(head !== undefined && head <= (await raw.lastPosition('~~archive', 'all')), `the head (${head}) names a record of the archive`);
  // The stream is never asked for a record after the index: the head answers.
  const notAsked = { ...raw, nextPosition: () => Promise.reject(new Error('the stream was asked')) };
  const lagging = archivedStore(notAsked, { index: memoryArchiveIndex(), head: () => kvArchiveHead(link, stream).read() });
  const read = await collect(lagging.read('order', 'o1', 0));
  // Compared by place and type: this store does not open the sealed customer id.
  const shape = (cs: typeof history) => cs.map((c) => [c.position, c.version, c.events.map((e) => e.type)]);
  t.same(shape(read), shape(history), 'a store whose index applied nothing reads the whole history');
  t.same(await collect(lagging.read('order', 'new', 0)), [], 'and a new order as empty');
});
