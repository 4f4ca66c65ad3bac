import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { EventStore } from '../core/eventStore.js';
import type { NatsLink } from '../nats/connection.js';
import { upcaster } from '../read/apply.js';
import { superviseFeed } from '../read/feed.js';
import type { IndexScanner } from '../read/viewStore.js';
import { startReactions, type ReactionsHost } from '../react/host.js';
import { kvReactionStore, memoryReactionStore } from '../react/reactionStore.js';
import type { CommandEnvelope, CommandResult } from '../write/execute.js';
import type { ConvergeApp } from './app.js';
import type { Config } from './config.js';

/**
 * Starts an app's reactors, processes and timers (docs/architecture.md, "Reactions") beside
 * a read side whose views hold the processes view. On NATS their checkpoints and parked
 * events are in the `converge-reactions` bucket and they run under the cluster-wide
 * reactions lease; without NATS, in memory and at once. Every `projections.statusIntervalMs`
 * it tells them the stream's last position, for lag and stalls.
 */
export async function startReactionsSide(opts: {
  readonly config: Config;
  readonly log: Logger;
  readonly app: ConvergeApp;
  readonly store: EventStore;
  readonly link: NatsLink | undefined;
  readonly views: IndexScanner;
  readonly streamId: string;
  readonly dispatch: (command: CommandEnvelope) => Promise<CommandResult>;
  readonly clock: Clock;
  readonly services: unknown;
  /** Names this runtime as the lease's holder. */
  readonly owner: string;
  /**
   * Tells this claimant of the lease apart from others of the same owner; one that finds the
   * lease in its own name takes it back at once. A projector passes its host and primary, so
   * the projector the primary restarts after a crash goes on without waiting out the TTL.
   */
  readonly leaseInstance?: string;
  readonly onTimerFired?: (process: string, latenessMs: number) => void;
}): Promise<ReactionsHost> {
  const { config, log, app, store, link } = opts;
  const feedOptions = { store, batchSize: config.projections.batchSize, batchMs: config.projections.batchMs, stallMs: config.projections.stallMs, maxBackoffMs: config.projections.maxBackoffMs, log, streamId: opts.streamId };
  const host = await startReactions({
    reactors: app.reactors ?? [],
    processes: app.processes ?? [],
    aggregates: app.aggregates,
    store,
    views: opts.views,
    reactionStore: link ? await kvReactionStore(link, config.nats.replicas) : memoryReactionStore(),
    dispatch: opts.dispatch,
    upcast: upcaster(app.aggregates),
    feed: (spec) => superviseFeed({ ...feedOptions, ...spec }),
    clock: opts.clock,
    settings: config,
    services: opts.services,
    log,
    ...(link ? { lease: { link, owner: opts.owner, ttlMs: config.cluster.leaseTtlMs, replicas: config.nats.replicas, ...(opts.leaseInstance ? { instance: opts.leaseInstance } : {}) } } : {}),
    ...(opts.onTimerFired ? { onTimerFired: opts.onTimerFired } : {}),
  });
  const poll = setInterval(() => {
    store.head().then(
      (head) => host.check(head.lastPosition),
      () => undefined,
    );
  }, config.projections.statusIntervalMs);
  poll.unref();
  return {
    ...host,
    async stop() {
      clearInterval(poll);
      await host.stop();
    },
  };
}
