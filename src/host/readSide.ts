import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { EventStore, StoreHead } from '../core/eventStore.js';
import { startNotifier, type Notifier } from '../integration/notifier.js';
import type { NatsLink } from '../nats/connection.js';
import type { Tracing } from '../observe/tracing.js';
import { openViewStore, type LmdbViewStore } from '../read/lmdbViews.js';
import { bootId, markClean, markWriting, recoverViews } from '../read/viewsDurability.js';
import { followArchive } from '../read/archiveFollower.js';
import { superviseFeed, type FeedSpec } from '../read/feed.js';
import { followForgets, personalViews } from '../lifecycle/forget.js';
import type { KeyStore } from '../store/keys.js';
import { FORGETS_CHECKPOINT } from '../read/storeIdentity.js';
import { lmdbArchiveIndex, memoryArchiveIndex, type ArchiveIndex } from '../store/archiveIndex.js';
import { createMemoryViews } from '../read/memoryViews.js';
import { createProjectionRunner, type ProjectionRunner } from '../read/runner.js';
import { appliedSignal, type AppliedSignal } from '../read/status.js';
import type { ViewsStatus } from '../read/viewsStatus.js';
import { bindViewsToHead } from '../read/storeIdentity.js';
import type { ViewStore } from '../read/viewStore.js';
import { viewsOf, type ConvergeApp } from './app.js';
import type { Config } from './config.js';
import { viewsPath } from './paths.js';

/** The read side of a runtime: the views, the projector that writes them, and the notifier. */
export interface ReadSide {
  readonly views: ViewStore;
  readonly runner: ProjectionRunner;
  /** Absent without NATS, and on a read replica (the command hosts announce every commit). */
  readonly notifier: Notifier | undefined;
  /** Wakes whoever waits for a position, after every batch the views commit. */
  readonly applied: AppliedSignal;
  /** The projections, the notifier and the event store, as `/admin/projections` reports them. */
  status(): ViewsStatus;
  stop(): Promise<void>;
}

export interface ReadSideOptions {
  readonly config: Config;
  readonly log: Logger;
  readonly app: ConvergeApp;
  readonly store: EventStore;
  /** Absent for the in-memory store: views in memory too, and no notices. */
  readonly link: NatsLink | undefined;
  readonly streamId: string;
  readonly head: StoreHead;
  /** The views, opened by the host before the store (the archive's index lives beside them); else opened here. */
  readonly views?: ViewStore;
  /** The archive's index and the store as it is, which the index's follower reads. */
  readonly archive?: { readonly raw: EventStore; readonly index: ArchiveIndex } | undefined;
  /** The data subjects' keys and the store as it is, whose records of forgetting the views follow. */
  readonly forget?: { readonly keys: KeyStore; readonly raw: EventStore } | undefined;
  /** Told after the views of a forgotten subject have been made again. */
  readonly onForgotten?: (keyIds: readonly string[]) => void;
  /** Publish notices to `NOTIFY` (not on a read replica). */
  readonly notify: boolean;
  readonly tracing?: Tracing | undefined;
  /** Called after every batch the live views commit, beside `applied`. */
  readonly onApplied?: () => void;
  /** The runtime's clock (the notifier leaves out commits older than `notices.maxAgeMs` by it); the system's by default. */
  readonly now?: () => number;
  /**
   * The event store changed under the running views (docs/architecture.md, "Views belong to
   * one event store"). The read side has stopped folding; the cluster's projector exits so
   * that its restart resets the views.
   */
  readonly onStoreChanged?: (reason: string) => void;
}

/**
 * Starts the read side: the views (LMDB in `<dataDir>/views` on NATS, bound to this store
 * before anything reads a checkpoint; in memory otherwise), every projection catching up
 * from its checkpoint and following the store live, and on NATS the notifier.
 */
export async function startReadSide(opts: ReadSideOptions): Promise<ReadSide> {
  const { config, log, app, store, link, streamId } = opts;
  const traced = opts.tracing ? { tracing: opts.tracing } : {};
  const projections = viewsOf(app);
  let views: ViewStore;
  if (opts.views) {
    views = opts.views;
    if (link) bindViewsToHead(views as LmdbViewStore, projections.map((p) => p.name), opts.head, log);
  } else if (link) {
    const lmdb = openWriterViews(config, log);
    // Before anything reads a checkpoint: views of another store are emptied here and rebuilt by the runner.
    bindViewsToHead(lmdb, projections.map((p) => p.name), opts.head, log);
    views = lmdb;
  } else {
    views = createMemoryViews();
  }
  const applied = appliedSignal();
  let storeChanged = false;
  const onStoreChanged = (reason: string) => {
    if (storeChanged) return;
    storeChanged = true;
    // Serving on would mix two stores' commits in one view; the views are reset at the next start.
    const next = opts.onStoreChanged ? 'restarting to rebuild the views from it' : 'it folds nothing more; start converge again to rebuild the views from it';
    log.error({ reason }, `the event store changed under the running projector: ${reason}; ${next}`);
    void runner.stop();
    notifier?.stop();
    opts.onStoreChanged?.(reason);
  };
  // Ahead of the views, whose feeds find the archive's commits in the index it keeps.
  const follower = opts.archive
    ? followArchive({
        index: opts.archive.index,
        feed: (spec) => superviseFeed({ store: opts.archive!.raw, batchSize: config.projections.batchSize, batchMs: config.projections.batchMs, stallMs: config.projections.stallMs, maxBackoffMs: config.projections.maxBackoffMs, log, streamId, ...spec }),
        log,
      })
    : undefined;
  const runner: ProjectionRunner = createProjectionRunner({
    store,
    views,
    aggregates: app.aggregates,
    projections,
    ...config.projections,
    log,
    streamId,
    onStoreChanged,
    onApplied: () => {
      applied.wake();
      opts.onApplied?.();
    },
    ...traced,
  });
  runner.start();
  const feedOn = (raw: EventStore) => (spec: FeedSpec) =>
    superviseFeed({ store: raw, batchSize: config.projections.batchSize, batchMs: config.projections.batchMs, stallMs: config.projections.stallMs, maxBackoffMs: config.projections.maxBackoffMs, log, streamId, ...spec });
  const forgets = opts.forget
    ? followForgets({
        keys: opts.forget.keys,
        views: personalViews(app.aggregates, projections),
        rebuild: (name) => runner.rebuild(name),
        rebuilding: (name) => runner.status().some((p) => p.name === name && p.state === 'rebuilding'),
        checkpoint: {
          get: () => views.checkpoint(FORGETS_CHECKPOINT, 0),
          set: (position) => views.transaction(() => views.setCheckpoint(FORGETS_CHECKPOINT, 0, position)),
        },
        feed: feedOn(opts.forget.raw),
        log,
        ...(opts.onForgotten ? { onForgotten: opts.onForgotten } : {}),
      })
    : undefined;
  const notifier: Notifier | undefined =
    link && opts.notify
      ? startNotifier({
          link,
          store,
          views,
          ...config.projections,
          only: new Set(app.aggregates.map((a) => a.name)),
          publishTimeoutMs: config.nats.requestTimeoutMs,
          maxAgeMs: config.notices.maxAgeMs,
          ...(opts.now ? { now: opts.now } : {}),
          log,
          streamId,
          onStreamChanged: onStoreChanged,
          ...traced,
        })
      : undefined;
  const unlisten = link?.onReconnect(() => {
    notifier?.restart();
    follower?.feed.restart();
    forgets?.restart();
  });
  const status = (): ViewsStatus => {
    const refused = link?.writes.refused();
    const eventStore = { ...runner.stream(), ...(refused ? { refusesWrites: refused } : {}) };
    const health = notifier?.health();
    return {
      projections: runner.status(),
      ...(notifier && health
        ? {
            notifier: {
              position: notifier.position(),
              state: health.state,
              lagEvents: Math.max(0, eventStore.lastPosition - notifier.position()),
              ...(health.error ? { error: health.error } : {}),
            },
          }
        : {}),
      eventStore,
      at: new Date().toISOString(),
    };
  };
  // The notifier's and the follower's stall checks need the stream's last position, which the runner polls.
  const checks =
    notifier || follower || forgets
      ? setInterval(() => {
          const s = runner.stream();
          if (!s.reachable) return;
          notifier?.check(s.lastPosition);
          follower?.feed.check(s.lastPosition);
          forgets?.check(s.lastPosition);
        }, config.projections.statusIntervalMs)
      : undefined;
  checks?.unref();
  let stopping: Promise<void> | undefined;
  return {
    views,
    runner,
    notifier,
    applied,
    status,
    stop: () =>
      (stopping ??= (async () => {
        clearInterval(checks);
        unlisten?.();
        await runner.stop();
        notifier?.stop();
        follower?.stop();
        forgets?.stop();
        applied.stop();
      })()),
  };
}

/** The host's views: LMDB in `<dataDir>/views` on NATS, in memory without it. */
export function openHostViews(config: Config, log: Logger): ViewStore {
  return config.nats.url === '' ? createMemoryViews() : openWriterViews(config, log);
}

/**
 * The views as their one writer opens them: committed without a flush unless
 * `projections.flushCommits` (or no boot id to tell an operating-system crash by), after
 * removing views such a crash left unflushed (docs/architecture.md, "Views without a flush").
 */
export function openWriterViews(config: Config, log: Logger): LmdbViewStore {
  const dir = viewsPath(config);
  recoverViews(dir, log);
  const boot = config.projections.flushCommits ? undefined : bootId();
  if (boot) {
    mkdirSync(dirname(dir), { recursive: true });
    markWriting(dir, boot);
  }
  const views = openViewStore(dir, { unflushed: boot !== undefined });
  return {
    ...views,
    async close() {
      await views.close();
      if (boot) markClean(dir, boot);
    },
  };
}

/**
 * The host's index of the archive, beside its views (docs/architecture.md, "Archive"): in
 * their LMDB environment, where the projector writes it (`writer`) and the workers read it,
 * or in memory beside in-memory views, rebuilt from the archive's records at each start.
 */
export function archiveIndexOf(views: ViewStore, stream: string, writer: boolean): ArchiveIndex {
  return 'env' in views ? lmdbArchiveIndex((views as LmdbViewStore).env, { stream, writer }) : memoryArchiveIndex();
}
