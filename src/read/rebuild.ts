import type { Logger } from 'pino';
import type { StoredCommit } from '../core/eventStore.js';
import type { Target } from './apply.js';
import type { Feed, FeedHealth, FeedSpec } from './feed.js';
import { addSample, measureProgress, type ProgressSample } from './progress.js';
import type { ViewStore } from './viewStore.js';
import type { RebuildStatus } from './viewsStatus.js';

/** What rebuilds need from the runner that wires them (see `createProjectionRunner`). */
export interface RebuildsOptions {
  readonly views: ViewStore;
  /** The active generation of every projection; a swap moves its target's `gen` to the fresh one. */
  readonly targets: readonly Target[];
  /** Starts a supervised feed with the runner's store, batch bounds and supervision. */
  readonly feed: (spec: FeedSpec) => Feed;
  /** Applies a batch to some targets in one transaction (`applyBatch`). */
  readonly applyTo: (to: readonly Target[]) => (batch: StoredCommit[]) => void;
  readonly log: Logger;
  readonly now: () => number;
}

/** The rebuilds of one runner: at most one per projection, each into a fresh generation. */
export interface Rebuilds {
  /** Rebuilds a view into a fresh generation from position 0 while the current one serves; resolves after the swap, rejects if it cannot finish. */
  rebuild(name: string): Promise<void>;
  /** The generations being built, for the checkpoints the store-change check reads. */
  building(): Array<{ readonly projection: string; readonly gen: number }>;
  /** How the rebuild of `name` is doing against the stream's last position, or undefined when none runs. */
  status(name: string, streamLast: number, now: number): RebuildStatus | undefined;
  /** How the last rebuild of `name` that did not swap in ended, until one does. */
  lastError(name: string): string | undefined;
  /** At each status poll: tells each rebuild's feed the stream's last position and samples its checkpoint for the rate. */
  poll(streamLast: number): void;
  /** Recreates each rebuild's consumer now (after a reconnect). */
  restart(): void;
  /** Ends every rebuild unfinished, and waits until their generations are dropped. */
  stop(): Promise<void>;
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

/**
 * Creates the rebuilds of a runner (see docs/architecture.md, "Projections", "Generations
 * and rebuilds"). A rebuild fills generation `active + 1` from position 0 with a feed of
 * its own, and swaps it in once it has caught up with the live generation.
 */
export function createRebuilds(opts: RebuildsOptions): Rebuilds {
  const { views, targets, log, now } = opts;
  const rebuilds = new Map<string, Rebuild>();
  const lastRebuildError = new Map<string, string>();
  /** Drops of failed rebuilds' generations; the next rebuild of the same view waits for its own. */
  const cleanups = new Map<string, Promise<void>>();

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
      feed = opts.feed({ name: `rebuild of ${name}`, from: () => views.checkpoint(name, gen), apply: opts.applyTo([fresh]), onBatch: trySwap });
      timer = setInterval(trySwap, 50);
    })();
    starting.catch((err: unknown) => finish(err instanceof Error ? err : new Error(String(err))));
    return promise;
  }

  return {
    rebuild,
    building: () => [...rebuilds].map(([projection, r]) => ({ projection, gen: r.gen })),
    status(name, streamLast, t) {
      const r = rebuilds.get(name);
      if (!r) return undefined;
      const position = views.checkpoint(name, r.gen);
      const health = r.feed?.health();
      return {
        generation: r.gen,
        position,
        target: Math.max(streamLast, position),
        startedAt: new Date(r.startedAt).toISOString(),
        ...measureProgress(r.samples, t, position, streamLast),
        state: health?.state ?? 'running',
        ...(health?.error ? { error: health.error } : {}),
      };
    },
    lastError: (name) => lastRebuildError.get(name),
    poll(streamLast) {
      for (const [name, r] of rebuilds) {
        r.feed?.check(streamLast);
        r.samples = addSample(r.samples, { at: now(), position: views.checkpoint(name, r.gen) });
      }
    },
    restart() {
      for (const r of rebuilds.values()) r.feed?.restart();
    },
    async stop() {
      for (const r of [...rebuilds.values()]) r.fail(new Error('the projector stopped before the rebuild finished'));
      await Promise.all(cleanups.values());
    },
  };
}
