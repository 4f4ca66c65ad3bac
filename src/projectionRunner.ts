import { DeliverPolicy } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { Observable, bufferTime, concatMap, filter, type Subscription } from 'rxjs';
import type { AnyAggregate } from './aggregate.js';
import { EVENTS, type Commit, type StoredCommit } from './eventStore.js';
import type { NatsLink } from './natsConnection.js';
import type { AnyProjection } from './projection.js';
import { applyBatch, reapply, upcaster, type Target } from './projectionApply.js';
import type { ViewStore } from './viewStore.js';

/** How one projection is doing, for the admin API and metrics. */
export interface ProjectionStatus {
  readonly name: string;
  readonly version: number;
  readonly generation: number;
  readonly state: 'running' | 'rebuilding' | 'stopped';
  readonly position: number;
  readonly lagEvents: number;
  readonly lagMs: number;
  readonly parked: number;
  readonly error?: string;
}

/** The projector of one host: one ordered consumer on `EVENTS` feeding every projection. */
export interface ProjectionRunner {
  start(): void;
  stop(): Promise<void>;
  status(): ProjectionStatus[];
  /** Rebuilds a view into a fresh generation from position 0 while the current one serves; resolves after the swap. */
  rebuild(name: string): Promise<void>;
  /** Lets a projection stopped by a failing fold try again from its checkpoint. */
  resume(name: string): void;
  /** Folds a parked event (whose commit is given) into its view again and unparks it; throws if it fails again. */
  retryParked(name: string, commit: StoredCommit, eventIndex: number): void;
}

export interface RunnerOptions {
  readonly link: NatsLink;
  readonly views: ViewStore;
  readonly projections: readonly AnyProjection[];
  readonly aggregates: readonly AnyAggregate[];
  readonly batchSize: number;
  readonly batchMs: number;
  readonly log: Logger;
  readonly now?: () => number;
}

/** A running consumer of `EVENTS` feeding batches to an apply function. */
export interface Pipeline {
  /** Highest stream position the consumer has seen, including pending messages. */
  head: number;
  lastAt: number;
  stop(): void;
}

/** What a pipeline needs: the NATS link, batch bounds and a clock. */
export type PipelineOptions = Pick<RunnerOptions, 'link' | 'batchSize' | 'batchMs' | 'now'>;

/**
 * Streams commits from `from + 1` into `apply`, a batch at a time: bounded by count and
 * time, applied one after another, and never more than a few batches ahead of what
 * `apply` has finished (the source waits while too many commits are unapplied).
 */
export function pipeline(
  opts: PipelineOptions,
  from: number,
  apply: (batch: StoredCommit[]) => void | Promise<void>,
  hooks: { onBatch(p: Pipeline): void; onError(err: unknown): void },
): Pipeline {
  const { link, batchSize, batchMs } = opts;
  const now = opts.now ?? Date.now;
  const highWater = batchSize * 4;
  let unapplied = 0;
  let wake: (() => void) | undefined;
  let subscription: Subscription | undefined;
  const p: Pipeline = { head: from, lastAt: 0, stop: () => subscription?.unsubscribe() };

  const commits = new Observable<StoredCommit>((subscriber) => {
    let stopped = false;
    let close: (() => void) | undefined;
    void (async () => {
      const consumer = await link.js.consumers.get(EVENTS, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from + 1 });
      const messages = await consumer.consume({ max_messages: batchSize });
      close = () => void messages.close().catch(() => undefined);
      if (stopped) return close();
      for await (const m of messages) {
        p.head = Math.max(p.head, m.seq + m.info.pending);
        subscriber.next({ ...m.json<Commit>(), position: m.seq });
        if (++unapplied >= highWater) await new Promise<void>((resolve) => (wake = resolve));
        if (stopped) break;
      }
    })().catch((err: unknown) => subscriber.error(err));
    return () => {
      stopped = true;
      wake?.();
      close?.();
    };
  });

  subscription = commits
    .pipe(
      bufferTime(batchMs, null, batchSize),
      filter((batch) => batch.length > 0),
      concatMap(async (batch) => {
        await apply(batch);
        p.lastAt = Date.parse(batch[batch.length - 1]!.events[0]?.at ?? '') || now();
        unapplied -= batch.length;
        if (unapplied < highWater) wake?.();
        hooks.onBatch(p);
      }),
    )
    .subscribe({ error: hooks.onError });
  return p;
}

/** Creates the projector; `start` brings every view up to date and keeps it there. */
export function createProjectionRunner(opts: RunnerOptions): ProjectionRunner {
  const { views, projections, log } = opts;
  const now = opts.now ?? Date.now;
  const targets: Target[] = projections.map((projection) => ({ projection, gen: views.activeGeneration(projection.name) }));
  const rebuilding = new Map<string, Promise<void>>();
  const upcast = upcaster(opts.aggregates);
  const applyTo = (to: Target[]) => (batch: StoredCommit[]) =>
    applyBatch(views, to, batch, upcast, () => new Date(now()).toISOString());
  let live: Pipeline | undefined;
  let running = false;

  const startLive = (): void => {
    live?.stop();
    const from = Math.min(...targets.map((t) => views.checkpoint(t.projection.name, t.gen)));
    live = pipeline(opts, from, applyTo(targets), {
      onBatch: () => undefined,
      onError: (err) => {
        log.error({ err }, 'projection pipeline failed; restarting from the checkpoints in 1 s');
        setTimeout(() => running && startLive(), 1000);
      },
    });
  };

  function rebuild(name: string): Promise<void> {
    const existing = rebuilding.get(name);
    if (existing) return existing;
    const current = targets.find((t) => t.projection.name === name);
    if (!current) return Promise.reject(new Error(`no projection named ${name}`));
    const gen = current.gen + 1;
    const done = (async () => {
      await views.dropGeneration(name, gen);
      views.env.transactionSync(() => views.setBuiltVersion(name, gen, current.projection.version));
      const fresh: Target = { projection: current.projection, gen };
      log.info({ projection: name, generation: gen }, 'rebuild started');
      await new Promise<void>((resolve) => {
        let rebuildPipeline: Pipeline | undefined;
        const trySwap = () => {
          // The live pipeline advances the old generation's checkpoint with every batch, so once the
          // new one is as far, every later commit still reaches it and readers lose nothing by the swap.
          if (views.checkpoint(name, gen) < views.checkpoint(name, current.gen)) return;
          // Synchronous, so no live batch runs between the check and the swap.
          views.env.transactionSync(() => views.activate(name, gen));
          const old = current.gen;
          current.gen = gen;
          delete current.stopped;
          clearInterval(timer);
          rebuildPipeline?.stop();
          void views.dropGeneration(name, old);
          log.info({ projection: name, generation: gen }, 'rebuild swapped in');
          resolve();
        };
        const timer = setInterval(trySwap, 50);
        rebuildPipeline = pipeline(opts, 0, applyTo([fresh]), {
          onBatch: trySwap,
          onError: (err) => log.error({ err }, 'rebuild pipeline failed; the swap waits for the live view'),
        });
      });
    })().finally(() => rebuilding.delete(name));
    rebuilding.set(name, done);
    return done;
  }

  return {
    start() {
      running = true;
      views.env.transactionSync(() => {
        for (const t of targets) {
          if (views.builtVersion(t.projection.name, t.gen) === undefined) views.setBuiltVersion(t.projection.name, t.gen, t.projection.version);
        }
      });
      startLive();
      for (const t of targets) {
        if (views.builtVersion(t.projection.name, t.gen) !== t.projection.version) {
          log.info({ projection: t.projection.name }, 'projection version changed; rebuilding');
          void rebuild(t.projection.name).catch((err: unknown) => log.error({ err }, 'rebuild failed'));
        }
      }
    },
    async stop() {
      running = false;
      live?.stop();
    },
    status() {
      const head = live?.head ?? 0;
      return targets.map((t) => {
        const position = views.checkpoint(t.projection.name, t.gen);
        const lagEvents = Math.max(0, head - position);
        return {
          name: t.projection.name,
          version: t.projection.version,
          generation: t.gen,
          state: t.stopped ? 'stopped' : rebuilding.has(t.projection.name) ? 'rebuilding' : 'running',
          position,
          lagEvents,
          lagMs: lagEvents > 0 && live ? Math.max(0, now() - live.lastAt) : 0,
          parked: views.parked(t.projection.name).length,
          ...(t.stopped ? { error: t.stopped.error } : {}),
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
