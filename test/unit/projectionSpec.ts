import type { DomainEvent, StoredEvent } from '../../src/core/aggregate.js';
import type { EventMeta, Projection, ViewKey } from '../../src/core/projection.js';
import { compareKeys } from '../../src/read/viewStore.js';

/** An event with the meta of the commit that holds it, as the runner hands it to a projection. */
export interface Recorded {
  readonly event: StoredEvent;
  readonly meta: EventMeta;
}

/**
 * Builds a stream of commits as the event store would number them: each commit takes the
 * next position, and its events carry the aggregate's event count after the commit.
 */
export function stream() {
  let position = 0;
  const versions = new Map<string, number>();
  const recorded: Recorded[] = [];
  const api = {
    commit(aggregate: string, id: string, at: string, ...events: DomainEvent[]) {
      position += 1;
      const version = (versions.get(`${aggregate}/${id}`) ?? 0) + events.length;
      versions.set(`${aggregate}/${id}`, version);
      for (const e of events) recorded.push({ event: { ...e, at }, meta: { aggregate, id, version, position, at } });
      return api;
    },
    get events(): readonly Recorded[] {
      return recorded;
    },
    get position(): number {
      return position;
    },
  };
  return api;
}

/** An in-memory view: documents by `JSON.stringify(key)`, and their index entries. */
export interface MemoryView<D> {
  readonly docs: Map<string, D>;
  get(key: ViewKey): D | undefined;
  /** Every index entry, the document key appended as the runner appends it, in LMDB key order. */
  entries(): (string | number)[][];
  /** The documents whose index entries start with `prefix`, in index order. */
  byIndex(prefix: readonly (string | number)[]): D[];
}

/** Folds recorded events into documents the way the runner does: filter by `handles`, then key, then fold. */
export function foldAll<D extends object>(projection: Projection<D>, events: readonly Recorded[]): MemoryView<D> {
  const handles = new Set(projection.handles);
  const docs = new Map<string, D>();
  const keys = new Map<string, ViewKey>();
  for (const { event, meta } of events) {
    if (!handles.has(event.type)) continue;
    const key = projection.key(event, meta);
    if (key === undefined) continue;
    const k = JSON.stringify(key);
    const next = projection.fold(docs.get(k), event, meta);
    if (next === undefined) docs.delete(k);
    else {
      docs.set(k, next);
      keys.set(k, key);
    }
  }
  const entries = () => {
    const all: (string | number)[][] = [];
    for (const [k, doc] of docs) {
      const key = keys.get(k)!;
      for (const prefix of projection.indexes?.(doc) ?? []) all.push([...prefix, typeof key === 'string' ? key : JSON.stringify(key)]);
    }
    return all.sort(compareKeys);
  };
  return {
    docs,
    get: (key) => docs.get(JSON.stringify(key)),
    entries,
    byIndex: (prefix) =>
      entries()
        .filter((entry) => prefix.every((p, i) => entry[i] === p))
        .map((entry) => docs.get(JSON.stringify(entry[entry.length - 1]))!),
  };
}

