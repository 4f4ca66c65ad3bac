import type { EventStore, StoredCommit } from './eventStore.js';

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

/** What the archiver needs of an event store besides its contract: both of converge's stores have it. */
export interface ArchivableStore extends EventStore {
  /** One aggregate's live commits, oldest first, each with when the store took it. */
  readStored(aggregate: string, id: string): AsyncIterable<ArchivedCommit>;
  /**
   * Removes these commits, one message at a time, each only if the message at its position
   * is still that aggregate's; one already gone is no error. Not a purge by subject: on nats-server 2.9.10 a purge filtered to one subject
   * moves every consumer of the stream past messages it has not delivered (nats-server#3838).
   */
  remove(commits: readonly { readonly position: number; readonly aggregate: string; readonly id: string }[]): Promise<void>;
  /** How many aggregates (subjects) hold live commits, the archive's own record subject among them. */
  liveAggregates(): Promise<number>;
  /**
   * The position of the aggregate's first live commit after `afterPosition`; 0 when there is
   * none. Unlike `lastPosition` on NATS, it does not fetch a commit that is there: an archive
   * record runs to 16 KiB, and whether one follows the host's index is asked at every read
   * of an aggregate with nothing live.
   */
  nextPosition(aggregate: string, id: string, afterPosition: number): Promise<number>;
}

/** Whether a store can be archived from. */
export function isArchivable(store: EventStore): store is ArchivableStore {
  return typeof (store as Partial<ArchivableStore>).remove === 'function' && typeof (store as Partial<ArchivableStore>).readStored === 'function';
}
