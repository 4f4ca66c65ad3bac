import { pino } from 'pino';
import { DeliverPolicy } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { ARCHIVED, type ArchivedAggregate } from '../src/core/archive.js';
import type { Commit } from '../src/core/eventStore.js';
import type { NatsLink } from '../src/nats/connection.js';
import type { NatsAuth } from '../src/nats/auth.js';
import { connectNats } from '../src/nats/connection.js';
import { REACTIONS_BUCKET, type ParkedReaction } from '../src/react/reactionStore.js';
import { decodeStoredCommit, EVENTS } from '../src/store/eventStream.js';
import type { Copy, Shop } from '../examples/subscriber.js';
import { fullImport } from '../examples/subscriber.js';
import type { Ack } from './load.js';
import { ReactionScan, type ReactionProgress } from './reactionChecks.js';
import { ARCHIVE_SUBJECT } from './world.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * What the archive's records held, read from `EVENTS` beside its live commits. Positions
 * after the store's last sequence at the read are left out.
 */
export interface ArchiveScan {
  readonly records: number;
  /** Positions archived, each counted once. */
  readonly commits: number;
  readonly aggregates: number;
  /** Archived and still live: copied by a record the archiver had not removed the commits of (after `purgedThrough`), or with it unknown. */
  readonly copiedNotRemoved: number;
  /** The archiver's checkpoint as the admin API gave it before the read; undefined when the cluster was not asked. */
  readonly purgedThrough?: number;
  /** Positions in more than one record. */
  readonly duplicated: string[];
  /** Positions still live though a record at or before `purgedThrough` archived them. */
  readonly removedButLive: string[];
  /** Positions in neither `EVENTS` nor the archive: only the archiver removes commits, and only what a record holds. */
  readonly lost: string[];
}

/** What one store epoch's `EVENTS` (live commits and archive records) holds of the acknowledged commands, and of the reactions. */
export interface StoreCheck {
  readonly epoch: number;
  readonly lastSeq: number;
  readonly acknowledged: number;
  readonly missing: string[];
  readonly duplicated: string[];
  readonly misplaced: string[];
  readonly archive: ArchiveScan;
  /** The last moment the epoch's reactions could run (ms since the epoch): the read, or the stop before a fresh store. */
  readonly endedAt: number;
  readonly reactions: ReactionScan;
  readonly progress: ReactionProgress;
}

/** How a store check is made: its credentials, and for the reaction checks, when the epoch ended and how far its reactions were waited for. */
export interface StoreCheckOptions {
  readonly auth?: NatsAuth;
  /** When the cluster on this store began to stop; by default, the time of the read. */
  readonly endedAt?: number;
  /** The position every reaction was waited for before the read. */
  readonly settledTo?: number;
  /** The archiver's `purgedThrough`, read from the admin API before the read. */
  readonly purgedThrough?: number;
}

/** One commit as found: live in `EVENTS`, or in an archive record (`record`). */
interface Found {
  readonly commit: Commit;
  readonly position: number;
  readonly storedAt: number;
  readonly record?: number;
}

/** A connection of the harness's own to the store. */
const connectCheck = (natsUrl: string, auth?: NatsAuth) => connectNats(natsUrl, { name: 'chaos-check', timeoutMs: 5000, log: pino({ level: 'silent' }), ...(auth ? { auth } : {}) });

/**
 * Reads the whole of `EVENTS` with an ordered consumer, the archive's records unpacked (and
 * those appended after the read's end: the archiver appends a record before it removes what
 * it copied), and checks that every command acknowledged in `epoch` is in it exactly once, at
 * the position its answer gave, live or archived; and that every position is live or archived,
 * archived once, and not live any more once the archiver has removed it. The same pass,
 * archived and live commits merged in position order, gathers what the reaction checks need,
 * after the reactions' checkpoints are read (so that whatever a checkpoint covers is in what
 * is read after it).
 */
export async function checkStore(natsUrl: string, epoch: number, acks: readonly Ack[], opts: StoreCheckOptions = {}): Promise<StoreCheck> {
  const link = await connectCheck(natsUrl, opts.auth);
  const live = new Map<number, Found>();
  const archived = new Map<number, Found>();
  const archive = { records: new Set<number>(), aggregates: new Set<string>(), duplicated: [] as string[] };
  let lastSeq = 0;
  let progress: ReactionProgress;
  let readAt: number;
  const unpack = (seq: number, record: Commit) => {
    if (archive.records.has(seq)) return;
    archive.records.add(seq);
    for (const event of record.events) {
      if (event.type !== ARCHIVED) continue;
      const { aggregate, id, commits } = event.data as unknown as ArchivedAggregate;
      archive.aggregates.add(`${aggregate} ${id}`);
      for (const c of commits) {
        if (c.position > lastSeq) continue;
        const before = archived.get(c.position);
        if (before) archive.duplicated.push(`${c.position} (${aggregate} ${id}) in the records at ${before.record} and ${seq}`);
        else archived.set(c.position, { commit: c, position: c.position, storedAt: c.storedAt, record: seq });
      }
    }
  };
  try {
    progress = { ...(await reactionProgress(link)), ...(opts.settledTo === undefined ? {} : { settledTo: opts.settledTo }) };
    readAt = Date.now();
    const info = await link.jsm.streams.info(EVENTS);
    lastSeq = info.state.last_seq;
    let lastRecord = 0;
    const found = (m: { seq: number; subject: string; time: Date; data: Uint8Array; json<T>(): T }) => {
      if (m.subject === ARCHIVE_SUBJECT) {
        unpack(m.seq, decodeStoredCommit<Commit>(m));
        lastRecord = Math.max(lastRecord, m.seq);
      } else if (m.seq <= lastSeq) live.set(m.seq, { commit: m.json<Commit>(), position: m.seq, storedAt: m.time.getTime() });
    };
    if (info.state.messages > 0) {
      const consumer = await link.js.consumers.get(EVENTS, { deliver_policy: DeliverPolicy.All });
      const messages = await consumer.consume();
      const timer = setTimeout(() => void messages.close(), 60_000);
      for await (const m of messages) {
        found(m);
        // The last message may have been archived since: what is left ends the read too.
        if (m.seq >= lastSeq || m.info.pending === 0) break;
      }
      clearTimeout(timer);
    }
    // nats-server 2.9.10 moves every consumer of EVENTS past what it has not delivered yet when
    // the archiver purges a subject (nats-io/nats-server#3838): what the read skipped is looked up.
    const holes = Array.from({ length: lastSeq }, (_, i) => i + 1).filter((p) => !live.has(p) && !archived.has(p) && !archive.records.has(p));
    for (let i = 0; i < holes.length; i += 32) {
      const got = await Promise.all(holes.slice(i, i + 32).map((seq) => link.jsm.streams.getMessage(EVENTS, { seq }).catch(() => null)));
      for (const m of got) if (m) found(m);
    }
    // Last: the archiver appends a record before it removes what it copied.
    for (let seq = lastRecord + 1; ; ) {
      const m = await link.jsm.direct.getMessage(EVENTS, { seq, next_by_subj: ARCHIVE_SUBJECT });
      if (!m) break;
      unpack(m.seq, decodeStoredCommit<Commit>(m));
      seq = m.seq + 1;
    }
  } finally {
    await link.close();
  }
  const seqs = new Map<string, number[]>();
  const reactions = new ReactionScan();
  const removedButLive: string[] = [];
  const lost: string[] = [];
  let copiedNotRemoved = 0;
  for (let position = 1; position <= lastSeq; position++) {
    const [inLive, inArchive] = [live.get(position), archived.get(position)];
    const found = inLive ?? inArchive;
    if (archive.records.has(position)) continue;
    if (!found) {
      lost.push(String(position));
      continue;
    }
    if (inLive && inArchive) {
      if (opts.purgedThrough !== undefined && inArchive.record! <= opts.purgedThrough) removedButLive.push(`${position} (${found.commit.aggregate} ${found.commit.id}, record ${inArchive.record})`);
      else copiedNotRemoved++;
    }
    seqs.set(found.commit.commandId, [...(seqs.get(found.commit.commandId) ?? []), position]);
    reactions.add(found.commit, position, found.storedAt);
  }
  const mine = acks.filter((a) => a.epoch === epoch);
  const missing: string[] = [];
  const duplicated: string[] = [];
  const misplaced: string[] = [];
  for (const ack of mine) {
    const found = seqs.get(ack.key) ?? [];
    if (found.length === 0) missing.push(`${ack.key} (${ack.aggregate} ${ack.id} at ${ack.position})`);
    else if (found.length > 1) duplicated.push(`${ack.key} at ${found.join(', ')}`);
    else if (found[0] !== ack.position) misplaced.push(`${ack.key}: answered position ${ack.position}, stored at ${found[0]}`);
  }
  const archiveScan: ArchiveScan = {
    records: archive.records.size,
    commits: archived.size,
    aggregates: archive.aggregates.size,
    copiedNotRemoved,
    ...(opts.purgedThrough === undefined ? {} : { purgedThrough: opts.purgedThrough }),
    duplicated: archive.duplicated,
    removedButLive,
    lost,
  };
  return { epoch, lastSeq, acknowledged: mine.length, missing, duplicated, misplaced, archive: archiveScan, endedAt: opts.endedAt ?? readAt, reactions, progress };
}

/** `GET /admin/archive`: the index's counts and the archiver's checkpoint, or undefined when it does not answer. */
export async function archiveStatus(
  adminUrl: string,
): Promise<{ archivedCommits: number; archivedAggregates: number; indexPosition: number; archiver: { state: string; due: number; lagMs: number; lastRoundAt: string | null; purgedThrough: number; archived: number; error?: string } } | undefined> {
  const res = await fetch(`${adminUrl}/admin/archive`, { signal: AbortSignal.timeout(3000) }).catch(() => undefined);
  if (!res?.ok) return void (await res?.arrayBuffer().catch(() => undefined));
  return (await res.json()) as Awaited<ReturnType<typeof archiveStatus>>;
}

/** The reactions' checkpoints and parked inputs, from their bucket (none before any reaction ran). */
async function reactionProgress(link: NatsLink): Promise<Omit<ReactionProgress, 'settledTo'>> {
  const kv = await new Kvm(link.js).open(REACTIONS_BUCKET).catch(() => undefined);
  const checkpoints: Record<string, number> = {};
  const parked: string[] = [];
  if (!kv) return { checkpoints, parked };
  for await (const key of await kv.keys()) {
    const entry = await kv.get(key);
    if (!entry || entry.operation !== 'PUT') continue;
    if (key.startsWith('cp.')) checkpoints[key.slice(3)] = Number(entry.string());
    else if (key.startsWith('pk.')) {
      const p = entry.json<ParkedReaction>();
      parked.push(`${p.reaction} ${p.type} at ${p.position}:${p.eventIndex} (${p.aggregate} ${p.id}): ${p.error}`);
    }
  }
  return { checkpoints, parked };
}

/** The stream's last sequence now. */
export async function streamLastSeq(natsUrl: string, auth?: NatsAuth): Promise<number> {
  const link = await connectCheck(natsUrl, auth);
  try {
    return (await link.jsm.streams.info(EVENTS)).state.last_seq;
  } finally {
    await link.close();
  }
}

/** A projection, reactor or process as the admin API lists it: how far it has handled `EVENTS`. */
interface Progress {
  name: string;
  position: number;
  state: string;
}

/** One projection as `GET /admin/projections` lists it. */
interface ProjectionStatus extends Progress {
  lagEvents: number;
}

/** Polls `path` of the admin API until every item of its `list` is at `position` or past it, or `ms` have passed; the items last seen. */
async function waitAllAt<T extends Progress>(adminUrl: string, path: string, list: string, position: number, ms: number): Promise<{ ok: boolean; items: T[]; waitedMs: number }> {
  const started = Date.now();
  let items: T[] = [];
  for (;;) {
    const res = await fetch(`${adminUrl}${path}`, { signal: AbortSignal.timeout(3000) }).catch(() => undefined);
    if (res?.ok) items = ((await res.json()) as Record<string, T[]>)[list] ?? [];
    else await res?.arrayBuffer().catch(() => undefined);
    const ok = items.length > 0 && items.every((p) => p.position >= position);
    if (ok || Date.now() - started > ms) return { ok, items, waitedMs: Date.now() - started };
    await sleep(250);
  }
}

/** Waits up to `ms` for every projection to reach `lastSeq`; the statuses last seen. */
export async function waitCaughtUp(adminUrl: string, lastSeq: number, ms: number): Promise<{ ok: boolean; projections: ProjectionStatus[]; waitedMs: number }> {
  // Processes append decisions of their own after the load stops, so the stream may have gone on past `lastSeq`.
  const { items, ...rest } = await waitAllAt<ProjectionStatus>(adminUrl, '/admin/projections', 'projections', lastSeq, ms);
  return { ...rest, projections: items };
}

/** Waits up to `ms` for every reactor and process to have handled everything up to `position`; their statuses last seen. */
export async function waitReactionsSettled(adminUrl: string, position: number, ms: number): Promise<{ ok: boolean; reactions: Progress[]; waitedMs: number }> {
  const { items, ...rest } = await waitAllAt(adminUrl, '/admin/reactions', 'reactions', position, ms);
  return { ...rest, reactions: items };
}

/** `POST /admin/verify`: its status and body as it answered. */
export async function verifyViews(adminUrl: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${adminUrl}/admin/verify`, { method: 'POST', signal: AbortSignal.timeout(120_000) }).catch((err: unknown) => err);
  if (!(res instanceof Response)) return { status: 0, body: String(res) };
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as unknown };
  } catch {
    return { status: res.status, body: text };
  }
}

/** A JSON text with sorted keys, so equal documents compare equal whatever their key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** How a subscriber's copy differs from the views' `GET /import/shops`. */
export interface CopyDiff {
  readonly views: number;
  readonly copy: number;
  readonly missing: string[];
  readonly extra: string[];
  readonly different: string[];
}

/** Compares `copy` with a full import of the views, shop by shop. */
export async function diffCopy(queryUrl: string, copy: Copy): Promise<CopyDiff> {
  const views: Copy = new Map();
  await fullImport(queryUrl, views, 3);
  const missing = [...views.keys()].filter((id) => !copy.has(id));
  const extra = [...copy.keys()].filter((id) => !views.has(id));
  const different = [...views].filter(([id, shop]) => copy.has(id) && canonical(copy.get(id) as Shop) !== canonical(shop)).map(([id]) => id);
  return { views: views.size, copy: copy.size, missing, extra, different };
}

/** Compares the copy with the views until they agree or `ms` has passed (notices are asynchronous). */
export async function waitCopyEqual(queryUrl: string, copy: Copy, ms: number): Promise<CopyDiff & { waitedMs: number }> {
  const started = Date.now();
  for (;;) {
    const diff = await diffCopy(queryUrl, copy).catch((err: unknown) => ({ views: -1, copy: copy.size, missing: [], extra: [], different: [String(err)] }));
    const equal = diff.views >= 0 && diff.missing.length + diff.extra.length + diff.different.length === 0;
    if (equal || Date.now() - started > ms) return { ...diff, waitedMs: Date.now() - started };
    await sleep(500);
  }
}
