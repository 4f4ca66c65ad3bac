import cluster from 'node:cluster';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AnyAggregate } from './aggregate.js';
import { buildAdminApp } from './adminApp.js';
import type { Config } from './config.js';
import { createEventStore, ensureEventStream } from './eventStore.js';
import { connectNats, type NatsLink } from './natsConnection.js';
import { ensureNoticeStreams, startNotifier, type Notifier } from './notifier.js';
import type { AnyProjection } from './projection.js';
import { createProjectionRunner, type ProjectionRunner } from './projectionRunner.js';
import { bindViewsToStream } from './storeIdentity.js';
import { subscribers } from './subscribers.js';
import { verifyViews } from './verify.js';
import { openViewStore, type ViewStore } from './viewStore.js';
import { publishViewsStatus, viewsStatusSubject, type ViewsStatus } from './viewStatus.js';

/** The host's projector: the only writer of its LMDB views, the notifier, and the admin API. */
export interface Projector {
  readonly link: NatsLink;
  readonly views: ViewStore;
  readonly runner: ProjectionRunner;
  readonly notifier: Notifier;
  readonly adminApp: FastifyInstance;
  stop(): Promise<void>;
}

/** Where a host keeps its views. */
export function viewsPath(config: Config): string {
  return join(resolve(config.dataDir), 'views');
}

/** Starts the projector: every projection catches up from its checkpoint, then follows `EVENTS` live. */
export async function startProjector(
  config: Config,
  log: Logger,
  domain: { aggregates: readonly AnyAggregate[]; projections: readonly AnyProjection[] },
): Promise<Projector> {
  const link = await connectNats(config.nats.url, { name: 'converge-projector', timeoutMs: config.nats.requestTimeoutMs, log });
  const streamId = await ensureEventStream(link, config.eventStore.duplicateWindowMs);
  await ensureNoticeStreams(link, config.eventStore.duplicateWindowMs);
  const store = createEventStore(link, config.eventStore);
  const views = openViewStore(viewsPath(config));
  // Before anything reads a checkpoint: views of another store are emptied here and rebuilt by the runner.
  await bindViewsToStream(link, views, domain.projections.map((p) => p.name), log);
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
    notifier.stop();
  };
  const runner: ProjectionRunner = createProjectionRunner({
    link,
    views,
    ...domain,
    ...config.projections,
    log,
    streamId,
    onStoreChanged,
  });
  runner.start();
  const notifier: Notifier = startNotifier({ link, views, ...config.projections, log, streamId, onStreamChanged: onStoreChanged });
  const unlisten = link.onReconnect(() => notifier.restart());
  const status = (): ViewsStatus => {
    const eventStore = runner.stream();
    const health = notifier.health();
    return {
      projections: runner.status(),
      notifier: {
        position: notifier.position(),
        state: health.state,
        lagEvents: Math.max(0, eventStore.lastPosition - notifier.position()),
        ...(health.error ? { error: health.error } : {}),
      },
      eventStore,
      at: new Date().toISOString(),
    };
  };
  const publisher = publishViewsStatus(
    link,
    viewsStatusSubject(viewsPath(config)),
    () => {
      const s = status();
      if (s.eventStore.reachable) notifier.check(s.eventStore.lastPosition);
      return s;
    },
    config.projections.statusIntervalMs,
  );
  // A verify can run for minutes; stopping the projector ends it rather than waiting.
  const stopVerifies = new AbortController();
  const adminApp = await buildAdminApp({
    runner,
    notifier,
    subscribers: subscribers(link, store),
    views,
    store,
    http: config.http,
    log,
    isReady: link.isConnected,
    natsVersion: () => link.nc.info?.version,
    viewsStatus: status,
    readyMaxLagMs: config.query.readyMaxLagMs,
    verify: ({ sample }) => verifyViews({ link, views, ...domain, log, signal: stopVerifies.signal, ...(sample === undefined ? {} : { sample }) }),
  });
  await adminApp.listen({ host: config.http.host, port: config.http.adminPort });
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      publisher.stop();
      unlisten();
      await runner.stop();
      notifier.stop();
      stopVerifies.abort();
      await adminApp.close();
      await link.close();
      await views.close();
    })());
  return { link, views, runner, notifier, adminApp, stop };
}
