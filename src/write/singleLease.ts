import { randomUUID } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import type { NatsLink } from '../nats/connection.js';
import { openLeaseBucket } from './leases.js';

/** One lease for the whole cluster, held by one process at a time (see `createSingleLease`). */
export interface SingleLease {
  /** Starts claiming; resolves after the first round. */
  start(): Promise<void>;
  /** Whether this process holds it now (and trusts that it still does). */
  held(): boolean;
  /** Who holds it, as the last round read it; undefined when nobody does. */
  holder(): string | undefined;
  /** Stops, handing the lease back at once so that another process takes it on its next round. */
  stop(): Promise<void>;
}

export interface SingleLeaseOptions {
  readonly link: NatsLink;
  /** The key in the `converge-leases` bucket: `x.reactions`. */
  readonly key: string;
  /** Who this is, as the lease's value shows it: `<hostId>.projector`. */
  readonly owner: string;
  readonly ttlMs: number;
  readonly replicas: number;
  readonly log: Logger;
  /** Called once the lease is held: start the work it guards. */
  readonly onAcquire: () => void | Promise<void>;
  /** Called when it is given up or lost: stop the work, before another process may take it. */
  readonly onRelease: (reason: string) => void | Promise<void>;
  /** Milliseconds on a monotonic clock. */
  readonly now?: () => number;
  /**
   * Tells this lease apart from every other claimant, those with the same owner included (two
   * runtimes in one process), written beside `owner` in the key; by default a random id.
   */
  readonly instance?: string;
}

/**
 * A lease on one key of the `converge-leases` bucket, for work that must run in one place
 * in the cluster (the reactions: docs/architecture.md, "Reactions"). Every `ttlMs / 4` the
 * process claims the key when it is free (`create`) or renews it at the revision it last
 * wrote (`update`). As with partition leases ("Partition leases"), it trusts the lease for
 * three quarters of the TTL after its last renewal was sent and the server keeps it for the
 * TTL after that renewal arrived, so a holder cut off has stopped before another can claim.
 *
 * A renewal can arrive after the holder gave up on it: NATS paused, the request timed out,
 * and the server applied it when it went on. The key is then back under this lease's own
 * value with nobody running the work; the lease takes it back at once rather than leave the
 * work stopped until the TTL runs out. Nobody else writes that value, and this lease has
 * stopped its work (`onRelease`) before it looks again.
 */
export function createSingleLease(opts: SingleLeaseOptions): SingleLease {
  const { link, key, owner, log } = opts;
  const now = opts.now ?? (() => performance.now());
  const value = `${owner} ${opts.instance ?? randomUUID()}`;
  let kv: KV | undefined;
  let ttlMs = opts.ttlMs;
  let revision: number | undefined;
  let renewedAt = 0;
  let holder: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let round: Promise<void> = Promise.resolve();
  let stopped = false;

  const fenceMs = () => Math.floor(ttlMs * 0.75);
  const release = async (reason: string) => {
    if (revision === undefined) return;
    revision = undefined;
    log.info({ lease: key, reason }, `gave up the ${key} lease: ${reason}`);
    await opts.onRelease(reason);
  };

  async function tick(): Promise<void> {
    if (!kv || stopped) return;
    const sentAt = now();
    try {
      if (revision !== undefined) {
        revision = await kv.update(key, value, revision);
        renewedAt = sentAt;
        holder = owner;
        link.writes.accepted();
        return;
      }
      const current = await kv.get(key);
      const found = current?.operation === 'PUT' ? current : undefined;
      // The owner alone: a holder from before the instance was written beside it has no space.
      holder = found?.string().split(' ')[0];
      if (found && found.string() !== value) return;
      // Free, or held in this lease's own name by a renewal that arrived after it gave up.
      revision = found ? await kv.update(key, value, found.revision) : await kv.create(key, value);
      renewedAt = sentAt;
      holder = owner;
      log.info({ lease: key, owner }, `holds the ${key} lease`);
      await opts.onAcquire();
    } catch (err) {
      // Full storage is what `converge status` and readiness report.
      link.writes.note(err);
      // A renewal refused (another holder) or not answered: trusted until the fence, then given up.
      if (revision !== undefined && now() >= renewedAt + fenceMs()) await release(`it could not be renewed for ${fenceMs()} ms (${(err as Error).message})`);
    }
  }

  return {
    async start() {
      const bucket = await openLeaseBucket(link, opts.ttlMs, opts.replicas, log);
      kv = bucket.kv;
      ttlMs = bucket.ttlMs;
      await (round = tick());
      timer = setInterval(() => void (round = round.then(tick)), Math.max(100, Math.floor(ttlMs / 4)));
      timer.unref();
    },
    held: () => revision !== undefined && now() < renewedAt + fenceMs(),
    holder: () => holder,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await round;
      const had = revision;
      await release('stopping');
      if (had !== undefined) await kv?.delete(key, { previousSeq: had }).catch(() => undefined);
    },
  };
}
