import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createActorHost, type ActorHost } from './actorHost.js';
import { buildCommandApp } from './commandApp.js';
import { createCommandRouter, type CommandRouter } from './commandRouter.js';
import type { Config } from './config.js';
import type { Domain } from './domain.js';
import { EVENTS, createEventStore, ensureEventStream, type EventStore } from './eventStore.js';
import { connectNats, type NatsLink } from './natsConnection.js';
import { viewsPath } from './projector.js';
import { buildQueryApp } from './queryApp.js';
import { openSnapshotStore, type SnapshotStore } from './snapshotStore.js';
import { viewsBoundTo, storeIdentityOf } from './storeIdentity.js';
import { openViewStore } from './viewStore.js';
import { followViewsStatus, viewsStatusSubject } from './viewStatus.js';

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
  /**
   * Drains: new commands get 503, queued ones finish up to the deadline and those not
   * started by then get 503 `shutting_down`; every caller is answered before anything closes.
   */
  stop(): Promise<void>;
}

/** Starts one worker: connects, ensures the stream, serves its partitions, the command API and the query API. */
export async function startWorker(config: Config, log: Logger, domain: Domain): Promise<Worker> {
  const { aggregates } = domain;
  const link = await connectNats(config.nats.url, {
    name: `converge-worker-${config.cluster.workerIndex}`,
    timeoutMs: config.nats.requestTimeoutMs,
    log,
  });
  const streamId = await ensureEventStream(link, config.eventStore.duplicateWindowMs);
  const store = createEventStore(link, config.eventStore);
  const snapshots = openSnapshotStore(join(resolve(config.dataDir), 'snapshots'), (err) =>
    log.warn({ err }, 'snapshot write failed'),
  );
  let router: CommandRouter | undefined;
  const host = createActorHost({
    aggregates,
    store,
    snapshots,
    streamId,
    readState: (ref) => router!.readState(ref),
    config: config.actors,
    log,
  });
  router = createCommandRouter({
    link,
    host,
    partitions: config.cluster.partitions,
    workers: config.cluster.workers,
    workerIndex: config.cluster.workerIndex,
    timeoutMs: config.nats.requestTimeoutMs,
    log,
  });
  router.start();

  let draining = false;
  const commandApp = await buildCommandApp({
    aggregates,
    dispatch: (command) => router.dispatch(command),
    http: config.http,
    log,
    isReady: () => link.isConnected() && !draining,
    natsVersion: () => link.nc.info?.version,
    isDraining: () => draining,
  });
  await commandApp.listen({ host: config.http.host, port: config.http.commandPort });

  const views = openViewStore(viewsPath(config));
  const viewsStatus = followViewsStatus(link, viewsStatusSubject(viewsPath(config)));
  const queryApp = await buildQueryApp({
    aggregates,
    routes: domain.routes,
    views,
    store,
    http: config.http,
    query: config.query,
    log,
    isReady: () => !draining,
    natsVersion: () => link.nc.info?.version,
    streamHead: () =>
      link.isConnected() ? link.jsm.streams.info(EVENTS).then((i) => i.state.last_seq, () => undefined) : Promise.resolve(undefined),
    projections: domain.projections.map((p) => p.name),
    viewsStatus: viewsStatus.latest,
    viewsBound: viewsBoundTo(views, storeIdentityOf(streamId, link.nc.info!)),
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
      await link.close();
      await snapshots.close();
      await views.close();
    })());
  return { link, store, host, snapshots, router, commandApp, queryApp, stop };
}
