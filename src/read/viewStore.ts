import { ConvergeError } from '../core/errors.js';
import type { Projection, ViewKey } from '../core/projection.js';

/** An index entry: the prefix a projection's `indexes` gave, with the document key appended. */
export type IndexKey = (string | number)[];

/** One page of a range read, with the cursor of the next page when there is one. */
export interface Page<D> {
  readonly items: D[];
  readonly next?: string;
}

/**
 * A view document as the view store keeps it (docs/architecture.md, "Documents as stored
 * bytes"): the position of the last event that changed it (its ETag) and the document as
 * the JSON the query API sends, without its `hidden` fields, so that a read sends the
 * bytes without parsing them.
 */
export interface StoredDoc {
  readonly position: number;
  readonly json: Buffer;
}

/**
 * How a document is stored: its position as an 8-byte big-endian double, the length of the
 * served JSON as a 4-byte unsigned integer, the served JSON (the document without its
 * `hidden` fields), then the hidden fields as a JSON object, or nothing when there are none.
 */
export function encodeDoc(doc: object, position: number, hidden?: readonly string[], serializer?: DocSerializer): Buffer {
  let served: object = doc;
  let kept = '';
  // Apart: the hidden fields, and those the serializer's schema does not name (it would drop them).
  const apartFrom = (field: string) => hidden?.includes(field) === true || (serializer !== undefined && !serializer.fields.has(field));
  const fields = Object.keys(doc);
  if (fields.some(apartFrom)) {
    const rest: Record<string, unknown> = {};
    const apart: Record<string, unknown> = {};
    for (const field of fields) (apartFrom(field) ? apart : rest)[field] = (doc as Record<string, unknown>)[field];
    served = rest;
    kept = JSON.stringify(apart);
  }
  const json = serializer ? serializer.serialize(served) : JSON.stringify(served);
  const length = Buffer.byteLength(json);
  const bytes = Buffer.allocUnsafe(12 + length + Buffer.byteLength(kept));
  bytes.writeDoubleBE(position, 0);
  bytes.writeUInt32BE(length, 8);
  bytes.write(json, 12);
  if (kept) bytes.write(kept, 12 + length);
  return bytes;
}

/**
 * How the served part of a projection's documents is written: with its response schema's
 * compiled serializer, so the stored bytes are what the route would have sent, in the
 * schema's key order; `fields` are the properties the schema names.
 */
export interface DocSerializer {
  readonly serialize: (doc: object) => string;
  readonly fields: ReadonlySet<string>;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A stored document's position and served JSON; the JSON shares the bytes it was read from. */
export function storedDoc(bytes: Uint8Array): StoredDoc {
  const buf = asBuffer(bytes);
  return { position: buf.readDoubleBE(0), json: buf.subarray(12, 12 + buf.readUInt32BE(8)) };
}

/** A stored document, parsed, its hidden fields included: what the fold gets. */
export function decodeDoc<D = object>(bytes: Uint8Array): D {
  const buf = asBuffer(bytes);
  const end = 12 + buf.readUInt32BE(8);
  const doc = JSON.parse(buf.toString('utf8', 12, end)) as Record<string, unknown>;
  if (end < buf.length) Object.assign(doc, JSON.parse(buf.toString('utf8', end)));
  return doc as D;
}

/** A view, named by its projection: readers get its document type from it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ViewOf<D extends object> = Projection<any, D>;

/** What query routes read. Reads see what the projector committed, from the next event-loop turn on. */
export interface ViewReader {
  /** A document, its hidden fields included. */
  get<D extends object>(view: ViewOf<D>, key: ViewKey): D | undefined;
  /** A document as stored: its served JSON and the position of the last event that changed it. */
  stored(view: Pick<Projection, 'name'>, key: ViewKey): StoredDoc | undefined;
  /** `byIndex`, each document as stored. */
  byIndexStored(view: Pick<Projection, 'name'>, prefix: readonly (string | number)[], opts: { limit: number; cursor?: string }): Page<StoredDoc>;
  /** `byIndexFrom`, each document as stored. */
  byIndexFromStored(view: Pick<Projection, 'name'>, prefix: readonly (string | number)[], from: readonly (string | number)[], opts: { limit: number; cursor?: string }): Page<StoredDoc>;
  /** Documents whose index entries start with `prefix`, in index order, after `cursor`. */
  byIndex<D extends object>(view: ViewOf<D>, prefix: readonly (string | number)[], opts: { limit: number; cursor?: string }): Page<D>;
  /**
   * Documents whose index entries start with `prefix` and sort at or after `prefix` +
   * `from`, in index order, after `cursor` (a `next` of this listing; a cursor before
   * `from` counts as none).
   */
  byIndexFrom<D extends object>(
    view: ViewOf<D>,
    prefix: readonly (string | number)[],
    from: readonly (string | number)[],
    opts: { limit: number; cursor?: string },
  ): Page<D>;
  /**
   * Up to `limit` documents with string keys, in key order, after key `after` (from the
   * start when undefined). Each call is its own short range read, so a long export in
   * calls of a few hundred holds no read transaction between them.
   */
  scan<D extends object>(view: ViewOf<D>, after: string | undefined, limit: number): Array<{ key: string; doc: D }>;
  /** Documents whose keys lie in [start, end), in key order. */
  byKey<D extends object>(view: ViewOf<D>, start: ViewKey, end: ViewKey, limit: number): D[];
  /** The stream position the view has applied, 0 when none. */
  position(view: Pick<Projection, 'name'> | string): number;
}

/** A view generation as the apply path writes it: its documents and its index entries. */
export interface ViewGeneration {
  readonly docs: {
    get(key: ViewKey): object | undefined;
    /** Stores a document as `encodeDoc` made it. */
    put(key: ViewKey, stored: Buffer): void;
    remove(key: ViewKey): void;
  };
  readonly index: {
    put(entry: IndexKey): void;
    remove(entry: IndexKey): void;
  };
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

/**
 * The views as the projector keeps them: per projection, numbered generations (a rebuild
 * fills a fresh one while the active one serves), each with its checkpoint and the
 * projection version it was built by, plus parked events. LMDB is the implementation
 * (`openViewStore`); `createMemoryViews` serves unit tests.
 */
export interface ViewStore extends IndexScanner {
  /** Runs `fn` in one write transaction: all its writes take effect together, or none. */
  transaction(fn: () => void): void;
  activeGeneration(projection: string): number;
  generation(projection: string, gen: number): ViewGeneration;
  checkpoint(projection: string, gen: number): number;
  /** Sets a generation's checkpoint; call inside the transaction that wrote its changes. */
  setCheckpoint(projection: string, gen: number, position: number): void;
  builtVersion(projection: string, gen: number): number | undefined;
  setBuiltVersion(projection: string, gen: number, version: number): void;
  /** Makes `gen` the generation readers see; call inside a transaction. */
  activate(projection: string, gen: number): void;
  /** Removes a generation's documents and bookkeeping. */
  dropGeneration(projection: string, gen: number): Promise<void>;
  park(entry: ParkedEvent): void;
  parked(projection?: string): ParkedEvent[];
  unpark(projection: string, position: number, eventIndex: number): void;
  close(): Promise<void>;
}

/** Raw reads of a view's index entries, for converge's own views (the processes' timers). */
export interface IndexScanner extends ViewReader {
  /** Up to `limit` index entries of the active generation in [start, end), in index order (the document key last). */
  scanIndex(view: Pick<Projection, 'name'>, start: IndexKey, end: IndexKey, limit: number): IndexKey[];
  /** How many index entries of the active generation start with `prefix`. */
  countIndex(view: Pick<Projection, 'name'>, prefix: readonly (string | number)[]): number;
}

/** The ordered reads a view store provides, from which `readerOver` builds every listing. */
export interface OrderedTables {
  activeGeneration(projection: string): number;
  checkpoint(projection: string, gen: number): number;
  /** A document's stored bytes (see `encodeDoc`). */
  doc(projection: string, gen: number, key: ViewKey): Uint8Array | undefined;
  /** Index entries in [start, end), in key order. */
  indexKeys(projection: string, gen: number, start: IndexKey, end: IndexKey): Iterable<IndexKey>;
  /** Documents' stored bytes in key order, from `start` (inclusive) up to `end` (exclusive), at most `limit`. */
  docRange(projection: string, gen: number, range: { start?: ViewKey; end?: ViewKey; limit?: number }): Iterable<{ key: ViewKey; value: Uint8Array }>;
}

/** Sorts after every string converge writes in a key: the end of a range over all keys under a prefix. */
export const LAST = '\uffff';

/** The query-side reads, over any store's ordered tables; cursors are opaque and checked. */
export function readerOver(tables: OrderedTables): IndexScanner {
  const active = (name: string) => tables.activeGeneration(name);
  const page = <D>(name: string, start: IndexKey, after: IndexKey | undefined, end: IndexKey, limit: number, as: (bytes: Uint8Array) => D): Page<D> => {
    const gen = active(name);
    const items: D[] = [];
    let last: IndexKey | undefined;
    for (const key of tables.indexKeys(name, gen, start, end)) {
      if (after && sameKey(key, after)) continue;
      const doc = tables.doc(name, gen, documentKeyOf(key));
      if (doc === undefined) continue;
      if (items.length === limit) return { items, next: encodeCursor(last!) };
      items.push(as(doc));
      last = key;
    }
    return { items };
  };
  const byIndex = <D>(name: string, prefix: readonly (string | number)[], opts: { limit: number; cursor?: string }, as: (bytes: Uint8Array) => D): Page<D> => {
    const after = opts.cursor === undefined ? undefined : decodeCursor(opts.cursor, prefix);
    return page<D>(name, after ?? [...prefix], after, [...prefix, LAST], opts.limit, as);
  };
  const byIndexFrom = <D>(name: string, prefix: readonly (string | number)[], from: readonly (string | number)[], opts: { limit: number; cursor?: string }, as: (bytes: Uint8Array) => D): Page<D> => {
    const start = [...prefix, ...from];
    const cursor = opts.cursor === undefined ? undefined : decodeCursor(opts.cursor, prefix);
    const after = cursor && compareKeys(cursor, start) >= 0 ? cursor : undefined;
    return page<D>(name, after ?? start, after, [...prefix, LAST], opts.limit, as);
  };
  return {
    get<D extends object>(view: ViewOf<D>, key: ViewKey) {
      const bytes = tables.doc(view.name, active(view.name), key);
      return bytes === undefined ? undefined : decodeDoc<D>(bytes);
    },
    stored(view, key) {
      const bytes = tables.doc(view.name, active(view.name), key);
      return bytes === undefined ? undefined : storedDoc(bytes);
    },
    byIndex: <D extends object>(view: ViewOf<D>, prefix: readonly (string | number)[], opts: { limit: number; cursor?: string }) => byIndex<D>(view.name, prefix, opts, decodeDoc),
    byIndexStored: (view, prefix, opts) => byIndex(view.name, prefix, opts, storedDoc),
    byIndexFrom: <D extends object>(view: ViewOf<D>, prefix: readonly (string | number)[], from: readonly (string | number)[], opts: { limit: number; cursor?: string }) =>
      byIndexFrom<D>(view.name, prefix, from, opts, decodeDoc),
    byIndexFromStored: (view, prefix, from, opts) => byIndexFrom(view.name, prefix, from, opts, storedDoc),
    scan<D extends object>(view: ViewOf<D>, after: string | undefined, limit: number): Array<{ key: string; doc: D }> {
      const out: Array<{ key: string; doc: D }> = [];
      if (limit <= 0) return out;
      // Keys that are not strings (numbers sort before, tuples among) are not documents of this listing.
      for (const { key, value } of tables.docRange(view.name, active(view.name), after === undefined ? {} : { start: after })) {
        if (typeof key !== 'string' || key === after) continue;
        out.push({ key, doc: decodeDoc<D>(value) });
        if (out.length === limit) break;
      }
      return out;
    },
    byKey: <D extends object>(view: ViewOf<D>, start: ViewKey, end: ViewKey, limit: number) =>
      [...tables.docRange(view.name, active(view.name), { start, end, limit })].map((e) => decodeDoc<D>(e.value)),
    position: (view) => {
      const name = typeof view === 'string' ? view : view.name;
      return tables.checkpoint(name, active(name));
    },
    scanIndex(view, start, end, limit) {
      const out: IndexKey[] = [];
      if (limit <= 0) return out;
      for (const key of tables.indexKeys(view.name, active(view.name), start, end)) {
        out.push(key);
        if (out.length === limit) break;
      }
      return out;
    },
    countIndex(view, prefix) {
      let n = 0;
      for (const _ of tables.indexKeys(view.name, active(view.name), [...prefix], [...prefix, LAST])) n++;
      return n;
    },
  };
}

/**
 * The document key an index entry points at: its last element, which the apply path wrote
 * as the key itself for a string key and as JSON for a tuple key (see `keyString`).
 */
export function documentKeyOf(entry: IndexKey): ViewKey {
  const last = entry[entry.length - 1]!;
  if (typeof last === 'string' && last.startsWith('[')) {
    try {
      const tuple: unknown = JSON.parse(last);
      if (Array.isArray(tuple) && tuple.every((p) => typeof p === 'string' || typeof p === 'number')) return tuple as (string | number)[];
    } catch {
      // A string key that merely starts with a bracket.
    }
  }
  return String(last);
}

/** How an index entry names its document: the key itself for a string key, JSON for a tuple key. */
export function keyString(key: ViewKey): string {
  return typeof key === 'string' ? key : JSON.stringify(key);
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
  throw new ConvergeError('invalid_cursor', 'the cursor is not one this listing gave out');
}

function isIndexKey(key: unknown): key is IndexKey {
  return Array.isArray(key) && key.every((p) => typeof p === 'string' || typeof p === 'number');
}

/** LMDB's order for the keys used here: numbers before strings, numbers by value, strings by code unit; tuples element by element. */
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
