import type { Context } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { EventStoreUnavailableError, PartitionUnavailableError } from '../core/errors.js';
import type { EventStore } from '../core/eventStore.js';
import { ownerOf, partitionOf } from '../core/partition.js';
import type { NatsLink } from '../nats/connection.js';
import { watchActors, watchPartitions, type Metrics } from '../observe/metrics.js';
import type { Tracing } from '../observe/tracing.js';
import type { CommandEnvelope, CommandResult } from '../write/execute.js';
import { createActorHost, type ActorHost } from '../write/host.js';
import { createPartitionLeases, leaseOwner, type PartitionLeases } from '../write/leases.js';
import { createCommandRouter, localRouter, type CommandRouter } from '../write/router.js';
import { memorySnapshotStore, openSnapshotStore, type SnapshotStore } from '../write/snapshots.js';
import type { ConvergeApp } from './app.js';
import type { Config } from './config.js';
import { snapshotsPath } from './paths.js';
import type { KeyStore } from '../store/keys.js';

/** The write side of a runtime: the actor host with its snapshots, and the router on its partitions. */
export interface WriteSide {
  readonly host: ActorHost;
  /** This host's snapshots of aggregate memories. */
  readonly snapshots: SnapshotStore;
  /** Drops what this process holds of forgotten data subjects: their cached keys, the actors and the snapshots of aggregates with personal data. */
  forgotten(keyIds: readonly string[]): Promise<void>;
  readonly router: CommandRouter;
  /** This worker's partition leases, when ownership is by lease. */
  readonly leases: PartitionLeases | undefined;
  /** Runs a command on its aggregate's owner, timed in the metrics when there are any. */
  dispatch(command: CommandEnvelope, parent?: Context): Promise<CommandResult>;
  /**
   * Drains: with leases, each partition's queued commands finish and its lease goes back;
   * then queued commands run until the drain deadline, and the router stops.
   */
  stop(): Promise<void>;
}

export interface WriteSideOptions {
  readonly config: Config;
  readonly log: Logger;
  readonly app: ConvergeApp;
  readonly store: EventStore;
  /** Absent for the in-memory store: this process then owns every partition. */
  readonly link: NatsLink | undefined;
  readonly streamId: string;
  readonly services: unknown;
  readonly metrics?: Metrics | undefined;
  readonly tracing?: Tracing | undefined;
  /** The data subjects' keys, when the app declares personal data. */
  readonly keys?: KeyStore | undefined;
}

/** Where the process that forgets a data subject tells every worker: `{ keyIds }`. */
export const FORGOTTEN_SUBJECT = 'converge.forgotten';

/**
 * Starts the write side: the actor host, snapshots (in `<dataDir>/snapshots` on NATS, in
 * memory otherwise) and the command router. On NATS it serves the partitions this worker
 * owns, statically or by lease (docs/architecture.md, "Partition leases"); without NATS
 * every partition is its own.
 */
export async function startWriteSide(opts: WriteSideOptions): Promise<WriteSide> {
  const { config, log, link, store, metrics } = opts;
  const traced = opts.tracing ? { tracing: opts.tracing } : {};
  const snapshots = link ? openSnapshotStore(snapshotsPath(config), (err) => log.warn({ err }, 'snapshot write failed')) : memorySnapshotStore();
  const host = createActorHost({
    aggregates: opts.app.aggregates,
    store,
    snapshots,
    streamId: opts.streamId,
    duplicateWindowMs: config.eventStore.duplicateWindowMs,
    settings: config.actors,
    log,
    services: opts.services,
    ...(metrics
      ? {
          onConflict: (aggregate: string, retrying: boolean) => {
            metrics.conflict(aggregate);
            if (retrying) metrics.retry(aggregate);
          },
        }
      : {}),
  });
  if (metrics) watchActors(metrics, host);
  const { partitions, workers, workerIndex } = config.cluster;
  let leases: PartitionLeases | undefined;
  const router = link
    ? createCommandRouter({
        link,
        host,
        partitions,
        owns: (p) => (leases ? leases.owns(p) : ownerOf(p, workers) === workerIndex),
        timeoutMs: config.nats.requestTimeoutMs,
        log,
        ...(metrics ? { onForward: metrics.forwarded } : {}),
        ...traced,
      })
    : localRouter(host);
  const staticShare = Array.from({ length: partitions }, (_, p) => p).filter((p) => ownerOf(p, workers) === workerIndex).length;
  if (metrics) watchPartitions(metrics, () => (leases ? leases.held().length : link ? staticShare : partitions));
  if (link && config.cluster.ownership === 'leases') {
    leases = createPartitionLeases({
      link,
      owner: leaseOwner(config.cluster.hostId, workerIndex),
      partitions,
      ttlMs: config.cluster.leaseTtlMs,
      replicas: config.nats.replicas,
      log,
      onAcquire: (p) => router.serve(p),
      onRelease: async (p) => {
        await router.unserve(p);
        // Well inside the time a lease is trusted, so that its renewals never wait on it.
        const ownedHere = (aggregate: string, id: string) => partitionOf(aggregate, id, partitions) === p;
        await host.evict(ownedHere, Math.floor(config.cluster.leaseTtlMs * 0.375), () => new PartitionUnavailableError(p));
      },
    });
    await leases.start().catch(async (err: unknown) => {
      // Nothing was served yet: the host's passivation timer and the snapshots are all there is to stop.
      await host.drain(0);
      await router.stop();
      await snapshots.close();
      throw err;
    });
  } else {
    router.start();
  }
  // After forgetting: no cached key, no memory and no snapshot of personal data survives here.
  const personal = new Set(opts.app.aggregates.filter((a) => a.personal).map((a) => a.name));
  const forgotten = async (keyIds: readonly string[]) => {
    if (!opts.keys) return;
    // Actors first, keys last: until its actor is stopped, a command on an aggregate whose
    // memory still holds the subject's data seals it with the cached key, which is deleted,
    // rather than with a new key made for the subject (docs/architecture.md, "Forgetting").
    await host.evict((aggregate) => personal.has(aggregate), 2000, () => new EventStoreUnavailableError('a data subject is being forgotten here; retry with the same Idempotency-Key'));
    const dropped = await snapshots.drop(personal);
    for (const keyId of keyIds) opts.keys.evict(keyId);
    log.info({ keyIds, dropped }, 'forgotten: keys, actors and snapshots of aggregates with personal data dropped');
  };
  const heard = link && opts.keys
    ? link.nc.subscribe(FORGOTTEN_SUBJECT, {
        callback: (err, msg) => {
          if (err) return;
          const keyIds = (msg.json<{ keyIds?: unknown }>().keyIds ?? []) as string[];
          forgotten(keyIds).catch((e: unknown) => log.warn({ err: e }, 'forgetting here failed'));
        },
      })
    : undefined;
  const dispatch = (command: CommandEnvelope, parent?: Context) =>
    metrics ? metrics.timeCommand(command.aggregate, command.type, () => router.dispatch(command, parent), (result) => result.kind) : router.dispatch(command, parent);
  let stopping: Promise<void> | undefined;
  return {
    host,
    snapshots,
    router,
    leases,
    dispatch,
    forgotten,
    stop: () =>
      (stopping ??= (async () => {
        heard?.unsubscribe();
        // Leases first: each partition's queued commands finish here, then its lease goes
        // back and another worker takes it at once, while this one drains the rest.
        await leases?.stop();
        // A command already running is past its dependency reads or into its append; both end
        // within these timeouts, and its caller is better served by its real outcome.
        await host.drain(config.cluster.shutdownTimeoutMs, config.nats.requestTimeoutMs + config.eventStore.publishTimeoutMs);
        await router.stop();
      })()),
  };
}
