import type { Logger } from 'pino';
import type { ArchivableStore } from '../core/archive.js';
import type { Clock } from '../core/clock.js';
import { noticeSubject, NOTIFY, type Notice } from '../integration/notifier.js';
import { startArchiver, memoryPauseFlag, type Archiver, type PauseFlag } from '../lifecycle/archiver.js';
import { archivables } from '../lifecycle/lifecycleView.js';
import { openBucket } from '../nats/buckets.js';
import type { NatsLink } from '../nats/connection.js';
import { REACTIONS_BUCKET } from '../react/reactionStore.js';
import { kvArchiveHead } from '../lifecycle/archiveHead.js';
import { isNoMessage } from '../store/jetstream.js';
import type { IndexScanner } from '../read/viewStore.js';
import type { ArchiveStatus } from '../read/viewsStatus.js';
import type { ArchiveIndex } from '../store/archiveIndex.js';
import { createSingleLease, type SingleLease } from '../write/singleLease.js';
import type { ConvergeApp } from './app.js';
import type { Config } from './config.js';

/** The key of the archiver's lease in the `converge-leases` bucket. */
export const ARCHIVER_LEASE = 'x.archiver';
/** Where an operator's pause of the archiver is kept, in the `converge-reactions` bucket. */
const PAUSED_KEY = 'archiver.paused';

/** Whether an app has anything the archive takes: an aggregate that declares `finished`, or a process. */
export function canArchive(app: Pick<ConvergeApp, 'aggregates' | 'processes'>): boolean {
  return archivables(app.aggregates, app.processes ?? [], 0).size > 0;
}

/** The archiver of a runtime, under its lease on NATS, and what it reports. */
export interface ArchiveSide {
  readonly archiver: Archiver;
  /** Whether this process runs the archiver now. */
  running(): boolean;
  status(): ArchiveStatus;
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the archiver of a runtime (docs/architecture.md, "Archive"): on NATS under the
 * cluster-wide lease `x.archiver`, so one process archives at a time, with its pause kept in
 * the `converge-reactions` bucket; without NATS, here and at once. Its status adds the
 * store's live aggregate count, read every `projections.statusIntervalMs`.
 */
export async function startArchiveSide(opts: {
  readonly config: Config;
  readonly log: Logger;
  readonly app: ConvergeApp;
  /** The store as it is, not read through the archive. */
  readonly raw: ArchivableStore;
  readonly index: ArchiveIndex;
  /** The incarnation of `EVENTS` the archive's head is announced for. */
  readonly streamId: string;
  readonly views: IndexScanner;
  readonly link: NatsLink | undefined;
  readonly clock: Clock;
  /** Names this runtime as the lease's holder. */
  readonly owner: string;
  readonly leaseInstance?: string;
}): Promise<ArchiveSide> {
  const { config, log, link, raw, index } = opts;
  const pauseFlag = link ? await kvPauseFlag(link, config.nats.replicas) : memoryPauseFlag();
  const archiver = startArchiver({
    store: raw,
    index,
    views: opts.views,
    afterMs: archivables(opts.app.aggregates, opts.app.processes ?? [], config.archive.afterMs),
    ...(link ? { purgeNotice: (aggregate: string, id: string, through: number) => purgeNotice(link, aggregate, id, through), announce: kvArchiveHead(link, opts.streamId).announce } : {}),
    clock: opts.clock,
    log: log.child({ part: 'archiver' }),
    intervalMs: config.archive.intervalMs,
    batchSize: config.archive.batchSize,
    maxShare: config.archive.maxShare,
    pauseFlag,
  });
  let active = false;
  let lease: SingleLease | undefined;
  if (link) {
    lease = createSingleLease({
      link,
      key: ARCHIVER_LEASE,
      owner: opts.owner,
      ttlMs: config.cluster.leaseTtlMs,
      replicas: config.nats.replicas,
      log,
      ...(opts.leaseInstance ? { instance: opts.leaseInstance } : {}),
      onAcquire: () => {
        active = true;
        archiver.start();
      },
      onRelease: async () => {
        active = false;
        await archiver.stop();
      },
    });
    await lease.start();
  } else {
    active = true;
    archiver.start();
  }
  // A nats-server that went away may have come back without the deletes it had not flushed.
  const unlisten = link?.onReconnect(() => archiver.recheck());
  let live: number | null = null;
  const count = () =>
    raw.liveAggregates().then(
      (n) => void (live = n - (index.applied() > 0 ? 1 : 0)),
      () => void (live = null),
    );
  void count();
  const poll = setInterval(count, config.projections.statusIntervalMs);
  poll.unref();
  return {
    archiver,
    running: () => active,
    status() {
      const counts = index.counts();
      return {
        liveAggregates: live,
        archivedAggregates: counts.aggregates,
        archivedCommits: counts.commits,
        archiveBytes: counts.bytes,
        indexPosition: index.applied(),
        archiver: { ...archiver.status(active), holder: lease ? (lease.holder() ?? null) : 'this process' },
      };
    },
    pause: () => archiver.pause(),
    resume: () => archiver.resume(),
    async stop() {
      clearInterval(poll);
      unlisten?.();
      if (lease) await lease.stop();
      else await archiver.stop();
    },
  };
}

/** The pause flag in the `converge-reactions` bucket. */
async function kvPauseFlag(link: NatsLink, replicas: number): Promise<PauseFlag> {
  const { kv } = await openBucket(link, REACTIONS_BUCKET, { history: 1, replicas });
  return {
    get: async () => (await kv.get(PAUSED_KEY))?.string() === 'true',
    set: async (paused) => void (await kv.put(PAUSED_KEY, String(paused))),
  };
}

/** Removes an archived aggregate's notice from `NOTIFY`, unless it announces a commit made after `through` (the aggregate was taken up again). */
async function purgeNotice(link: NatsLink, aggregate: string, id: string, through: number): Promise<void> {
  const subject = noticeSubject(aggregate, id);
  const last = await link.jsm.streams.getMessage(NOTIFY, { last_by_subj: subject }).catch(() => undefined);
  if (!last || last.json<Notice>().position > through) return;
  // One message, not a purge by subject, which on 2.9.10 moves every subscriber's consumer past undelivered notices.
  await link.jsm.streams.deleteMessage(NOTIFY, last.seq, false).catch((err: unknown) => {
    if (!isNoMessage(err)) throw err;
  });
}
