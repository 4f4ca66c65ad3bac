import { ARCHIVE_AGGREGATE, ARCHIVE_ID, ARCHIVED, isArchivable, type ArchivedAggregate, type ArchivedCommit } from '../core/archive.js';
import { EventStoreUnavailableError, WrongExpectedPositionError } from '../core/errors.js';
import { passedOver, type CommitSubscription, type Delivered, type EventStore, type StoredCommit } from '../core/eventStore.js';
import type { ArchiveIndex } from './archiveIndex.js';

export interface ArchivedStoreOptions {
  /** The host's index of the archive. */
  readonly index: ArchiveIndex;
  /**
   * The archive's head as the archiver announced it before removing anything (on NATS,
   * `lifecycle/archiveHead.ts`); undefined when none was announced. Without it, or without an
   * announcement, a read asks the store for a record after its index's last.
   */
  readonly head?: () => Promise<number | undefined>;
  /** How long a subscription waits for an index that has stopped applying records before it reads the records it lacks itself. */
  readonly quietMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** Archived commits the reads of a host keep of the records its index lacks, at most (about a megabyte a thousand). */
const LACKING_KEPT = 20_000;

/** A reading of the records the index lacks: the commits they hold, through the record at `through`. */
interface Lacking {
  readonly through: number;
  readonly commits: Map<number, ArchivedCommit>;
  readonly view: ArchiveView;
}

/** Positions of a gap in a subscription filled at once, at most. */
export const GAP_PAGE = 1000;

/** A stored commit as the archive gave it, without the archive's own field. */
function stored({ storedAt: _, ...commit }: ArchivedCommit): StoredCommit {
  return commit;
}

/** The archived commits a read must see: those in the index, and those of records it has not applied yet. */
interface ArchiveView {
  commitsOf(aggregate: string, id: string, afterPosition: number): ArchivedCommit[];
  commitAt(position: number): ArchivedCommit | undefined;
  between(after: number, before: number): ArchivedCommit[];
  lastOf(aggregate: string, id: string): number;
}

/**
 * The event store read through the archive (docs/architecture.md, "Archive"): an
 * aggregate's commits are its archived ones and then its live ones, a position is looked up
 * in either, and a subscription fills each gap the archiver left in `EVENTS` with the
 * archived commits, so every reader sees every position once, in order.
 *
 * The archiver appends a record before it removes what it copied, so what a read does not
 * find live is in a record the store already holds: a read that needs the archive first
 * learns the position of the last record, after reading what is live. When the host's
 * index has not applied it (its projector is behind, or down), the read takes the records
 * the index lacks from the store itself, rather than wait for the projector.
 * An append whose expected position is an archived commit of its aggregate expects an empty
 * subject, since archiving removed everything up to that commit.
 */
export function archivedStore(inner: EventStore, opts: ArchivedStoreOptions): EventStore {
  const { index } = opts;
  const quietMs = opts.quietMs ?? 2000;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

  /** The position of an archive record after `after` whose commits may be removed (the head, or the first in the store); 0 when there is none. */
  async function recordAfter(after: number): Promise<number> {
    const head = await opts.head?.();
    if (head !== undefined) return head > after ? head : 0;
    if (isArchivable(inner)) return inner.nextPosition(ARCHIVE_AGGREGATE, ARCHIVE_ID, after);
    const last = await inner.lastPosition(ARCHIVE_AGGREGATE, ARCHIVE_ID);
    return last > after ? last : 0;
  }

  /**
   * The archived commits of the records the index lacks, as last read from the store, through
   * the record at `through`. Kept until the index has applied them, so that the reads of one
   * moment share one reading of them; not kept past `LACKING_KEPT` commits (an index made
   * again from nothing lacks the whole archive), when each read uses its own reading.
   */
  let lacking: Lacking | undefined;
  /** The reading of those records under way, numbered in the order readings began. */
  let reading: { n: number; done: Promise<Lacking> } | undefined;
  let readingsBegun = 0;

  /** Reads the records after what the index and `lacking` hold, and keeps them in `lacking` unless they are too many. */
  async function readLacking(): Promise<Lacking> {
    const applied = index.applied();
    const base = lacking && lacking.through > applied ? lacking : { through: applied, commits: new Map<number, ArchivedCommit>() };
    const commits = new Map(base.commits);
    let through = base.through;
    for await (const record of inner.read(ARCHIVE_AGGREGATE, ARCHIVE_ID, base.through)) {
      for (const e of record.events) if (e.type === ARCHIVED) for (const c of (e.data as unknown as ArchivedAggregate).commits) commits.set(c.position, c);
      through = record.position;
    }
    const read = { through, commits, view: withLacking(commits) };
    lacking = commits.size <= LACKING_KEPT ? read : undefined;
    return read;
  }

  /**
   * The archive as of the store's last record (docs/architecture.md, "Archive"): the index,
   * and the records it has not applied yet, read from the store at once rather than waited
   * for, and once for all the reads that meet them. The reads of aggregates with nothing
   * live (every new one) ask this at each read; while the archiver appends records, they
   * would otherwise each read them, or wait for the projector to apply them.
   */
  async function archive(): Promise<ArchiveView> {
    /** The readings begun when this read first saw a record its index lacks. */
    let looked: number | undefined;
    for (;;) {
      const applied = index.applied();
      if (lacking && lacking.through <= applied) lacking = undefined;
      if ((await recordAfter(lacking?.through ?? applied)) === 0) return lacking?.view ?? index;
      looked ??= readingsBegun;
      // A reading begun after that look holds every record the look saw: join it.
      if (reading && reading.n > looked) return (await reading.done).view;
      // One begun before it may not: once it is done, look again (a look costs far less than a reading).
      if (reading) {
        await reading.done.catch(() => undefined);
        continue;
      }
      const n = ++readingsBegun;
      const done = readLacking().finally(() => {
        if (reading?.n === n) reading = undefined;
      });
      reading = { n, done };
      // What this reading found, however far the head said: a head past the store's last record
      // (one announced for another copy of EVENTS) must not make reads ask again and again.
      return (await done).view;
    }
  }

  /** The index with archived commits it has not applied yet. */
  function withLacking(extra: ReadonlyMap<number, ArchivedCommit>): ArchiveView {
    const more = [...extra.values()].sort((a, b) => a.position - b.position);
    const byAggregate = new Map<string, ArchivedCommit[]>();
    for (const c of more) {
      const key = `${c.aggregate}\u0000${c.id}`;
      const list = byAggregate.get(key);
      if (list) list.push(c);
      else byAggregate.set(key, [c]);
    }
    const union = (found: ArchivedCommit[], add: ArchivedCommit[]) => {
      if (add.length === 0) return found;
      const seen = new Set(found.map((c) => c.position));
      return [...found, ...add.filter((c) => !seen.has(c.position))].sort((a, b) => a.position - b.position);
    };
    const of = (aggregate: string, id: string) => byAggregate.get(`${aggregate}\u0000${id}`) ?? [];
    return {
      commitsOf: (aggregate, id, after) => union(index.commitsOf(aggregate, id, after), of(aggregate, id).filter((c) => c.position > after)),
      commitAt: (position) => index.commitAt(position) ?? extra.get(position),
      between: (after, before) => union(index.between(after, before), more.filter((c) => c.position > after && c.position < before)),
      lastOf: (aggregate, id) => Math.max(index.lastOf(aggregate, id), of(aggregate, id).at(-1)?.position ?? 0),
    };
  }

  /**
   * The live commits (read first) and the archived ones, merged by position. Live commits
   * that begin at the aggregate's first event are all there is: the archive takes an
   * aggregate's oldest commits first, so nothing of it is archived.
   */
  async function merged(live: AsyncIterable<StoredCommit>, archived: (view: ArchiveView) => ArchivedCommit[]): Promise<StoredCommit[]> {
    const out: StoredCommit[] = [];
    for await (const commit of live) out.push(commit);
    const first = out[0];
    if (first && first.version === first.events.length) return out;
    const seen = new Set(out.map((c) => c.position));
    for (const commit of archived(await archive())) if (!seen.has(commit.position)) out.push(stored(commit));
    return out.sort((a, b) => a.position - b.position);
  }

  async function* yieldAll(commits: Promise<StoredCommit[]>): AsyncIterable<StoredCommit> {
    yield* await commits;
  }

  /**
   * Every commit between two positions as the index has them, waiting for it as long as it
   * keeps applying the store's records; undefined when it has applied them all and still
   * lacks some, or stops moving for `quietMs` short of that (its follower is down or stalled).
   */
  async function fromIndex(after: number, before: number): Promise<ArchivedCommit[] | undefined> {
    let moved = Date.now();
    let applied = index.applied();
    for (;;) {
      const found = index.between(after, before);
      if (found.length === before - after - 1) return found;
      const pending = await recordAfter(index.applied());
      if (pending === 0) return undefined;
      while (index.applied() < pending) {
        if (index.applied() !== applied) [applied, moved] = [index.applied(), Date.now()];
        if (Date.now() - moved >= quietMs) return undefined;
        await sleep(5);
      }
    }
  }

  /** The archived commits between two delivered positions. */
  async function gap(after: number, before: number): Promise<ArchivedCommit[]> {
    // The host's follower runs ahead of its feeds, and after a loss of the views it makes the
    // index again beside them: each page of a gap reading the records itself would read the
    // whole archive again and again (docs/architecture.md, "Archive").
    const found = await fromIndex(after, before);
    if (found) return found;
    const all = (await archive()).between(after, before);
    if (all.length === before - after - 1) return all;
    // Not archived: a commit the subscription passed over though it is live. Taken from EVENTS
    // by position, so that no reader skips it; a position in neither fails the subscription.
    const have = new Set(all.map((c) => c.position));
    const missing = Array.from({ length: before - after - 1 }, (_, i) => after + 1 + i).filter((p) => !have.has(p));
    const live = (await Promise.all(missing.map((p) => inner.commitAt(p)))).filter((c) => c !== undefined);
    if (live.length !== missing.length) {
      const found = new Set(live.map((c) => c.position));
      const lost = missing.filter((p) => !found.has(p));
      throw new EventStoreUnavailableError(`positions ${lost.slice(0, 5).join(', ')}${lost.length > 5 ? ', …' : ''} are in neither EVENTS nor the archive`);
    }
    return [...all, ...live].sort((a, b) => a.position - b.position);
  }

  return {
    ...inner,
    async append(commit, expectedPosition) {
      const ours = (c: ArchivedCommit | undefined) => c !== undefined && c.aggregate === commit.aggregate && c.id === commit.id;
      // Archiving removed the aggregate's commits up to the one expected, so its subject is
      // empty, unless the archiver has copied them and not yet removed them.
      const fromArchive = async () => {
        const live = await inner.lastPosition(commit.aggregate, commit.id);
        return inner.append(commit, live === expectedPosition ? expectedPosition : 0);
      };
      if (expectedPosition > 0 && ours(index.commitAt(expectedPosition))) return fromArchive();
      try {
        return await inner.append(commit, expectedPosition);
      } catch (err) {
        // The host's index may not know yet of a record another host's archiver appended.
        if (!(err instanceof WrongExpectedPositionError) || expectedPosition === 0 || !ours((await archive()).commitAt(expectedPosition))) throw err;
        return fromArchive();
      }
    },
    read: (aggregate, id, afterPosition) => yieldAll(merged(inner.read(aggregate, id, afterPosition), (a) => a.commitsOf(aggregate, id, afterPosition))),
    readSince: (aggregate, id, sinceMs) =>
      yieldAll(merged(inner.readSince(aggregate, id, sinceMs), (a) => a.commitsOf(aggregate, id, 0).filter((c) => c.storedAt >= sinceMs))),
    async lastPosition(aggregate, id) {
      const live = await inner.lastPosition(aggregate, id);
      if (live > 0) return live;
      return (await archive()).lastOf(aggregate, id);
    },
    async head() {
      const head = await inner.head();
      const lowest = index.lowest();
      return lowest !== undefined && lowest < head.firstPosition ? { ...head, firstPosition: lowest } : head;
    },
    async commitAt(position) {
      const live = await inner.commitAt(position);
      if (live) return live;
      return (await archive()).commitAt(position);
    },
    async subscribe(afterPosition, options) {
      const subscription = await inner.subscribe(afterPosition, options);
      // One aggregate's commits skip every other position: no gap to fill from the archive.
      if (options.aggregate !== undefined) return subscription;
      const { only } = options;
      return {
        async *[Symbol.asyncIterator](): AsyncIterator<Delivered> {
          let last = afterPosition;
          for await (const delivered of subscription) {
            const position = delivered.commit.position;
            // Delivered already, from a gap.
            if (position <= last) continue;
            // A page at a time: a rebuild from nothing meets the whole archive as one gap, and
            // reading it at once held the event loop long enough for nats-server to drop the
            // connection (100,000 archived orders), and left no room for the feed's backpressure.
            // A page from the index needs no I/O, so the feed would apply page after page in
            // microtasks alone: the loop turns after each one, for the leases, the connection's
            // pings and the other feeds (a million archived orders held it 195 s).
            for (let from = last; from < position - 1; ) {
              const to = Math.min(from + GAP_PAGE + 1, position);
              for (const commit of await gap(from, to)) {
                const full = stored(commit);
                yield { commit: only && !only.has(full.aggregate) ? passedOver(full.aggregate, full.id, full.position) : full, storedAt: commit.storedAt, head: delivered.head };
              }
              from = to - 1;
              await new Promise<void>((r) => setImmediate(r));
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
