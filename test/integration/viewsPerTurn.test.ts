import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { defineProjection, type DomainEvent } from '../../src/index.js';
import { openViewStore, type LmdbViewStore } from '../../src/read/lmdbViews.js';
import { encodeDoc } from '../../src/read/viewStore.js';
import { tempDir } from '../helpers/nats.js';

// A query worker's view store (`readsOnly`) beside the projector's, on real LMDB files: the
// reads of one event-loop turn share one snapshot (docs/architecture.md, "A snapshot per turn").

type Doc = { id: string; n: number };
const view = (name: string) => defineProjection<DomainEvent, Doc>({ name, version: 1, handles: [], key: () => undefined, fold: (doc) => doc });
const v = view('v');

/** The projector's store and a query worker's, on one directory. */
function stores(t: Test): { dir: string; writer: LmdbViewStore; reader: LmdbViewStore } {
  const dir = tempDir(t, 'converge-views-');
  const writer = openViewStore(dir);
  const reader = openViewStore(dir, { readsOnly: true });
  t.teardown(async () => {
    await reader.close();
    await writer.close();
  });
  return { dir, writer, reader };
}

/** A batch as the projector commits it: the document `id` at `n`, and the checkpoint `position`. */
function commit(views: LmdbViewStore, name: string, gen: number, n: number, position: number): void {
  views.transaction(() => {
    views.generation(name, gen).docs.put('a', encodeDoc({ id: 'a', n }, position));
    views.setCheckpoint(name, gen, position);
  });
}

const read = (reader: LmdbViewStore, name = 'v') => ({ position: reader.position(name), doc: reader.get(view(name), 'a') });

t.test('a batch the projector commits during a turn shows in the next turn, and the turn reads the checkpoint and the documents it had', async (t) => {
  const { writer, reader } = stores(t);
  commit(writer, 'v', 1, 1, 10);
  await nextTurn();
  t.same(read(reader), { position: 10, doc: { id: 'a', n: 1 } });
  commit(writer, 'v', 1, 2, 20);
  t.same(read(reader), { position: 10, doc: { id: 'a', n: 1 } }, 'the same turn: its snapshot');
  t.same(reader.stored(v, 'a')?.position, 10, "the stored document's position agrees");
  await nextTurn();
  t.same(read(reader), { position: 20, doc: { id: 'a', n: 2 } }, 'the next turn');
});

t.test("a turn's reads look up a view's generation and checkpoint in meta once, however many reads there are", async (t) => {
  const { writer, reader } = stores(t);
  commit(writer, 'v', 1, 1, 10);
  await nextTurn();
  // The first read opens the view's databases, after which the turn goes on in a new transaction.
  read(reader);
  await nextTurn();
  const get = reader.meta.get.bind(reader.meta);
  const looked: unknown[] = [];
  reader.meta.get = (key, options) => (looked.push(key), get(key, options));
  // A turn's snapshot lasts for reads begun within 1 ms of its first: the clock stands still
  // meanwhile, as if the 20 reads took no time, so that a busy machine cannot end the turn.
  const clock = performance.now.bind(performance);
  const at = clock();
  performance.now = () => at;
  let reads: ReturnType<typeof read>[];
  try {
    reads = Array.from({ length: 20 }, () => read(reader));
  } finally {
    performance.now = clock;
  }
  t.same(reads, Array.from({ length: 20 }, () => ({ position: 10, doc: { id: 'a', n: 1 } })));
  t.same(looked, [['active', 'v'], ['checkpoint', 'v', 1]], 'one of each in the turn');
  await nextTurn();
  read(reader);
  t.equal(looked.length, 4, 'and again in the next turn');
});

t.test('a turn begun in a setImmediate callback ends at the first read begun 1 ms later, not in the next loop', async (t) => {
  const { writer, reader } = stores(t);
  commit(writer, 'v', 1, 1, 10);
  read(reader);
  await nextTurn();
  const seen = await new Promise<number[]>((resolve) =>
    setImmediate(() => {
      const first = reader.position('v');
      commit(writer, 'v', 1, 2, 20);
      setTimeout(() => resolve([first, reader.position('v')]), 1);
      // Past the timer's due time before the loop goes on, so it fires before this turn's setImmediate would.
      const until = performance.now() + 3;
      while (performance.now() < until);
    }),
  );
  t.same(seen, [10, 20]);
});

t.test("a view's documents the query worker first reads during a turn that began before they were created are found", async (t) => {
  const { writer, reader } = stores(t);
  commit(writer, 'v', 1, 1, 10);
  await nextTurn();
  t.equal(reader.position('v'), 10, 'the turn begins');
  // A new view's databases, made after the turn's read transaction began.
  commit(writer, 'w', 1, 5, 30);
  t.same(reader.get(view('w'), 'a'), { id: 'a', n: 5 }, 'read without an error, in a new transaction');
  t.equal(reader.position('w'), 30, 'which the rest of the turn reads in');
});

t.test('a generation swapped in and the old one dropped by the projector (another process) during a turn: the turn reads the old one, the next turn the new one', async (t) => {
  const { dir, writer, reader } = stores(t);
  commit(writer, 'v', 1, 1, 10);
  commit(writer, 'v', 2, 2, 20);
  await nextTurn();
  t.same(read(reader), { position: 10, doc: { id: 'a', n: 1 } }, 'generation 1 is active');
  t.same(reader.get(v, 'a'), { id: 'a', n: 1 });
  // As the projector's rebuild swaps: activate the new generation, then drop the old one.
  const swap = `
    import { openViewStore } from ${JSON.stringify(join(import.meta.dirname, '../../dist/src/read/lmdbViews.js'))};
    const views = openViewStore(${JSON.stringify(dir)});
    views.transaction(() => views.activate('v', 2));
    await views.dropGeneration('v', 1);
    await views.close();
  `;
  execFileSync(process.execPath, ['--input-type=module', '-e', swap], { stdio: 'inherit' });
  t.same(read(reader), { position: 10, doc: { id: 'a', n: 1 } }, 'the same turn: generation 1, as its snapshot has it');
  await nextTurn();
  t.same(read(reader), { position: 20, doc: { id: 'a', n: 2 } }, 'the next turn: generation 2');
});

/**
 * Runs `code` in another process with the projector's view store open on `dir` as `views`,
 * and answers what it prints. The query worker's process holds no handle of the projector's
 * databases, as in a cluster: LMDB finds a database by name among the handles its process
 * has open before it looks in the file.
 */
function projector(dir: string, code: string): string {
  const script = `
    import { openViewStore } from ${JSON.stringify(join(import.meta.dirname, '../../dist/src/read/lmdbViews.js'))};
    import { encodeDoc } from ${JSON.stringify(join(import.meta.dirname, '../../dist/src/read/viewStore.js'))};
    const views = openViewStore(${JSON.stringify(dir)});
    const commit = (gen, n, position) => views.transaction(() => {
      views.generation('v', gen).docs.put('a', encodeDoc({ id: 'a', n }, position));
      views.setCheckpoint('v', gen, position);
    });
    const exists = (gen) => views.env.openDB({ name: 'v.' + gen + '.json', create: false }) !== undefined;
    ${code}
    await views.close();
  `;
  return execFileSync(process.execPath, ['--input-type=module', '-e', script]).toString();
}

t.test("a read after refresh sees the batch another process committed during the turn, which the turn's snapshot and lmdb's own do not", async (t) => {
  const dir = tempDir(t, 'converge-views-');
  projector(dir, 'commit(1, 1, 10);');
  const reader = openViewStore(dir, { readsOnly: true });
  t.teardown(() => reader.close());
  t.same(read(reader), { position: 10, doc: { id: 'a', n: 1 } });
  await nextTurn();
  // A read begins the turn's snapshot, as a request served just before the projector's nudge does.
  t.same(read(reader), { position: 10, doc: { id: 'a', n: 1 } });
  projector(dir, 'commit(1, 2, 20);');
  t.same(read(reader), { position: 10, doc: { id: 'a', n: 1 } }, 'still the snapshot from before the batch');
  // What the worker does when the nudge that announces the batch arrives.
  reader.refresh();
  t.same(read(reader), { position: 20, doc: { id: 'a', n: 2 } }, 'after refresh: the batch');
});

t.test('a generation dropped by the projector before the query worker first opened it is read from the generation active now, and not made again', async (t) => {
  const dir = tempDir(t, 'converge-views-');
  projector(dir, 'commit(1, 1, 10); commit(2, 2, 20);');
  const reader = openViewStore(dir, { readsOnly: true });
  t.teardown(() => reader.close());
  t.equal(reader.position('v'), 10, "the turn's snapshot has generation 1 active; its databases are not opened yet");
  // As the projector's rebuild swaps: activate the new generation, then drop the old one.
  projector(dir, "views.transaction(() => views.activate('v', 2)); await views.dropGeneration('v', 1);");
  t.same(reader.get(v, 'a'), { id: 'a', n: 2 }, 'the document of generation 2');
  t.same(reader.get(v, 'a'), { id: 'a', n: 2 }, 'and again');
  await nextTurn();
  t.same(read(reader), { position: 20, doc: { id: 'a', n: 2 } }, 'the next turn');
  t.equal(projector(dir, 'process.stdout.write(JSON.stringify([exists(1), exists(2)]));'), '[false,true]', "generation 1's databases were not made again");
});

t.test('a view the projector has not written yet reads as empty, its databases are not made, and its first batch shows in the next turn', async (t) => {
  const dir = tempDir(t, 'converge-views-');
  projector(dir, '');
  const reader = openViewStore(dir, { readsOnly: true });
  t.teardown(() => reader.close());
  t.equal(reader.get(v, 'a'), undefined);
  t.same(reader.scan(v, undefined, 10), []);
  t.same(reader.byIndex(v, ['x'], { limit: 10 }).items, []);
  t.equal(projector(dir, 'process.stdout.write(String(exists(1)));'), 'false', 'no databases made by the reads');
  projector(dir, 'commit(1, 1, 10);');
  await nextTurn();
  t.same(read(reader), { position: 10, doc: { id: 'a', n: 1 } });
});

t.test('a closed store ends its turn: nothing is left for the turn to release', async (t) => {
  const dir = tempDir(t, 'converge-views-');
  const writer = openViewStore(dir);
  t.teardown(() => writer.close());
  commit(writer, 'v', 1, 1, 10);
  const reader = openViewStore(dir, { readsOnly: true });
  t.equal(reader.position('v'), 10);
  await reader.close();
  await nextTurn();
  t.equal(writer.position('v'), 10, 'the environment the writer shares is still usable');
});
