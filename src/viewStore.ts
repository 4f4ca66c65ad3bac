import { open, type Database, type RootDatabase } from 'lmdb';
import { ConvergeError } from './errors.js';
import type { ViewKey } from './projection.js';

type IndexKey = (string | number)[];

/** One page of a range read, with the cursor of the next page when there is one. */
export interface Page<D> {
  readonly items: D[];
  readonly next?: string;
}

/** What the query side reads. Reads see what other processes committed, from the next event-loop turn on. */
export interface ViewReader {
  get<D>(projection: string, key: ViewKey): D | undefined;
  /** Documents whose index entries start with `prefix`, in index order, after `cursor`. */
  byIndex<D>(projection: string, prefix: readonly (string | number)[], opts: { limit: number; cursor?: string }): Page<D>;
  /**
   * Documents whose index entries start with `prefix` and sort at or after `prefix` +
   * `from`, in index order, after `cursor` (a `next` of this listing; a cursor before
   * `from` counts as none).
   */
  byIndexFrom<D>(
    projection: string,
    prefix: readonly (string | number)[],
    from: readonly (string | number)[],
    opts: { limit: number; cursor?: string },
  ): Page<D>;
  /**
   * Up to `limit` documents with string keys, in key order, after key `after` (from the
   * start when undefined). Each call is its own short range read, so a long export in
   * calls of a few hundred holds no read transaction between them.
   */
  scan<D>(projection: string, after: string | undefined, limit: number): Array<{ key: string; doc: D }>;
  /** Documents whose keys lie in [start, end), in key order. */
  byKey<D>(projection: string, start: ViewKey, end: ViewKey, limit: number): D[];
  /** The stream position the projection's active view has applied, 0 when none. */
  position(projection: string): number;
}

/** A view generation: its documents and its index entries. */
export interface ViewGeneration {
  readonly docs: Database<unknown, ViewKey>;
  readonly index: Database<null, IndexKey>;
}

/** A parked event: a fold threw on it, and the projection went on without it. */
export interface ParkedEvent {
  readonly projection: string;
  readonly position: number;
  readonly eventIndex: number;
  readonly aggregate: string;
  readonly id: string;
  readonly type: string;
  readonly error: string;
  readonly parkedAt: string;
}

/** The LMDB environment of the views, opened by the projector (writer) and by query workers (readers). */
export interface ViewStore extends ViewReader {
  readonly env: RootDatabase;
  activeGeneration(projection: string): number;
  generation(projection: string, gen: number): ViewGeneration;
  checkpoint(projection: string, gen: number): number;
  /** Sets a generation's checkpoint; call inside the transaction that wrote its changes. */
  setCheckpoint(projection: string, gen: number, position: number): void;
  builtVersion(projection: string, gen: number): number | undefined;
  setBuiltVersion(projection: string, gen: number, version: number): void;
  /** Makes `gen` the generation readers see; call inside a transaction. */
  activate(projection: string, gen: number): void;
  /** Removes a generation's databases and bookkeeping. */
  dropGeneration(projection: string, gen: number): Promise<void>;
  park(entry: ParkedEvent): void;
  parked(projection?: string): ParkedEvent[];
  unpark(projection: string, position: number, eventIndex: number): void;
  close(): Promise<void>;
}

const LAST = '\uffff';

/**
 * Opens the view store at `path`. Several processes open it (the projector writes, the
 * query workers read), hence `overlappingSync: false` (DESIGN §8).
 *
 * `noMetaSync`: a commit flushes its data pages but not the meta page, one disk flush
 * instead of two. LMDB keeps the file consistent; an operating-system crash may undo the
 * last commits, and since each commit holds a batch's view changes together with the
 * checkpoint, the projector then applies that batch again from `EVENTS`. A process crash
 * loses nothing either way (the pages are in the page cache).
 */
export function openViewStore(path: string): ViewStore {
  const env = open({ path, overlappingSync: false, noMetaSync: true, maxDbs: 128 });
  const meta = env.openDB<unknown, IndexKey>({ name: 'meta' });
  const generations = new Map<string, ViewGeneration>();

  const generation = (projection: string, gen: number): ViewGeneration => {
    const name = `${projection}.${gen}`;
    const open = generations.get(name);
    if (open) return open;
    const g: ViewGeneration = {
      docs: env.openDB<unknown, ViewKey>({ name: `${name}.docs` }),
      index: env.openDB<null, IndexKey>({ name: `${name}.index` }),
    };
    generations.set(name, g);
    return g;
  };
  const activeGeneration = (projection: string) => (meta.get(['active', projection]) as number | undefined) ?? 1;
  const active = (projection: string) => generation(projection, activeGeneration(projection));
  const checkpoint = (projection: string, gen: number) => (meta.get(['checkpoint', projection, gen]) as number | undefined) ?? 0;

  return {
    env,
    get: <D>(projection: string, key: ViewKey) => active(projection).docs.get(key) as D | undefined,

    byIndex<D>(projection: string, prefix: readonly (string | number)[], opts: { limit: number; cursor?: string }): Page<D> {
      const after = opts.cursor === undefined ? undefined : decodeCursor(opts.cursor, prefix);
      return indexPage<D>(active(projection), after ?? [...prefix], after, [...prefix, LAST], opts.limit);
    },

    byIndexFrom<D>(
      projection: string,
      prefix: readonly (string | number)[],
      from: readonly (string | number)[],
      opts: { limit: number; cursor?: string },
    ): Page<D> {
      const start = [...prefix, ...from];
      const cursor = opts.cursor === undefined ? undefined : decodeCursor(opts.cursor, prefix);
      const after = cursor && compareKeys(cursor, start) >= 0 ? cursor : undefined;
      return indexPage<D>(active(projection), after ?? start, after, [...prefix, LAST], opts.limit);
    },

    scan<D>(projection: string, after: string | undefined, limit: number): Array<{ key: string; doc: D }> {
      const out: Array<{ key: string; doc: D }> = [];
      if (limit <= 0) return out;
      // Keys that are not strings (numbers sort before, tuples among) are not documents of this listing.
      for (const { key, value } of active(projection).docs.getRange(after === undefined ? {} : { start: after })) {
        if (typeof key !== 'string' || key === after) continue;
        out.push({ key, doc: value as D });
        if (out.length === limit) break;
      }
      return out;
    },

    byKey: <D>(projection: string, start: ViewKey, end: ViewKey, limit: number) =>
      [...active(projection).docs.getRange({ start, end, limit })].map((e) => e.value as D),

    position: (projection) => checkpoint(projection, activeGeneration(projection)),
    activeGeneration,
    generation,
    checkpoint,
    setCheckpoint: (projection, gen, position) => void meta.putSync(['checkpoint', projection, gen], position),
    builtVersion: (projection, gen) => meta.get(['version', projection, gen]) as number | undefined,
    setBuiltVersion: (projection, gen, version) => void meta.putSync(['version', projection, gen], version),
    activate: (projection, gen) => void meta.putSync(['active', projection], gen),

    async dropGeneration(projection, gen) {
      const g = generation(projection, gen);
      await g.docs.drop();
      await g.index.drop();
      generations.delete(`${projection}.${gen}`);
      await meta.remove(['checkpoint', projection, gen]);
      await meta.remove(['version', projection, gen]);
    },

    park: (entry) => void meta.putSync(['parked', entry.projection, entry.position, entry.eventIndex], entry),
    parked: (projection) =>
      [...meta.getRange({ start: projection ? ['parked', projection] : ['parked'], end: projection ? ['parked', projection, LAST] : ['parked', LAST] })].map(
        (e) => e.value as ParkedEvent,
      ),
    unpark: (projection, position, eventIndex) => void meta.removeSync(['parked', projection, position, eventIndex]),
    close: () => env.close(),
  };
}

/** Up to `limit` documents of index entries in [start, end), skipping the entry `after`, with the next cursor. */
function indexPage<D>({ docs, index }: ViewGeneration, start: IndexKey, after: IndexKey | undefined, end: IndexKey, limit: number): Page<D> {
  const items: D[] = [];
  let last: IndexKey | undefined;
  for (const key of index.getKeys({ start, end })) {
    if (after && sameKey(key, after)) continue;
    const doc = docs.get(key[key.length - 1] as string);
    if (doc === undefined) continue;
    if (items.length === limit) return { items, next: encodeCursor(last!) };
    items.push(doc as D);
    last = key;
  }
  return { items };
}

function encodeCursor(key: IndexKey): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/** A cursor from a client; one that is not ours, or is for another listing, is a 400. */
function decodeCursor(cursor: string, prefix: readonly (string | number)[]): IndexKey {
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString());
  } catch {
    key = undefined;
  }
  if (isIndexKey(key) && key.length > prefix.length && prefix.every((p, i) => key[i] === p)) return key;
  throw new ConvergeError('invalid_cursor', 400, 'the cursor is not one this listing gave out');
}

function isIndexKey(key: unknown): key is IndexKey {
  return Array.isArray(key) && key.every((p) => typeof p === 'string' || typeof p === 'number');
}

/** LMDB's order for the index keys used here: numbers before strings, numbers by value, strings by code unit. */
export function compareKeys(a: readonly (string | number)[], b: readonly (string | number)[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (typeof x !== typeof y) return typeof x === 'number' ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

function sameKey(a: IndexKey, b: IndexKey): boolean {
  return a.length === b.length && a.every((p, i) => p === b[i]);
}
