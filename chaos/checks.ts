import { pino } from 'pino';
import { DeliverPolicy } from '@nats-io/jetstream';
import { connectNats, type NatsAuth } from '../src/nats/connection.js';
import { EVENTS } from '../src/store/jetstream.js';
import type { Copy, Shop } from '../examples/subscriber.js';
import { fullImport } from '../examples/subscriber.js';
import type { Ack } from './load.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** What one store epoch's `EVENTS` holds of the acknowledged commands. */
export interface StoreCheck {
  readonly epoch: number;
  readonly lastSeq: number;
  readonly acknowledged: number;
  readonly missing: string[];
  readonly duplicated: string[];
  readonly misplaced: string[];
}

/**
 * Reads the whole of `EVENTS` with an ordered consumer and checks that every command
 * acknowledged in `epoch` is in it exactly once, at the position its answer gave.
 */
export async function checkStore(natsUrl: string, epoch: number, acks: readonly Ack[], auth?: NatsAuth): Promise<StoreCheck> {
  const link = await connectNats(natsUrl, { name: 'chaos-check', timeoutMs: 5000, log: pino({ level: 'silent' }), ...(auth ? { auth } : {}) });
  const seqs = new Map<string, number[]>();
  let lastSeq = 0;
  try {
    const info = await link.jsm.streams.info(EVENTS);
    lastSeq = info.state.last_seq;
    if (info.state.messages > 0) {
      const consumer = await link.js.consumers.get(EVENTS, { deliver_policy: DeliverPolicy.All });
      const messages = await consumer.consume();
      const timer = setTimeout(() => void messages.close(), 60_000);
      for await (const m of messages) {
        const { commandId } = m.json<{ commandId: string }>();
        seqs.set(commandId, [...(seqs.get(commandId) ?? []), m.seq]);
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
  return { epoch, lastSeq, acknowledged: mine.length, missing, duplicated, misplaced };
}

/** One projection as `GET /admin/projections` lists it. */
interface ProjectionStatus {
  name: string;
  position: number;
  state: string;
  lagEvents: number;
}

/** Waits up to `ms` for every projection to reach `lastSeq`; the statuses last seen. */
export async function waitCaughtUp(adminUrl: string, lastSeq: number, ms: number): Promise<{ ok: boolean; projections: ProjectionStatus[]; waitedMs: number }> {
  const started = Date.now();
  let projections: ProjectionStatus[] = [];
  for (;;) {
    const res = await fetch(`${adminUrl}/admin/projections`, { signal: AbortSignal.timeout(3000) }).catch(() => undefined);
    if (res?.ok) projections = ((await res.json()) as { projections: ProjectionStatus[] }).projections;
    else await res?.arrayBuffer().catch(() => undefined);
    const ok = projections.length > 0 && projections.every((p) => p.position === lastSeq);
    if (ok || Date.now() - started > ms) return { ok, projections, waitedMs: Date.now() - started };
    await sleep(250);
  }
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
