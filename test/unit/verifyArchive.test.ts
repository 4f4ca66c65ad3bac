import t from 'tap';
import { ARCHIVE_AGGREGATE, ARCHIVE_ID, ARCHIVED, type ArchivedAggregate, type ArchivedCommit } from '../../src/core/archive.js';
import type { EventStore, StoredCommit } from '../../src/core/eventStore.js';
import { checkArchive, historyChecker } from '../../src/read/verifyArchive.js';
import { memoryArchiveIndex, type ArchiveIndex } from '../../src/store/archiveIndex.js';
import { createMemoryEventStore, type MemoryEventStore } from '../../src/store/memory.js';

// What `converge verify` checks of the archive, on the in-memory store: every position live
// or archived, archived once, and not live any more once the archiver has removed it.

const at = '2026-03-01T12:00:00.000Z';

async function commit(store: MemoryEventStore, id: string, n: number): Promise<number> {
  const expected = await store.lastPosition('order', id);
  const previous = expected > 0 ? (await store.commitAt(expected))!.version : 0;
  const events = [{ type: n === 1 ? 'OrderPlaced' : 'OrderDelivered', data: {}, at }];
  return (await store.append({ commandId: `${id}-${n}`, commandType: 'X', aggregate: 'order', id, version: previous + 1, events }, expected)).position;
}

async function stored(store: MemoryEventStore, id: string): Promise<ArchivedCommit[]> {
  const out: ArchivedCommit[] = [];
  for await (const c of store.readStored('order', id)) out.push(c);
  return out;
}

/** Appends a record holding `archived` (as the archiver does, or a forged one) and applies it to the index; its position. */
async function record(store: MemoryEventStore, index: ArchiveIndex, archived: ArchivedAggregate[]): Promise<number> {
  const expected = await store.lastPosition(ARCHIVE_AGGREGATE, ARCHIVE_ID);
  const version = (expected > 0 ? (await store.commitAt(expected))!.version : 0) + archived.length;
  const events = archived.map((data) => ({ type: ARCHIVED, data: data as unknown as Record<string, unknown>, at }));
  const { position } = await store.append({ commandId: `archive-${expected}`, commandType: 'Archive', aggregate: ARCHIVE_AGGREGATE, id: ARCHIVE_ID, version, events }, expected);
  index.apply(position, archived);
  return position;
}

/** o1 (positions 1, 2) and o2 (3); o1 copied into a record at 4; o2 moved on at 5, so the last commit is live. */
async function copied(): Promise<{ store: MemoryEventStore; index: ArchiveIndex; rec: number; o1: ArchivedCommit[] }> {
  const store = createMemoryEventStore();
  const index = memoryArchiveIndex();
  await commit(store, 'o1', 1);
  await commit(store, 'o1', 2);
  await commit(store, 'o2', 1);
  const o1 = await stored(store, 'o1');
  const rec = await record(store, index, [{ aggregate: 'order', id: 'o1', commits: o1 }]);
  await commit(store, 'o2', 2);
  return { store, index, rec, o1 };
}

/** Removes an order's commits up to `through`, as the archiver does after a record. */
const purge = (store: MemoryEventStore, id: string, through: number) =>
  store.remove(store.commits.filter((c) => c.aggregate === 'order' && c.id === id && c.position <= through));

const check = (store: MemoryEventStore, index: ArchiveIndex) => checkArchive({ raw: store, index, lastPosition: store.commits.length });

t.test('an archive whose records hold what EVENTS lacks, once, passes, and counts what it holds', async (t) => {
  const { store, index, rec } = await copied();
  await purge(store, 'o1', 2);
  index.setPurged(rec);
  const { report, lost } = await check(store, index);
  t.same(report, { ok: true, records: 1, commits: 2, copiedNotRemoved: 0, purgedThrough: rec, problems: [], problemCount: 0 });
  t.equal(lost, 0);
});

t.test('commits copied by a record after the purged checkpoint may still be live: counted, not a problem', async (t) => {
  const { store, index } = await copied();
  const { report } = await check(store, index);
  t.match(report, { ok: true, commits: 2, copiedNotRemoved: 2, purgedThrough: 0, problems: [] });
});

t.test('commits still live though the archiver recorded their record as removed are a problem', async (t) => {
  const { store, index, rec } = await copied();
  index.setPurged(rec);
  const { report } = await check(store, index);
  t.equal(report.ok, false);
  t.same(report.problems, [`positions 1–2 are still in EVENTS, though archived by a record the archiver has removed its commits for (through ${rec})`]);
});

t.test('a position held by two records is a problem, saying whether the copies agree', async (t) => {
  const { store, index, rec, o1 } = await copied();
  await purge(store, 'o1', 2);
  index.setPurged(rec);
  const again = await record(store, index, [{ aggregate: 'order', id: 'o1', commits: [o1[1]!] }]);
  const forged = await record(store, index, [{ aggregate: 'order', id: 'o1', commits: [{ ...o1[0]!, commandId: 'forged' }] }]);
  await commit(store, 'o2', 3);
  const { report } = await check(store, index);
  t.equal(report.ok, false);
  t.same(report.problems, [
    `position 2 (order o1) is in more than one archive record: again in the one at ${again}, an identical copy`,
    `position 1 (order o1) is in more than one archive record: again in the one at ${forged}, a different commit from the one the index holds`,
  ]);
  t.equal(report.commits, 2, 'each position is counted once');
});

t.test('a position in neither EVENTS nor the archive is a problem, and is counted as lost', async (t) => {
  const { store, index, rec } = await copied();
  await purge(store, 'o1', 2);
  index.setPurged(rec);
  await purge(store, 'o2', 3);
  const { report, lost } = await check(store, index);
  t.same(report.problems, ['position 3 is in neither EVENTS nor the archive']);
  t.equal(lost, 1);
});

t.test('a record appended after the pass over EVENTS passed its place still counts: the archiver copies and removes while verify reads', async (t) => {
  const store = createMemoryEventStore();
  const index = memoryArchiveIndex();
  await commit(store, 'o1', 1);
  await commit(store, 'o2', 1);
  const rec = await record(store, index, [{ aggregate: 'order', id: 'o1', commits: await stored(store, 'o1') }]);
  await purge(store, 'o1', 1);
  index.setPurged(rec);
  await commit(store, 'o3', 1);
  // Verify began when the stream ended at 4, and its pass over EVENTS ends there; o2 (at 2)
  // is archived by a record at 5 and removed, as if that happened while the pass ran.
  const lastPosition = store.commits.length;
  await record(store, index, [{ aggregate: 'order', id: 'o2', commits: await stored(store, 'o2') }]);
  await purge(store, 'o2', 2);
  await commit(store, 'o4', 1);
  const { report } = await checkArchive({ raw: store, index, lastPosition });
  t.match(report, { ok: true, records: 2, commits: 2, problems: [] });
});

t.test('commits a pass over EVENTS skipped (nats-server moves consumers on when a subject is purged) are looked up, not taken as lost', async (t) => {
  const { store, index, rec } = await copied();
  await purge(store, 'o1', 2);
  index.setPurged(rec);
  // The pass never delivers o2's first commit (3), as a consumer moved past it would not.
  const skipping: EventStore = {
    ...store,
    async subscribe(after, opts) {
      const inner = await store.subscribe(after, opts);
      return {
        async *[Symbol.asyncIterator]() {
          for await (const d of inner) if (d.commit.position !== 3) yield d;
        },
        close: () => inner.close(),
      };
    },
  };
  const { report, lost } = await checkArchive({ raw: skipping, index, lastPosition: store.commits.length });
  t.match(report, { ok: true, commits: 2, problems: [] });
  t.equal(lost, 0);
});

t.test('versions must follow one another in each aggregate: a gap and a repeat are problems', async (t) => {
  const checker = historyChecker();
  const c = (id: string, position: number, version: number, events = 1) =>
    ({ commandId: `c${position}`, commandType: 'X', aggregate: 'order', id, version, position, events: Array.from({ length: events }, () => ({ type: 'E', data: {}, at })) }) satisfies StoredCommit;
  for (const commit of [c('a', 1, 1), c('b', 2, 2, 2), c('a', 3, 3), c('b', 4, 2), c('a', 5, 4)]) checker.add(commit);
  const report = checker.report();
  t.equal(report.ok, false);
  t.equal(report.aggregates, 2);
  t.same(report.problems, [
    'order a: the commit at position 3 has version 3, not 2 (1 + 1 events): commits are missing before it',
    'order b: the commit at position 4 has version 2, not 3 (2 + 1 events): it repeats versions',
  ]);
});
