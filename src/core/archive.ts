import type { StoredCommit } from './eventStore.js';

// The archive (docs/architecture.md, "Archive"): commits of finished aggregates moved out of
// their subjects in `EVENTS` into records on one subject of the same stream, each commit
// keeping its position.

/** The aggregate name of the archive's records: no aggregate or process can have it. */
export const ARCHIVE_AGGREGATE = '~~archive';
/** The one id of the archive's records: their subject is `events.~~archive.all`. */
export const ARCHIVE_ID = 'all';
/** The event type of one archived aggregate in a record. */
export const ARCHIVED = '~Archived';

/** A commit as the archive keeps it: as it was stored, with its position and when the store took it. */
export interface ArchivedCommit extends StoredCommit {
  readonly storedAt: number;
}

/** One aggregate's commits moved by one record: the data of an `~Archived` event. */
export interface ArchivedAggregate {
  readonly aggregate: string;
  readonly id: string;
  readonly commits: readonly ArchivedCommit[];
}

/** Whether a stored aggregate name is converge's own bookkeeping (the archive, the record of forgetting). */
export function isConvergeRecord(aggregate: string): boolean {
  return aggregate.startsWith('~~');
}
