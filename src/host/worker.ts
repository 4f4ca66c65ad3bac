import cluster from 'node:cluster';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { EventStore } from '../core/eventStore.js';
import { buildCommandApp } from '../http/commandApp.js';
import { buildQueryApp } from '../http/queryApp.js';
import { serveHandedConnections, type HandedConnections } from './handoff.js';
import { refusing } from '../nats/writeRefusals.js';
import type { NatsLink } from '../nats/connection.js';
import { clusterMetricsReader } from '../observe/cluster.js';
import { createMetrics, type Metrics } from '../observe/metrics.js';
import { createTracing } from '../observe/tracing.js';
import { openViewStore } from '../read/lmdbViews.js';
import { followApplied, followViewsStatus, viewsAppliedSubject, viewsStatusSubject } from '../read/status.js';
import { viewsBoundTo } from '../read/storeIdentity.js';
import type { ConvergeApp } from './app.js';
import type { Config } from './config.js';
import { viewsPath } from './paths.js';
import { openStoreSide } from './storeSide.js';
import { startWriteSide, type WriteSide } from './writeSide.js';
import { canArchive } from './archiveSide.js';
import { personalDeclarations } from '../core/personal.js';
import { archiveIndexOf } from './readSide.js';

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

/** A running worker: its NATS link, the write side (actor host, router, leases), and the command and query APIs. */
export interface Worker extends QueryWorker, Omit<WriteSide, 'stop' | 'dispatch'> {
  readonly commandApp: FastifyInstance;
}

/**
 * Starts one worker of the cluster: the in-process runtime's write side on the partitions
 * this worker owns, the command API, and the query API on the host's LMDB views, which the
 * host's projector writes (see docs/architecture.md, "Running").
 */
export async function startWorker(config: Config, log: Logger, app: ConvergeApp, services?: unknown): Promise<Worker> {
  return (await start(config, log, app, true, services)) as Worker;
}

/**
 * Starts a worker of a read replica (`cluster.role`): only the query API, on the host's
 * own views. It waits for the command hosts' stream rather than create it.
 */
export async function startQueryWorker(config: Config, log: Logger, app: ConvergeApp): Promise<QueryWorker> {
  return start(config, log, app, false, undefined);
}

async function start(config: Config, log: Logger, app: ConvergeApp, writes: boolean, services: unknown): Promise<QueryWorker & Partial<Worker>> {
  // Before connecting, which waits for NATS: the primary collects every child's registry, also during an outage.
  const metrics = createMetrics();
  const readMetrics = clusterMetricsReader(metrics.registry, METRICS_TIMEOUT_MS);
  const tracing = createTracing(config.telemetry, `worker-${config.cluster.workerIndex}`);
  const traced = tracing ? { tracing } : {};
  // Everything that needs NATS at start comes before any port is served: a worker that
  // fails here exits having accepted no connection (the primary starts it again).
  // Before the store: the archive's index, which the host's projector keeps, lives beside the views.
  const views = openViewStore(viewsPath(config), { readsOnly: true });
  const side = await openStoreSide({
    config,
    log,
    name: `converge-worker-${config.cluster.workerIndex}`,
    streams: writes ? 'create' : 'await',
    appends: writes,
    tracing,
    onReconnect: () => metrics.natsReconnected(),
    ...(canArchive(app) ? { archive: (stream: string) => archiveIndexOf(views, stream, false) } : {}),
    personal: personalDeclarations(app.aggregates),
  }).catch(async (err: unknown) => {
    await views.close();
    throw err;
  });
  const { store } = side;
  const link = side.link!;
  let draining = false;
  const write = writes ? await startWriteSide({ config, log, app, store, link, streamId: side.streamId, services, metrics, tracing, keys: side.keys }) : undefined;
  const commandApp = write
    ? await buildCommandApp({
        aggregates: app.aggregates,
        dispatch: write.dispatch,
        http: config.http,
        metrics: readMetrics,
        ...traced,
        log,
        isReady: () => link.isConnected() && !draining,
        notReady: () => refusing(link),
        natsVersion: () => link.nc.info?.version,
        isDraining: () => draining,
      })
    : undefined;
  // Forked by the primary, a worker is handed its connections (docs/architecture.md, "Running"); otherwise it listens.
  const handedOver = cluster.isWorker;
  const handed: HandedConnections[] = [];
  if (commandApp && handedOver) {
    await commandApp.ready();
    handed.push(serveHandedConnections('command', commandApp.server));
  } else {
    await commandApp?.listen({ host: config.http.host, port: config.http.commandPort });
  }

  const viewsStatus = followViewsStatus(link, viewsStatusSubject(config.cluster.hostId, viewsPath(config)));
  const applied = followApplied(link, viewsAppliedSubject(config.cluster.hostId, viewsPath(config)), () => views.refresh());
  const queryApp = await buildQueryApp({
    aggregates: app.aggregates,
    routes: app.routes ?? [],
    views,
    store,
    http: config.http,
    access: config.http,
    query: config.query,
    log,
    isReady: () => !draining,
    natsVersion: () => link.nc.info?.version,
    metrics: readMetrics,
    ...traced,
    viewsStatus: viewsStatus.latest,
    applied,
    viewsBound: viewsBoundTo(views, side.head.identity),
  });
  if (handedOver) {
    await queryApp.ready();
    handed.push(serveHandedConnections('query', queryApp.server));
  } else {
    await queryApp.listen({ host: config.http.host, port: config.http.queryPort });
  }

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      draining = true;
      for (const h of handed) h.stopTaking();
      await write?.stop();
      const forced = setTimeout(() => {
        commandApp?.server.closeAllConnections();
        queryApp.server.closeAllConnections();
      }, Math.min(config.cluster.shutdownTimeoutMs, 2000));
      await Promise.all([commandApp?.close(), queryApp.close()]);
      clearTimeout(forced);
      // Handed connections: the servers never listened, so closing them waits for none.
      await Promise.all(handed.map((h) => h.drain(Math.min(config.cluster.shutdownTimeoutMs, 2000))));
      viewsStatus.stop();
      applied.stop();
      await side.close();
      await write?.snapshots.close();
      await views.close();
      await tracing?.shutdown();
    })());
  return { link, store, ...(write ? { host: write.host, snapshots: write.snapshots, router: write.router, leases: write.leases } : {}), ...(commandApp ? { commandApp } : {}), queryApp, metrics, stop };
}
