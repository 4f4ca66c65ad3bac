import type { Logger } from 'pino';
import type { AnyAggregate } from '../core/aggregate.js';
import type { StoredCommit } from '../core/eventStore.js';
import type { AnyProjection } from '../core/projection.js';
import { tracedBatch, type Tracing } from '../observe/tracing.js';
import { applyBatch, reapply, upcaster, type Target } from './apply.js';
import { superviseFeed, type Feed, type FeedHealth, type PipelineOptions } from './feed.js';
import { addSample, measureProgress, type ProgressSample } from './progress.js';
import type { ViewStore } from './viewStore.js';

/** How one projection is doing, for the admin API, `/ready/views` and metrics. */
export interface ProjectionStatus {
  readonly name: string;
  readonly version: number;
  readonly generation: number;
  /**
   * `running`; `rebuilding`: a fresh generation is being built while this one serves;
   * `failing`: batches cannot be applied (the view store cannot write) and are retried;
   * `stalled`: the consumer stopped delivering while `EVENTS` has more, and is recreated;
   * `stopped`: a fold failed under the `stop` policy and waits for `resume`.
   */
  readonly state: 'running' | 'rebuilding' | 'failing' | 'stalled' | 'stopped';
  readonly position: number;
  /** Commits in `EVENTS` after `position`, against the stream's last sequence. */
  readonly lagEvents: number;
  /** Age of the oldest commit not applied yet; 0 when none waits, null when its time is not known (NATS away). */
  readonly lagMs: number | null;
  readonly parked: number;
  readonly error?: string;
  /** When a batch last applied to the views. */
  readonly lastBatchAt: string;
  readonly sinceLastBatchMs: number;
  /** The fresh generation being built, while `rebuilding`. */
  readonly rebuild?: RebuildStatus;
  /** How the last rebuild that did not swap in ended. */
  readonly lastRebuildError?: string;
}

/** A rebuild in progress: the fresh generation's position, what it runs to, and when it should get there. */
export interface RebuildStatus {
  readonly generation: number;
  readonly position: number;
  /** The stream's last position: the rebuild swaps in once it has caught up with the live generation, at most this far. */
  readonly target: number;
  readonly startedAt: string;
  /** Commits applied per second over the last few seconds; null until it has moved. */
  readonly ratePerS: number | null;
  /** Milliseconds left to `target` at that rate; null while the rate is unknown. */
  readonly etaMs: number | null;
  readonly state: FeedHealth['state'];
  readonly error?: string;
}

/** The runner's view of the event store: its last sequence, from stream info. */
export interface StreamState {
  readonly reachable: boolean;
  readonly lastPosition: number;
  /** When `lastPosition` was read. */
  readonly checkedAt: string | null;
}

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

interface Rebuild {
  readonly promise: Promise<void>;
  readonly feed: Feed | undefined;
  readonly gen: number;
  readonly startedAt: number;
  /** The fresh generation's checkpoint at each status poll, for the rate (see `measureProgress`). */
  samples: ProgressSample[];
  fail(err: Error): void;
}

function rebuildStatus(r: Rebuild, position: number, target: number, now: number, health: FeedHealth | undefined): RebuildStatus {
  return {
    generation: r.gen,
    position,
    target: Math.max(target, position),
    startedAt: new Date(r.startedAt).toISOString(),
    ...measureProgress(r.samples, now, position, target),
    state: health?.state ?? 'running',
    ...(health?.error ? { error: health.error } : {}),
  };
}

/** Creates the projector; `start` brings every view up to date and keeps it there. */
export function createProjectionRunner(opts: RunnerOptions): ProjectionRunner {
  const { views, projections, log, store } = opts;
  const now = opts.now ?? Date.now;
  const targets: Target[] = projections.map((projection) => ({ projection, gen: views.activeGeneration(projection.name) }));
  const rebuilds = new Map<string, Rebuild>();
  const lastRebuildError = new Map<string, string>();
  /** Drops of failed rebuilds' generations; the next rebuild of the same view waits for its own. */
  const cleanups = new Map<string, Promise<void>>();
  const upcast = upcaster(opts.aggregates);
  const applyTo = (to: Target[]) => (batch: StoredCommit[]) =>
    applyBatch(views, to, batch, upcast, () => new Date(now()).toISOString());
  let storeChanged = false;
  const storeChangedOnce = (reason: string) => {
    if (storeChanged) return;
    storeChanged = true;
    opts.onStoreChanged?.(reason);
  };
  const feedOptions = {
    store,
    batchSize: opts.batchSize,
    batchMs: opts.batchMs,
    stallMs: opts.stallMs,
    maxBackoffMs: opts.maxBackoffMs,
    log,
    now,
    ...(opts.streamId === undefined ? {} : { streamId: opts.streamId }),
    onStreamChanged: storeChangedOnce,
  };
  let live: Feed | undefined;
  let stream: { reachable: boolean; last: number; checkedAt?: number } = { reachable: false, last: 0 };
  /** Store times of commits fetched for lag, by position; only the few oldest unapplied ones. */
  const commitTimes = new Map<number, number>();
  let poll: NodeJS.Timeout | undefined;
  let unlisten: (() => void) | undefined;

  const liveFrom = () => Math.min(...targets.map((t) => views.checkpoint(t.projection.name, t.gen)));
  const startLive = (): void => {
    live?.stop();
    const apply = applyTo(targets);
    const { tracing, onApplied } = opts;
    live = superviseFeed({
      ...feedOptions,
      name: 'projections',
      from: liveFrom,
      apply: async (batch) => {
        if (tracing) await tracedBatch(tracing, 'apply', batch, () => apply(batch));
        else apply(batch);
        onApplied?.();
      },
    });
  };

  /** Every checkpoint this runner writes: each projection's active generation and those being rebuilt. */
  const checkpoints = (): [string, number][] => [
    ...targets.map((t): [string, number] => [`${t.projection.name}.${t.gen}`, views.checkpoint(t.projection.name, t.gen)]),
    ...[...rebuilds].map(([name, r]): [string, number] => [`${name}.${r.gen}`, views.checkpoint(name, r.gen)]),
  ];

  /** Reads the stream's last position and the store times of the oldest unapplied commits. */
  async function refresh(): Promise<void> {
    // Read before the head, so that a checkpoint that moves meanwhile is never taken for one past the end.
    const before = checkpoints();
    try {
      const head = await store.head();
      stream = { reachable: true, last: head.lastPosition, checkedAt: now() };
      // Another stream behind EVENTS: its id differs (a wiped store grows new commits fast enough
      // to pass a checkpoint between two polls), or it ends before a checkpoint.
      const ahead = before.filter(([, p]) => p > head.lastPosition);
      if (opts.streamId !== undefined && head.identity.stream !== opts.streamId) {
        storeChangedOnce(`EVENTS is now stream ${head.identity.stream}, not ${opts.streamId} that the views were built from`);
      } else if (ahead.length > 0) {
        storeChangedOnce(`checkpoints are past the stream's last sequence ${head.lastPosition}: ${ahead.map(([n, p]) => `${n}=${p}`).join(', ')}`);
      }
    } catch {
      stream = { ...stream, reachable: false };
      return;
    }
    live?.check(stream.last);
    for (const [name, r] of rebuilds) {
      r.feed?.check(stream.last);
      r.samples = addSample(r.samples, { at: now(), position: views.checkpoint(name, r.gen) });
    }
    const wanted = new Set(targets.map((t) => views.checkpoint(t.projection.name, t.gen) + 1).filter((p) => p <= stream.last));
    for (const p of commitTimes.keys()) if (!wanted.has(p)) commitTimes.delete(p);
    for (const p of wanted) {
      // Fetched even when the consumer holds it: a restarted feed forgets what it held.
      if (commitTimes.has(p)) continue;
      const commit = await store.commitAt(p).catch(() => undefined);
      if (commit) commitTimes.set(p, commit.storedAt);
    }
  }

  function rebuild(name: string): Promise<void> {
    const existing = rebuilds.get(name);
    if (existing) return existing.promise;
    const current = targets.find((t) => t.projection.name === name);
    if (!current) return Promise.reject(new Error(`no projection named ${name}`));
    const gen = current.gen + 1;
    const fresh: Target = { projection: current.projection, gen };
    let settle: { resolve(): void; reject(err: Error): void } | undefined;
    const promise = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    let timer: NodeJS.Timeout | undefined;
    let feed: Feed | undefined;
    const finish = (err?: Error) => {
      if (rebuilds.get(name) !== entry) return;
      rebuilds.delete(name);
      clearInterval(timer);
      feed?.stop();
      if (err) {
        lastRebuildError.set(name, err.message);
        log.error({ projection: name, generation: gen, err }, `rebuild of ${name} failed: ${err.message}`);
        // After the start-up's own drop, so that two drops of one database never overlap.
        cleanups.set(name, starting.then(() => views.dropGeneration(name, gen)).catch(() => undefined));
        settle!.reject(err);
      } else {
        lastRebuildError.delete(name);
        settle!.resolve();
      }
    };
    const trySwap = () => {
      if (rebuilds.get(name) !== entry) return;
      if (fresh.stopped) return finish(new Error(`the fold stopped at position ${fresh.stopped.position}: ${fresh.stopped.error}`));
      // The live feed advances the old generation's checkpoint with every batch, so once the
      // new one is as far, every later commit still reaches it and readers lose nothing by the swap.
      if (views.checkpoint(name, gen) < views.checkpoint(name, current.gen)) return;
      // Synchronous, so no live batch runs between the check and the swap.
      views.transaction(() => views.activate(name, gen));
      const old = current.gen;
      current.gen = gen;
      delete current.stopped;
      void views.dropGeneration(name, old).catch((err: unknown) => log.warn({ err, projection: name }, 'dropping the old generation failed'));
      log.info({ projection: name, generation: gen }, `rebuild of ${name} swapped in generation ${gen}`);
      finish();
    };
    const entry: Rebuild = {
      promise,
      gen,
      startedAt: now(),
      samples: [{ at: now(), position: 0 }],
      get feed() {
        return feed;
      },
      fail: finish,
    };
    rebuilds.set(name, entry);
    const starting = (async () => {
      await cleanups.get(name);
      await views.dropGeneration(name, gen);
      views.transaction(() => views.setBuiltVersion(name, gen, current.projection.version));
      if (rebuilds.get(name) !== entry) return;
      log.info({ projection: name, generation: gen }, `rebuild of ${name} started`);
      feed = superviseFeed({ ...feedOptions, name: `rebuild of ${name}`, from: () => views.checkpoint(name, gen), apply: applyTo([fresh]), onBatch: trySwap });
      timer = setInterval(trySwap, 50);
    })();
    starting.catch((err: unknown) => finish(err instanceof Error ? err : new Error(String(err))));
    return promise;
  }

  const stateOf = (t: Target, health: FeedHealth | undefined): ProjectionStatus['state'] => {
    if (t.stopped) return 'stopped';
    if (health && health.state !== 'running') return health.state;
    return rebuilds.has(t.projection.name) ? 'rebuilding' : 'running';
  };

  return {
    start() {
      views.transaction(() => {
        for (const t of targets) {
          if (views.builtVersion(t.projection.name, t.gen) === undefined) views.setBuiltVersion(t.projection.name, t.gen, t.projection.version);
        }
      });
      startLive();
      // An ordered consumer can stop delivering after the server restarts, without an error;
      // recreating it at once beats waiting for the stall detector.
      unlisten = store.onReconnect(() => {
        live?.restart();
        for (const r of rebuilds.values()) r.feed?.restart();
      });
      const tick = () => {
        poll = setTimeout(() => void refresh().finally(() => poll && tick()), opts.statusIntervalMs);
      };
      void refresh();
      tick();
      for (const t of targets) {
        if (views.builtVersion(t.projection.name, t.gen) !== t.projection.version) {
          log.info({ projection: t.projection.name }, 'projection version changed; rebuilding');
          void rebuild(t.projection.name).catch(() => undefined);
        }
      }
    },
    async stop() {
      clearTimeout(poll);
      poll = undefined;
      unlisten?.();
      live?.stop();
      for (const r of [...rebuilds.values()]) r.fail(new Error('the projector stopped before the rebuild finished'));
      await Promise.all(cleanups.values());
    },
    stream: () => ({ reachable: stream.reachable, lastPosition: stream.last, checkedAt: stream.checkedAt ? new Date(stream.checkedAt).toISOString() : null }),
    status() {
      const t0 = now();
      const health = live?.health();
      const head = Math.max(stream.last, live?.seen() ?? 0);
      return targets.map((t) => {
        const name = t.projection.name;
        const position = views.checkpoint(name, t.gen);
        const lagEvents = Math.max(0, head - position);
        const oldest = lagEvents === 0 ? undefined : (commitTimes.get(position + 1) ?? live?.unappliedAt(position + 1));
        const r = rebuilds.get(name);
        const rh = r?.feed?.health();
        const error = t.stopped?.error ?? (health?.state === 'running' ? undefined : health?.error);
        const lastBatchAt = health?.lastBatchAt ?? t0;
        return {
          name,
          version: t.projection.version,
          generation: t.gen,
          state: stateOf(t, health),
          position,
          lagEvents,
          lagMs: lagEvents === 0 ? 0 : oldest === undefined ? null : Math.max(0, t0 - oldest),
          parked: views.parked(name).length,
          ...(error === undefined ? {} : { error }),
          lastBatchAt: new Date(lastBatchAt).toISOString(),
          sinceLastBatchMs: Math.max(0, t0 - lastBatchAt),
          ...(r ? { rebuild: rebuildStatus(r, views.checkpoint(name, r.gen), head, t0, rh) } : {}),
          ...(lastRebuildError.has(name) ? { lastRebuildError: lastRebuildError.get(name)! } : {}),
        };
      });
    },
    rebuild,
    resume(name) {
      const target = targets.find((t) => t.projection.name === name);
      if (!target?.stopped) return;
      delete target.stopped;
      startLive();
    },
    retryParked(name, commit, eventIndex) {
      const target = targets.find((t) => t.projection.name === name);
      if (!target) throw new Error(`no projection named ${name}`);
      reapply(views, target, commit, eventIndex, upcast);
    },
  };
}
