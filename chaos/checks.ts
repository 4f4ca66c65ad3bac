import { pino } from 'pino';
import { DeliverPolicy } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { Commit } from '../src/core/eventStore.js';
import type { NatsLink } from '../src/nats/connection.js';
import type { NatsAuth } from '../src/nats/auth.js';
import { connectNats } from '../src/nats/connection.js';
import { REACTIONS_BUCKET, type ParkedReaction } from '../src/react/reactionStore.js';
import { EVENTS } from '../src/store/jetstream.js';
import type { Copy, Shop } from '../examples/subscriber.js';
import { fullImport } from '../examples/subscriber.js';
import type { Ack } from './load.js';
import { ReactionScan, type ReactionProgress } from './reactionChecks.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** What one store epoch's `EVENTS` holds of the acknowledged commands, and of the reactions. */
export interface StoreCheck {
  readonly epoch: number;
  readonly lastSeq: number;
  readonly acknowledged: number;
  readonly missing: string[];
  readonly duplicated: string[];
  readonly misplaced: string[];
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
}

/** A connection of the harness's own to the store. */
const connectCheck = (natsUrl: string, auth?: NatsAuth) => connectNats(natsUrl, { name: 'chaos-check', timeoutMs: 5000, log: pino({ level: 'silent' }), ...(auth ? { auth } : {}) });

/**
 * Reads the whole of `EVENTS` with an ordered consumer and checks that every command
 * acknowledged in `epoch` is in it exactly once, at the position its answer gave; the same
 * pass gathers what the reaction checks need, after the reactions' checkpoints are read
 * (so that whatever a checkpoint covers is in what is read after it).
 */
export async function checkStore(natsUrl: string, epoch: number, acks: readonly Ack[], opts: StoreCheckOptions = {}): Promise<StoreCheck> {
  const link = await connectCheck(natsUrl, opts.auth);
  const seqs = new Map<string, number[]>();
  const reactions = new ReactionScan();
  let lastSeq = 0;
  let progress: ReactionProgress;
  let readAt: number;
  try {
    progress = { ...(await reactionProgress(link)), ...(opts.settledTo === undefined ? {} : { settledTo: opts.settledTo }) };
    readAt = Date.now();
    const info = await link.jsm.streams.info(EVENTS);
    lastSeq = info.state.last_seq;
    if (info.state.messages > 0) {
      const consumer = await link.js.consumers.get(EVENTS, { deliver_policy: DeliverPolicy.All });
      const messages = await consumer.consume();
      const timer = setTimeout(() => void messages.close(), 60_000);
      for await (const m of messages) {
        const commit = m.json<Commit>();
        seqs.set(commit.commandId, [...(seqs.get(commit.commandId) ?? []), m.seq]);
        reactions.add(commit, m.seq, m.time.getTime());
        if (m.seq >= lastSeq) break;
      }
      clearTimeout(timer);
    }
  } finally {
    await link.close();
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
  return { epoch, lastSeq, acknowledged: mine.length, missing, duplicated, misplaced, endedAt: opts.endedAt ?? readAt, reactions, progress };
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
