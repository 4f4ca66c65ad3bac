import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import type { Database, Transaction } from 'lmdb';
import type { Logger } from 'pino';
import type { AnyAggregate } from '../core/aggregate.js';
import { EventStoreUnavailableError, ShuttingDownError } from '../core/errors.js';
import type { EventStore, StoreHead, StoredCommit } from '../core/eventStore.js';
import type { AnyProjection, ViewKey } from '../core/projection.js';
import type { ArchiveIndex } from '../store/archiveIndex.js';
import { applyBatch, upcaster, type Target } from './apply.js';
import { openViewStore, type LmdbGeneration, type LmdbViewStore } from './lmdbViews.js';
import { NOTIFIER_CHECKPOINT, checkpoints, checkpointsPastEnd, recordedIdentity, sameStore } from './storeIdentity.js';
import { decodeDoc, LAST, keyString, type ParkedEvent } from './viewStore.js';
import { checkArchive, historyChecker, type ArchiveCheck, type ArchiveReport, type HistoriesReport } from './verifyArchive.js';

export type { ArchiveReport, HistoriesReport } from './verifyArchive.js';

/** One document that differs between the live view and a fold of the event store. */
export interface Difference {
  readonly key: unknown;
  /** `missing`: the fold has it, the view does not; `extra`: the other way round. */
  readonly kind: 'missing' | 'extra' | 'different';
  readonly expected?: unknown;
  readonly actual?: unknown;
}

/** How one view compares with the fold of commits 1..`position`. */
export interface ProjectionReport {
  readonly name: string;
  readonly position: number;
  readonly documents: number;
  readonly checked: number;
  /** At most `MAX_LISTED`; `differenceCount` has them all. */
  readonly differences: Difference[];
  readonly differenceCount: number;
  readonly indexDifferences: number;
}

/**
 * What `converge verify` answers. `ok` only when no view differs, the checkpoints fit the
 * stream, every aggregate's versions follow one another, and the archive (where there is
 * one) holds what `EVENTS` lacks, once.
 */
export interface VerifyReport {
  readonly ok: boolean;
  readonly streamLastPosition: number;
  /** Empty when the fold could not pass a position that is in neither `EVENTS` nor the archive (the archive's problems say which). */
  readonly projections: ProjectionReport[];
  readonly checkpoints: { ok: boolean; problems: string[] };
  /** Each aggregate's history as the fold walked it, archived and live commits merged. */
  readonly histories: HistoriesReport;
  /** The archive against `EVENTS`, when the store has one (`VerifyOptions.archive`). */
  readonly archive?: ArchiveReport;
}

export interface VerifyOptions {
  readonly store: EventStore;
  readonly views: LmdbViewStore;
  readonly projections: readonly AnyProjection[];
  readonly aggregates: readonly AnyAggregate[];
  readonly log: Logger;
  /** Check this many documents picked at random from the view, and as many from the fold; all when undefined. */
  readonly sample?: number;
  /** Where the scratch view store goes; the system's temp directory by default. */
  readonly scratchDir?: string;
  /** Aborts the run (the projector is stopping): it then throws `ShuttingDownError`. */
  readonly signal?: AbortSignal;
  /**
   * The archive, when `store` reads through it: the host's index and the store as it is.
   * Verify then checks the archive's records against `EVENTS` too (see `checkArchive`).
   */
  readonly archive?: { readonly index: ArchiveIndex; readonly raw: EventStore } | undefined;
}

/** Differences listed per projection; the rest are only counted. */
export const MAX_LISTED = 50;
const CHUNK = 1000;
const PROGRESS_MS = 5000;

type Db = Database<unknown, ViewKey>;
interface LiveState {
  readonly projection: AnyProjection;
  readonly gen: number;
  readonly position: number;
  readonly parked: Set<string>;
}

/**
 * Compares every view (or a sample of its documents) with a fold of the event store,
 * and checks that the checkpoints fit the stream.
 *
 * The fold is the projector's own `applyBatch` with the same upcaster, run over commits
 * 1..P into a scratch LMDB store on disk (memory stays bounded however large the store),
 * where P is the view's checkpoint. The live view keeps changing meanwhile, so the view
 * is read in one LMDB read transaction opened before the fold: P, the documents, the
 * index and the parked events are all as of the same instant. That snapshot keeps LMDB
 * from reusing pages freed during the run, so the views file may grow while a long
 * verify runs. Parked events were skipped live, so the fold skips them too.
 *
 * The fold reads the store through the archive, so archived commits are folded where their
 * positions are; it also checks that each aggregate's versions follow one another. With
 * `archive`, the archive is checked against `EVENTS` as it is, before the fold.
 */
export async function verifyViews(opts: VerifyOptions): Promise<VerifyReport> {
  const { store, views, log } = opts;
  const head = await storeHead(store);
  const lastSeq = head.lastPosition;
  const txn = views.env.useReadTransaction();
  const dir = mkdtempSync(join(opts.scratchDir ?? tmpdir(), 'converge-verify-'));
  const scratch = openViewStore(dir);
  try {
    const live = opts.projections.map((projection) => liveState(views, projection, txn));
    const problems = checkpointProblems(views, txn, head);
    // With an archive, the positions before the live stream's first are checked one by one instead.
    if (!opts.archive && head.firstPosition > 1 && lastSeq > 0) problems.push(`the stream starts at position ${head.firstPosition}: earlier commits are gone, so the fold cannot match`);
    log.info({ projections: live.map((l) => ({ name: l.projection.name, position: l.position })), streamLastPosition: lastSeq, sample: opts.sample ?? null }, 'verify started');
    const archived = opts.archive ? await archiveCheck(opts, lastSeq) : undefined;
    const histories = historyChecker();
    try {
      await fold(opts, scratch, live, lastSeq, histories.add);
    } catch (err) {
      // The archive check has said which positions are gone; the views cannot be compared past them.
      if (!(err instanceof EventStoreUnavailableError) || !archived || archived.lost === 0) throw err;
      log.warn({ err, problems: archived.report.problems }, 'verify finished: positions are in neither EVENTS nor the archive, so the views were not compared');
      const report = { ...archived.report, problems: [...archived.report.problems, `the views were not compared: the fold stopped at a position in neither EVENTS nor the archive (${err.message})`] };
      return { ok: false, streamLastPosition: lastSeq, projections: [], checkpoints: { ok: problems.length === 0, problems }, histories: histories.report(), archive: report };
    }
    const projections: ProjectionReport[] = [];
    for (const state of live) {
      if (opts.signal?.aborted) throw new ShuttingDownError();
      const report = await compare(state, views.lmdb(state.projection.name, state.gen), scratch.lmdb(state.projection.name, 1), txn, opts.sample);
      log.info({ projection: report.name, checked: report.checked, differences: report.differenceCount, indexDifferences: report.indexDifferences }, 'verify compared a view');
      projections.push(report);
    }
    const history = histories.report();
    const ok = problems.length === 0 && projections.every((p) => p.differenceCount === 0 && p.indexDifferences === 0) && history.ok && (archived?.report.ok ?? true);
    log[ok ? 'info' : 'warn']({ ok, problems, histories: history.problems, archive: archived?.report.problems }, 'verify finished');
    return { ok, streamLastPosition: lastSeq, projections, checkpoints: { ok: problems.length === 0, problems }, histories: history, ...(archived ? { archive: archived.report } : {}) };
  } finally {
    txn.done();
    await scratch.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The archive against `EVENTS` up to `lastSeq`. */
async function archiveCheck(opts: VerifyOptions, lastSeq: number): Promise<ArchiveCheck> {
  const { index, raw } = opts.archive!;
  const check = await checkArchive({ raw, index, lastPosition: lastSeq, signal: opts.signal });
  opts.log.info({ records: check.report.records, commits: check.report.commits, copiedNotRemoved: check.report.copiedNotRemoved, problems: check.report.problemCount }, 'verify checked the archive');
  return check;
}

async function storeHead(store: EventStore): Promise<StoreHead> {
  if (!store.isAvailable()) throw new EventStoreUnavailableError('the event store is unavailable; verify needs it to fold the views');
  try {
    return await store.head();
  } catch (err) {
    throw new EventStoreUnavailableError('the event store is unavailable; verify needs it to fold the views', { cause: err });
  }
}

function liveState(views: LmdbViewStore, projection: AnyProjection, transaction: Transaction): LiveState {
  const meta = views.meta;
  const gen = (meta.get(['active', projection.name], { transaction }) as number | undefined) ?? 1;
  const position = (meta.get(['checkpoint', projection.name, gen], { transaction }) as number | undefined) ?? 0;
  const parked = new Set<string>();
  for (const { value } of meta.getRange({ start: ['parked', projection.name], end: ['parked', projection.name, LAST], transaction })) {
    const p = value as ParkedEvent;
    parked.add(`${p.position}/${p.eventIndex}`);
  }
  return { projection, gen, position, parked };
}

/** Checkpoints past the stream's end, and a recorded store identity that is not this stream's. */
function checkpointProblems(views: LmdbViewStore, txn: Transaction, head: StoreHead): string[] {
  const lastSeq = head.lastPosition;
  const problems: string[] = [];
  const active = new Map<string, number>();
  for (const { key, value } of views.meta.getRange({ start: ['active'], end: ['active', LAST], transaction: txn })) active.set(String(key[1]), value as number);
  // Only what readers see, the active generations, and the notifier's: a generation being rebuilt serves no one yet.
  const current = checkpoints(views, txn).filter((c) => c.projection === NOTIFIER_CHECKPOINT || (active.get(c.projection) ?? 1) === c.gen);
  for (const { projection, position } of checkpointsPastEnd(current, lastSeq)) {
    problems.push(`${projection === NOTIFIER_CHECKPOINT ? 'the notifier' : projection} is at position ${position}, past the stream's last position ${lastSeq}`);
  }
  const recorded = recordedIdentity(views, txn);
  const live = head.identity;
  if (!recorded) problems.push('no event store identity is recorded with the views');
  else if (!sameStore(recorded, live)) problems.push(`the views were built from event store ${JSON.stringify(recorded)}, not ${JSON.stringify(live)}`);
  return problems;
}

/**
 * Folds commits 1..max(P) into the scratch store, each view up to its own P, without its
 * parked events. A P past the stream's end folds the whole stream (the checkpoint is
 * reported anyway): waiting for commits that do not exist would never end. `walked` sees
 * every commit, in position order, before its parked events are left out.
 */
async function fold(opts: VerifyOptions, scratch: LmdbViewStore, live: readonly LiveState[], lastSeq: number, walked: (commit: StoredCommit) => void): Promise<void> {
  const { store, log } = opts;
  const until = Math.min(lastSeq, Math.max(0, ...live.map((l) => l.position)));
  if (until === 0) return;
  const upcast = upcaster(opts.aggregates);
  const targets = live.map((l) => ({ state: l, target: { projection: l.projection, gen: 1 } satisfies Target }));
  const now = () => new Date().toISOString();
  const flush = (batch: StoredCommit[]) => {
    // Views that take the whole batch share one transaction: each scratch commit is a disk flush.
    const end = batch[batch.length - 1]!.position;
    const whole = targets.filter((t) => t.state.position >= end && t.state.parked.size === 0).map((t) => t.target);
    if (whole.length > 0) applyBatch(scratch, whole, batch, upcast, now);
    for (const { state, target } of targets) {
      if (whole.includes(target)) continue;
      const mine = batch.filter((c) => c.position <= state.position).map((c) => withoutParked(c, state.parked));
      if (mine.length > 0) applyBatch(scratch, [target], mine, upcast, now);
    }
  };
  let batch: StoredCommit[] = [];
  let lastLog = Date.now();
  let reached = 0;
  let lost = false;
  /** Folds what a subscription after `reached` delivers, up to `until`. */
  const pass = async () => {
    const delivered = await store.subscribe(reached, { batchSize: CHUNK });
    // A subscription waits through an outage of the store; verify gives up instead of hanging.
    const watchdog = setInterval(() => {
      if (store.isAvailable()) return;
      lost = true;
      delivered.close();
    }, 1000);
    const abort = () => delivered.close();
    opts.signal?.addEventListener('abort', abort);
    try {
      for await (const { commit, head } of delivered) {
        walked(commit);
        batch.push(commit);
        reached = commit.position;
        if (batch.length >= CHUNK || commit.position >= until || head <= commit.position) {
          flush(batch);
          batch = [];
          if (Date.now() - lastLog >= PROGRESS_MS) {
            lastLog = Date.now();
            log.info({ folded: reached, of: until }, 'verify folding the event store');
          }
        }
        if (commit.position >= until) break;
      }
    } finally {
      clearInterval(watchdog);
      opts.signal?.removeEventListener('abort', abort);
      delivered.close();
    }
  };
  // The archiver's removal can make nats-server move the subscription past commits it has not
  // delivered (see `lookUpHoles` in verifyArchive.ts), which the archived store reports as a
  // gap: the fold goes on from where it was, as long as each try gets further.
  for (let from = -1; reached > from && reached < until && !lost && !opts.signal?.aborted; ) {
    from = reached;
    try {
      await pass();
    } catch (err) {
      if (!(err instanceof EventStoreUnavailableError) || !store.isAvailable() || reached === from) throw err;
      log.info({ at: reached, err: err.message }, 'verify folding again from where its subscription lost its place');
    }
  }
  if (opts.signal?.aborted) throw new ShuttingDownError();
  if (batch.length > 0) flush(batch);
  if (lost || reached < until) throw new EventStoreUnavailableError(`the event store went away while verify folded it (at ${reached} of ${until})`);
}

function withoutParked(commit: StoredCommit, parked: Set<string>): StoredCommit {
  if (parked.size === 0 || !commit.events.some((_, i) => parked.has(`${commit.position}/${i}`))) return commit;
  return { ...commit, events: commit.events.filter((_, i) => !parked.has(`${commit.position}/${i}`)) };
}

/** Compares a live generation (as of `txn`) with the scratch one: every document and index entry, or a sample. */
async function compare(state: LiveState, live: LmdbGeneration, expected: LmdbGeneration, txn: Transaction, sample: number | undefined): Promise<ProjectionReport> {
  const differences: Difference[] = [];
  let differenceCount = 0;
  let indexDifferences = 0;
  let checked = 0;
  const note = (d: Difference) => {
    differenceCount++;
    if (differences.length < MAX_LISTED) differences.push(d);
  };
  // Documents compare as JSON: their positions (ETags) may differ where a parked event was applied again.
  const check = (key: ViewKey, actualBytes: unknown, wantedBytes: unknown) => {
    checked++;
    const [actual, wanted] = [asDoc(actualBytes), asDoc(wantedBytes)];
    if (wanted === undefined) note({ key, kind: 'extra', actual });
    else if (actual === undefined) note({ key, kind: 'missing', expected: wanted });
    else if (!isDeepStrictEqual(actual, wanted)) note({ key, kind: 'different', expected: wanted, actual });
  };
  const liveDocs = live.docs as Db;
  const documents = liveDocs.getCount({ transaction: txn });

  if (sample === undefined) {
    for await (const { key, value } of entries(liveDocs, txn)) check(key, value, expected.docs.get(key));
    for await (const { key, value } of entries(expected.docs as Db)) if (liveDocs.get(key, { transaction: txn }) === undefined) check(key, undefined, value);
    for await (const { key } of entries(live.index as Db, txn)) if (expected.index.get(key as never) === undefined) indexDifferences++;
    for await (const { key } of entries(expected.index as Db)) if (live.index.get(key as never, { transaction: txn }) === undefined) indexDifferences++;
  } else {
    const picked = new Map<string, ViewKey>();
    for (const key of pick(liveDocs, sample, txn)) picked.set(JSON.stringify(key), key);
    for (const key of pick(expected.docs as Db, sample)) picked.set(JSON.stringify(key), key);
    for (const key of picked.values()) {
      const [actual, wanted] = [liveDocs.get(key, { transaction: txn }), expected.docs.get(key)];
      check(key, actual, wanted);
      indexDifferences += sampledIndexDifferences(state.projection, key, [asDoc(actual), asDoc(wanted)], live, expected, txn);
    }
  }
  return { name: state.projection.name, position: state.position, documents, checked, differences, differenceCount, indexDifferences };
}

/** Index entries of one document (as either side has it) that are missing from one of the two indexes. */
function sampledIndexDifferences(
  projection: AnyProjection,
  key: ViewKey,
  docs: unknown[],
  live: LmdbGeneration,
  expected: LmdbGeneration,
  txn: Transaction,
): number {
  if (!projection.indexes) return 0;
  // The runner suffixes each entry with the document key in this form.
  const suffix = keyString(key);
  const wanted = new Map<string, (string | number)[]>();
  for (const doc of docs) if (doc !== undefined) for (const e of projection.indexes(doc)) wanted.set(JSON.stringify([...e, suffix]), [...e, suffix]);
  let count = 0;
  for (const entry of wanted.values()) {
    const inLive = live.index.get(entry, { transaction: txn }) !== undefined;
    const inFold = expected.index.get(entry) !== undefined;
    if (inLive !== inFold) count++;
  }
  return count;
}

/** A stored document (`encodeDoc`), parsed. */
function asDoc(bytes: unknown): object | undefined {
  return bytes === undefined ? undefined : decodeDoc(bytes as Buffer);
}

/** A database's entries in key order, a chunk at a time, letting the event loop run between chunks. */
async function* entries(db: Db, transaction?: Transaction): AsyncGenerator<{ key: ViewKey; value: unknown }> {
  let after: ViewKey | undefined;
  for (;;) {
    const chunk = [...db.getRange({ ...(after === undefined ? {} : { start: after, exclusiveStart: true }), limit: CHUNK, ...(transaction && { transaction }) })];
    for (const e of chunk) yield e;
    if (chunk.length < CHUNK) return;
    after = chunk[chunk.length - 1]!.key;
    await yieldToLoop();
  }
}

/** Up to `n` keys picked at random, found in one pass over the keys so memory stays at `n`. */
function pick(db: Db, n: number, transaction?: Transaction): ViewKey[] {
  const count = db.getCount(transaction && { transaction });
  const offsets = new Set<number>();
  if (n >= count) for (let i = 0; i < count; i++) offsets.add(i);
  else while (offsets.size < n) offsets.add(Math.floor(Math.random() * count));
  const out: ViewKey[] = [];
  let i = 0;
  for (const key of db.getKeys(transaction && { transaction })) {
    if (offsets.has(i++)) out.push(key);
    if (out.length === offsets.size) break;
  }
  return out;
}
