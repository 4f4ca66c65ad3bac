import type { Logger } from 'pino';
import type { AnyAggregate } from '../core/aggregate.js';
import type { StoredCommit } from '../core/eventStore.js';
import type { AnyProjection } from '../core/projection.js';
import type { Tracing } from '../observe/tracing.js';
import { applyBatch, reapply, upcaster, type Target } from './apply.js';
import { superviseFeed, type FeedSpec, type PipelineOptions } from './feed.js';
import { createLiveFeed } from './liveFeed.js';
import { createMonitor } from './monitor.js';
import type { ProjectionStatus, StreamState } from './viewsStatus.js';
import { createRebuilds } from './rebuild.js';
import type { ViewStore } from './viewStore.js';

/** The projector of one host: one ordered consumer on `EVENTS` feeding every projection. */
export interface ProjectionRunner {
  start(): void;
  stop(): Promise<void>;
  status(): ProjectionStatus[];
  stream(): StreamState;
  /** Rebuilds a view into a fresh generation from position 0 while the current one serves; resolves after the swap, rejects if it cannot finish. */
  rebuild(name: string): Promise<void>;
  /** Lets a projection stopped by a failing fold try again from its checkpoint. */
  resume(name: string): void;
  /** Folds a parked event (whose commit is given) into its view again and unparks it; throws if it fails again. */
  retryParked(name: string, commit: StoredCommit, eventIndex: number): void;
}

/** What the runner is made of: the views it writes, the projections, and how its feeds run. */
export interface RunnerOptions extends PipelineOptions {
  readonly views: ViewStore;
  readonly projections: readonly AnyProjection[];
  readonly aggregates: readonly AnyAggregate[];
  readonly stallMs: number;
  readonly maxBackoffMs: number;
  /** How often the stream's last sequence is read for lag and stall detection. */
  readonly statusIntervalMs: number;
  readonly log: Logger;
  readonly now?: () => number;
  /**
   * Called once when the stream turns out to end before a checkpoint (it was recreated, or
   * NATS_URL now names another server); the views
   * must then be reset, which only happens at start (see `bindViewsToStore`).
   */
  readonly onStoreChanged?: (reason: string) => void;
  /** Called after each batch the live views have committed, to wake readers waiting for a position. */
  readonly onApplied?: () => void;
  /** An `apply` span per live commit that carries a trace context; absent when tracing is off. */
  readonly tracing?: Tracing;
}

/**
 * Creates the projector; `start` brings every view up to date and keeps it there. It joins
 * three parts over one set of targets, the active generation of each projection (see
 * docs/architecture.md, "Projections"): the live feed (`liveFeed.ts`), the rebuilds into
 * fresh generations (`rebuild.ts`), and the monitor that polls the stream for lag, stalls
 * and store changes and answers the status (`monitor.ts`).
 */
export function createProjectionRunner(opts: RunnerOptions): ProjectionRunner {
  const { views, projections, log, store } = opts;
  const now = opts.now ?? Date.now;
  const targets: Target[] = projections.map((projection) => ({ projection, gen: views.activeGeneration(projection.name) }));
  const upcast = upcaster(opts.aggregates);
  const applyTo = (to: readonly Target[]) => (batch: StoredCommit[]) => applyBatch(views, to, batch, upcast, () => new Date(now()).toISOString());
  // The feeds and the monitor may each find the store changed; the host hears it once.
  let storeChanged = false;
  const storeChangedOnce = (reason: string) => {
    if (storeChanged) return;
    storeChanged = true;
    opts.onStoreChanged?.(reason);
  };
  const feed = (spec: FeedSpec) =>
    superviseFeed({
      store,
      batchSize: opts.batchSize,
      batchMs: opts.batchMs,
      stallMs: opts.stallMs,
      maxBackoffMs: opts.maxBackoffMs,
      log,
      now,
      ...(opts.streamId === undefined ? {} : { streamId: opts.streamId }),
      onStreamChanged: storeChangedOnce,
      ...spec,
    });
  const live = createLiveFeed({ views, targets, feed, applyTo, ...(opts.onApplied ? { onApplied: opts.onApplied } : {}), ...(opts.tracing ? { tracing: opts.tracing } : {}) });
  const rebuilds = createRebuilds({ views, targets, feed, applyTo, log, now });
  const monitor = createMonitor({
    store,
    views,
    targets,
    live,
    rebuilds,
    ...(opts.streamId === undefined ? {} : { streamId: opts.streamId }),
    statusIntervalMs: opts.statusIntervalMs,
    now,
    onStoreChanged: storeChangedOnce,
  });
  let unlisten: (() => void) | undefined;

  return {
    start() {
      views.transaction(() => {
        for (const t of targets) {
          if (views.builtVersion(t.projection.name, t.gen) === undefined) views.setBuiltVersion(t.projection.name, t.gen, t.projection.version);
        }
      });
      live.start();
      // An ordered consumer can stop delivering after the server restarts, without an error;
      // recreating it at once beats waiting for the stall detector.
      unlisten = store.onReconnect(() => {
        live.current()?.restart();
        rebuilds.restart();
      });
      monitor.start();
      for (const t of targets) {
        if (views.builtVersion(t.projection.name, t.gen) !== t.projection.version) {
          log.info({ projection: t.projection.name }, 'projection version changed; rebuilding');
          void rebuilds.rebuild(t.projection.name).catch(() => undefined);
        }
      }
    },
    async stop() {
      monitor.stop();
      unlisten?.();
      live.stop();
      await rebuilds.stop();
    },
    stream: () => monitor.stream(),
    status: () => monitor.status(),
    rebuild: (name) => rebuilds.rebuild(name),
    resume: (name) => live.resume(name),
    retryParked(name, commit, eventIndex) {
      const target = targets.find((t) => t.projection.name === name);
      if (!target) throw new Error(`no projection named ${name}`);
      reapply(views, target, commit, eventIndex, upcast);
    },
  };
}
