import cluster from 'node:cluster';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../core/config.js';
import { buildAdminApp } from '../http/adminApp.js';
import { ensureNoticeStreams, startNotifier, type Notifier } from '../integration/notifier.js';
import { subscribers } from '../integration/subscribers.js';
import { connectNats, type NatsLink } from '../nats/connection.js';
import { clusterMetricsReader } from '../observe/cluster.js';
import { createMetrics, watchReadSide, type Metrics } from '../observe/metrics.js';
import { createTracing } from '../observe/tracing.js';
import { openViewStore, type LmdbViewStore } from '../read/lmdbViews.js';
import { createProjectionRunner, type ProjectionRunner } from '../read/runner.js';
import { nudgeApplied, publishViewsStatus, viewsAppliedSubject, viewsStatusSubject, type ViewsStatus } from '../read/status.js';
import { bindViewsToHead } from '../read/storeIdentity.js';
import { verifyViews } from '../read/verify.js';
import { awaitEventStream, createJetStreamEventStore, ensureEventStream } from '../store/jetstream.js';
import { readLeaseOwners, staticOwners } from '../write/leases.js';
import type { ConvergeApp } from './app.js';
import { natsAuthOf } from './config.js';
import { viewsPath } from './paths.js';
import { METRICS_TIMEOUT_MS } from './worker.js';

/** The host's projector: the only writer of its LMDB views, the notifier, and the admin API. */
export interface Projector {
  readonly link: NatsLink;
  readonly views: LmdbViewStore;
  readonly runner: ProjectionRunner;
  /** The notifier; a read replica has none, since the command hosts' projectors announce every commit. */
  readonly notifier?: Notifier;
  readonly adminApp: FastifyInstance;
  /** This process's metrics: the read side's gauges (the cluster's are summed by the primary). */
  readonly metrics: Metrics;
  stop(): Promise<void>;
}

/** Starts the projector: every projection catches up from its checkpoint, then follows `EVENTS` live. */
export async function startProjector(
  config: Config,
  log: Logger,
  app: Pick<ConvergeApp, 'aggregates' | 'projections'>,
): Promise<Projector> {
  // Before connecting, which waits for NATS: the primary collects every child's registry, also during an outage.
  const metrics = createMetrics();
  const readMetrics = clusterMetricsReader(metrics.registry, METRICS_TIMEOUT_MS);
  const tracing = createTracing(config.telemetry, 'projector');
  const traced = tracing ? { tracing } : {};
  const link = await connectNats(config.nats.url, { name: 'converge-projector', timeoutMs: config.nats.requestTimeoutMs, log, auth: natsAuthOf(config) });
  link.onReconnect(() => metrics.natsReconnected());
  // A read replica follows the command hosts' stream and announces nothing: a notifier behind
  // theirs would put older notices over newer ones in NOTIFY, which keeps one per aggregate.
  const readReplica = config.cluster.role === 'read-replica';
  const streamId = readReplica ? await awaitEventStream(link, log) : await ensureEventStream(link, config.eventStore.duplicateWindowMs, config.nats.replicas);
  if (!readReplica) await ensureNoticeStreams(link, config.eventStore.duplicateWindowMs, config.nats.replicas);
  const store = createJetStreamEventStore(link, { ...config.eventStore, ...traced });
  const views = openViewStore(viewsPath(config));
  // Before anything reads a checkpoint: views of another store are emptied here and rebuilt by the runner.
  bindViewsToHead(views, app.projections.map((p) => p.name), await store.head(), log);
  let storeChanged = false;
  const onStoreChanged = (reason: string) => {
    if (storeChanged) return;
    storeChanged = true;
    // Serving on would mix two stores' commits in one view. A restarted projector resets the
    // views at start, so under the cluster primary it exits to be restarted; run on its own,
    // it stops following the stream and says so.
    log.error({ reason }, `the event store changed under the running projector: ${reason}; restarting to rebuild the views from it`);
    if (cluster.isWorker) process.exit(75);
    void runner.stop();
    notifier?.stop();
  };
  const runner: ProjectionRunner = createProjectionRunner({
    store,
    views,
    aggregates: app.aggregates,
    projections: app.projections,
    ...config.projections,
    log,
    streamId,
    onStoreChanged,
    onApplied: nudgeApplied(link, viewsAppliedSubject(config.cluster.hostId, viewsPath(config))),
    ...traced,
  });
  runner.start();
  const notifier: Notifier | undefined = readReplica
    ? undefined
    : startNotifier({ link, store, views, ...config.projections, publishTimeoutMs: config.nats.requestTimeoutMs, log, streamId, onStreamChanged: onStoreChanged, ...traced });
  const unlisten = link.onReconnect(() => notifier?.restart());
  const status = (): ViewsStatus => {
    const eventStore = runner.stream();
    const health = notifier?.health();
    return {
      projections: runner.status(),
      ...(notifier && health
        ? {
            notifier: {
              position: notifier.position(),
              state: health.state,
              lagEvents: Math.max(0, eventStore.lastPosition - notifier.position()),
              ...(health.error ? { error: health.error } : {}),
            },
          }
        : {}),
      eventStore,
      at: new Date().toISOString(),
    };
  };
  const publisher = publishViewsStatus(
    link,
    viewsStatusSubject(config.cluster.hostId, viewsPath(config)),
    () => {
      const s = status();
      if (s.eventStore.reachable) notifier?.check(s.eventStore.lastPosition);
      return s;
    },
    config.projections.statusIntervalMs,
  );
  const registry = subscribers(link, store);
  watchReadSide(
    metrics,
    () => {
      const s = status();
      return { projections: s.projections, lastPosition: s.eventStore.reachable ? s.eventStore.lastPosition : undefined, notifierLagEvents: s.notifier?.lagEvents };
    },
    async () =>
      link.isConnected() ? (await registry.list()).map((s) => ({ name: s.name, pending: s.pending + s.ackPending + s.replayPending })) : [],
  );
  // A verify can run for minutes; stopping the projector ends it rather than waiting.
  const stopVerifies = new AbortController();
  const { partitions, workers, hostId } = config.cluster;
  const adminApp = await buildAdminApp({
    partitions: () => (config.cluster.ownership === 'leases' ? readLeaseOwners(link, partitions) : Promise.resolve(staticOwners(hostId, workers, partitions))),
    runner,
    aggregates: app.aggregates,
    subscribers: registry,
    views,
    store,
    http: config.http,
    log,
    isReady: link.isConnected,
    natsVersion: () => link.nc.info?.version,
    viewsStatus: status,
    readyMaxLagMs: config.query.readyMaxLagMs,
    metrics: readMetrics,
    ...traced,
    statusIntervalMs: config.projections.statusIntervalMs,
    maxPageSize: config.query.maxPageSize,
    verify: ({ sample }) => verifyViews({ store, views, aggregates: app.aggregates, projections: app.projections, log, signal: stopVerifies.signal, ...(sample === undefined ? {} : { sample }) }),
  });
  await adminApp.listen({ host: config.http.host, port: config.http.adminPort });
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      publisher.stop();
      unlisten();
      await runner.stop();
      notifier?.stop();
      stopVerifies.abort();
      await adminApp.close();
      await link.close();
      await views.close();
      await tracing?.shutdown();
    })());
  return { link, views, runner, notifier, adminApp, metrics, stop };
}
