import { isDeepStrictEqual } from 'node:util';
import { ARCHIVE_AGGREGATE, ARCHIVE_ID, ARCHIVED, type ArchivedAggregate, type ArchivedCommit } from '../core/archive.js';
import { EventStoreUnavailableError, ShuttingDownError } from '../core/errors.js';
import type { EventStore, StoredCommit } from '../core/eventStore.js';
import type { ArchiveIndex } from '../store/archiveIndex.js';

/** Problems listed per section of a verify; the rest are only counted. */
const MAX_PROBLEMS = 50;
const CHUNK = 1000;
/** Positions looked up at once. */
const LOOKUPS = 32;

/** What `converge verify` found of the archive (docs/architecture.md, "Archive"). */
export interface ArchiveReport {
  readonly ok: boolean;
  /** The archive's records read: those in `EVENTS` when the scan ended. */
  readonly records: number;
  /** Positions up to the stream's last position (as verify began) that the archive holds. */
  readonly commits: number;
  /** Of those, the ones still in `EVENTS` too: copied by a record after `purgedThrough`, not yet removed by the archiver. */
  readonly copiedNotRemoved: number;
  /** The last record whose commits this host's index says the archiver removed from `EVENTS`, read before the scan. */
  readonly purgedThrough: number;
  /** At most `MAX_PROBLEMS`; `problemCount` has them all. */
  readonly problems: string[];
  readonly problemCount: number;
}

/** Whether each aggregate's history, archived and live commits merged, has its versions in sequence. */
export interface HistoriesReport {
  readonly ok: boolean;
  /** Aggregates (process instances and the archive's own subject among them) whose commits were walked. */
  readonly aggregates: number;
  readonly problems: string[];
  readonly problemCount: number;
}

/** Problems noted in order, the first `MAX_PROBLEMS` kept. */
function problemList() {
  const problems: string[] = [];
  let count = 0;
  return {
    problems,
    note(problem: string) {
      count++;
      if (problems.length < MAX_PROBLEMS) problems.push(problem);
    },
    count: () => count,
  };
}

/**
 * Checks that the versions of each aggregate's commits follow one another: the version after
 * a commit is the version before it plus its event count. Given every commit in position
 * order (the fold's, archived ones merged in), a commit lost between archive and `EVENTS`
 * shows as a gap, and one delivered twice as a repeat.
 */
export function historyChecker(): { add(commit: StoredCommit): void; report(): HistoriesReport } {
  const versions = new Map<string, number>();
  const list = problemList();
  return {
    add(commit) {
      const key = `${commit.aggregate}/${commit.id}`;
      const before = versions.get(key) ?? 0;
      const expected = before + commit.events.length;
      if (commit.version !== expected) {
        const what = commit.version > expected ? 'commits are missing before it' : 'it repeats versions';
        list.note(`${commit.aggregate} ${commit.id}: the commit at position ${commit.position} has version ${commit.version}, not ${expected} (${before} + ${commit.events.length} events): ${what}`);
      }
      versions.set(key, commit.version);
    },
    report: () => ({ ok: list.count() === 0, aggregates: versions.size, problems: list.problems, problemCount: list.count() }),
  };
}

const LIVE = 1;
/** In a record at or before `purgedThrough`: the archiver has removed it from `EVENTS`. */
const REMOVED = 2;
/** In a later record: it may still be live. */
const COPIED = 4;

/** What `checkArchive` answers: the report, and how many positions are in neither place (the fold cannot pass them). */
export interface ArchiveCheck {
  readonly report: ArchiveReport;
  readonly lost: number;
}

/**
 * Checks the archive against `EVENTS` as they are (not read through the archive): every
 * position up to `lastPosition` is live or archived; an archived position is in one record
 * only; and it is not live any more once the archiver has removed what its record copied.
 * A position in a record after the index's `purged` checkpoint may be both: the archiver
 * copies before it removes, and a round that died in between is finished by the next.
 *
 * The checkpoint is read first, then the live positions (a pass over `EVENTS` that decodes
 * only the archive's records, and a look-up of what it missed), then the records appended
 * meanwhile: the archiver appends a record before it removes what it copied, so a commit gone
 * from `EVENTS` before it was seen is in a record read by the end, and one removed after it
 * was seen is in a record after the checkpoint. Memory: one byte per position, and never a
 * whole record.
 */
export async function checkArchive(opts: {
  readonly raw: EventStore;
  readonly index: ArchiveIndex;
  readonly lastPosition: number;
  readonly signal?: AbortSignal | undefined;
}): Promise<ArchiveCheck> {
  const { raw, index, lastPosition } = opts;
  const purgedThrough = index.purged();
  const flags = new Uint8Array(lastPosition + 1);
  const list = problemList();
  let records = 0;
  let lastRecord = 0;
  const seen = new Set<number>();
  const record = (commit: StoredCommit) => {
    if (seen.has(commit.position)) return;
    seen.add(commit.position);
    records++;
    lastRecord = Math.max(lastRecord, commit.position);
    const mark = commit.position <= purgedThrough ? REMOVED : COPIED;
    for (const event of commit.events) {
      if (event.type !== ARCHIVED) continue;
      const { aggregate, id, commits } = event.data as unknown as Partial<ArchivedAggregate>;
      if (typeof aggregate !== 'string' || typeof id !== 'string' || !Array.isArray(commits) || !commits.every((c) => Number.isInteger(c?.position) && c.position > 0)) {
        list.note(`the archive record at ${commit.position} has an ${ARCHIVED} event that is not an archived aggregate with its commits`);
        continue;
      }
      for (const c of commits) {
        if (c.aggregate !== aggregate || c.id !== id) list.note(`the archive record at ${commit.position} lists the commit at ${c.position} (${c.aggregate} ${c.id}) under ${aggregate} ${id}`);
        if (c.position >= commit.position) list.note(`the archive record at ${commit.position} holds position ${c.position}, which is not before it`);
        if (c.position > lastPosition) continue;
        if (flags[c.position]! & (REMOVED | COPIED)) list.note(`position ${c.position} (${c.aggregate} ${c.id}) is in more than one archive record: again in the one at ${commit.position}, ${sameAsIndexed(index, c)}`);
        flags[c.position]! |= mark;
      }
    }
  };
  const found = (commit: StoredCommit) => {
    if (commit.position <= lastPosition) flags[commit.position]! |= LIVE;
    if (commit.aggregate === ARCHIVE_AGGREGATE) record(commit);
  };
  await scanLive(opts, found);
  await lookUpHoles(raw, flags, found);
  // Last: a commit removed before it was looked up is in a record appended before that.
  for await (const commit of raw.read(ARCHIVE_AGGREGATE, ARCHIVE_ID, lastRecord)) record(commit);

  let commits = 0;
  let copiedNotRemoved = 0;
  let lost = 0;
  const lostRanges = ranges();
  const doubleRanges = ranges();
  for (let p = 1; p <= lastPosition; p++) {
    const f = flags[p]!;
    if (f & (REMOVED | COPIED)) commits++;
    if (f === 0) {
      lost++;
      lostRanges.add(p);
    } else if (f & LIVE && f & REMOVED) doubleRanges.add(p);
    else if (f & LIVE && f & COPIED) copiedNotRemoved++;
  }
  for (const r of lostRanges.done()) list.note(`${r} in neither EVENTS nor the archive`);
  for (const r of doubleRanges.done()) list.note(`${r} still in EVENTS, though archived by a record the archiver has removed its commits for (through ${purgedThrough})`);
  const report = { ok: list.count() === 0, records, commits, copiedNotRemoved, purgedThrough, problems: list.problems, problemCount: list.count() };
  return { report, lost };
}

/**
 * Looks up, one by one, the positions the pass found neither live nor archived. nats-server
 * 2.9.10 (before nats-io/nats-server#3838) moves every consumer of a stream past all it has
 * not delivered yet when a subject is purged, as the archiver removes what it copied; a pass
 * the archiver overtook has holes that are still live (or are records, which archive more).
 */
async function lookUpHoles(raw: EventStore, flags: Uint8Array, found: (commit: StoredCommit) => void): Promise<void> {
  const holes: number[] = [];
  for (let p = 1; p < flags.length; p++) if (flags[p] === 0) holes.push(p);
  for (let i = 0; i < holes.length; i += LOOKUPS) {
    const commits = await Promise.all(holes.slice(i, i + LOOKUPS).map((p) => raw.commitAt(p)));
    for (const commit of commits) if (commit) found(commit);
  }
}

/** Whether a second copy of an archived commit is the one the index holds. */
function sameAsIndexed(index: ArchiveIndex, copy: ArchivedCommit): string {
  const held = index.commitAt(copy.position);
  if (!held) return 'which the index does not hold';
  return isDeepStrictEqual(held, copy) ? 'an identical copy' : 'a different commit from the one the index holds';
}

/** Consecutive positions gathered into `positions a–b are` phrases. */
function ranges() {
  const out: string[] = [];
  let from = 0;
  let to = 0;
  const flush = () => {
    if (from > 0) out.push(from === to ? `position ${from} is` : `positions ${from}–${to} are`);
  };
  return {
    add(p: number) {
      if (from > 0 && p === to + 1) return void (to = p);
      flush();
      from = to = p;
    },
    done(): string[] {
      flush();
      from = 0;
      return out;
    },
  };
}

/**
 * Every commit live in `EVENTS` up to `lastPosition`, the archive's records decoded and the
 * rest passed over. Ends at `lastPosition` or at the store's last live commit, whichever
 * comes first: the commits after a record's may all be archived.
 */
async function scanLive(opts: { readonly raw: EventStore; readonly lastPosition: number; readonly signal?: AbortSignal | undefined }, each: (commit: StoredCommit) => void): Promise<void> {
  const { raw, lastPosition } = opts;
  const head = await raw.head();
  if (lastPosition === 0 || head.firstPosition > head.lastPosition) return;
  const delivered = await raw.subscribe(0, { batchSize: CHUNK, only: new Set([ARCHIVE_AGGREGATE]) });
  let lost = false;
  const watchdog = setInterval(() => {
    if (raw.isAvailable()) return;
    lost = true;
    delivered.close();
  }, 1000);
  const abort = () => delivered.close();
  opts.signal?.addEventListener('abort', abort);
  let reached = 0;
  let ended = false;
  try {
    for await (const { commit, head: known } of delivered) {
      each(commit);
      reached = commit.position;
      if (reached >= lastPosition || known <= reached) {
        ended = true;
        break;
      }
    }
  } finally {
    clearInterval(watchdog);
    opts.signal?.removeEventListener('abort', abort);
    delivered.close();
  }
  if (opts.signal?.aborted) throw new ShuttingDownError();
  if (lost || !ended) throw new EventStoreUnavailableError(`the event store went away while verify read the archive (at ${reached} of ${lastPosition})`);
}
