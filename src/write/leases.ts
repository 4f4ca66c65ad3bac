import { Kvm, type KV, type KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/transport-node';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { fnv1a } from '../core/partition.js';
import { openBucket } from '../nats/buckets.js';
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
  /** Milliseconds on a monotonic clock. */
  readonly now?: () => number;
  /** Who runs this worker (by default its primary: host name and pid), written beside `owner` in every key; see `createPartitionLeases`. */
  readonly instance?: string;
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
  /** The process that wrote it (see `LeaseOptions.instance`). */
  readonly instance: string;
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
  const { link, owner, partitions, log } = opts;
  // A monotonic clock: a wall clock stepped back would stretch the trust in a lease.
  const now = opts.now ?? (() => performance.now());
  // The primary that forked this worker: one it restarts (only once the old one has exited)
  // takes its leases back at once; another host that took the same name does not.
  const instance = opts.instance ?? `${hostname()}/${process.ppid}`;
  const value = `${owner} ${instance}`;
  // Set from the bucket's own TTL at start, which the first host to make it chose.
  let ttlMs = opts.ttlMs;
  let tickMs = 0;
  let fenceMs = 0;
  const seen = new Map<string, Seen>();
  const firstSeen = new Map<string, number>();
  const held = new Map<number, Held>();
  /** Hand-overs and losses under way, so that `stop` waits for them too. */
  const releasing = new Map<number, Promise<void>>();
  /** When each unowned partition was first seen free. */
  const freeSince = new Map<number, number>();
  let kv: KV | undefined;
  let watcher: QueuedIterator<KvWatchEntry> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let round: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  /** Until when claims wait: after a reconnect the view of the bucket is catching up, and every worker would look alone. */
  let claimsFrom = 0;
  let warnedTwin = false;
  /** Renewals paused while the store refuses writes (see `tick`). */
  let paused = false;

  const observe = (e: KvWatchEntry) => {
    const deleted = e.operation !== 'PUT';
    const [who = '', inst = ''] = deleted ? [] : e.string().split(' ');
    seen.set(e.key, { owner: who, instance: inst, revision: e.revision, deleted, seenAt: now() });
    if (e.key.startsWith('m.') && !deleted && !firstSeen.has(e.key)) firstSeen.set(e.key, now());
    if (e.key === memberKey(owner) && !deleted && inst !== instance && e.isUpdate && !warnedTwin) {
      warnedTwin = true;
      log.error({ owner, other: inst }, `another process also calls itself ${owner}: every host needs its own cluster.hostId`);
    }
    if (deleted && !stopped) void schedule();
  };

  /** Live members: every worker whose membership was renewed within `ttlMs`, this one included. */
  function members(at: number): string[] {
    const out = new Set([owner]);
    for (const [key, s] of seen) {
      if (!key.startsWith('m.')) continue;
      if (s.deleted || at - s.seenAt >= ttlMs) firstSeen.delete(key);
      else out.add(s.owner);
      if (at - s.seenAt >= 10 * ttlMs) seen.delete(key);
    }
    return [...out];
  }

  async function acquire(p: number, claim: Promise<number>, sentAt: number): Promise<void> {
    try {
      const revision = await claim;
      if (stopped) return;
      held.set(p, { revision, renewedAt: sentAt });
      changes.acquired.push(p);
      opts.onAcquire(p);
    } catch {
      // Someone else got there first, or NATS is down: the next round looks again.
    }
  }

  /** Stops running `p` here; gives the lease back when `handOver`, otherwise it is gone already. */
  function release(p: number, handOver: boolean, why: string): Promise<void> {
    const under = releasing.get(p);
    if (under) return under;
    // Deferred a tick, so that `owns(p)` is already false when `onRelease` runs.
    const done = Promise.resolve()
      .then(async () => {
        await opts.onRelease(p).catch((err: unknown) => log.warn({ err, partition: p }, `partition ${p} did not drain cleanly`));
        const h = held.get(p);
        held.delete(p);
        if (handOver && h && kv) await kv.delete(partitionKey(p), { previousSeq: h.revision }).catch(() => undefined);
        (changes.released[why] ??= []).push(p);
      })
      .finally(() => releasing.delete(p));
    releasing.set(p, done);
    return done;
  }

  async function renew(p: number, h: Held, at: number): Promise<void> {
    try {
      h.revision = await kv!.update(partitionKey(p), value, h.revision);
      h.renewedAt = at;
    } catch (err) {
      const current = seen.get(partitionKey(p));
      const mine = current !== undefined && !current.deleted && current.owner === owner && current.instance === instance;
      if (current && !current.deleted && !mine) return release(p, false, `lost their leases to ${current.owner}`);
      // A renewal stored without its answer reaching here: the lease is still this worker's, at a newer revision.
      if (mine && current.revision > h.revision) h.revision = current.revision;
      if (now() >= h.renewedAt + fenceMs) {
        changes.error ??= err;
        return release(p, false, `their leases could not be renewed for ${fenceMs} ms`);
      }
    }
  }

  async function tick(): Promise<void> {
    const store = kv!;
    const at = now();
    const member = await store.put(memberKey(owner), value).then(
      () => 'renewed' as const,
      (err: unknown) => {
        if (link.writes.note(err)) return 'refused' as const;
        log.debug({ err }, 'lease membership not renewed');
        return 'failed' as const;
      },
    );
    // While nats-server refuses writes for full storage, a round writes its membership
    // alone: every renewal would be refused too, each a line in nats-server's log. No other
    // worker can claim meanwhile, and this one trusts its leases no longer than a renewal allows.
    if (member === 'refused') {
      if (!paused) log.warn({ owner, reason: link.writes.refused()?.reason }, 'the event store refuses writes: lease renewals paused until it takes them again');
      paused = true;
      return;
    }
    if (member === 'renewed') link.writes.accepted();
    if (paused) log.info({ owner }, 'the event store takes writes again: lease renewals resumed');
    paused = false;
    const live = members(at);
    // A member is given partitions only once every worker has had a round to see it.
    const settled = live.filter((m) => m === owner || at - (firstSeen.get(memberKey(m)) ?? at) >= tickMs);
    const claiming = at >= claimsFrom;
    const work: Promise<void>[] = [];
    for (let p = 0; p < partitions; p++) {
      if (releasing.has(p)) continue;
      const preferred = preferredOwner(p, settled);
      const h = held.get(p);
      if (h) {
        // A hand-over drains the partition's queued commands; renewals of the rest do not wait for it.
        if (preferred !== owner && claiming) void release(p, true, `handed over to ${preferred}`);
        else work.push(renew(p, h, at));
        continue;
      }
      const s = seen.get(partitionKey(p));
      const alive = s !== undefined && !s.deleted && at - s.seenAt < ttlMs;
      if (alive) freeSince.delete(p);
      else if (!freeSince.has(p)) freeSince.set(p, at);
      if (alive && s.owner === owner && s.instance === instance) {
        // This worker's own lease, from before its primary restarted it or given up when it
        // could not be renewed: taken back at its revision.
        work.push(acquire(p, store.update(partitionKey(p), value, s.revision), at));
      } else if (!alive && claiming && (preferred === owner || at - freeSince.get(p)! >= ttlMs)) {
        // Free: claimed by its preferred owner, or by anyone once it has stayed free a whole lease.
        work.push(acquire(p, store.create(partitionKey(p), value), at));
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

  /** Follows the bucket for as long as this runs, watching again whenever a watch ends. */
  async function follow(): Promise<void> {
    while (!stopped) {
      try {
        watcher = await kv!.watch({ key: '>' });
        // A watch made while `stop` ran would outlive it, and its heartbeat monitor the connection.
        if (stopped) {
          watcher.stop();
          return;
        }
        for await (const e of watcher) observe(e);
      } catch (err) {
        log.debug({ err }, 'lease watch failed');
      }
      if (stopped) return;
      log.warn('the lease watch ended; watching again');
      claimsFrom = now() + tickMs;
      await new Promise((r) => setTimeout(r, tickMs));
    }
  }

  return {
    owns(p) {
      const h = held.get(p);
      return h !== undefined && !releasing.has(p) && now() < h.renewedAt + fenceMs;
    },
    held: () => [...held.keys()].sort((a, b) => a - b),

    async start() {
      const bucket = await openLeaseBucket(link, ttlMs, opts.replicas, log);
      kv = bucket.kv;
      ttlMs = bucket.ttlMs;
      tickMs = Math.max(100, Math.floor(ttlMs / 4));
      fenceMs = Math.floor(ttlMs * 0.75);
      void follow();
      link.onReconnect(() => (claimsFrom = now() + tickMs));
      try {
        await kv.put(memberKey(owner), value);
        // One round's wait, so that workers starting together see each other before claiming.
        await new Promise((r) => setTimeout(r, tickMs));
        await schedule();
      } catch (err) {
        // The watch already runs: a start that fails stops it, and gives back what it took.
        await this.stop();
        throw err;
      }
      timer = setInterval(() => void schedule(), tickMs);
      timer.unref();
    },

    async stop() {
      stopped = true;
      clearInterval(timer);
      watcher?.stop(); // First: nothing below needs it, and its heartbeat monitor must not outlive the connection.
      await round;
      // Hand-overs already under way included.
      await Promise.allSettled([...held.keys()].map((p) => release(p, true, 'draining')));
      report();
      await kv?.delete(memberKey(owner)).catch(() => undefined);
    },
  };
}

/** Who runs each partition, as `GET /admin/partitions` answers it. */
export interface PartitionOwners {
  readonly ownership: 'static' | 'leases';
  readonly partitions: number;
  /** Each owner (`<hostId>.<worker>`) with the partitions it holds. */
  readonly owners: Readonly<Record<string, readonly number[]>>;
  /** Partitions nobody holds now: between two owners, or with no worker to take them. */
  readonly unowned: readonly number[];
}

/** The partitions' lease holders, read from the bucket (none yet when no worker has made it). */
export async function readLeaseOwners(link: NatsLink, partitions: number): Promise<PartitionOwners> {
  const kv = await new Kvm(link.js).open(LEASES_BUCKET).catch(() => undefined);
  const holders = await Promise.all(
    Array.from({ length: partitions }, async (_, p) => {
      const e = await kv?.get(partitionKey(p));
      return e && e.operation === 'PUT' ? e.string().split(' ')[0]! : undefined;
    }),
  );
  return groupOwners('leases', holders);
}

/** The static owners: worker `partition mod workers` of `hostId`. */
export function staticOwners(hostId: string, workers: number, partitions: number): PartitionOwners {
  return groupOwners('static', Array.from({ length: partitions }, (_, p) => leaseOwner(hostId, p % workers)));
}

function groupOwners(ownership: PartitionOwners['ownership'], holders: readonly (string | undefined)[]): PartitionOwners {
  const owners: Record<string, number[]> = {};
  const unowned: number[] = [];
  holders.forEach((h, p) => (h === undefined ? unowned.push(p) : (owners[h] ??= []).push(p)));
  return { ownership, partitions: holders.length, owners, unowned };
}

/**
 * Opens the lease bucket, creating it with `replicas` copies and a TTL of `ttlMs`; answers
 * the TTL it has. Every worker must count with one TTL, so a bucket made with another is
 * kept as it is, with a warning; its copies are set to `replicas`.
 */
export async function openLeaseBucket(link: NatsLink, ttlMs: number, replicas: number, log: Logger): Promise<{ kv: KV; ttlMs: number }> {
  const { kv, info, rescaled } = await openBucket(link, LEASES_BUCKET, { history: 1, ttl: ttlMs, replicas });
  const bucketTtlMs = Math.round(info.config.max_age / 1_000_000);
  if (bucketTtlMs !== ttlMs) {
    log.warn({ configured: ttlMs, bucket: bucketTtlMs }, `the lease bucket was made with a TTL of ${bucketTtlMs} ms; using it rather than cluster.leaseTtlMs ${ttlMs}`);
  }
  if (rescaled) log.info({ replicas }, `set the lease bucket's copies to ${replicas}`);
  return { kv, ttlMs: bucketTtlMs || ttlMs };
}
