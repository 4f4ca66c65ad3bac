import { json, type HttpClient } from './http.js';
import type { Ack, LoadTarget } from './load.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One probe: a write, then a read that waits for it. */
export interface ProbeSample {
  readonly sentAt: number;
  /** When the write was acknowledged; absent when it was not. */
  readonly ackAt?: number;
  /** Acknowledgement to a read that saw the write; absent when no read did. */
  readonly lagMs?: number;
  readonly seenAt?: number;
}

/**
 * Probes the write-to-read path every `everyMs` (at most four at once, each bounded): a
 * `register` of a new probe shop with a single try, then `GET /shops/<id>` with its
 * position as `X-Min-Position`. The samples tell when commands succeed again after a
 * fault, and when the lag is back under 100 ms.
 */
export async function runProbe(http: HttpClient, target: LoadTarget, acks: Ack[], samples: ProbeSample[], stopped: () => boolean, everyMs = 200): Promise<void> {
  let inFlight = 0;
  let n = 0;
  const probe = async () => {
    const epoch = target.epoch();
    const id = `probe-${epoch}-${++n}`;
    const sentAt = Date.now();
    const reply = await http.send({
      method: 'POST',
      url: `${target.command}/shops/${id}/register`,
      body: { name: 'probe', category: 'probe', ownerId: 'probe' },
      headers: { 'idempotency-key': id },
      timeoutMs: 4000,
    });
    const position = json<{ position?: number }>(reply)?.position;
    if (reply.status !== 200 || typeof position !== 'number') return void samples.push({ sentAt });
    const ackAt = Date.now();
    acks.push({ key: id, aggregate: 'shop', id, position, epoch: target.epoch(), at: ackAt });
    const read = await http.send({ method: 'GET', url: `${target.query}/shops/${id}?waitMs=10000`, headers: { 'x-min-position': String(position) }, timeoutMs: 12_000 });
    const seenAt = Date.now();
    samples.push(read.status === 200 ? { sentAt, ackAt, lagMs: seenAt - ackAt, seenAt } : { sentAt, ackAt });
  };
  while (!stopped()) {
    if (inFlight < 4) {
      inFlight++;
      void probe().finally(() => inFlight--);
    }
    await sleep(everyMs);
  }
  while (inFlight > 0) await sleep(50);
}

/** A probe seen later than this after its acknowledgement means the read side has fallen behind again. */
const RELAPSE_MS = 1000;

/**
 * How long after `from` commands succeeded again, and the lag was back under `lagMs` to
 * stay: from the first probe seen within `lagMs` after which every probe acknowledged
 * more than a second before `until` (the next fault, or the end of the load) was seen
 * within a second. A read
 * side that catches up for a moment and then stalls has not recovered.
 */
export function recoveryAfter(samples: readonly ProbeSample[], from: number, until = Infinity, lagMs = 100): { commandsMs?: number; lagMs?: number } {
  let commands: number | undefined;
  let lag: number | undefined;
  const window = samples.filter((s) => s.sentAt >= from && s.sentAt < until).sort((a, b) => a.sentAt - b.sentAt);
  for (const s of window) {
    if (s.ackAt !== undefined) commands = Math.min(commands ?? Infinity, s.ackAt - from);
    if (s.ackAt === undefined) continue;
    const relapse = s.lagMs === undefined || s.lagMs > RELAPSE_MS;
    // A probe acknowledged in the last second before the next fault may be held up by that fault, not this one.
    if (relapse && s.ackAt + RELAPSE_MS > until) continue;
    if (relapse) lag = undefined;
    else if (lag === undefined && s.lagMs !== undefined && s.lagMs < lagMs && s.seenAt !== undefined) lag = s.seenAt - from;
  }
  return { ...(commands === undefined ? {} : { commandsMs: commands }), ...(lag === undefined ? {} : { lagMs: lag }) };
}
