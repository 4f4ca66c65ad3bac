import { ARCHIVE_AGGREGATE, ARCHIVE_ID, type ArchivedCommit } from '../core/archive.js';
import { EventStoreUnavailableError } from '../core/errors.js';
import { passedOver, type CommitSubscription, type Delivered, type EventStore, type StoredCommit } from '../core/eventStore.js';
import type { ArchiveIndex } from './archiveIndex.js';

export interface ArchivedStoreOptions {
  /** The host's index of the archive. */
  readonly index: ArchiveIndex;
  /** How long a read waits for the index to reach the store's last archive record; then it fails as unavailable. */
  readonly waitMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** A stored commit as the archive gave it, without the archive's own field. */
function stored({ storedAt: _, ...commit }: ArchivedCommit): StoredCommit {
  return commit;
}

/**
 * The event store read through the archive (docs/architecture.md, "Archive"): an
 * aggregate's commits are its archived ones and then its live ones, a position is looked up
 * in either, and a subscription fills each gap the archiver left in `EVENTS` with the
 * archived commits, so every reader sees every position once, in order.
 *
 * The archiver appends a record before it removes what it copied, so what a read does not
 * find live is in a record the store already holds: each read first learns the position of
 * the last record, after reading what is live, and waits until the index has applied it.
 * An append whose expected position is an archived commit of its aggregate expects an empty
 * subject, since archiving removed everything up to that commit.
 */
export function archivedStore(inner: EventStore, opts: ArchivedStoreOptions): EventStore {
  const { index } = opts;
  const waitMs = opts.waitMs ?? 10_000;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

  /** Waits until the index has applied every record the store holds now. */
  async function indexCaughtUp(): Promise<void> {
    const last = await inner.lastPosition(ARCHIVE_AGGREGATE, ARCHIVE_ID);
    const deadline = Date.now() + waitMs;
    while (index.applied() < last) {
      if (Date.now() >= deadline) {
        throw new EventStoreUnavailableError(`the archive index is at record ${index.applied()}, behind the store's ${last}; its host's projector has not caught up`);
      }
      await sleep(10);
    }
  }

  /** The live commits (read first) and the archived ones, merged by position. */
  async function merged(live: AsyncIterable<StoredCommit>, archived: () => ArchivedCommit[]): Promise<StoredCommit[]> {
    const out: StoredCommit[] = [];
    for await (const commit of live) out.push(commit);
    await indexCaughtUp();
    const seen = new Set(out.map((c) => c.position));
    for (const commit of archived()) if (!seen.has(commit.position)) out.push(stored(commit));
    return out.sort((a, b) => a.position - b.position);
  }

  async function* yieldAll(commits: Promise<StoredCommit[]>): AsyncIterable<StoredCommit> {
    yield* await commits;
  }

  /** The archived commits between two delivered positions, once the index holds all of them. */
  async function gap(after: number, before: number): Promise<ArchivedCommit[]> {
    let found = index.between(after, before);
    if (found.length === before - after - 1) return found;
    await indexCaughtUp();
    found = index.between(after, before);
    if (found.length !== before - after - 1) {
      const have = new Set(found.map((c) => c.position));
      const missing = Array.from({ length: before - after - 1 }, (_, i) => after + 1 + i).filter((p) => !have.has(p));
      throw new EventStoreUnavailableError(`positions ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''} are in neither EVENTS nor the archive`);
    }
    return found;
  }

  return {
    ...inner,
    async append(commit, expectedPosition) {
      const archived = expectedPosition > 0 ? index.commitAt(expectedPosition) : undefined;
      const expected = archived && archived.aggregate === commit.aggregate && archived.id === commit.id ? 0 : expectedPosition;
      return inner.append(commit, expected);
    },
    read: (aggregate, id, afterPosition) => yieldAll(merged(inner.read(aggregate, id, afterPosition), () => index.commitsOf(aggregate, id, afterPosition))),
    readSince: (aggregate, id, sinceMs) =>
      yieldAll(merged(inner.readSince(aggregate, id, sinceMs), () => index.commitsOf(aggregate, id, 0).filter((c) => c.storedAt >= sinceMs))),
    async lastPosition(aggregate, id) {
      const live = await inner.lastPosition(aggregate, id);
      if (live > 0) return live;
      await indexCaughtUp();
      return index.lastOf(aggregate, id);
    },
    async commitAt(position) {
      const live = await inner.commitAt(position);
      if (live) return live;
      await indexCaughtUp();
      return index.commitAt(position);
    },
    async subscribe(afterPosition, options) {
      const subscription = await inner.subscribe(afterPosition, options);
      const { only } = options;
      return {
        async *[Symbol.asyncIterator](): AsyncIterator<Delivered> {
          let last = afterPosition;
          for await (const delivered of subscription) {
            const position = delivered.commit.position;
            if (position > last + 1) {
              for (const commit of await gap(last, position)) {
                const full = stored(commit);
                yield { commit: only && !only.has(full.aggregate) ? passedOver(full.aggregate, full.id, full.position) : full, storedAt: commit.storedAt, head: delivered.head };
              }
            }
            last = Math.max(last, position);
            yield delivered;
          }
        },
        close: () => subscription.close(),
      } satisfies CommitSubscription;
    },
  };
}
