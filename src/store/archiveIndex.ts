import type { RootDatabase } from 'lmdb';
import type { ArchivedAggregate, ArchivedCommit } from '../core/archive.js';

/** What one archive record moved: per aggregate, its last archived position. */
export interface ArchiveRecordEntry {
  readonly position: number;
  readonly aggregates: readonly { readonly aggregate: string; readonly id: string; readonly last: number }[];
}

/** How much the archive holds. */
export interface ArchiveCounts {
  /** Aggregates with at least one archived commit. */
  readonly aggregates: number;
  readonly commits: number;
  /** The archived commits' size as JSON. */
  readonly bytes: number;
}

/**
 * A host's index of the archive (docs/architecture.md, "Archive"): every archived commit by
 * position and by aggregate, folded from the archive's records in `EVENTS` by the host's
 * archive follower, ahead of the views. Derived like the views: rebuilt from `EVENTS` when
 * lost. Applying a record twice changes nothing.
 */
export interface ArchiveIndex {
  /** The position of the last archive record applied; 0 before any. */
  applied(): number;
  /** Adds what the record at `recordPosition` archived and moves `applied` to it, together. */
  apply(recordPosition: number, archived: readonly ArchivedAggregate[]): void;
  commitAt(position: number): ArchivedCommit | undefined;
  /** One aggregate's archived commits after `afterPosition`, oldest first. */
  commitsOf(aggregate: string, id: string, afterPosition: number): ArchivedCommit[];
  /** The archived commits with positions after `after` and before `before`, in order. */
  between(after: number, before: number): ArchivedCommit[];
  /** The position of the aggregate's last archived commit; 0 when none is. */
  lastOf(aggregate: string, id: string): number;
  counts(): ArchiveCounts;
  /** The lowest archived position; undefined when the archive is empty. */
  lowest(): number | undefined;
  /** The records applied after `position`, oldest first: what the archiver may still have to remove from `EVENTS`. */
  recordsAfter(position: number): ArchiveRecordEntry[];
  /** The last record whose aggregates the archiver has removed from `EVENTS` and `NOTIFY`. */
  purged(): number;
  setPurged(position: number): void;
  /** The last record whose removals are on disk for sure (see `Archiver.recheck`); at most `purged`. */
  removedDurably(): number;
  setRemovedDurably(position: number): void;
}

const entryOf = (position: number, archived: readonly ArchivedAggregate[]): ArchiveRecordEntry => ({
  position,
  aggregates: archived.map(({ aggregate, id, commits }) => ({ aggregate, id, last: Math.max(0, ...commits.map((c) => c.position)) })),
});

const COUNTS_KEY = 'counts';
const APPLIED_KEY = 'applied';
const PURGED_KEY = 'purged';
const DURABLE_KEY = 'removedDurably';
const STREAM_KEY = 'stream';

/**
 * The index in an LMDB environment (the host's views environment), shared by its projector
 * (which writes) and its workers (which read). It belongs to one incarnation of the store,
 * like the views: the writer (`writer`) empties an index of another `stream` on opening.
 */
export function lmdbArchiveIndex(env: RootDatabase, opts: { readonly stream: string; readonly writer: boolean }): ArchiveIndex {
  const commits = env.openDB<ArchivedCommit, number>({ name: 'archive.commits' });
  const byAggregate = env.openDB<null, [string, string, number]>({ name: 'archive.byAggregate' });
  const records = env.openDB<ArchiveRecordEntry, number>({ name: 'archive.records' });
  const meta = env.openDB<unknown, string>({ name: 'archive.meta' });
  if (opts.writer && meta.get(STREAM_KEY) !== opts.stream) {
    env.transactionSync(() => {
      for (const db of [commits, byAggregate, records, meta] as const) db.clearSync();
      meta.putSync(STREAM_KEY, opts.stream);
    });
  }
  const counts = (): ArchiveCounts => (meta.get(COUNTS_KEY) as ArchiveCounts | undefined) ?? { aggregates: 0, commits: 0, bytes: 0 };
  const lastOf = (aggregate: string, id: string): number => {
    for (const key of byAggregate.getKeys({ start: [aggregate, id, Number.MAX_SAFE_INTEGER], end: [aggregate, id, 0], reverse: true, limit: 1 })) return key[2];
    return 0;
  };
  return {
    applied: () => (meta.get(APPLIED_KEY) as number | undefined) ?? 0,
    apply(recordPosition, archived) {
      env.transactionSync(() => {
        if (((meta.get(APPLIED_KEY) as number | undefined) ?? 0) >= recordPosition) return;
        let { aggregates, commits: count, bytes } = counts();
        for (const { aggregate, id, commits: list } of archived) {
          if (lastOf(aggregate, id) === 0 && list.length > 0) aggregates++;
          for (const commit of list) {
            if (commits.get(commit.position) !== undefined) continue;
            commits.putSync(commit.position, commit);
            byAggregate.putSync([aggregate, id, commit.position], null);
            count++;
            bytes += JSON.stringify(commit).length;
          }
        }
        records.putSync(recordPosition, entryOf(recordPosition, archived));
        meta.putSync(COUNTS_KEY, { aggregates, commits: count, bytes });
        meta.putSync(APPLIED_KEY, recordPosition);
      });
    },
    commitAt: (position) => commits.get(position),
    commitsOf(aggregate, id, afterPosition) {
      const out: ArchivedCommit[] = [];
      for (const key of byAggregate.getKeys({ start: [aggregate, id, afterPosition + 1], end: [aggregate, id, Number.MAX_SAFE_INTEGER] })) {
        const commit = commits.get(key[2]);
        if (commit) out.push(commit);
      }
      return out;
    },
    between(after, before) {
      if (before - after <= 1) return [];
      return [...commits.getRange({ start: after + 1, end: before })].map((e) => e.value);
    },
    lastOf,
    counts,
    lowest() {
      for (const key of commits.getKeys({ limit: 1 })) return key;
      return undefined;
    },
    recordsAfter: (position) => [...records.getRange({ start: position + 1 })].map((e) => e.value),
    purged: () => (meta.get(PURGED_KEY) as number | undefined) ?? 0,
    setPurged: (position) => void meta.putSync(PURGED_KEY, position),
    removedDurably: () => (meta.get(DURABLE_KEY) as number | undefined) ?? 0,
    setRemovedDurably: (position) => void meta.putSync(DURABLE_KEY, position),
  };
}

/** The index in memory, for an in-process runtime on the in-memory store. */
export function memoryArchiveIndex(): ArchiveIndex {
  const commits = new Map<number, ArchivedCommit>();
  const byAggregate = new Map<string, number[]>();
  const records: ArchiveRecordEntry[] = [];
  let applied = 0;
  let purged = 0;
  let durably = 0;
  let bytes = 0;
  const keyOf = (aggregate: string, id: string) => `${aggregate}\u0000${id}`;
  return {
    applied: () => applied,
    apply(recordPosition, archived) {
      if (applied >= recordPosition) return;
      for (const { aggregate, id, commits: list } of archived) {
        const positions = byAggregate.get(keyOf(aggregate, id)) ?? [];
        for (const commit of list) {
          if (commits.has(commit.position)) continue;
          commits.set(commit.position, structuredClone(commit));
          positions.push(commit.position);
          bytes += JSON.stringify(commit).length;
        }
        positions.sort((a, b) => a - b);
        if (positions.length > 0) byAggregate.set(keyOf(aggregate, id), positions);
      }
      records.push(entryOf(recordPosition, archived));
      applied = recordPosition;
    },
    commitAt: (position) => commits.get(position),
    commitsOf: (aggregate, id, afterPosition) =>
      (byAggregate.get(keyOf(aggregate, id)) ?? []).filter((p) => p > afterPosition).map((p) => structuredClone(commits.get(p)!)),
    between: (after, before) =>
      [...commits.keys()]
        .filter((p) => p > after && p < before)
        .sort((a, b) => a - b)
        .map((p) => structuredClone(commits.get(p)!)),
    lastOf: (aggregate, id) => byAggregate.get(keyOf(aggregate, id))?.at(-1) ?? 0,
    counts: () => ({ aggregates: byAggregate.size, commits: commits.size, bytes }),
    lowest() {
      let low: number | undefined;
      for (const p of commits.keys()) if (low === undefined || p < low) low = p;
      return low;
    },
    recordsAfter: (position) => records.filter((r) => r.position > position),
    purged: () => purged,
    setPurged(position) {
      purged = position;
    },
    removedDurably: () => durably,
    setRemovedDurably(position) {
      durably = position;
    },
  };
}
