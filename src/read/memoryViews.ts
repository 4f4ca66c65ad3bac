import type { ViewKey } from '../core/projection.js';
import { compareKeys, decodeDoc, readerOver, type IndexKey, type ParkedEvent, type ViewGeneration, type ViewStore } from './viewStore.js';

interface Tables {
  /** Each document as LMDB stores it (`encodeDoc`). */
  readonly docs: Map<string, { key: ViewKey; bytes: Buffer }>;
  readonly index: Map<string, IndexKey>;
}

interface State {
  readonly tables: Map<string, Tables>;
  readonly meta: Map<string, unknown>;
}

const asTuple = (key: ViewKey): (string | number)[] => (typeof key === 'string' ? [key] : key);
const id = (key: ViewKey | IndexKey) => JSON.stringify(key);

/** The view store in memory, with what a test inspects. */
export interface MemoryViews extends ViewStore {
  /** Every index entry of a generation, in LMDB's key order. */
  indexEntries(projection: string, gen: number): IndexKey[];
  /** Every document of a generation with its key, in LMDB's key order. */
  documents(projection: string, gen: number): Array<{ key: ViewKey; doc: object }>;
}

/**
 * The view store in memory, with LMDB's key order and all-or-nothing transactions (each
 * change remembers what it replaced, and a transaction that throws puts it back), for the
 * in-process runtime on the in-memory store, unit tests of the apply path and the runner,
 * and `converge/testing`. Reads return copies, as LMDB's do.
 */
export function createMemoryViews(): MemoryViews {
  const state: State = { tables: new Map(), meta: new Map() };
  /** While a transaction runs: how to put back each thing it changed, in reverse order, should it throw. */
  let undo: Array<() => void> | undefined;

  /** Sets `key` of `map` to `value` (`undefined` removes it), remembering what was there for a rollback. */
  const change = <K, V>(map: Map<K, V>, key: K, value: V | undefined) => {
    if (undo) {
      const had = map.has(key);
      const before = map.get(key);
      undo.push(() => void (had ? map.set(key, before as V) : map.delete(key)));
    }
    if (value === undefined) map.delete(key);
    else map.set(key, value);
  };

  const tablesOf = (projection: string, gen: number): Tables => {
    const name = `${projection}.${gen}`;
    let t = state.tables.get(name);
    if (!t) change(state.tables, name, (t = { docs: new Map(), index: new Map() }));
    return t;
  };
  const metaGet = <T>(...key: (string | number)[]) => state.meta.get(id(key)) as T | undefined;
  const metaSet = (value: unknown, ...key: (string | number)[]) => change(state.meta, id(key), structuredClone(value));
  const activeGeneration = (projection: string) => metaGet<number>('active', projection) ?? 1;
  const checkpoint = (projection: string, gen: number) => metaGet<number>('checkpoint', projection, gen) ?? 0;

  const generation = (projection: string, gen: number): ViewGeneration => ({
    docs: {
      get: (key) => {
        const bytes = tablesOf(projection, gen).docs.get(id(key))?.bytes;
        return bytes === undefined ? undefined : decodeDoc(bytes);
      },
      put: (key, stored) => change(tablesOf(projection, gen).docs, id(key), { key: structuredClone(key), bytes: Buffer.from(stored) }),
      remove: (key) => change(tablesOf(projection, gen).docs, id(key), undefined),
    },
    index: {
      put: (entry) => change(tablesOf(projection, gen).index, id(entry), [...entry]),
      remove: (entry) => change(tablesOf(projection, gen).index, id(entry), undefined),
    },
  });

  const reader = readerOver({
    activeGeneration,
    checkpoint,
    doc: (projection, gen, key) => {
      const bytes = tablesOf(projection, gen).docs.get(id(key))?.bytes;
      return bytes === undefined ? undefined : Buffer.from(bytes);
    },
    indexKeys: (projection, gen, start, end) =>
      [...tablesOf(projection, gen).index.values()].filter((k) => compareKeys(k, start) >= 0 && compareKeys(k, end) < 0).sort(compareKeys),
    docRange: (projection, gen, { start, end, limit }) =>
      [...tablesOf(projection, gen).docs.values()]
        .filter(({ key }) => (start === undefined || compareKeys(asTuple(key), asTuple(start)) >= 0) && (end === undefined || compareKeys(asTuple(key), asTuple(end)) < 0))
        .sort((a, b) => compareKeys(asTuple(a.key), asTuple(b.key)))
        .slice(0, limit ?? Infinity)
        .map(({ key, bytes }) => ({ key, value: Buffer.from(bytes) })),
  });

  return {
    ...reader,
    transaction(fn) {
      // Nested calls join the outer transaction, as LMDB's do.
      if (undo) return fn();
      undo = [];
      try {
        fn();
      } catch (err) {
        for (const restore of undo.reverse()) restore();
        throw err;
      } finally {
        undo = undefined;
      }
    },
    activeGeneration,
    generation,
    checkpoint,
    setCheckpoint: (projection, gen, position) => metaSet(position, 'checkpoint', projection, gen),
    builtVersion: (projection, gen) => metaGet<number>('version', projection, gen),
    setBuiltVersion: (projection, gen, version) => metaSet(version, 'version', projection, gen),
    activate: (projection, gen) => metaSet(gen, 'active', projection),
    async dropGeneration(projection, gen) {
      change(state.tables, `${projection}.${gen}`, undefined);
      change(state.meta, id(['checkpoint', projection, gen]), undefined);
      change(state.meta, id(['version', projection, gen]), undefined);
    },
    park: (entry) => metaSet(entry, 'parked', entry.projection, entry.position, entry.eventIndex),
    parked: (projection) =>
      [...state.meta.entries()]
        .map(([key, value]) => [JSON.parse(key) as IndexKey, value] as const)
        .filter(([key]) => key[0] === 'parked' && (projection === undefined || key[1] === projection))
        .sort(([a], [b]) => compareKeys(a, b))
        .map(([, value]) => structuredClone(value) as ParkedEvent),
    unpark: (projection, position, eventIndex) => change(state.meta, id(['parked', projection, position, eventIndex]), undefined),
    close: async () => undefined,
    indexEntries: (projection, gen) => [...tablesOf(projection, gen).index.values()].map((k) => [...k]).sort(compareKeys),
    documents: (projection, gen) =>
      [...tablesOf(projection, gen).docs.values()]
        .sort((a, b) => compareKeys(asTuple(a.key), asTuple(b.key)))
        .map(({ key, bytes }) => ({ key: structuredClone(key), doc: decodeDoc(bytes) })),
  };
}
