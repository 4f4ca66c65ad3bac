import type { StoredCommit } from '../core/eventStore.js';
import { tracedBatch, type Tracing } from '../observe/tracing.js';
import type { Target } from './apply.js';
import type { Feed, FeedSpec } from './feed.js';
import type { ViewStore } from './viewStore.js';

/** What the live feed needs from the runner that wires it (see `createProjectionRunner`). */
export interface LiveFeedOptions {
  readonly views: ViewStore;
  /** The active generation of every projection; a rebuild's swap changes a target's `gen` in place. */
  readonly targets: readonly Target[];
  /** Starts a supervised feed with the runner's store, batch bounds and supervision. */
  readonly feed: (spec: FeedSpec) => Feed;
  /** Applies a batch to some targets in one transaction (`applyBatch`). */
  readonly applyTo: (to: readonly Target[]) => (batch: StoredCommit[]) => void;
  /** Called after each batch the live views have committed, to wake readers waiting for a position. */
  readonly onApplied?: () => void;
  /** An `apply` span per live commit that carries a trace context; absent when tracing is off. */
  readonly tracing?: Tracing;
}

/** The one feed that keeps every active generation up to date (see docs/architecture.md, "Projections"). */
export interface LiveFeed {
  /** Starts the feed from the lowest checkpoint of the active generations, replacing one that runs. */
  start(): void;
  /** The running feed, for its health and stall checks; undefined before `start`. */
  current(): Feed | undefined;
  /** Lets a projection stopped by a failing fold (the `stop` policy) go on from its checkpoint. */
  resume(name: string): void;
  stop(): void;
}

/**
 * Creates the live feed. One ordered consumer serves every projection: it starts at the
 * lowest checkpoint, and each projection skips the commits at or below its own.
 */
export function createLiveFeed(opts: LiveFeedOptions): LiveFeed {
  const { views, targets, tracing, onApplied } = opts;
  let live: Feed | undefined;
  const from = () => Math.min(...targets.map((t) => views.checkpoint(t.projection.name, t.gen)));
  const start = (): void => {
    live?.stop();
    // Over the targets themselves, not a copy: a swapped-in generation is fed from the next batch on.
    const apply = opts.applyTo(targets);
    live = opts.feed({
      name: 'projections',
      from,
      apply: async (batch) => {
        if (tracing) await tracedBatch(tracing, 'apply', batch, () => apply(batch));
        else apply(batch);
        onApplied?.();
      },
    });
  };
  return {
    start,
    current: () => live,
    resume(name) {
      const target = targets.find((t) => t.projection.name === name);
      if (!target?.stopped) return;
      delete target.stopped;
      // The feed moved on past the stopped projection's checkpoint; only a new one goes back for it.
      start();
    },
    stop: () => live?.stop(),
  };
}
