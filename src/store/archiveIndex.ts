import type { RootDatabase } from 'lmdb';
import type { ArchivedAggregate, ArchivedCommit } from '../core/archive.js';

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
}

const COUNTS_KEY = 'counts';
const APPLIED_KEY = 'applied';

/** The index in an LMDB environment (the host's views environment), shared by its projector (which writes) and its workers (which read). */
export function lmdbArchiveIndex(env: RootDatabase): ArchiveIndex {
  const commits = env.openDB<ArchivedCommit, number>({ name: 'archive.commits' });
  const byAggregate = env.openDB<null, [string, string, number]>({ name: 'archive.byAggregate' });
  const meta = env.openDB<unknown, string>({ name: 'archive.meta' });
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
  };
}

/** The index in memory, for an in-process runtime on the in-memory store. */
export function memoryArchiveIndex(): ArchiveIndex {
  const commits = new Map<number, ArchivedCommit>();
  const byAggregate = new Map<string, number[]>();
  let applied = 0;
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
  };
}
