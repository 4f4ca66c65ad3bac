import { gzipSync } from 'node:zlib';
import t from 'tap';
import type { ArchivedAggregate } from '../../src/core/archive.js';
import { ARCHIVE_AGGREGATE } from '../../src/core/archive.js';
import type { Commit } from '../../src/core/eventStore.js';
import { splitRecords } from '../../src/lifecycle/archiveRecords.js';
import { decodeStoredCommit, encodeCommit } from '../../src/store/eventStream.js';

/** An order's three commits as the archive keeps them, with a sealed customer id that does not compress. */
function order(n: number): ArchivedAggregate {
  const sealed = gzipSync(String(n * 7919)).toString('base64').repeat(3);
  const commits = ['OrderPlaced', 'OrderAccepted', 'OrderDelivered'].map((type, i) => ({
    commandId: `c-${n}-${i}`,
    commandType: type.replace('Order', ''),
    aggregate: 'order',
    id: `o${n}`,
    version: i + 1,
    position: n * 3 + i + 1,
    storedAt: 1_796_000_000_000 + n * 10 + i,
    events: [{ type, data: { shopId: 's1', customerId: { sealed }, items: [{ menuId: 'm1', quantity: 2 }] }, at: '2026-12-06T00:00:00.000Z' }],
    metadata: { correlationId: `c-${n}-0`, causationId: `c-${n}-${i}` },
  }));
  return { aggregate: 'order', id: `o${n}`, commits };
}

t.test('records are split by their gzipped size, in order, each within the bound', async (t) => {
  const orders = Array.from({ length: 400 }, (_, i) => order(i));
  const records = splitRecords(orders, 16 * 1024);
  t.same(records.flat(), orders, 'every aggregate once, in the order copied');
  for (const record of records) t.ok(gzipSync(JSON.stringify(record)).length <= 16 * 1024, `a record of ${record.length} aggregates fits`);
  const json = orders.reduce((sum, o) => sum + JSON.stringify(o).length, 0);
  t.ok(records.length < json / (16 * 1024) / 2, `${records.length} records, where ${Math.ceil(json / 16 / 1024)} would hold the JSON as it is`);
});

t.test('an aggregate larger than the bound gets a record of its own', async (t) => {
  const big: ArchivedAggregate = { ...order(1), commits: Array.from({ length: 200 }, (_, i) => ({ ...order(i).commits[0]!, id: 'o1', position: i + 1 })) };
  const records = splitRecords([order(0), big, order(2)], 2048);
  t.same(records.map((r) => r.map((a) => a.id)), [['o0'], ['o1'], ['o2']]);
});

t.test("an archive record is stored gzipped and reads back as it was; any other commit is stored as its JSON", async (t) => {
  const record: Commit = { commandId: 'archive-0', commandType: 'Archive', aggregate: ARCHIVE_AGGREGATE, id: 'all', version: 1, events: [{ type: '~Archived', data: order(1) as never, at: '2026-12-06T00:00:00.000Z' }] };
  const stored = encodeCommit(record);
  t.type(stored, Uint8Array);
  t.ok((stored as Uint8Array).length < JSON.stringify(record).length, 'smaller than its JSON');
  t.same(decodeStoredCommit({ data: stored as Uint8Array, json: () => t.fail('not read as JSON') as never }), record);
  const commit: Commit = { ...record, aggregate: 'order', id: 'o1' };
  t.equal(encodeCommit(commit), JSON.stringify(commit));
  const bytes = new TextEncoder().encode(JSON.stringify(commit));
  t.same(decodeStoredCommit({ data: bytes, json: <J>() => JSON.parse(new TextDecoder().decode(bytes)) as J }), commit, 'JSON is read as JSON');
});
