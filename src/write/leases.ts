import { Kvm, type KV, type KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { fnv1a } from '../core/partition.js';
import type { NatsLink } from '../nats/connection.js';

/** The KV bucket that holds partition leases and the workers that may hold them. */
export const LEASES_BUCKET = 'converge-leases';

/**
 * Which partitions this worker owns, among every worker of every host on one NATS (see
 * docs/architecture.md, "Partition leases").
 */
export interface PartitionLeases {
  /** Whether this worker holds `partition`'s lease and may run its commands now. */
  owns(partition: number): boolean;
  /** The partitions held, in order. */
  held(): number[];
  /** Opens the bucket, joins, and answers after the first round of claims. */
  start(): Promise<void>;
  /** Stops renewing and releases every lease (after `onRelease` for each), so the others take them at once. */
  stop(): Promise<void>;
}

export interface LeaseOptions {
  readonly link: NatsLink;
  /** This worker, unique among the workers on the NATS: `<hostId>.<workerIndex>`, made a valid key (see `leaseOwner`). */
  readonly owner: string;
  readonly partitions: number;
  /** How long a lease lives unless renewed: a dead worker's partitions move after about this long. */
  readonly ttlMs: number;
  /** Copies of the bucket (`nats.replicas`). */
  readonly replicas: number;
  readonly log: Logger;
  /** Called once a partition is held: its commands may run here from now on. */
  readonly onAcquire: (partition: number) => void;
  /** Called before a lease is given up or after it is lost: stop running the partition's commands, and finish those running. */
  readonly onRelease: (partition: number) => Promise<void>;
  readonly now?: () => number;
}

/** A worker's name as a lease key token: characters a KV key cannot hold become `_`. */
export function leaseOwner(hostId: string, workerIndex: number): string {
  return `${hostId.replace(/[^-\w]/g, '_')}.${workerIndex}`;
}

/**
 * The worker that should own `partition` among `members`: highest random weight
 * (rendezvous hashing), so that a worker joining or leaving moves only its own share.
 */
export function preferredOwner(partition: number, members: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = -1;
  for (const m of members) {
    const score = mix(fnv1a(`${m}#${partition}`));
    if (score > bestScore || (score === bestScore && best !== undefined && m < best)) [best, bestScore] = [m, score];
  }
  return best;
}

/**
 * MurmurHash3's 32-bit finalizer: FNV-1a alone scores names that differ in one character
 * (`host-a.0`, `host-b.0`) alike, which skews the shares.
 */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

interface Seen {
  readonly owner: string;
  readonly revision: number;
  readonly deleted: boolean;
  /** When this process saw it: a lease not renewed for `ttlMs` since is taken for expired (the server removes it then). */
  readonly seenAt: number;
}

interface Held {
  revision: number;
  /** When the last successful renewal was sent; the lease is trusted for `fenceMs` after it. */
  renewedAt: number;
}

const memberKey = (owner: string) => `m.${owner}`;
const partitionKey = (p: number) => `p.${p}`;

/**
 * Leases in a NATS KV bucket whose TTL is the lease's life. Every `ttlMs / 4` each worker
 * renews its membership (`m.<owner>`) and the leases it holds (`p.<n>`, updated at the
 * revision it last wrote), and claims (`create`) the free partitions that rendezvous
 * hashing gives it. A partition it holds that hashing now gives a newer member is drained
 * and deleted, so that member takes it on its next round; a delete wakes every worker.
 *
 * A worker trusts a lease for three quarters of `ttlMs` after its last renewal was sent
 * and the server keeps it for `ttlMs` after that renewal arrived, so the old owner has
 * stopped before anyone else can claim. A worker paused past that gap could still append
 * after its lease moved: the expected-position check (fenced on old replicated streams)
 * refuses the second append for one position.
 */
export function createPartitionLeases(opts: LeaseOptions): PartitionLeases {
  const { link, owner, partitions, ttlMs, log } = opts;
  const now = opts.now ?? Date.now;
  const tickMs = Math.max(100, Math.floor(ttlMs / 4));
  const fenceMs = Math.floor(ttlMs * 0.75);
  const seen = new Map<string, Seen>();
  const firstSeen = new Map<string, number>();
  const held = new Map<number, Held>();
  const releasing = new Set<number>();
  /** When each unowned partition was first seen free. */
  const freeSince = new Map<number, number>();
  let kv: KV | undefined;
  let watcher: QueuedIterator<KvWatchEntry> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let round: Promise<void> | undefined;
  let again = false;
  let stopped = false;

  const observe = (e: KvWatchEntry) => {
    const deleted = e.operation !== 'PUT';
    seen.set(e.key, { owner: deleted ? '' : e.string(), revision: e.revision, deleted, seenAt: now() });
    if (e.key.startsWith('m.') && !deleted && !firstSeen.has(e.key)) firstSeen.set(e.key, now());
    if (deleted && !stopped) schedule();
  };

  /** Live members: every worker whose membership was renewed within `ttlMs`, this one included. */
  function members(at: number): string[] {
    const out = new Set([owner]);
    for (const [key, s] of seen) {
      if (!key.startsWith('m.')) continue;
      if (s.deleted || at - s.seenAt >= ttlMs) firstSeen.delete(key);
      else out.add(s.owner);
    }
    return [...out];
  }

  async function acquire(p: number, claim: Promise<number>, sentAt: number): Promise<void> {
    try {
      const revision = await claim;
      held.set(p, { revision, renewedAt: sentAt });
      changes.acquired.push(p);
      opts.onAcquire(p);
    } catch {
      // Someone else got there first, or NATS is down: the next round looks again.
    }
  }

  /** Stops running `p` here; gives the lease back when `handOver`, otherwise it is gone already. */
  async function release(p: number, handOver: boolean, why: string): Promise<void> {
    if (releasing.has(p)) return;
    releasing.add(p);
    try {
      await opts.onRelease(p);
      const h = held.get(p);
      held.delete(p);
      if (handOver && h && kv) await kv.delete(partitionKey(p), { previousSeq: h.revision }).catch(() => undefined);
      (changes.released[why] ??= []).push(p);
    } finally {
      releasing.delete(p);
    }
  }

  async function renew(p: number, h: Held, at: number): Promise<void> {
    try {
      h.revision = await kv!.update(partitionKey(p), owner, h.revision);
      h.renewedAt = at;
    } catch (err) {
      const current = seen.get(partitionKey(p));
      if (current && !current.deleted && current.owner !== owner) return release(p, false, `lost its lease to ${current.owner}`);
      // A renewal stored without its answer reaching here: the lease is still this worker's, at a newer revision.
      if (current && !current.deleted && current.revision > h.revision) h.revision = current.revision;
      if (now() >= h.renewedAt + fenceMs) {
        changes.error ??= err;
        return release(p, false, `their leases could not be renewed for ${fenceMs} ms`);
      }
    }
  }

  async function tick(): Promise<void> {
    const store = kv!;
    const at = now();
    await store.put(memberKey(owner), owner).catch((err: unknown) => log.debug({ err }, 'lease membership not renewed'));
    const live = members(at);
    // A member is given partitions only once every worker has had a round to see it.
    const settled = live.filter((m) => m === owner || at - (firstSeen.get(memberKey(m)) ?? at) >= tickMs);
    const work: Promise<void>[] = [];
    for (let p = 0; p < partitions; p++) {
      if (releasing.has(p)) continue;
      const preferred = preferredOwner(p, settled);
      const h = held.get(p);
      if (h) {
        work.push(preferred !== owner ? release(p, true, `handed over to ${preferred}`) : renew(p, h, at));
        continue;
      }
      const s = seen.get(partitionKey(p));
      const alive = s !== undefined && !s.deleted && at - s.seenAt < ttlMs;
      if (alive) freeSince.delete(p);
      else if (!freeSince.has(p)) freeSince.set(p, at);
      if (alive && s.owner === owner) {
        // This worker's own lease from before a restart: take it back at its revision.
        work.push(acquire(p, store.update(partitionKey(p), owner, s.revision), at));
      } else if (!alive && (preferred === owner || at - freeSince.get(p)! >= ttlMs)) {
        // Free: claimed by its preferred owner, or by anyone once it has stayed free a whole lease.
        work.push(acquire(p, store.create(partitionKey(p), owner), at));
      }
    }
    await Promise.all(work);
  }

  /** What changed since the last report: one log line per kind of change, not one per partition. */
  let changes: { acquired: number[]; released: Record<string, number[]>; error?: unknown } = { acquired: [], released: {} };
  function report(): void {
    const { acquired, released, error } = changes;
    changes = { acquired: [], released: {} };
    const list = (ps: number[]) => ps.sort((x, y) => x - y).join(',');
    if (acquired.length > 0) log.info({ owner, partitions: acquired }, `acquired ${acquired.length} partition(s): ${list(acquired)}`);
    for (const [why, ps] of Object.entries(released)) {
      const line = `released ${ps.length} partition(s), ${why}: ${list(ps)}`;
      if (error && why.startsWith('their leases')) log.warn({ owner, partitions: ps, err: error }, line);
      else log.info({ owner, partitions: ps }, line);
    }
  }

  /** Runs a round now, or right after the one running. */
  function schedule(): Promise<void> {
    if (round) {
      again = true;
      return round;
    }
    round = (async () => {
      do {
        again = false;
        try {
          await tick();
        } catch (err) {
          log.warn({ err }, 'lease round failed');
        }
        report();
      } while (again && !stopped);
    })().finally(() => (round = undefined));
    return round;
  }

  return {
    owns(p) {
      const h = held.get(p);
      return h !== undefined && !releasing.has(p) && now() < h.renewedAt + fenceMs;
    },
    held: () => [...held.keys()].sort((a, b) => a - b),

    async start() {
      kv = await openLeaseBucket(link, ttlMs, opts.replicas, log);
      watcher = await kv.watch({ key: '>' });
      void (async () => {
        for await (const e of watcher!) observe(e);
      })().catch((err: unknown) => log.warn({ err }, 'lease watch ended'));
      await kv.put(memberKey(owner), owner);
      // One round's wait, so that workers starting together see each other before claiming.
      await new Promise((r) => setTimeout(r, tickMs));
      await schedule();
      timer = setInterval(() => void schedule(), tickMs);
      timer.unref();
    },

    async stop() {
      stopped = true;
      clearInterval(timer);
      await round;
      await Promise.all([...held.keys()].map((p) => release(p, true, 'draining')));
      report();
      await kv?.delete(memberKey(owner)).catch(() => undefined);
      watcher?.stop();
    },
  };
}

/** Opens the lease bucket, creating it with `replicas` copies and a TTL of `ttlMs`, or setting those on one made otherwise. */
async function openLeaseBucket(link: NatsLink, ttlMs: number, replicas: number, log: Logger): Promise<KV> {
  const kv = await new Kvm(link.js).create(LEASES_BUCKET, { history: 1, ttl: ttlMs, replicas });
  const stream = `KV_${LEASES_BUCKET}`;
  const info = await link.jsm.streams.info(stream);
  const maxAge = ttlMs * 1_000_000;
  if (info.config.max_age !== maxAge || (info.config.num_replicas || 1) !== replicas) {
    log.info({ ttlMs, replicas }, `setting the lease bucket's TTL to ${ttlMs} ms and its copies to ${replicas}`);
    await link.jsm.streams.update(stream, { ...info.config, max_age: maxAge, num_replicas: replicas });
  }
  return kv;
}
