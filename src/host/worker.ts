import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../core/config.js';
import type { EventStore } from '../core/eventStore.js';
import { buildCommandApp } from '../http/commandApp.js';
import { buildQueryApp } from '../http/queryApp.js';
import { connectNats, type NatsLink } from '../nats/connection.js';
import { clusterMetricsReader } from '../observe/cluster.js';
import { createMetrics, watchActors, type Metrics } from '../observe/metrics.js';
import { createTracing } from '../observe/tracing.js';
import { openViewStore } from '../read/lmdbViews.js';
import { followApplied, followViewsStatus, viewsAppliedSubject, viewsStatusSubject } from '../read/status.js';
import { viewsBoundTo } from '../read/storeIdentity.js';
import { createJetStreamEventStore, ensureEventStream } from '../store/jetstream.js';
import { createActorHost, type ActorHost } from '../write/host.js';
import { createCommandRouter, type CommandRouter } from '../write/router.js';
import { openSnapshotStore, type SnapshotStore } from '../write/snapshots.js';
import type { ConvergeApp } from './app.js';
import { natsAuthOf } from './config.js';
import { snapshotsPath, viewsPath } from './paths.js';

/** How long `/metrics` waits for the cluster primary, which waits up to 5 s for every child's registry. */
export const METRICS_TIMEOUT_MS = 6000;

/** A running worker: its NATS link, actor host, router, and the command and query APIs. */
export interface Worker {
  readonly link: NatsLink;
  readonly store: EventStore;
  readonly host: ActorHost;
  /** This host's snapshots of aggregate memories. */
  readonly snapshots: SnapshotStore;
  readonly router: CommandRouter;
  readonly commandApp: FastifyInstance;
  readonly queryApp: FastifyInstance;
  /** This process's metrics (the cluster's are summed by the primary). */
  readonly metrics: Metrics;
  /**
   * Drains: new commands get 503, queued ones finish up to the deadline and those not
   * started by then get 503 `shutting_down`; every caller is answered before anything closes.
   */
  stop(): Promise<void>;
}

/** Starts one worker: connects, ensures the stream, serves its partitions, the command API and the query API. */
export async function startWorker(config: Config, log: Logger, app: ConvergeApp): Promise<Worker> {
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
  const streamId = await ensureEventStream(link, config.eventStore.duplicateWindowMs, config.nats.replicas);
  const store = createJetStreamEventStore(link, { ...config.eventStore, ...traced });
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
  const router = createCommandRouter({
    link,
    host,
    partitions: config.cluster.partitions,
    workers: config.cluster.workers,
    workerIndex: config.cluster.workerIndex,
    timeoutMs: config.nats.requestTimeoutMs,
    log,
    onForward: metrics.forwarded,
    ...traced,
  });
  router.start();

  let draining = false;
  const commandApp = await buildCommandApp({
    aggregates,
    dispatch: (command, parent) => metrics.timeCommand(command.aggregate, command.type, () => router.dispatch(command, parent), (result) => result.kind),
    http: config.http,
    metrics: readMetrics,
    ...traced,
    log,
    isReady: () => link.isConnected() && !draining,
    natsVersion: () => link.nc.info?.version,
    isDraining: () => draining,
  });
  await commandApp.listen({ host: config.http.host, port: config.http.commandPort });

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
    viewsBound: viewsBoundTo(views, (await store.head()).identity),
  });
  await queryApp.listen({ host: config.http.host, port: config.http.queryPort });

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      draining = true;
      const deadline = config.cluster.shutdownTimeoutMs;
      // A command already running is past its dependency reads or into its append; both end
      // within these timeouts, and its caller is better served by its real outcome.
      await host.drain(deadline, config.nats.requestTimeoutMs + config.eventStore.publishTimeoutMs);
      await router.stop();
      const forced = setTimeout(() => {
        commandApp.server.closeAllConnections();
        queryApp.server.closeAllConnections();
      }, Math.min(deadline, 2000));
      await Promise.all([commandApp.close(), queryApp.close()]);
      clearTimeout(forced);
      viewsStatus.stop();
      applied.stop();
      await link.close();
      await snapshots.close();
      await views.close();
      await tracing?.shutdown();
    })());
  return { link, store, host, snapshots, router, commandApp, queryApp, metrics, stop };
}
