import type { EventStore } from '../core/eventStore.js';
import type { Target } from './apply.js';
import type { FeedHealth } from './feed.js';
import type { LiveFeed } from './liveFeed.js';
import type { Rebuilds } from './rebuild.js';
import type { ProjectionStatus, RebuildStatus, StreamState } from './viewsStatus.js';
import { storeChange, type Checkpoint } from './storeIdentity.js';
import type { ViewStore } from './viewStore.js';

/** What the monitor watches, from the runner that wires it (see `createProjectionRunner`). */
export interface MonitorOptions {
  readonly store: EventStore;
  readonly views: ViewStore;
  /** The active generation of every projection. */
  readonly targets: readonly Target[];
  readonly live: LiveFeed;
  readonly rebuilds: Rebuilds;
  /** The id of the stream the views were built from; when given, another id behind `EVENTS` is a store change. */
  readonly streamId?: string;
  /** How often the stream's last sequence is read for lag and stall detection. */
  readonly statusIntervalMs: number;
  readonly now: () => number;
  /** The stream behind `EVENTS` is not the one the checkpoints were written against. */
  readonly onStoreChanged: (reason: string) => void;
}

/** The runner's poll of the stream head, and the status it gives. */
export interface Monitor {
  /** Polls once now, then every `statusIntervalMs`, each poll after the last has finished. */
  start(): void;
  stop(): void;
  status(): ProjectionStatus[];
  stream(): StreamState;
}

/**
 * Creates the monitor (see docs/architecture.md, "Projections", "Lag", and "Views belong to
 * one event store"). Each poll reads the stream's last position, checks that the stream
 * is still the views' own, lets the feeds tell a stalled consumer from an idle stream, and
 * fetches the store times of the commits each projection waits for next, for `lagMs`.
 */
export function createMonitor(opts: MonitorOptions): Monitor {
  const { store, views, targets, live, rebuilds, now } = opts;
  let stream: { reachable: boolean; last: number; checkedAt?: number } = { reachable: false, last: 0 };
  /** Store times of commits fetched for lag, by position; only the few oldest unapplied ones. */
  const commitTimes = new Map<number, number>();
  let poll: NodeJS.Timeout | undefined;

  /** Every checkpoint the runner writes: each projection's active generation and those being rebuilt. */
  const checkpoints = (): Checkpoint[] =>
    [...targets.map((t) => ({ projection: t.projection.name, gen: t.gen })), ...rebuilds.building()].map((g) => ({
      ...g,
      position: views.checkpoint(g.projection, g.gen),
    }));

  /** Reads the stream's last position and the store times of the oldest unapplied commits. */
  async function refresh(): Promise<void> {
    // Read before the head, so that a checkpoint that moves meanwhile is never taken for one past the end.
    const before = checkpoints();
    try {
      const head = await store.head();
      stream = { reachable: true, last: head.lastPosition, checkedAt: now() };
      const reason = storeChange({ built: opts.streamId, live: head.identity, checkpoints: before, lastPosition: head.lastPosition });
      if (reason !== undefined) opts.onStoreChanged(reason);
    } catch {
      stream = { ...stream, reachable: false };
      return;
    }
    live.current()?.check(stream.last);
    rebuilds.poll(stream.last);
    const wanted = new Set(targets.map((t) => views.checkpoint(t.projection.name, t.gen) + 1).filter((p) => p <= stream.last));
    for (const p of commitTimes.keys()) if (!wanted.has(p)) commitTimes.delete(p);
    for (const p of wanted) {
      // Fetched even when the consumer holds it: a restarted feed forgets what it held.
      if (commitTimes.has(p)) continue;
      const commit = await store.commitAt(p).catch(() => undefined);
      if (commit) commitTimes.set(p, commit.storedAt);
    }
  }

  const stateOf = (t: Target, health: FeedHealth | undefined, rebuilding: boolean): ProjectionStatus['state'] => {
    if (t.stopped) return 'stopped';
    if (health && health.state !== 'running') return health.state;
    return rebuilding ? 'rebuilding' : 'running';
  };

  return {
    start() {
      const tick = () => {
        poll = setTimeout(() => void refresh().finally(() => poll && tick()), opts.statusIntervalMs);
      };
      void refresh();
      tick();
    },
    stop() {
      clearTimeout(poll);
      poll = undefined;
    },
    stream: () => ({ reachable: stream.reachable, lastPosition: stream.last, checkedAt: stream.checkedAt ? new Date(stream.checkedAt).toISOString() : null }),
    status() {
      const t0 = now();
      const feed = live.current();
      const health = feed?.health();
      const head = Math.max(stream.last, feed?.seen() ?? 0);
      return targets.map((t) => {
        const name = t.projection.name;
        const position = views.checkpoint(name, t.gen);
        const lagEvents = Math.max(0, head - position);
        const oldest = lagEvents === 0 ? undefined : (commitTimes.get(position + 1) ?? feed?.unappliedAt(position + 1));
        const rebuild = rebuilds.status(name, head, t0);
        const lastRebuildError = rebuilds.lastError(name);
        const error = t.stopped?.error ?? (health?.state === 'running' ? undefined : health?.error);
        const lastBatchAt = health?.lastBatchAt ?? t0;
        return {
          name,
          version: t.projection.version,
          generation: t.gen,
          state: stateOf(t, health, rebuild !== undefined),
          position,
          lagEvents,
          lagMs: lagEvents === 0 ? 0 : oldest === undefined ? null : Math.max(0, t0 - oldest),
          parked: views.parked(name).length,
          ...(error === undefined ? {} : { error }),
          lastBatchAt: new Date(lastBatchAt).toISOString(),
          sinceLastBatchMs: Math.max(0, t0 - lastBatchAt),
          ...(rebuild ? { rebuild } : {}),
          ...(lastRebuildError === undefined ? {} : { lastRebuildError }),
        };
      });
    },
  };
}
