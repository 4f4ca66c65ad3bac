import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../core/config.js';
import { PartitionUnavailableError } from '../core/errors.js';
import { ownerOf, partitionOf } from '../core/partition.js';
import type { EventStore } from '../core/eventStore.js';
import { buildCommandApp } from '../http/commandApp.js';
import { buildQueryApp } from '../http/queryApp.js';
import { connectNats, type NatsLink } from '../nats/connection.js';
import { clusterMetricsReader } from '../observe/cluster.js';
import { createMetrics, watchActors, watchPartitions, type Metrics } from '../observe/metrics.js';
import { createTracing, type Tracing } from '../observe/tracing.js';
import { openViewStore } from '../read/lmdbViews.js';
import { followApplied, followViewsStatus, viewsAppliedSubject, viewsStatusSubject } from '../read/status.js';
import { viewsBoundTo } from '../read/storeIdentity.js';
import { appendsNeedFence, awaitEventStream, createJetStreamEventStore, ensureEventStream } from '../store/jetstream.js';
import { createActorHost, type ActorHost } from '../write/host.js';
import { createPartitionLeases, leaseOwner, type PartitionLeases } from '../write/leases.js';
import { createCommandRouter, type CommandRouter } from '../write/router.js';
import { openSnapshotStore, type SnapshotStore } from '../write/snapshots.js';
import type { ConvergeApp } from './app.js';
import { natsAuthOf } from './config.js';
import { snapshotsPath, viewsPath } from './paths.js';

/** How long `/metrics` waits for the cluster primary, which waits up to 5 s for every child's registry. */
export const METRICS_TIMEOUT_MS = 6000;

/** A worker of a read replica: its NATS link and the query API. */
export interface QueryWorker {
  readonly link: NatsLink;
  readonly store: EventStore;
  readonly queryApp: FastifyInstance;
  /** This process's metrics (the cluster's are summed by the primary). */
  readonly metrics: Metrics;
  /**
   * Drains: new commands get 503, queued ones finish up to the deadline and those not
   * started by then get 503 `shutting_down`; every caller is answered before anything closes.
   */
  stop(): Promise<void>;
}

/** The write side of a worker: the actor host with its snapshots, the router on its partitions, and the command API. */
interface WriteSide {
  readonly host: ActorHost;
  /** This host's snapshots of aggregate memories. */
  readonly snapshots: SnapshotStore;
  readonly router: CommandRouter;
  /** This worker's partition leases, when ownership is by lease. */
  readonly leases: PartitionLeases | undefined;
  readonly commandApp: FastifyInstance;
}

/** A running worker: its NATS link, actor host, router, and the command and query APIs. */
export interface Worker extends QueryWorker, WriteSide {}

/** Starts one worker: connects, ensures the stream, serves its partitions, the command API and the query API. */
export async function startWorker(config: Config, log: Logger, app: ConvergeApp): Promise<Worker> {
  return (await start(config, log, app, true)) as Worker;
}

/**
 * Starts a worker of a read replica (`cluster.role`): only the query API, on the host's
 * own views. It waits for the command hosts' stream rather than create it.
 */
export async function startQueryWorker(config: Config, log: Logger, app: ConvergeApp): Promise<QueryWorker> {
  return start(config, log, app, false);
}

async function start(config: Config, log: Logger, app: ConvergeApp, writes: boolean): Promise<QueryWorker & Partial<WriteSide>> {
  const { aggregates } = app;
  // Before connecting, which waits for NATS: the primary collects every child's registry, also during an outage.
  const metrics = createMetrics();
  const readMetrics = clusterMetricsReader(metrics.registry, METRICS_TIMEOUT_MS);
  const tracing = createTracing(config.telemetry, `worker-${config.cluster.workerIndex}`);
  const traced = tracing ? { tracing } : {};
  const link = await connectNats(config.nats.url, {
    auth: natsAuthOf(config),
    name: `converge-worker-${config.cluster.workerIndex}`,
    timeoutMs: config.nats.requestTimeoutMs,
    log,
  });
  link.onReconnect(() => metrics.natsReconnected());
  const streamId = writes ? await ensureEventStream(link, config.eventStore.duplicateWindowMs, config.nats.replicas) : await awaitEventStream(link, log);
  const fenced = writes && (await appendsNeedFence(link));
  const store = createJetStreamEventStore(link, { ...config.eventStore, ...traced, fenced });
  // Everything that needs NATS at start comes before any port is served: a worker that
  // fails here exits having accepted no connection (the primary starts it again).
  const head = await store.head();
  let draining = false;
  const write = writes ? await startWriteSide({ config, log, app, link, store, streamId, metrics, readMetrics, tracing, isDraining: () => draining }) : undefined;

  const views = openViewStore(viewsPath(config));
  const viewsStatus = followViewsStatus(link, viewsStatusSubject(config.cluster.hostId, viewsPath(config)));
  const applied = followApplied(link, viewsAppliedSubject(config.cluster.hostId, viewsPath(config)));
  const queryApp = await buildQueryApp({
    aggregates,
    routes: app.routes,
    views,
    store,
    http: config.http,
    query: config.query,
    log,
    isReady: () => !draining,
    natsVersion: () => link.nc.info?.version,
    metrics: readMetrics,
    ...traced,
    viewsStatus: viewsStatus.latest,
    applied,
    viewsBound: viewsBoundTo(views, head.identity),
  });
  await queryApp.listen({ host: config.http.host, port: config.http.queryPort });

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      draining = true;
      const deadline = config.cluster.shutdownTimeoutMs;
      // Leases first: each partition's queued commands finish here, then its lease goes
      // back and another worker takes it at once, while this one drains the rest.
      await write?.leases?.stop();
      // A command already running is past its dependency reads or into its append; both end
      // within these timeouts, and its caller is better served by its real outcome.
      await write?.host.drain(deadline, config.nats.requestTimeoutMs + config.eventStore.publishTimeoutMs);
      await write?.router.stop();
      const forced = setTimeout(() => {
        write?.commandApp.server.closeAllConnections();
        queryApp.server.closeAllConnections();
      }, Math.min(deadline, 2000));
      await Promise.all([write?.commandApp.close(), queryApp.close()]);
      clearTimeout(forced);
      viewsStatus.stop();
      applied.stop();
      await link.close();
      await write?.snapshots.close();
      await views.close();
      await tracing?.shutdown();
    })());
  return { link, store, ...write, queryApp, metrics, stop };
}

async function startWriteSide(opts: {
  config: Config;
  log: Logger;
  app: ConvergeApp;
  link: NatsLink;
  store: EventStore;
  streamId: string;
  metrics: Metrics;
  readMetrics: ReturnType<typeof clusterMetricsReader>;
  tracing: Tracing | undefined;
  isDraining: () => boolean;
}): Promise<WriteSide> {
  const { config, log, link, store, streamId, metrics, isDraining } = opts;
  const { aggregates } = opts.app;
  const traced = opts.tracing ? { tracing: opts.tracing } : {};
  const snapshots = openSnapshotStore(snapshotsPath(config), (err) =>
    log.warn({ err }, 'snapshot write failed'),
  );
  const host = createActorHost({
    aggregates,
    store,
    snapshots,
    streamId,
    duplicateWindowMs: config.eventStore.duplicateWindowMs,
    settings: config.actors,
    log,
    onConflict: (aggregate, retrying) => {
      metrics.conflict(aggregate);
      if (retrying) metrics.retry(aggregate);
    },
  });
  watchActors(metrics, host);
  const { partitions, workers, workerIndex } = config.cluster;
  let leases: PartitionLeases | undefined;
  const router = createCommandRouter({
    link,
    host,
    partitions,
    owns: (p) => (leases ? leases.owns(p) : ownerOf(p, workers) === workerIndex),
    timeoutMs: config.nats.requestTimeoutMs,
    log,
    onForward: metrics.forwarded,
    ...traced,
  });
  const staticShare = Array.from({ length: partitions }, (_, p) => p).filter((p) => ownerOf(p, workers) === workerIndex).length;
  watchPartitions(metrics, () => (leases ? leases.held().length : staticShare));
  if (config.cluster.ownership === 'leases') {
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
    await leases.start();
  } else {
    router.start();
  }
  const commandApp = await buildCommandApp({
    aggregates,
    dispatch: (command, parent) => metrics.timeCommand(command.aggregate, command.type, () => router.dispatch(command, parent), (result) => result.kind),
    http: config.http,
    metrics: opts.readMetrics,
    ...traced,
    log,
    isReady: () => link.isConnected() && !isDraining(),
    natsVersion: () => link.nc.info?.version,
    isDraining,
  });
  await commandApp.listen({ host: config.http.host, port: config.http.commandPort });
  return { host, snapshots, router, leases, commandApp };
}
