import { open, type Database, type RootDatabase, type Transaction } from 'lmdb';
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
  /**
   * Ends the snapshot the reads of this turn share (`readsOnly`), so that the next read sees
   * every commit made so far: what a reader woken by the projector's nudge needs, since the
   * nudge can arrive within a turn whose snapshot began before the batch it announces.
   */
  refresh(): void;
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
 *
 * `readsOnly` (a query worker, which never writes the views): the reads of one event-loop
 * turn share one snapshot (see `snapshotPerTurn`).
 */
export function openViewStore(path: string, opts: { unflushed?: boolean; readsOnly?: boolean } = {}): LmdbViewStore {
  const env = open({ path, overlappingSync: false, noMetaSync: true, maxDbs: 128, ...(opts.unflushed ? { noSync: true } : {}) });
  const meta = env.openDB<unknown, IndexKey>({ name: 'meta' });
  const activeGeneration = (projection: string, options?: InTurn) => (meta.get(['active', projection], options) as number | undefined) ?? 1;
  const checkpoint = (projection: string, gen: number, options?: InTurn) => (meta.get(['checkpoint', projection, gen], options) as number | undefined) ?? 0;
  /** Each projection's open generations: found without making a name on every read. */
  const opened = new Map<string, Map<number, LmdbGeneration>>();
  const turn = opts.readsOnly ? snapshotPerTurn(meta, activeGeneration, checkpoint) : undefined;

  /** A generation's databases, made when they are not there; with `create` false, undefined then. */
  const generationDbs = (projection: string, gen: number, create: boolean): LmdbGeneration | undefined => {
    let gens = opened.get(projection);
    if (!gens) opened.set(projection, (gens = new Map()));
    let g = gens.get(gen);
    if (!g) {
      const name = `${projection}.${gen}`;
      // `create` is an option of lmdb's openDB (its open.js), though not in its types; without it,
      // openDB answers undefined for a database that is not there.
      const found: object = create ? {} : { create: false };
      const docs = env.openDB<Buffer, ViewKey>({ name: `${name}.json`, encoding: 'binary', ...found });
      const index = env.openDB<null, IndexKey>({ name: `${name}.index`, ...found });
      if (!docs || !index) return undefined;
      g = { docs, index };
      gens.set(gen, g);
      // A read transaction does not see a database opened after it began: the turn's reads go on in a new one.
      turn?.end();
    }
    return g;
  };
  const lmdb = (projection: string, gen: number): LmdbGeneration => generationDbs(projection, gen, true)!;
  /** Generations a query worker found dropped: a generation's number is never used again. */
  const gone = new Set<string>();
  /**
   * A generation's databases for a read, or undefined when they do not exist. A query worker
   * does not create them: one it has not opened yet may have been dropped since its turn's
   * snapshot named it active (a rebuild swapped it out), and made again it would be read
   * empty and never dropped. The read then goes to the generation active in a new turn.
   */
  const readable = (projection: string, gen: number): LmdbGeneration | undefined => {
    const known = opened.get(projection)?.get(gen);
    if (known || !turn) return known ?? lmdb(projection, gen);
    if (gone.has(`${projection}.${gen}`)) {
      const now = turn.activeGeneration(projection);
      return now === gen ? undefined : readable(projection, now);
    }
    if (turn.absent(projection).has(gen)) return undefined;
    const found = generationDbs(projection, gen, false);
    if (found) return found;
    turn.end();
    const now = turn.activeGeneration(projection);
    // Not made yet (the projector has written nothing of the view): nothing to read this turn.
    if (now === gen) return void turn.absent(projection).add(gen);
    gone.add(`${projection}.${gen}`);
    return readable(projection, now);
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
  const reader = readerOver({
    activeGeneration: turn?.activeGeneration ?? activeGeneration,
    checkpoint: turn?.checkpoint ?? checkpoint,
    doc: (projection, gen, key) => {
      const g = readable(projection, gen);
      return g && copied(fastRead(g.docs, key, turn?.options()));
    },
    indexKeys: (projection, gen, start, end) => readable(projection, gen)?.index.getKeys({ start, end, ...turn?.options() }) ?? [],
    docRange: (projection, gen, range) => readable(projection, gen)?.docs.getRange({ ...range, ...turn?.options() }) ?? [],
  });

  return {
    ...reader,
    env,
    meta,
    lmdb,
    refresh: () => {
      turn?.end();
      // lmdb keeps its own read transaction until a `setTimeout` of 0, and a read in it would not see the commit either.
      env.resetReadTxn();
    },
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
      opened.get(projection)?.delete(gen);
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
      turn?.end();
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

/**
 * A copy of the bytes lmdb read into its shared buffer, which its next read overwrites. A
 * document is copied from Node's buffer pool, where `getBinary` would make a buffer of its own.
 */
function copied(bytes: Uint8Array | undefined): Buffer | undefined {
  // The shared buffer's `length` is that of the value read (lmdb sets it), not the buffer's.
  return bytes === undefined ? undefined : Buffer.from(bytes.subarray(0, bytes.length));
}

/** `getBinaryFast` in a given read transaction, which lmdb takes though its types do not say so (its read.js). */
function fastRead(db: Database<Buffer, ViewKey>, key: ViewKey, options?: InTurn): Uint8Array | undefined {
  return (db.getBinaryFast as (id: ViewKey, options?: InTurn) => Uint8Array | undefined).call(db, key, options);
}

/** A read's options inside a turn's snapshot. */
interface InTurn {
  readonly transaction: Transaction;
}

/** What one turn has looked up of a view: its active generation and that generation's checkpoint. */
interface Looked {
  readonly gen: number;
  checkpoint?: number;
  /** Generations whose databases were not there this turn. */
  absent?: Set<number>;
}

/** The longest a turn's snapshot is held, ms: what lmdb holds its own for (a `setTimeout` of 0). */
const TURN_MS = 1;

/**
 * The reads of a process that never writes the views (a query worker), one snapshot per
 * event-loop turn (docs/architecture.md, "A snapshot per turn"). The turn's first view read
 * takes an LMDB read transaction, the turn's view reads are made in it, and it ends in the
 * turn's `setImmediate`, or at the first read begun once it is TURN_MS old: a turn begun in
 * a `setImmediate` callback would otherwise last into the next loop's timers and I/O. A
 * view's generation and checkpoint are read once a turn: a busy worker serves a dozen reads
 * or more in one turn, each of which read both from `meta`. Reads of one turn agree with
 * each other, as the reads of one request did before.
 */
function snapshotPerTurn(
  meta: Database<unknown, IndexKey>,
  activeGeneration: (projection: string, options: InTurn) => number,
  checkpoint: (projection: string, gen: number, options: InTurn) => number,
) {
  let turn: { readonly options: InTurn; readonly views: Map<string, Looked>; readonly until: number } | undefined;
  const end = () => {
    const ending = turn;
    turn = undefined;
    ending?.options.transaction.done();
  };
  /** The turn's snapshot; `fresh` at the start of a read (its generation's lookup), where a turn past TURN_MS ends. */
  const current = (fresh: boolean) => {
    if (turn && (!fresh || performance.now() < turn.until)) return turn;
    end();
    turn = { options: { transaction: meta.useReadTransaction() }, views: new Map(), until: performance.now() + TURN_MS };
    setImmediate(end);
    return turn;
  };
  const looked = (projection: string, fresh: boolean): Looked => {
    const { views, options } = current(fresh);
    let view = views.get(projection);
    if (!view) {
      view = { gen: activeGeneration(projection, options) };
      views.set(projection, view);
    }
    return view;
  };
  return {
    options: () => current(false).options,
    // Every read of the reader begins with its view's generation; what it reads next is in the same snapshot.
    activeGeneration: (projection: string) => looked(projection, true).gen,
    checkpoint: (projection: string, gen: number) => {
      const view = looked(projection, false);
      const read = () => checkpoint(projection, gen, current(false).options);
      return view.gen === gen ? (view.checkpoint ??= read()) : read();
    },
    absent: (projection: string) => (looked(projection, false).absent ??= new Set()),
    end,
  };
}
