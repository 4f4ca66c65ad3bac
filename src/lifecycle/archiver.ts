import type { Logger } from 'pino';
import { ARCHIVE_AGGREGATE, ARCHIVE_ID, ARCHIVED, type ArchivableStore, type ArchivedAggregate } from '../core/archive.js';
import type { Clock } from '../core/clock.js';
import { WrongExpectedPositionError } from '../core/errors.js';
import type { Commit } from '../core/eventStore.js';
import type { ArchiveIndex } from '../store/archiveIndex.js';
import { LAST, type IndexScanner, type ViewOf } from '../read/viewStore.js';
import { RECORD_BYTES, splitRecords } from './archiveRecords.js';
import { LIFECYCLE_VIEW } from './lifecycleView.js';

/** What the archiver reports. */
export interface ArchiverStatus {
  /** `running` between rounds or in one, `paused` by an operator, `idle` where another process holds the archiver's lease. */
  readonly state: 'running' | 'paused' | 'idle';
  /** Finished aggregates past their `archiveAfterMs` and not archived yet, as the last round counted them (at most one batch). */
  readonly due: number;
  /** How long the oldest of them has been due, in ms; 0 when none is. */
  readonly lagMs: number;
  /** Aggregates this process archived since it started. */
  readonly archived: number;
  /** The last record whose aggregates are gone from `EVENTS` and `NOTIFY`. */
  readonly purgedThrough: number;
  readonly lastRoundAt: string | null;
  readonly error?: string;
}

export interface ArchiverOptions {
  /** The store as it is, not read through the archive: the archiver copies live commits and removes them. */
  readonly store: ArchivableStore;
  readonly index: ArchiveIndex;
  /** The views, converge's lifecycle view among them. */
  readonly views: IndexScanner;
  /** Per archivable aggregate name, how long a finished instance stays live. */
  readonly afterMs: ReadonlyMap<string, number>;
  /** Also removes the aggregate's notice (on NATS: its `NOTIFY` subject), when it announces a commit up to `through`. */
  readonly purgeNotice?: (aggregate: string, id: string, through: number) => Promise<void>;
  /**
   * Announces the archive's head before anything a record copied is removed (on NATS: a key
   * of `converge-reactions`, see `lifecycle/archiveHead.ts`), so that a read whose index has not
   * applied it knows to read the records itself.
   */
  readonly announce?: (position: number) => Promise<void>;
  readonly clock: Clock;
  readonly log: Logger;
  readonly intervalMs: number;
  /** Aggregates per round, and per record at most. */
  readonly batchSize: number;
  /** The share of its time the archiver works while it has a backlog (see `archive.maxShare`); 1 by default. */
  readonly maxShare?: number;
  /** A record's bytes as stored (gzipped) at most: a JetStream message holds 1 MB by default. */
  readonly maxRecordBytes?: number;
  /** How long a round waits for the host's index to apply its record before it removes anything. */
  readonly indexWaitMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Where an operator's pause is kept, so that it holds wherever the lease goes; in memory by default. */
  readonly pauseFlag?: PauseFlag;
}

/** Whether the archiver is paused, kept where every claimant of its lease reads it. */
export interface PauseFlag {
  get(): Promise<boolean>;
  set(paused: boolean): Promise<void>;
}

/** A pause flag in memory: one runtime alone. */
export function memoryPauseFlag(): PauseFlag {
  let paused = false;
  return {
    get: async () => paused,
    async set(value) {
      paused = value;
    },
  };
}

/** How long after a removal nats-server is taken to have it on disk: its 2-minute flush, and a margin. */
const DURABLE_MS = 150_000;

/** A record this round appended: where, and the archive's version after it. */
interface AppendedRecord {
  readonly position: number;
  readonly version: number;
}

/** The most records a recheck removes again: 150 s of an archiver at work without rest (about 470 aggregates/s, 52 records/s here). */
const RECHECK_RECORDS = 8000;

/** Aggregates copied, and notices removed, at once: each is a request or two of its own. */
const COPY_IN_FLIGHT = 16;

/** Runs `fn` over `items`, `size` at a time, answering the results in order. */
async function inChunks<T, R>(items: readonly T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

/** The archiver of a runtime (see `startArchiver`). */
export interface Archiver {
  /** Runs rounds until stopped or paused. */
  start(): void;
  /** Ends the round in progress at its next step; resolves when it has. */
  stop(): Promise<void>;
  /**
   * Removes again, at the next round, what the records of the last minutes copied: nats-server
   * 2.9.10 keeps a delete in memory until it flushes the stream's files (every 2 minutes by
   * default), and one killed meanwhile brings the deleted messages back.
   */
  recheck(): void;
  /** Pauses the archiver wherever it runs: a round in progress finishes its record. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Runs one round now; what `settled` and tests use. Answers how many aggregates it archived. */
  round(): Promise<number>;
  status(active: boolean): ArchiverStatus;
}

/**
 * The archiver (docs/architecture.md, "Archive"). Each round it takes the finished
 * aggregates that have been finished for their `archiveAfterMs` from the lifecycle view,
 * copies their live commits into one record on the archive's subject, waits until the
 * host's index has applied that record and holds every copied commit, and only then
 * removes the copied commits from `EVENTS` (message by message: a commit appended meanwhile
 * stays) and the aggregate's notice from `NOTIFY`.
 *
 * Crash-safe at every step: a record is appended with an expected position and a message id
 * derived from it, so a retried append is not stored twice; the index ignores commits it
 * holds already; and removal is driven by the records the index has applied and a
 * checkpoint (`purged`) moved after their removals, so a round that died between copy and
 * removal is finished by the next, here or on whichever host takes the lease.
 */
export function startArchiver(opts: ArchiverOptions): Archiver {
  const { store, index, views, clock, log } = opts;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const maxRecordBytes = opts.maxRecordBytes ?? RECORD_BYTES;
  const indexWaitMs = opts.indexWaitMs ?? 10_000;
  const flag = opts.pauseFlag ?? memoryPauseFlag();
  /** Records removed lately, with when: nats-server may lose a delete it has not flushed yet. */
  const removals: Array<{ at: number; position: number }> = [];
  // A process that takes the lease removes again what was removed lately, as after a reconnect.
  let recheckPending = true;
  /**
   * The head this process has announced, none yet after a start or a recheck; the first
   * is made even at 0, so new aggregates' reads need not ask the stream (docs/architecture.md, "Archive").
   */
  let announced: number | undefined;
  let running = false;
  // Set by `stop` until the next `start`: a round in progress ends at its next step.
  let stopped = false;
  const halted = () => stopped;
  let paused = false;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  let archivedCount = 0;
  let due = 0;
  let lagMs = 0;
  let lastRoundAt: number | undefined;
  let error: string | undefined;
  let inRound: Promise<number> | undefined;

  /**
   * Removes what applied records copied and the last round may not have removed; with
   * `again`, also what the records after `removedDurably` copied, whose removal nats-server
   * may have lost (see `recheck`). Answers false when it removed nothing because the
   * store holds records the index has not applied yet.
   */
  async function removeCopied(again = false): Promise<boolean> {
    const purgedBefore = index.purged();
    // Again: at most the last RECHECK_RECORDS, so that a first start on a large archive does not redo it all.
    const todo = again ? index.recordsAfter(index.removedDurably()).slice(-RECHECK_RECORDS) : index.recordsAfter(purgedBefore);
    // Removed again now, so durable only DURABLE_MS from now: a second kill within that time loses these deletes too.
    if (again) removals.length = 0;
    // Every record the index holds, not only those removed now: an archiver of a version
    // before the head, or one whose announcement nats-server lost, may have removed what
    // later records copied without announcing them.
    const top = Math.max(todo.at(-1)?.position ?? 0, index.applied());
    if (opts.announce && (announced === undefined || top > announced)) {
      // A head at or after every record the store holds, or none: the index may lack records
      // an earlier archiver wrote, and the head itself may have been lost with its bucket.
      // Until the index has them, nothing is announced and nothing removed.
      if ((await store.nextPosition(ARCHIVE_AGGREGATE, ARCHIVE_ID, top)) > 0) return false;
      await opts.announce(top);
      announced = top;
    }
    for (const record of todo) {
      if (halted()) return true;
      // Check before removing: the index must hold every commit up to the last copied.
      for (const { aggregate, id, last } of record.aggregates) {
        if (index.lastOf(aggregate, id) < last) throw new Error(`the archive index lacks ${aggregate}/${id} up to ${last}; nothing of it is removed`);
      }
      // Every copied commit, again too, each by its position: a recheck that looked each
      // aggregate up by subject (`next_by_subj`) instead left messages that came back after a
      // kill of nats-server 2.9.10 in two runs of four of the integration test.
      const copied: Array<{ position: number; aggregate: string; id: string }> = [];
      for (const { aggregate, id, last } of record.aggregates) {
        for (const c of index.commitsOf(aggregate, id, 0)) if (c.position <= last) copied.push({ position: c.position, aggregate, id });
      }
      await store.remove(copied);
      await inChunks(record.aggregates, COPY_IN_FLIGHT, async ({ aggregate, id, last }) => opts.purgeNotice?.(aggregate, id, last));
      if (record.position > purgedBefore) index.setPurged(record.position);
      if (again || record.position > purgedBefore) removals.push({ at: clock.now(), position: record.position });
    }
    return true;
  }

  /** Moves `removedDurably` to the last record removed more than `DURABLE_MS` ago. */
  function settleRemovals(): void {
    const horizon = clock.now() - DURABLE_MS;
    while (removals.length > 0 && removals[0]!.at <= horizon) index.setRemovedDurably(removals.shift()!.position);
  }

  /** Finished aggregates due now, oldest first per aggregate name. */
  function dueNow(): Array<{ aggregate: string; id: string; position: number; dueAt: number }> {
    const now = clock.now();
    const out: Array<{ aggregate: string; id: string; position: number; dueAt: number }> = [];
    const view = { name: LIFECYCLE_VIEW };
    for (const [aggregate, afterMs] of opts.afterMs) {
      const room = opts.batchSize - out.length;
      if (room <= 0) break;
      for (const entry of views.scanIndex(view, ['finished', aggregate], ['finished', aggregate, now - afterMs, LAST], room)) {
        const finishedAt = Number(entry[2]);
        const id = String(entry[3]);
        const doc = views.get(view as ViewOf<{ position: number }>, [aggregate, id]);
        if (doc) out.push({ aggregate, id, position: doc.position, dueAt: finishedAt + afterMs });
      }
    }
    return out;
  }

  /** Copies the live commits of each due aggregate, as long as its last is still the finishing one. */
  async function copy(list: ReturnType<typeof dueNow>): Promise<ArchivedAggregate[]> {
    const out: Array<ArchivedAggregate | undefined> = await inChunks(list, COPY_IN_FLIGHT, async ({ aggregate, id, position }) => {
      const live = [];
      for await (const c of store.readStored(aggregate, id)) live.push(c);
      const last = live.at(-1);
      // Gone already (a round removed it, and the view has not folded the record yet), or
      // taken up again since the view saw it finished: not this round's.
      if (!last || last.position !== position) return undefined;
      // Archived already, and live again or still (a delete nats-server lost): removal's, not copy's.
      const commits = live.filter((c) => index.commitAt(c.position) === undefined);
      return commits.length > 0 ? { aggregate, id, commits } : undefined;
    });
    return out.filter((a): a is ArchivedAggregate => a !== undefined);
  }

  /**
   * Appends one record after `after` (this round's last record), or after the archive's last
   * record as the store has it; answers where it landed, or undefined when the archive's
   * subject moved under it.
   */
  async function appendRecord(archived: readonly ArchivedAggregate[], after?: AppendedRecord): Promise<AppendedRecord | undefined> {
    const expected = after?.position ?? (await store.lastPosition(ARCHIVE_AGGREGATE, ARCHIVE_ID));
    const previous = after ?? (expected > 0 ? await store.commitAt(expected) : undefined);
    const at = new Date(clock.now()).toISOString();
    const events = archived.map((data) => ({ type: ARCHIVED, data: data as unknown as Record<string, unknown>, at }));
    const commit: Commit = {
      commandId: `archive-${expected}`,
      commandType: 'Archive',
      aggregate: ARCHIVE_AGGREGATE,
      id: ARCHIVE_ID,
      version: (previous?.version ?? 0) + events.length,
      events,
      metadata: { correlationId: `archive-${expected}`, causationId: `archive-${expected}` },
    };
    try {
      return { position: (await store.append(commit, expected)).position, version: commit.version };
    } catch (err) {
      if (err instanceof WrongExpectedPositionError) return undefined;
      throw err;
    }
  }

  async function waitForIndex(position: number): Promise<void> {
    const deadline = Date.now() + indexWaitMs;
    while (index.applied() < position) {
      if (Date.now() >= deadline) throw new Error(`the archive index has not applied record ${position} within ${indexWaitMs} ms`);
      await sleep(10);
    }
  }

  async function oneRound(): Promise<number> {
    // First the removals a round that died left undone, then the recheck: a recheck can take
    // a while, and the removal checkpoint should not wait for it.
    await removeCopied();
    if (recheckPending) {
      recheckPending = false;
      const done = await removeCopied(true).catch((err: unknown) => {
        recheckPending = true;
        throw err;
      });
      // The index is behind the store: the recheck waits for it.
      if (!done) recheckPending = true;
    }
    settleRemovals();
    // Copy nothing while the index lacks a record the store holds: its aggregates would be copied twice.
    if ((await store.nextPosition(ARCHIVE_AGGREGATE, ARCHIVE_ID, index.applied())) > 0) return 0;
    const list = dueNow();
    due = list.length;
    lagMs = list.length === 0 ? 0 : Math.max(0, clock.now() - Math.min(...list.map((d) => d.dueAt)));
    let count = 0;
    // The round's records one after another, each expecting the last; then the check and the
    // removal of all of them at once (removal goes by the records the index holds, so a round
    // that dies between them is finished by the next).
    let last: AppendedRecord | undefined;
    for (const record of splitRecords(await copy(list), maxRecordBytes)) {
      if (halted()) break;
      const appended = await appendRecord(record, last);
      if (appended === undefined) break;
      last = appended;
      count += record.length;
      log.info({ record: appended.position, aggregates: record.length, commits: record.reduce((n, a) => n + a.commits.length, 0) }, 'archived finished aggregates');
    }
    if (last && !halted()) {
      await waitForIndex(last.position);
      await removeCopied();
    }
    archivedCount += count;
    lastRoundAt = Date.now();
    error = undefined;
    return count;
  }

  const round = (): Promise<number> => {
    const next = (inRound ?? Promise.resolve(0)).catch(() => 0).then(oneRound);
    inRound = next;
    return next;
  };

  async function run(): Promise<void> {
    const share = opts.maxShare ?? 1;
    while (running) {
      let archived = 0;
      const began = Date.now();
      paused = await flag.get().catch(() => paused);
      if (!paused) {
        try {
          archived = await round();
        } catch (err) {
          error = (err as Error).message;
          log.warn({ err }, 'archive round failed; the next round goes on from what is recorded');
        }
      }
      // After a round that archived anything, a rest that keeps the archiver's work within its
      // share of the time; a full round is followed by the next after that rest alone, any
      // other after `intervalMs` at least.
      const rest = archived > 0 ? ((Date.now() - began) * (1 - share)) / share : 0;
      const waitMs = archived >= opts.batchSize ? rest : Math.max(rest, opts.intervalMs);
      if (running && waitMs > 0) await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, waitMs).unref();
      });
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      stopped = false;
      announced = undefined;
      // Whoever takes the lease rechecks, this process again too: a stop may have cut short
      // the recheck a reconnect asked for (the lease is often lost in the same outage).
      recheckPending = true;
      loop = run();
    },
    async stop() {
      running = false;
      stopped = true;
      wake?.();
      await loop;
      await inRound?.catch(() => undefined);
    },
    recheck() {
      recheckPending = true;
      // nats-server may have lost the announcement too.
      announced = undefined;
      wake?.();
    },
    async pause() {
      await flag.set(true);
      paused = true;
    },
    async resume() {
      await flag.set(false);
      paused = false;
      wake?.();
    },
    round,
    status: (active) => ({
      state: paused ? 'paused' : active ? 'running' : 'idle',
      due: active ? due : 0,
      lagMs: active ? lagMs : 0,
      archived: archivedCount,
      purgedThrough: index.purged(),
      lastRoundAt: lastRoundAt === undefined ? null : new Date(lastRoundAt).toISOString(),
      ...(error ? { error } : {}),
    }),
  };
}
