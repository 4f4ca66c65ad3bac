import { open, type Database, type RootDatabase } from 'lmdb';
import type { ViewKey } from '../core/projection.js';
import { decodeDoc, LAST, readerOver, type IndexKey, type ParkedEvent, type ViewGeneration, type ViewStore } from './viewStore.js';

/**
 * How the documents are stored, recorded in `meta` (docs/architecture.md, "Documents as
 * stored bytes"): 2 is each document's position and JSON (`encodeDoc`) in a `.json`
 * database; views written before it (MessagePack, in `.docs`) are emptied and rebuilt.
 */
export const VIEW_FORMAT = 2;
export const FORMAT_KEY = ['format'];

/** A generation's LMDB databases, for what only LMDB does (read transactions, clearing). */
export interface LmdbGeneration {
  /** Documents as `encodeDoc` stores them. */
  readonly docs: Database<Buffer, ViewKey>;
  readonly index: Database<null, IndexKey>;
}

/** The views in LMDB, with the environment and its bookkeeping database for LMDB-specific work. */
export interface LmdbViewStore extends ViewStore {
  readonly env: RootDatabase;
  /** Checkpoints, versions, active generations, parked events and the store identity. */
  readonly meta: Database<unknown, IndexKey>;
  lmdb(projection: string, gen: number): LmdbGeneration;
}

/**
 * Opens the view store at `path`. Several processes open it (the projector writes, the
 * query workers read), hence `overlappingSync: false` (see docs/architecture.md,
 * "Verified facts").
 *
 * `unflushed` (the projector's default): a commit does not wait for the disk at all
 * (`noSync`); see `viewsDurability.ts` for how an operating-system crash is recovered from.
 * Otherwise `noMetaSync`: a commit flushes its data pages but not the meta page, one disk flush
 * instead of two. LMDB keeps the file consistent; an operating-system crash may undo the
 * last commits, and since each commit holds a batch's view changes together with the
 * checkpoint, the projector then applies that batch again from `EVENTS`. A process crash
 * loses nothing either way (the pages are in the page cache).
 */
export function openViewStore(path: string, opts: { unflushed?: boolean } = {}): LmdbViewStore {
  const env = open({ path, overlappingSync: false, noMetaSync: true, maxDbs: 128, ...(opts.unflushed ? { noSync: true } : {}) });
  const meta = env.openDB<unknown, IndexKey>({ name: 'meta' });
  const opened = new Map<string, LmdbGeneration>();

  const lmdb = (projection: string, gen: number): LmdbGeneration => {
    const name = `${projection}.${gen}`;
    let g = opened.get(name);
    if (!g) {
      g = { docs: env.openDB<Buffer, ViewKey>({ name: `${name}.json`, encoding: 'binary' }), index: env.openDB<null, IndexKey>({ name: `${name}.index` }) };
      opened.set(name, g);
    }
    return g;
  };
  const generation = (projection: string, gen: number): ViewGeneration => {
    const { docs, index } = lmdb(projection, gen);
    return {
      docs: {
        get: (key) => {
          const bytes = docs.getBinaryFast(key);
          return bytes === undefined ? undefined : decodeDoc(bytes);
        },
        put: (key, stored) => void docs.putSync(key, stored),
        remove: (key) => void docs.removeSync(key),
      },
      index: {
        put: (entry) => void index.putSync(entry, null),
        remove: (entry) => void index.removeSync(entry),
      },
    };
  };
  const activeGeneration = (projection: string) => (meta.get(['active', projection]) as number | undefined) ?? 1;
  const checkpoint = (projection: string, gen: number) => (meta.get(['checkpoint', projection, gen]) as number | undefined) ?? 0;

  const reader = readerOver({
    activeGeneration,
    checkpoint,
    doc: (projection, gen, key) => lmdb(projection, gen).docs.get(key),
    indexKeys: (projection, gen, start, end) => lmdb(projection, gen).index.getKeys({ start, end }),
    docRange: (projection, gen, range) => lmdb(projection, gen).docs.getRange(range),
  });

  return {
    ...reader,
    env,
    meta,
    lmdb,
    transaction: (fn) => void env.transactionSync(fn),
    activeGeneration,
    generation,
    checkpoint,
    setCheckpoint: (projection, gen, position) => void meta.putSync(['checkpoint', projection, gen], position),
    builtVersion: (projection, gen) => meta.get(['version', projection, gen]) as number | undefined,
    setBuiltVersion: (projection, gen, version) => void meta.putSync(['version', projection, gen], version),
    activate: (projection, gen) => void meta.putSync(['active', projection], gen),

    async dropGeneration(projection, gen) {
      const g = lmdb(projection, gen);
      await g.docs.drop();
      await g.index.drop();
      opened.delete(`${projection}.${gen}`);
      await meta.remove(['checkpoint', projection, gen]);
      await meta.remove(['version', projection, gen]);
    },

    park: (entry) => void meta.putSync(['parked', entry.projection, entry.position, entry.eventIndex], entry),
    parked: (projection) =>
      [...meta.getRange({ start: projection ? ['parked', projection] : ['parked'], end: projection ? ['parked', projection, LAST] : ['parked', LAST] })].map(
        (e) => e.value as ParkedEvent,
      ),
    unpark: (projection, position, eventIndex) => void meta.removeSync(['parked', projection, position, eventIndex]),
    async close() {
      // Unflushed commits go to the disk before the views count as closed cleanly.
      // `sync` is on the environment though not in lmdb's types (its open.js).
      // A flush that failed leaves the views unclean: closed, and then the error.
      const flushed = opts.unflushed
        ? await new Promise<unknown>((resolve) => (env as unknown as { sync(done: (err?: unknown) => void): void }).sync((err) => resolve(err)))
        : undefined;
      await env.close();
      if (flushed) throw flushed instanceof Error ? flushed : new Error(`flushing the views failed: ${String(flushed)}`);
    },
  };
}
