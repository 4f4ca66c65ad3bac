import { open, type RootDatabase } from 'lmdb';
import type { Memory } from './rehydrate.js';

/** A saved memory, tagged so that a changed state shape or a new stream invalidates it. */
export interface Snapshot {
  /** The aggregate's `snapshotVersion` when it was taken. */
  readonly shape: number;
  /** The id of the `EVENTS` stream it belongs to. */
  readonly stream: string;
  readonly memory: Memory;
}

/** Snapshots of aggregate memories, in an LMDB file on this host. */
export interface SnapshotStore {
  get(aggregate: string, id: string): Snapshot | undefined;
  /** Writes in the background; a lost snapshot only means a longer replay. */
  put(aggregate: string, id: string, snapshot: Snapshot): void;
  /** Removes every snapshot of these aggregates, after the writes already queued (docs/architecture.md, "Forgetting"). */
  drop(aggregates: ReadonlySet<string>): Promise<number>;
  close(): Promise<void>;
}

/**
 * Opens the snapshot store at `path`. Every worker on the host opens it, hence
 * `overlappingSync: false` (see docs/architecture.md, "Verified facts").
 */
export function openSnapshotStore(path: string, onError: (err: unknown) => void): SnapshotStore {
  const db: RootDatabase<Snapshot, string> = open({ path, overlappingSync: false, compression: true });
  return {
    get: (aggregate, id) => db.get(`${aggregate}/${id}`),
    put: (aggregate, id, snapshot) => void db.put(`${aggregate}/${id}`, snapshot).catch(onError),
    async drop(aggregates) {
      // Snapshots put a moment ago (an actor stopped just now) are listed only once committed.
      await db.committed;
      const keys = [...aggregates].flatMap((a) => [...db.getKeys({ start: `${a}/`, end: `${a}/\uffff` })]);
      // Asynchronous removes are written in order after the puts queued before them.
      await Promise.all(keys.map((key) => db.remove(key)));
      return keys.length;
    },
    close: () => db.close(),
  };
}

/** Snapshots in a map, for unit tests of the actor host. */
export function memorySnapshotStore(): SnapshotStore & { readonly saved: Map<string, Snapshot> } {
  const saved = new Map<string, Snapshot>();
  return {
    saved,
    get: (aggregate, id) => saved.get(`${aggregate}/${id}`),
    put: (aggregate, id, snapshot) => void saved.set(`${aggregate}/${id}`, structuredClone(snapshot)),
    async drop(aggregates) {
      const keys = [...saved.keys()].filter((key) => aggregates.has(key.slice(0, key.indexOf('/'))));
      for (const key of keys) saved.delete(key);
      return keys.length;
    },
    close: async () => undefined,
  };
}
