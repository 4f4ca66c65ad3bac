import type { Logger } from 'pino';
import { ARCHIVE_AGGREGATE, ARCHIVED, type ArchivedAggregate } from '../core/archive.js';
import type { StoredCommit } from '../core/eventStore.js';
import type { ArchiveIndex } from '../store/archiveIndex.js';
import type { Feed, FeedSpec } from './feed.js';

/** The archive follower of a host (see `followArchive`). */
export interface ArchiveFollower {
  readonly feed: Feed;
  /** The position of the last record applied. */
  position(): number;
  stop(): void;
}

/**
 * Keeps a host's archive index (docs/architecture.md, "Archive"): a feed of its own on
 * `EVENTS` that reads only the archive's records (filtered by the store), so it runs ahead
 * of the views. The views' feeds wait for it when they find a gap
 * in `EVENTS`, and the reads of archived aggregates when it is behind the store's last record.
 */
export function followArchive(opts: { readonly index: ArchiveIndex; readonly feed: (spec: FeedSpec) => Feed; readonly log: Logger; readonly onApplied?: () => void }): ArchiveFollower {
  const { index, log } = opts;
  // The last position read, records or not: where a restarted consumer goes on, so that a
  // follower of an archive with no new record is not taken for stalled and sent back to it.
  let seen = 0;
  const apply = (batch: StoredCommit[]) => {
    for (const commit of batch) {
      if (commit.aggregate !== ARCHIVE_AGGREGATE || commit.position <= index.applied()) continue;
      const archived = commit.events.filter((e) => e.type === ARCHIVED).map((e) => e.data as ArchivedAggregate);
      index.apply(commit.position, archived);
      log.debug({ position: commit.position, aggregates: archived.length }, 'archive record applied to the index');
    }
    seen = Math.max(seen, batch.at(-1)?.position ?? 0);
    opts.onApplied?.();
  };
  const from = () => Math.max(index.applied(), seen);
  // The records alone, filtered by nats-server: every other commit would be a delivery for nothing.
  const feed = opts.feed({ name: 'archive follower', from, apply, aggregate: ARCHIVE_AGGREGATE });
  return { feed, position: from, stop: () => feed.stop() };
}
